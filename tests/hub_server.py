"""A tiny stand-in for the Hugging Face Hub's file endpoint, for tests (huggingface_hub honours HF_ENDPOINT).

Serves HEAD and GET on /{owner}/{repo}/resolve/{revision}/{path} from a dict of files, with
byte ranges (as the real Hub does, so that an interrupted download can resume).
A file whose name is in `truncate` is announced at full length but its body is cut off after a
third and the connection dropped: on every GET, or on the first `drops[name]` GETs only.
"""

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    def __init__(self, files, truncate=(), drops=None):
        self.files = dict(files)  # "owner/repo/path" -> bytes
        self.truncate = set(truncate)
        self.drops = dict(drops or {})  # "owner/repo/path" -> how many GETs still break off
        self.requests = []  # (method, path)
        self.ranges = []  # the Range header of each GET (None without one)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.respond(body=False)

            def do_GET(self):
                self.respond(body=True)

            def respond(self, body):
                hub.requests.append((self.command, self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                key = "/".join(parts[:2] + parts[4:]) if len(parts) > 4 and parts[2] == "resolve" else None
                data = hub.files.get(key)
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Error-Message", "Entry not found")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                wanted = self.headers.get("Range") if body else None
                if body:
                    hub.ranges.append(wanted)
                match = re.fullmatch(r"bytes=([0-9]+)-", wanted or "")
                if match and int(match.group(1)) < len(data):
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                cut = key in hub.truncate or hub.drops.get(key, 0) > 0
                if cut:
                    hub.drops[key] = hub.drops.get(key, 0) - 1
                    # Part of the body, then the connection is gone: the client sees a short read.
                    self.wfile.write(data[start:start + max(1, (len(data) - start) // 3)])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(data[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
