"""End to end in headless Chromium: open the app, run every tab with its defaults, see results, no errors.

Screenshots are saved in test-artifacts/ (git-ignored) for people to look at.
"""

import shutil
import socket
import time

import pytest

import app
from conftest import REFERENCE, ROOT

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"
MODEL = str(REFERENCE / "sg2_32_uncond.pkl")

pytestmark = pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture(scope="module")
def url():
    blocks = app.build_app(MODEL, "cpu", app.SourcePolicy([REFERENCE]))
    app.queue(blocks)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=app.CSS)
    yield f"http://127.0.0.1:{port}"
    blocks.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, css, timeout=60):
    from selenium.webdriver.common.by import By
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"nothing matching {css!r} appeared within {timeout} s")


def click(driver, xpath, timeout=30):
    """Click the visible element at xpath, once there is one (a tab switch can take a moment)."""
    from selenium.webdriver.common.by import By
    deadline = time.time() + timeout
    while not (shown := [e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed()]):
        if time.time() > deadline:
            raise AssertionError(f"nothing visible at {xpath!r} within {timeout} s")
        time.sleep(0.25)
    element = shown[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def assert_no_error(driver, name):
    from selenium.webdriver.common.by import By
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".toast-body.error, .error") if e.is_displayed()]
    assert not errors, f"error shown on {name}: {errors}"


def test_every_tab_in_a_real_browser(url, browser):
    browser.get(url + "?tab=generate&seeds=0-3")
    # The first screen shows faces without a click.
    wait_for(browser, "#generate-gallery img")
    wait_for(browser, "#model-info p")
    assert_no_error(browser, "1-generate")

    click(browser, "//button[@role='tab' and contains(., 'Style mixing')]")
    click(browser, "//button[normalize-space()='Mix styles']")
    wait_for(browser, "#mix-grid img")
    assert_no_error(browser, "2-style-mixing")

    click(browser, "//button[@role='tab' and contains(., 'Noise')]")
    click(browser, "//button[normalize-space()='Study the noise']")
    wait_for(browser, "#noise-heatmap img")
    assert_no_error(browser, "3-noise")

    click(browser, "//button[@role='tab' and contains(., 'Interpolation video')]")
    click(browser, "//button[normalize-space()='Make the video']")
    wait_for(browser, "#video-player video")
    assert_no_error(browser, "4-video")


def test_link_restores_a_tab(url, browser):
    browser.get(url + "?tab=mix&rows=1,2&cols=3&preset=middle")
    from selenium.webdriver.common.by import By
    wait_for(browser, "#mix-grid")
    deadline = time.time() + 30
    while time.time() < deadline:
        values = [e.get_attribute("value") for e in browser.find_elements(By.CSS_SELECTOR, "textarea, input")]
        if "1,2" in values:
            break
        time.sleep(0.25)
    assert "1,2" in values and "3" in values
    assert_no_error(browser, "5-link-restored")


def _image_sources(driver, css, count, timeout=90):
    """The src of the images matching css, once there are count of them."""
    from selenium.webdriver.common.by import By
    deadline = time.time() + timeout
    while time.time() < deadline:
        sources = [e.get_attribute("src") for e in driver.find_elements(By.CSS_SELECTOR, css)]
        if len(sources) >= count and all(sources):
            return sources
        time.sleep(0.25)
    raise AssertionError(f"{count} images matching {css!r} did not appear within {timeout} s")


