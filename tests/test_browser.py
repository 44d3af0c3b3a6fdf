"""The built site as its readers see it: every page in headless Chromium, at a desktop and a phone width.

Served from localhost, each page must load every image, show every figure at its own size (so that no text in it
is under 9 px), render all its maths (no raw TeX left), log no console error, request nothing from any other
host, link only to local files that exist, and keep its main column within the window. One screenshot per page and width is saved under ``_build/screenshots/`` for review. Needs Debian's
``chromium`` and ``chromium-driver`` (``.ci/run`` installs them where absent); elsewhere the test skips, saying so.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from replib.results import REPO_ROOT

WIDTHS = {"desktop": (1400, 900), "phone": (390, 844)}
SCREENSHOTS = REPO_ROOT / "_build" / "screenshots"
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")

# Maths left as TeX, outside code: MathJax did not run or could not parse it.
RAW_TEX = r"""
const body = document.querySelector('.bd-article') || document.body;
const copy = body.cloneNode(true);
copy.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
const text = copy.innerText;
return [/\\\(|\\\)|\\\[|\\\]|\$\$/.test(text), text.match(/.{0,40}(\\\(|\\\[|\$\$).{0,40}/)?.[0] || ''];
"""
BROKEN_IMAGES = "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);"
# Figures shown smaller than drawn: their smallest text would fall below 9 px (replib.plotting.MIN_FONT_PT).
SHRUNK_FIGURES = """
return [...document.querySelectorAll('.bd-article figure img, .bd-article .cell_output img')]
  .filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width < 0.99 * i.naturalWidth)
  .map(i => `${i.getAttribute('src').split('/').pop()}: ${Math.round(i.getBoundingClientRect().width)} of ${i.naturalWidth} px`);
"""
OVERFLOW = """
const main = document.querySelector('.bd-article') || document.body;
return {page: document.documentElement.scrollWidth - window.innerWidth, column: main.scrollWidth - main.clientWidth};
"""
MATHJAX_DONE = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) { MathJax.startup.promise.then(() => done(true)); }
else { done(false); }
"""


def _browser():
    binary = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("no Chromium and ChromeDriver here (Debian: apt-get install chromium chromium-driver; "
                    ".ci/run installs them): the site was not checked in a browser")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))


@pytest.fixture(scope="module")
def served(built_site):
    """The built site on a local port, for the whole module."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield built_site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what matters; the access log is noise
        pass


def _requests(driver) -> list[str]:
    """Every URL the page requested since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _local_links_missing(html: Path, page: Path, hrefs: list[str]) -> list[str]:
    missing = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path:  # another site, mailto:, or a link within the page
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or html.resolve() not in target.parents:
            missing.append(href)
    return missing


@pytest.mark.slow
def test_every_page_renders_offline_at_desktop_and_phone_width(served):
    html, base = served
    pages = sorted(p.relative_to(html) for p in html.rglob("*.html") if "_static" not in p.parts)
    assert pages, f"no pages in {html}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    driver = _browser()
    try:
        for width_name, (width, height) in WIDTHS.items():
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width_name == "phone"})
            for page in pages:
                where = f"{page} at {width} px"
                _requests(driver)  # drop what earlier pages requested
                driver.get(f"{base}/{page.as_posix()}")
                driver.execute_async_script(MATHJAX_DONE)
                raw, sample = driver.execute_script(RAW_TEX)
                if raw:
                    problems.append(f"{where}: maths left as TeX: {sample!r}")
                if broken := driver.execute_script(BROKEN_IMAGES):
                    problems.append(f"{where}: images that did not load: {broken}")
                if shrunk := driver.execute_script(SHRUNK_FIGURES):
                    problems.append(f"{where}: figures shown smaller than drawn (text under 9 px): {shrunk}")
                overflow = driver.execute_script(OVERFLOW)
                if overflow["page"] > 1 or overflow["column"] > 1:
                    problems.append(f"{where}: wider than the window by {overflow['page']} px "
                                    f"(main column: {overflow['column']} px)")
                errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
                if errors:
                    problems.append(f"{where}: console errors: {errors}")
                remote = [u for u in _requests(driver)
                          if urlsplit(u).scheme in ("http", "https") and urlsplit(u).hostname not in ("127.0.0.1",)]
                if remote:
                    problems.append(f"{where}: requests to other hosts: {remote}")
                if width_name == "desktop":  # links do not depend on the width
                    hrefs = driver.execute_script("return [...document.links].map(a => a.getAttribute('href'));")
                    shown = html / unquote(urlsplit(driver.current_url).path).lstrip("/")  # after any redirect
                    if missing := _local_links_missing(html, shown, hrefs):
                        problems.append(f"{where}: broken local links: {missing}")
                driver.save_screenshot(str(SCREENSHOTS / f"{page.as_posix().replace('/', '__')[:-5]}-{width}.png"))
    finally:
        driver.quit()
    assert not problems, "\n".join(problems)
