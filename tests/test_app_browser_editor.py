"""Browser tests: the in-page editor, its permalink, slide export, look_at links and
what changed (Chromium through dash_duo; ``export PATH=$PATH:/usr/bin``).

Every test ends with no error in the browser console.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    NARRATION,
    TIMEOUT,
    VMA_TABLE,
    file_cache_app,
    settle,
    settled_logs,
    start,
    wait_status,
)
from selenium.webdriver.common.by import By

from vmaviz.ui.editor import encode_yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return file_cache_app(tmp_path)


def wait_for(dash_duo: Any, script: str, *args: Any) -> Any:
    """Poll a script until it returns something truthy (bounded by TIMEOUT)."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        value = dash_duo.driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never true: {script}")


def open_editor(dash_duo: Any) -> Any:
    dash_duo.find_element("#editor-details summary").click()
    wait_for(dash_duo, "return document.getElementById('editor-text').value.length > 0")
    return dash_duo.find_element("#editor-text")


def set_text(dash_duo: Any, text: str) -> None:
    """Replace the editor's text and send one input event, as typing does."""
    dash_duo.driver.execute_script(
        "const a = document.getElementById('editor-text');"
        "const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;"
        "set.call(a, arguments[0]);"
        "a.dispatchEvent(new Event('input', {bubbles: true}));",
        text,
    )


def test_editor_inline_error_then_run_fixed(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app, "?scenario=first-fault-anon-vma")
    area = open_editor(dash_duo)
    text = area.get_attribute("value")
    assert text.startswith("# The first write fault")
    broken = text.replace("pages: 16", "pages: sixteen")
    set_text(dash_duo, broken)
    line = broken.splitlines().index("      pages: sixteen") + 1
    err = dash_duo.wait_for_element(".editor-error", timeout=TIMEOUT)
    assert err.text.startswith(f"edited.yaml:{line}: mm.vmas[0].pages")
    marked = dash_duo.find_elements("#editor-gutter .editor-line-bad")
    # (textContent: the marked line may be scrolled out of the gutter's view.)
    assert [m.get_attribute("textContent") for m in marked] == [str(line)]
    # Fixed, it checks clean and runs.
    set_text(dash_duo, text.replace("pages: 16", "pages: 32"))
    dash_duo.wait_for_text_to_equal(
        "#editor-check-out", "No errors: scenario first-fault-anon-vma.", timeout=TIMEOUT
    )
    dash_duo.find_element("#editor-run").click()
    wait_for(dash_duo, "return window.location.search.indexOf('yaml=') >= 0")
    dash_duo.wait_for_contains_text(VMA_TABLE, "32 pages", timeout=TIMEOUT)
    assert settled_logs(dash_duo) == []


def test_permalink_carries_the_edited_scenario(dash_duo: Any, app: Any) -> None:
    text = (
        (ROOT / "scenarios" / "first-fault-anon-vma.yaml")
        .read_text()
        .replace("name: first-fault-anon-vma", "name: shared-edit")
        .replace("pages: 16", "pages: 24")
    )
    start(dash_duo, app, f"?scenario=upload:{'a' * 64}&yaml={encode_yaml(text)}&step=2")
    wait_status(dash_duo, r"step 2\b")
    dash_duo.wait_for_contains_text(VMA_TABLE, "24 pages", timeout=TIMEOUT)
    assert "shared-edit" in dash_duo.find_element("#scenario-info").text
    # The page's own link still carries it (the browser adds it to each step's link).
    link = wait_for(
        dash_duo,
        "const v = document.getElementById('permalink').value;"
        "return v.indexOf('yaml=') >= 0 ? v : null;",
    )
    assert "scenario=upload%3A" in link
    assert settled_logs(dash_duo) == []


def test_export_png_and_svg(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app)
    # Record the downloads' data URLs instead of saving files.
    dash_duo.driver.execute_script(
        "window.__exports = [];"
        "HTMLAnchorElement.prototype.click = function () {"
        "  if (this.download) { window.__exports.push([this.download, this.href.slice(0, 30)]); }"
        "};"
    )
    dash_duo.find_element("#export-png").click()
    dash_duo.wait_for_contains_text("#export-status", "as PNG", timeout=TIMEOUT)
    png = dash_duo.driver.execute_script("return window.__exports")
    assert png and all(href.startswith("data:image/png") for _, href in png)
    assert any(name.startswith("vmaviz-timeline") for name, _ in png)
    dash_duo.driver.execute_script("window.__exports = [];")
    dash_duo.find_element("#export-svg").click()
    dash_duo.wait_for_contains_text("#export-status", "as SVG", timeout=TIMEOUT)
    svg = dash_duo.driver.execute_script("return window.__exports")
    assert svg and all(href.startswith("data:image/svg+xml") for _, href in svg)
    types = dash_duo.find_element("#export-status").get_attribute("data-types").split()
    assert types and set(types) == {"image/svg+xml"}
    # The presenter layout goes in the link.
    dash_duo.find_element("#presenter").click()
    wait_for(dash_duo, "return window.location.search.indexOf('present=1') >= 0")
    assert "presenter" in dash_duo.find_element("body").get_attribute("class")
    assert settled_logs(dash_duo) == []


def test_look_at_link_moves_the_cursor(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app, "?scenario=first-fault-anon-vma")
    dash_duo.find_element("#scenario-info summary").click()
    link = dash_duo.wait_for_element(".look-at-link", timeout=TIMEOUT)
    step = int(link.get_attribute("data-step"))
    link.click()
    wait_status(dash_duo, rf"step {step}\b")
    dash_duo.wait_for_contains_text(NARRATION, "no_anon_vma", timeout=TIMEOUT)
    assert settled_logs(dash_duo) == []


def test_changed_field_is_highlighted(dash_duo: Any, app: Any) -> None:
    from vmaviz.scenario import load_scenario
    from vmaviz.ui.session import build_run

    sc = load_scenario(ROOT / "scenarios" / "first-fault-anon-vma.yaml")
    run = build_run("t", sc, sc.kernel.mode, sc.kernel.arch)
    code = run.engine.trace.codes.index("anon_vma_prepare")
    step = int(next(r for r in range(run.steps) if int(run.code[r]) == code))
    start(dash_duo, app, f"?scenario=first-fault-anon-vma&step={step - 1}")
    wait_status(dash_duo, rf"step {step - 1}\b")
    dash_duo.find_element("#step-fwd").click()
    wait_status(dash_duo, rf"step {step}\b")
    cell = wait_for(
        dash_duo,
        "return document.querySelector(arguments[0] + ' tr.changed td.changed-cell');",
        VMA_TABLE,
    )
    # The anon_vma column (the last one) is the one marked, and the line says so.
    row = cell.find_element(By.XPATH, "..")
    cells = row.find_elements(By.TAG_NAME, "td")
    assert "changed-cell" in cells[-1].get_attribute("class")
    assert "Changed:" in dash_duo.find_element(".changes-strip").text
    settle(dash_duo)
    assert settled_logs(dash_duo) == []
