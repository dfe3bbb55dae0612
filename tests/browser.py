"""Does an HTML page render with its images? An HTML parser always checks that every <img> is
an SVG with a size > 0; headless Chromium (Debian's chromium + chromium-driver, through
selenium), where it starts, checks that each image loads. Used by the report's and the docs'
tests."""

from __future__ import annotations

import base64
import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def svg_size(data: bytes) -> tuple[float, float]:
    """(width, height) of an SVG document, parsed in full; AssertionError if it is not one."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise AssertionError(f"not an SVG: {exc}") from None
    assert root.tag == "{http://www.w3.org/2000/svg}svg", "not an SVG"
    width, height = (float(root.attrib[k].removesuffix("pt")) for k in ("width", "height"))
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 10, "an empty drawing"
    return width, height


class _Page(HTMLParser):
    """The <img> sources and the table cells (by row) of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: Path) -> _Page:
    page = _Page()
    page.feed(html.read_text(encoding="utf-8"))
    return page


def parser_check(html: Path, expected: int) -> None:
    """Every <img> is an SVG (a data URI, or a file beside the page) with a size > 0."""
    sources = parse(html).images
    assert len(sources) == expected, (len(sources), expected)
    for src in sources:
        if src.startswith("data:"):
            head, _, payload = src.partition(",")
            assert head == "data:image/svg+xml;base64", head
            data = base64.b64decode(payload, validate=True)
        else:
            data = (html.parent / src).read_bytes()
        assert min(svg_size(data)) > 0, src[:60]


FITS = """
const problems = [];
if (document.documentElement.scrollWidth > window.innerWidth)
  problems.push(`the page is ${document.documentElement.scrollWidth} px wide`);
for (const e of document.querySelectorAll('article table, article pre > code'))
  if (e.scrollWidth > e.clientWidth + 1)
    problems.push(`a ${e.tagName.toLowerCase()} of ${e.scrollWidth} px in ${e.clientWidth} px: `
                  + e.textContent.trim().slice(0, 40));
for (const i of document.querySelectorAll('article img'))
  if (i.getBoundingClientRect().width < 0.85 * i.naturalWidth)
    problems.push(`${i.src.split('/').pop()} shrunk from ${i.naturalWidth} px to `
                  + `${Math.round(i.getBoundingClientRect().width)} px: its text too small`);
return problems;
"""
"""What does not fit a docs page's window: the page itself, a table or code block wider than
its box (a column or the end of a line hidden behind a scroll), a figure scaled down below
85 % of the size its text was drawn for."""


def fits_check(html: Path, widths: tuple[int, ...] = (1280, 800)) -> list[str] | None:
    """What of ``html`` does not fit a window of each width in headless Chromium (an empty
    list: everything fits); None where Chromium does not start."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait

        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.access(path, os.X_OK):
                return None
        options = Options()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception:  # no selenium, a driver that does not start...
        return None
    problems: list[str] = []
    try:
        for width in widths:
            driver.set_window_size(width, 900)
            driver.get(html.as_uri())
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script(
                    "return document.readyState === 'complete' && "
                    "Array.from(document.images).every(i => i.complete)"
                )
            )
            problems += [f"at {width} px: {p}" for p in driver.execute_script(FITS)]
    finally:
        driver.quit()
    return problems


def browser_check(html: Path, expected: int) -> str | None:
    """Every <img> loaded in headless Chromium with a size > 0; the reason it could not
    start (None when it ran)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait

        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.access(path, os.X_OK):
                return f"no executable {path}"
        options = Options()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # no selenium, a driver that does not start...
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    try:
        driver.get(html.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return document.readyState === 'complete' && "
                "Array.from(document.images).every(i => i.complete)"
            )
        )
        images = driver.execute_script(
            "return Array.from(document.images).map("
            "i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
    finally:
        driver.quit()
    assert len(images) == expected, (len(images), expected)
    for complete, width, height in images:
        assert complete, images
        assert min(width, height) > 0, images
    return None


# -- one directory per kind -------------------------------------------------------------


def check_rendering(html: Path, expected: int, record: Callable[[str, object], None]) -> None:
    """The HTML-parser check always; the browser check where Chromium starts, else a
    warning saying so (the parser check has asserted the same images)."""
    parser_check(html, expected)
    reason = browser_check(html, expected)
    if reason is not None:
        message = f"chromium unavailable: {reason}; checked with an HTML parser instead"
        print(message)
        warnings.warn(message, stacklevel=2)
    record("browser", "chromium" if reason is None else f"html.parser ({reason})")
