"""Browser tests: the timeline's SVG export is vector (built from the lanes' data),
and compare view shows a source panel per side (Chromium through dash_duo;
``export PATH=$PATH:/usr/bin``).

Every test ends with no error in the browser console.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from browser_helpers import TIMEOUT, file_cache_app, settled_logs, side, start, wait_status

pytestmark = pytest.mark.browser


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return file_cache_app(tmp_path)


def record_downloads(dash_duo: Any) -> None:
    """Keep the downloads' names and data URLs instead of saving files."""
    dash_duo.driver.execute_script(
        "window.__exports = [];"
        "HTMLAnchorElement.prototype.click = function () {"
        "  if (this.download) { window.__exports.push([this.download, this.href]); }"
        "};"
    )


def test_timeline_svg_export_is_vector(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app, "?scenario=default&step=40")
    wait_status(dash_duo, r"step 40\b")
    dash_duo.wait_for_element("canvas.lanes-base", timeout=TIMEOUT)
    record_downloads(dash_duo)
    dash_duo.find_element("#export-svg").click()
    dash_duo.wait_for_contains_text("#export-status", "as SVG", timeout=TIMEOUT)
    files = dash_duo.driver.execute_script("return window.__exports")
    timelines = [href for name, href in files if name.startswith("vmaviz-timeline")]
    assert timelines, [name for name, _ in files]
    prefix = "data:image/svg+xml;charset=utf-8,"
    assert timelines[0].startswith(prefix)
    svg = unquote(timelines[0][len(prefix) :])
    # Vector lanes: bars as <rect> elements, the row names as text, no bitmap inside.
    assert svg.count("<rect") > 20
    assert "<image" not in svg and "base64" not in svg
    assert ">main<" in svg or "main</text>" in svg
    assert '<rect class="cursor"' in svg  # the cursor at step 40 is drawn
    # The browser parses it as well-formed SVG with as many bars as it says.
    parsed = dash_duo.driver.execute_script(
        "const d = new DOMParser().parseFromString(arguments[0], 'image/svg+xml');"
        "return d.getElementsByTagName('parsererror').length ? -1"
        " : d.getElementsByTagName('rect').length;",
        svg,
    )
    assert parsed == svg.count("<rect")
    assert settled_logs(dash_duo) == []


def test_compare_view_source_panel_per_side(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app, "?scenario=default&view=compare&step=30")
    deadline = time.time() + TIMEOUT
    texts: list[str] = []
    while time.time() < deadline:
        texts = [
            dash_duo.driver.execute_script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
                side("source", s),
            )
            for s in ("left", "right")
        ]
        if all("elixir" in t or "Linux 6.4" in t for t in texts) and all(
            "No step yet" not in t for t in texts
        ):
            break
        time.sleep(0.1)
    assert all("Linux 6.4 source" in t for t in texts), texts
    for s in ("left", "right"):
        link = dash_duo.find_element(side("source", s) + " a.source-link")
        assert "elixir.bootlin.com/linux/v6.4/source/" in link.get_attribute("href")
    assert settled_logs(dash_duo) == []