def _fetch(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _pixels(data):
    import io
    import numpy as np
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_links_to_every_tab_show_the_senders_result(url, browser):
    """Opened, a link of each tab shows the result its sender saw: the same pixels, the same video."""
    import imageio.v3 as iio
    import numpy as np
    import stylegan
    from stylegan import demos
    G = stylegan.load(MODEL, device="cpu")

    browser.get(url + "?tab=generate&seeds=5,9&psi=0.5")
    faces = _image_sources(browser, "#generate-gallery img", 2)
    want = demos.generate(G, "5, 9", psi=0.5)
    for source, image in zip(faces, want.images):
        assert np.array_equal(_pixels(_fetch(source)), np.asarray(image))
    link = wait_for(browser, "a[href*='tab=generate']")[0].get_attribute("href")
    assert "model=sg2_32_uncond.pkl" in link and "%2F" not in link  # the model by name, no server path
    assert_no_error(browser, "6-link-generate")

    browser.get(url + "?tab=mix&rows=1,2&cols=3&layers=middle&psi=0.6")
    grid, = _image_sources(browser, "#mix-grid img", 1)
    assert np.array_equal(_pixels(_fetch(grid)), np.asarray(demos.style_mix(G, "1,2", "3", layers="middle",
                                                                           psi=0.6).grid))
    assert_no_error(browser, "7-link-mix")

    browser.get(url + "?tab=noise&seed=4&samples=3&layers=fine")
    heat, = _image_sources(browser, "#noise-heatmap img", 1)
    want = demos.noise_study(G, 4, num_samples=3, layers="fine")
    assert np.array_equal(_pixels(_fetch(heat)), np.asarray(want.extras["heatmap"]))
    assert_no_error(browser, "8-link-noise")

    browser.get(url + "?tab=video&seeds=1,2&frames=3&fps=10&loop=0&space=z")
    video, = _image_sources(browser, "#video-player video", 1)
    frames = iio.imread(_fetch(video), extension=".mp4")
    assert frames.shape == (4, 32, 32, 3)  # 1 transition of 3 frames, and the last seed
    shown = browser.execute_script("const v = document.querySelector('#video-player video'); const r ="
                                   " v.getBoundingClientRect(); return [r.width, r.height, getComputedStyle(v).imageRendering]")
    assert shown[0] >= 4 * 32 and abs(shown[0] - shown[1]) < 2 and shown[2] == "pixelated", shown  # square, sharp
    assert_no_error(browser, "9-link-video")


def test_edit_tab_shows_its_strip_and_its_link_the_same_strip(url, browser):
    import numpy as np
    import stylegan
    from stylegan import demos
    G = stylegan.load(MODEL, device="cpu")
    want = demos.edit(G, seed=1, method="ganspace", components="0, 1*-0.5", strength=2.5, steps=5)

    browser.get(url + "?tab=edit&seed=1&method=ganspace&dirs=0,1*-0.5&strength=2.5&steps=5")
    shown = _image_sources(browser, "#edit-gallery img", 5)
    link = wait_for(browser, "a[href*='tab=edit']")[0].get_attribute("href")
    assert_no_error(browser, "14-edit")
    for source, image in zip(shown, want.images):
        assert np.array_equal(_pixels(_fetch(source)), np.asarray(image))

    browser.get(url)  # the page's own link, opened afresh, shows the same strip
    wait_for(browser, "#generate-gallery img")
    browser.get(link)
    again = _image_sources(browser, "#edit-gallery img", 5)
    assert [_pixels(_fetch(s)).tolist() for s in again] == [np.asarray(im).tolist() for im in want.images]
    assert_no_error(browser, "15-edit-link")

    click(browser, "//button[@role='tab' and contains(., 'Inside')]")
    click(browser, "//button[normalize-space()='Look inside']")
    wait_for(browser, "#layers-grid img")
    wait_for(browser, "#layers-torgb img")
    assert_no_error(browser, "16-inside")


def test_your_photo_tab_aligns_projects_and_hands_the_face_to_style_mixing(url, browser):
    from selenium.webdriver.common.by import By
    browser.get(url + "?tab=generate&seeds=1")
    wait_for(browser, "#generate-gallery img")
    click(browser, "//button[@role='tab' and contains(., 'Your photo')]")
    upload = [e for e in browser.find_elements(By.CSS_SELECTOR, "#photo-input input[type=file]")][0]
    upload.send_keys(str(ROOT / "tests" / "photos" / "astronaut.png"))
    wait_for(browser, "#photo-input img")
    click(browser, "//button[normalize-space()='Find it in W']")
    wait_for(browser, "#photo-aligned img", timeout=120)
    wait_for(browser, "#photo-compare img", timeout=300)
    caption = wait_for(browser, "#photo-caption p")[0].text
    assert "PSNR" in caption and "MS-SSIM" in caption
    assert "astronaut" not in browser.current_url
    assert_no_error(browser, "17-photo")

    click(browser, "//button[normalize-space()='Mix it with seeds']")
    click(browser, "//button[normalize-space()='Mix styles']")
    grid, = _image_sources(browser, "#mix-grid img", 1)
    rows = _pixels(_fetch(grid)).shape[0] // 32
    assert rows == 2  # the header row and the one projected face
    assert_no_error(browser, "18-photo-mixed")


def test_error_sentences_are_shown_whole(url, browser):
    """Sentences with <, > and & in them (a file name, a seed) are shown as text, not eaten as markup:
    in the note of a failed model pick and in an error message."""
    from urllib.parse import quote
    from selenium.webdriver.common.by import By
    name, seed = "<b>no</b> & such.pkl", "<i>x</i> & y"
    browser.get(url + "?tab=generate&seeds=" + quote(seed) + "&model=" + quote(str(REFERENCE / name)))
    deadline = time.time() + 60
    toasts = []
    while time.time() < deadline and not any(seed in t for t in toasts):
        toasts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".toast-body") if e.is_displayed()]
        time.sleep(0.25)
    note = wait_for(browser, "#pick-note p")[0].text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "10-error-whole.png"))
    assert name in note and "no such checkpoint" in note, note
    assert any(f"'{seed}' is not a seed" in t for t in toasts), toasts


