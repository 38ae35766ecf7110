"""Checking the catalog: is every source of every model still there, of the size (and sha256) listed?

Nothing is downloaded: a Hub file's size and sha256 come from the Hub's answer to a HEAD request
(its ETag is the sha256 of files stored with LFS), a URL's size from its Content-Length. A URL's
sha256 would need the whole file, so it is not checked.
"""

import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from . import loading
from .loading import LoadError, brief

COLUMNS = ("model", "source", "reachable", "size", "sha256")


@dataclass
class SourceCheck:
    model: str
    source: str
    reachable: str  # "yes", or why not
    size: str = "-"
    sha256: str = "-"
    ok: bool = False

    def row(self):
        return (self.model, self.source, self.reachable, self.size, self.sha256)


def check_catalog(entries=None, timeout=10.0):
    """One SourceCheck per source of every catalog entry, in order. A LoadError (one sentence) when
    no host of any source accepts a connection: this machine is offline."""
    entries = loading.read_catalog() if entries is None else entries
    urls = [s["url"] for e in entries for s in e["sources"] if s["url"] != "bundled"]
    hosts = {_host(url) for url in urls if not url.startswith("hf://")}
    hub = any(url.startswith("hf://") for url in urls)
    if urls and not ((hub and loading.hub_reachable()) or any(_host_accepts(host) for host in hosts)):
        raise LoadError("The catalog cannot be checked offline: no host of its sources accepts a connection.")
    return [check_source(entry["name"], source, timeout) for entry in entries for source in entry["sources"]]


def check_source(model, source, timeout=10.0):
    url = source["url"]
    if url == "bundled":
        there = loading.BUNDLED_MODEL.is_file()
        return _compare(SourceCheck(model, url, "yes (in the package)" if there else "no: the file is missing"),
                        source, loading.BUNDLED_MODEL.stat().st_size if there else None, None, there)
    try:
        size, sha256 = _hub_head(url, timeout) if url.startswith("hf://") else _url_head(url, timeout)
    except LoadError as e:
        return SourceCheck(model, url, f"no: {e}")
    return _compare(SourceCheck(model, url, "yes"), source, size, sha256, True)


def _compare(check, source, size, sha256, reachable):
    listed_size, listed_sha256 = source.get("size"), (source.get("sha256") or "").lower()
    if size is not None:
        check.size = f"{size:,}" + ("" if listed_size is None else " (as listed)" if size == listed_size
                                    else f" (listed {listed_size:,})")
    if sha256 is None:
        check.sha256 = "not checked" if reachable else "-"
    else:
        check.sha256 = ("matches" if sha256 == listed_sha256 else "differs") if listed_sha256 else "not listed"
    check.ok = reachable and (listed_size is None or size == listed_size) and check.sha256 != "differs"
    return check


def _hub_head(url, timeout):
    """(size, sha256 or None) of a Hub file, from the Hub's HEAD answer."""
    import huggingface_hub
    repo_id, filename, revision = loading.parse_hub_url(url)
    try:
        meta = huggingface_hub.get_hf_file_metadata(
            huggingface_hub.hf_hub_url(repo_id, filename, revision=revision), timeout=timeout)
    except huggingface_hub.errors.EntryNotFoundError:
        raise LoadError("the repository has no such file (moved or removed)") from None
    except huggingface_hub.errors.RepositoryNotFoundError:
        raise LoadError(f"no such repository {repo_id!r} (or it is private)") from None
    except huggingface_hub.errors.RevisionNotFoundError:
        raise LoadError(f"no revision {revision!r}") from None
    except Exception as e:  # connection failures come in many types
        raise LoadError(f"unreachable ({brief(e)})") from None
    etag = (meta.etag or "").strip('"').lower()
    return meta.size, etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None


def _url_head(url, timeout):
    """(size or None, None) of a file at a URL, from a HEAD request (redirects followed)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
            length = response.headers.get("Content-Length")
    except urllib.error.HTTPError as e:
        raise LoadError(f"the server answered {e.code} {e.reason}") from None
    except Exception as e:
        raise LoadError(f"unreachable ({brief(e)})") from None
    return (int(length) if length and length.isdigit() else None), None


def _host(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _host_accepts(host, timeout=3.0):
    try:
        socket.create_connection(host, timeout=timeout).close()
        return True
    except OSError:
        return False


def table(checks):
    """The checks as a plain-text table, one source a line."""
    rows = [COLUMNS] + [check.row() for check in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
