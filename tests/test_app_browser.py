"""End to end in headless Chromium via dash.testing (selenium + Debian's chromedriver).

Every test ends with ``dash_duo.get_logs() == []``: no error in the browser console.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    NARRATION,
    ROOT,
    STATUS,
    TIMEOUT,
    VMA_TABLE,
    cursor_x,
    file_cache_app,
    keys,
    lanes_attr,
    settle,
    settled_logs,
    side,
    start,
    status,
    text_of,
    wait_status,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from vmaviz.engine.engine import Engine
from vmaviz.scenario import load_scenario

pytestmark = pytest.mark.browser


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return file_cache_app(tmp_path)


def first_write_lock() -> int:
    """The step of the default scenario at which main write-locks the jit VMA."""
    engine = Engine(load_scenario(ROOT / "scenarios" / "default.yaml")).run()
    t = engine.trace
    t.flush()
    code = t.code_ix["vma_start_write:seq_set"]
    jit = next(vid for vid, v in engine.k.mm.vmas.items() if v.name == "jit")
    return next(i for i in range(len(t)) if t.code[i] == code and t.a[i] == jit)


def test_step_with_keys_and_buttons(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app)
    wait_status(dash_duo, "initial state")
    assert "Before the first step" in text_of(dash_duo, NARRATION)
    dash_duo.find_element("body").click()
    keys(dash_duo, Keys.ARROW_RIGHT)
    wait_status(dash_duo, r"step 0\b")
    first = text_of(dash_duo, NARRATION)
    assert "main" in first
    keys(dash_duo, ".", ".")
    wait_status(dash_duo, r"step 2\b")
    assert text_of(dash_duo, NARRATION) != first
    ActionChains(dash_duo.driver).key_down(Keys.SHIFT).send_keys(Keys.ARROW_RIGHT).key_up(
        Keys.SHIFT
    ).perform()
    wait_status(dash_duo, r"step 12\b")
    keys(dash_duo, ",")
    wait_status(dash_duo, r"step 11\b")
    dash_duo.find_element("#step-back").click()
    wait_status(dash_duo, r"step 10\b")
    # Keys never scroll the page.
    keys(dash_duo, Keys.SPACE)  # play
    dash_duo.wait_for_text_to_equal("#play", "⏸ Pause", timeout=TIMEOUT)
    keys(dash_duo, Keys.SPACE)  # pause
    dash_duo.wait_for_text_to_equal("#play", "▶ Play", timeout=TIMEOUT)
    assert dash_duo.driver.execute_script("return window.scrollY") == 0
    # The VMA table shows vm_lock_seq against mm_lock_seq, and changes at the writer.
    table = dash_duo.find_element(VMA_TABLE).text
    assert "mm_lock_seq" in table and "≠" in table and "WRITE-LOCKED" not in table
    locked = first_write_lock()
    dash_duo.find_element("#jump").send_keys(str(locked))
    dash_duo.find_element("#jump-go").click()
    wait_status(dash_duo, rf"step {locked}\b")
    dash_duo.wait_for_contains_text(VMA_TABLE, "WRITE-LOCKED", timeout=TIMEOUT)
    assert dash_duo.find_element(VMA_TABLE).text != table
    assert settled_logs(dash_duo) == []


def test_run_to_breakpoint(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app)
    wait_status(dash_duo, "initial state")
    dash_duo.find_element("#bp-summary").click()
    checkbox = dash_duo.driver.find_element(By.CSS_SELECTOR, "#bp-kinds input[value='fallback']")
    assert checkbox.is_selected()  # "a fault falls back" is on by default
    hits = []
    for _ in range(3):
        dash_duo.find_element("#bp-run").click()
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            text = dash_duo.find_element("#bp-status").text
            if text.startswith("Breakpoint") and text not in hits:
                break
            time.sleep(0.1)
        hits.append(text)
        # The status line follows the cursor in a later callback than bp-status.
        wait_status(dash_duo, "lock_vma_under_rcu:abort:")
    # The two first faults on fresh VMAs (arena, scratch), then jit's during mprotect.
    assert sum("abort:no_anon_vma" in h for h in hits[:2]) == 2
    assert {"arena", "main"} <= {h.split(", ")[1].split(":")[0] for h in hits[:2]}
    assert "jit: lock_vma_under_rcu:abort:vma_locked" in hits[2]
    assert settled_logs(dash_duo) == []


def test_permalink_lands_on_the_same_step(dash_duo: Any, app: Any) -> None:
    query = "?scenario=mprotect-vs-fault&view=single&mode=per_vma&arch=arm64&cpus=2&seed=3&step=77"
    start(dash_duo, app, query)
    wait_status(dash_duo, r"step 77\b")
    # The status can show the step a moment before the step's panels are in place.
    settle(dash_duo)
    narration = text_of(dash_duo, NARRATION)
    link = dash_duo.find_element("#permalink").get_attribute("value")
    assert link.endswith(query) or "step=77" in link
    assert "mprotect-vs-fault" in dash_duo.find_element("#scenario-info").text
    # Step on, then open the link: the same step and narration come back.
    keys(dash_duo, Keys.ARROW_RIGHT)
    wait_status(dash_duo, r"step 78\b")
    assert "step=78" in dash_duo.driver.current_url  # the address bar follows
    dash_duo.driver.get(link)
    dash_duo.wait_for_element(NARRATION + " h3", timeout=TIMEOUT)
    wait_status(dash_duo, r"step 77\b")
    dash_duo.wait_for_text_to_equal(NARRATION, narration, timeout=TIMEOUT)
    dash_duo.find_element("#copy-link").click()
    dash_duo.wait_for_contains_text("#copy-status", "ink", timeout=TIMEOUT)
    assert settled_logs(dash_duo) == []


def test_upload_bad_yaml_shows_inline_errors(dash_duo: Any, app: Any, tmp_path: Path) -> None:
    start(dash_duo, app)
    wait_status(dash_duo, "initial state")
    bad = tmp_path / "broken.yaml"
    bad.write_text(
        "name: broken\ndescription: x\nmm:\n  vmas:\n    - {name: a, pages: 4}\n"
        "threads:\n  - name: T0\n    ops:\n      - fault: {vma: missing, page: 0}\n"
    )
    field = dash_duo.driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]")
    field.send_keys(str(bad))
    dash_duo.wait_for_contains_text("#upload-errors", "broken.yaml:9", timeout=TIMEOUT)
    assert "missing" in dash_duo.find_element("#upload-errors").text
    assert dash_duo.find_element("#scenario").text.strip().startswith("default")
    assert settled_logs(dash_duo) == []


def test_compare_mode_shared_cursor(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app, "?scenario=default&view=compare")
    dash_duo.wait_for_element(side("timeline", "right") + " canvas.lanes-over", timeout=TIMEOUT)
    dash_duo.wait_for_element(side("narration", "right") + " h3", timeout=TIMEOUT)
    assert "mmap_lock only" in dash_duo.find_element(side("side-title", "left")).text
    assert "per-VMA" in dash_duo.find_element(side("side-title", "right")).text
    left = dash_duo.find_element(side("narration", "left")).text
    right = dash_duo.find_element(side("narration", "right")).text
    for _ in range(3):
        dash_duo.find_element("#step-fwd10").click()
    wait_status(dash_duo, r"per-VMA: step \d+")
    dash_duo.wait_for_contains_text(STATUS, "t = ", timeout=TIMEOUT)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and (cursor_x(dash_duo, "left") in (None, 0)):
        time.sleep(0.1)
    xl, xr = cursor_x(dash_duo, "left"), cursor_x(dash_duo, "right")
    assert xl and xl == xr  # one cursor: the same time on both timelines
    assert dash_duo.find_element(side("narration", "left")).text != left
    assert dash_duo.find_element(side("narration", "right")).text != right
    assert "makespan" in dash_duo.find_element("#delta-table").text
    assert settled_logs(dash_duo) == []


def test_lanes_zoom_together_and_a_click_goes_to_the_step(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app, "?scenario=default&view=compare")
    dash_duo.wait_for_element(side("timeline", "right") + " canvas.lanes-over", timeout=TIMEOUT)
    wait_status(dash_duo, "initial state")
    x0, x1 = (float(lanes_attr(dash_duo, "left", k) or 0) for k in ("x0", "x1"))
    assert x0 == 0 and x1 > 0
    # Wheel over the top timeline: both zoom in to the same range.
    over = dash_duo.find_element(side("timeline", "left") + " canvas.lanes-over")
    dash_duo.driver.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect();"
        "c.dispatchEvent(new WheelEvent('wheel', {deltaY: -800, clientX: r.left + r.width / 2,"
        " clientY: r.top + 30, bubbles: true, cancelable: true}));",
        over,
    )
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and lanes_attr(dash_duo, "left", "x1") == str(x1):
        time.sleep(0.05)
    left = [lanes_attr(dash_duo, "left", k) for k in ("x0", "x1")]
    right = [lanes_attr(dash_duo, "right", k) for k in ("x0", "x1")]
    assert left == right
    assert float(left[1] or 0) - float(left[0] or 0) < (x1 - x0) / 2
    # Double click: the whole run's work again.
    ActionChains(dash_duo.driver).double_click(over).perform()
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and lanes_attr(dash_duo, "left", "x0") != "0":
        time.sleep(0.05)
    assert float(lanes_attr(dash_duo, "left", "x1") or 0) == pytest.approx(x1)
    # A click on the first thread's lane goes to the step that started the bar there.
    before = status(dash_duo)
    dash_duo.driver.execute_script(
        "const c = arguments[0]; c.scrollIntoView({block: 'center'});"
        "const r = c.getBoundingClientRect();"
        "const at = {clientX: r.left + r.width * 0.3, clientY: r.top + 18, bubbles: true};"
        "c.dispatchEvent(new MouseEvent('mousedown', at));"
        "c.dispatchEvent(new MouseEvent('mouseup', at));",
        over,
    )
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and status(dash_duo) == before:
        time.sleep(0.05)
    wait_status(dash_duo, r"mmap_lock: step \d+")
    settle(dash_duo)
    assert cursor_x(dash_duo, "left") == cursor_x(dash_duo, "right") is not None
    assert settled_logs(dash_duo) == []