def test_a_link_to_a_model_this_server_cannot_load_keeps_the_model_in_use(url, browser):
    """Offline, a link naming a catalog model that needs the network says why in one whole sentence
    (the download error has <, > in it) and shows its result with the model in use."""
    from urllib.parse import quote
    from selenium.webdriver.common.by import By
    browser.get(url + "?tab=generate&seeds=1,2&model=" + quote("FFHQ 1024 px (StyleGAN, 2019)"))
    _image_sources(browser, "#generate-gallery img", 2)
    note = wait_for(browser, "#pick-note p")[0].text
    assert note.startswith("Could not switch to FFHQ 1024 px (StyleGAN, 2019), so ") and "download failed (" in note
    assert note.endswith(").") and "<" in note, note  # the urlopen error's text, whole
    picker = browser.find_element(By.CSS_SELECTOR, "input[role='listbox'], input[aria-expanded]")
    assert picker.get_attribute("value").endswith("sg2_32_uncond.pkl")
    assert_no_error(browser, "11-link-to-a-model-out-of-reach")


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_small_images_are_shown_enlarged_sharp_and_whole(url, browser, width, height):
    """A 32 px model's faces, mixing grid and heat map: enlarged with nearest neighbour, no scrolling
    inside a gallery; screenshots at a laptop's and a phone's width."""
    shown = {}
    try:
        browser.set_window_size(width, height)
        for tab, css, count in [("generate", "#generate-gallery img", 8), ("mix", "#mix-grid img", 1),
                                 ("noise", "#noise-heatmap img", 1)]:
            browser.get(url + f"?tab={tab}")
            _image_sources(browser, css, count)
            time.sleep(1)  # the last layout
            shown[tab] = browser.execute_script(
                "return [...document.querySelectorAll(arguments[0])].map(i => [i.naturalWidth,"
                " i.getBoundingClientRect().width, getComputedStyle(i).imageRendering])", css)
            scrolling = browser.execute_script(
                "return [...document.querySelectorAll('.grid-wrap, .block')].filter(e => e.closest('[id$=gallery],"
                " [id$=compare], #mix-grid, #noise-heatmap') && (e.scrollHeight > e.clientHeight + 2"
                " || e.scrollWidth > e.clientWidth + 2) && getComputedStyle(e).overflow != 'visible').length")
            assert scrolling == 0, (tab, width)
            page_height = browser.execute_script("return document.body.scrollHeight")
            browser.set_window_size(width, page_height)
            assert_no_error(browser, f"12-{tab}-{width}px")
            browser.set_window_size(width, height)
    finally:
        browser.set_window_size(1400, 1800)
    for tab, images in shown.items():
        for natural, on_screen, rendering in images:
            # At least 2.5 times their size, or most of a phone's width
            assert rendering == "pixelated" and on_screen >= min(2.5 * natural, 0.75 * width), (
                tab, width, natural, on_screen)
