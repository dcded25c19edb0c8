"""What the views used to get wrong, each checked in headless Chromium.

Every test ends with no error in the browser console (``settled_logs``).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    ROOT,
    TIMEOUT,
    file_cache_app,
    settle,
    settled_logs,
    side,
    start,
    status,
    wait_status,
)

from vmaviz.engine.export import split_note, synced_trace
from vmaviz.scenario import load_scenario
from vmaviz.ui.session import Config

pytestmark = pytest.mark.browser


def js(dash_duo: Any, script: str, *args: Any) -> Any:
    return dash_duo.driver.execute_script(script, *args)


def test_summary_after_a_cache_round_trip(dash_duo: Any, tmp_path: Path) -> None:
    """The runs are built by one app; the page is served by another that only reads
    them from the shared cache (another worker, a restart): fault latencies stay."""
    builder = file_cache_app(tmp_path)
    store = builder.server.extensions["vmaviz_store"]
    c = Config("default", view="compare")
    p50 = {m: store.run(c, mode=m).summary["faults"]["latency_ns"]["p50"] for m in c.modes()}
    assert all(v > 0 for v in p50.values())
    start(dash_duo, file_cache_app(tmp_path), "?scenario=default&view=compare")
    dash_duo.wait_for_contains_text("#delta-table", "fault latency p50", timeout=TIMEOUT)
    row = next(
        r.text for r in dash_duo.find_elements("#delta-table tr") if "fault latency p50" in r.text
    )
    assert " 0 ns" not in row and "100%" not in row
    assert settled_logs(dash_duo) == []


def test_a_granted_reader_holds_the_lock_on_the_lanes(dash_duo: Any, tmp_path: Path) -> None:
    """default: main's unlock grants mmap_lock to jit before jit runs. At that step the
    mmap_lock panel says jit holds it; the lanes must say so too, on both rows."""
    from vmaviz.engine.engine import Engine

    e = Engine(load_scenario(ROOT / "scenarios" / "default.yaml")).run()
    t = synced_trace(e)
    step = next(i for i, n in t.notes.items() if split_note(n)[1])
    start(dash_duo, file_cache_app(tmp_path), f"?scenario=default&step={step}")
    wait_status(dash_duo, rf"step {step}\b")
    mmap = dash_duo.find_element(side("mmap-lock")).text
    assert "jit" in mmap and "read" in mmap
    settle(dash_duo)
    x = t.time[step] / 1000 + 0.001
    items = js(dash_duo, "return window.vmavizLanes.itemsAt('left', arguments[0])", x)
    by_row = {i["row"]: i["kind"] for i in items}
    assert by_row["mmap_lock"] == "mmap_read"
    assert by_row["jit"] == "hold_mmap_read"
    assert settled_logs(dash_duo) == []


def test_a_bare_link_opens_with_the_scenarios_own_settings(dash_duo: Any, tmp_path: Path) -> None:
    own = load_scenario(ROOT / "scenarios" / "android-app-launch.yaml").kernel
    start(dash_duo, file_cache_app(tmp_path), "?scenario=android-app-launch")
    dash_duo.wait_for_contains_text("#scenario-info", "android", timeout=TIMEOUT)
    assert dash_duo.find_element("#cpus").get_attribute("value") == str(own.cpus)
    assert dash_duo.find_element("#seed").get_attribute("value") == str(own.seed)
    assert settled_logs(dash_duo) == []


def _clipped(dash_duo: Any, table: str, headers: list[str]) -> list[str]:
    """The headers of ``table`` whose column is cut by its scroll box (or the window).

    Fails when no such header is on the page (the check would be empty).
    """
    found = js(
        dash_duo,
        "return Array.from(document.querySelectorAll(arguments[0] + ' thead th'))"
        ".filter(th => arguments[1].includes(th.textContent.trim())).length",
        table,
        headers,
    )
    assert found >= len(headers), f"{table}: {found} of the headers {headers}"
    return list(
        js(
            dash_duo,
            """
            const out = [];
            for (const t of document.querySelectorAll(arguments[0])) {
              let box = t.parentNode;
              while (box && box !== document.body &&
                     getComputedStyle(box).overflowX === 'visible') { box = box.parentNode; }
              const right = Math.min(box.getBoundingClientRect().right, window.innerWidth);
              for (const th of t.querySelectorAll('thead th')) {
                if (arguments[1].includes(th.textContent.trim()) &&
                    th.getBoundingClientRect().right > right + 1) {
                  out.push(th.textContent.trim());
                }
              }
            }
            return out;
            """,
            table,
            headers,
        )
    )


@pytest.mark.parametrize("view", ["single", "compare"])
def test_key_columns_are_never_cut_at_1400_px(dash_duo: Any, tmp_path: Path, view: str) -> None:
    dash_duo.driver.set_window_size(1400, 900)
    start(dash_duo, file_cache_app(tmp_path), f"?scenario=default&view={view}&step=369")
    wait_status(dash_duo, "step")
    settle(dash_duo)
    key_vma = ["VMA", "state", "vm_lock_seq vs mm_lock_seq"]
    key_threads = ["thread", "state", "next", "op"]
    assert _clipped(dash_duo, "[id*='vma-table'] table", key_vma) == []
    assert _clipped(dash_duo, "[id*='threads'] table", key_threads) == []
    assert settled_logs(dash_duo) == []


def test_radio_options_have_their_own_names(dash_duo: Any, tmp_path: Path) -> None:
    start(dash_duo, file_cache_app(tmp_path))
    wait_status(dash_duo, "initial state")
    names = js(
        dash_duo,
        """
        return Array.from(document.querySelectorAll('input[type=radio]')).map(r => {
          const own = r.getAttribute('aria-label');
          const label = r.closest('label') ? r.closest('label').textContent.trim() : '';
          return [r.name, own || label];
        });
        """,
    )
    by_group: dict[str, list[str]] = {}
    for group, name in names:
        by_group.setdefault(group, []).append(name)
    assert by_group["mode"] == ["per-VMA", "mmap_lock"]
    for group, labels in by_group.items():
        assert len(set(labels)) == len(labels) and all(labels), group
    # Every tab stop has a name (the upload's file input included).
    unnamed = js(
        dash_duo,
        """
        const out = [];
        for (const el of document.querySelectorAll('a[href], button, input, [tabindex]')) {
          if (el.tabIndex < 0 || el.disabled) continue;
          const label = el.getAttribute('aria-label') || (el.labels && el.labels.length &&
            el.labels[0].textContent.trim()) || el.textContent.trim() || el.title;
          if (!label) out.push(el.outerHTML.slice(0, 120));
        }
        return out;
        """,
    )
    assert unnamed == []
    assert settled_logs(dash_duo) == []


def test_breakpoints_come_back_from_a_permalink(dash_duo: Any, tmp_path: Path) -> None:
    start(dash_duo, file_cache_app(tmp_path), "?scenario=munmap-race-miss&bp=miss%2Cviolation")
    wait_status(dash_duo, "initial state")
    settle(dash_duo)
    ticked = js(
        dash_duo,
        "return Array.from(document.querySelectorAll('#bp-kinds input:checked')).map(i => i.value)",
    )
    assert sorted(ticked) == ["miss", "violation"]
    assert "bp=miss%2Cviolation" in dash_duo.driver.current_url or "bp=miss" in js(
        dash_duo, "return document.getElementById('permalink').value"
    )
    # The breakpoint stops with its reason in the stepper, the panel still folded.
    dash_duo.find_element("#bp-run").click()
    dash_duo.wait_for_contains_text("#bp-status", "miss_retry", timeout=TIMEOUT)
    assert dash_duo.find_element("#bp-status").is_displayed()
    assert settled_logs(dash_duo) == []


def test_the_scrubber_keeps_its_width(dash_duo: Any, tmp_path: Path) -> None:
    start(dash_duo, file_cache_app(tmp_path))
    wait_status(dash_duo, "initial state")
    width = "return document.querySelector('#scrubber').getBoundingClientRect().width"
    widths = [js(dash_duo, width)]
    value = js(dash_duo, "var s = document.querySelector('#scrubber'); return [s.value, s.max]")
    assert value[0] == "0" and int(value[1]) > 250
    for step in ("5", "250"):
        field = dash_duo.find_element("#jump")
        field.clear()
        field.send_keys(step)
        dash_duo.find_element("#jump-go").click()
        wait_status(dash_duo, rf"step {step}\b")
        widths.append(js(dash_duo, width))
    assert max(widths) - min(widths) < 1
    assert settled_logs(dash_duo) == []


def test_the_scrubber_moves_the_cursor_and_follows_it(dash_duo: Any, tmp_path: Path) -> None:
    """The scrubber is a native range input: a drag (its change event) or its arrow
    keys set the cursor, and it shows the cursor wherever the step came from."""
    from selenium.webdriver.common.keys import Keys

    start(dash_duo, file_cache_app(tmp_path))
    wait_status(dash_duo, "initial state")
    settle(dash_duo)
    # A drag that lets go at 41: the cursor at 41 is step 40 run.
    js(
        dash_duo,
        "var s = document.getElementById('scrubber'); s.value = '41';"
        "s.dispatchEvent(new Event('input', {bubbles: true}));"
        "s.dispatchEvent(new Event('change', {bubbles: true}));",
    )
    wait_status(dash_duo, r"step 40\b")
    assert "step=40" in dash_duo.driver.current_url
    # Its own arrow key moves one step.
    dash_duo.find_element("#scrubber").send_keys(Keys.ARROW_RIGHT)
    wait_status(dash_duo, r"step 41\b")
    settle(dash_duo)
    # A jump from the server: the scrubber follows.
    field = dash_duo.find_element("#jump")
    field.clear()
    field.send_keys("7")
    dash_duo.find_element("#jump-go").click()
    wait_status(dash_duo, r"step 7\b")
    settle(dash_duo)
    value = js(dash_duo, "return document.getElementById('scrubber').value")
    assert value == "8"
    assert settled_logs(dash_duo) == []


def test_unknown_scenario_in_a_link_is_reported(dash_duo: Any, tmp_path: Path) -> None:
    start(dash_duo, file_cache_app(tmp_path), "?scenario=no-such-scenario")
    dash_duo.wait_for_contains_text("#upload-errors", "no-such-scenario", timeout=TIMEOUT)
    assert re.search("default", dash_duo.find_element("#upload-errors").text)
    assert status(dash_duo)
    logs = settled_logs(dash_duo)
    assert logs == [], json.dumps(logs)


def test_play_draws_every_step(dash_duo: Any, tmp_path: Path) -> None:
    """At 10 steps/s on a big scenario in compare view, where a step can take longer
    than a tick: each step is drawn before the next is asked for, none is skipped."""
    start(dash_duo, file_cache_app(tmp_path), "?scenario=android-app-launch&view=compare&step=10")
    wait_status(dash_duo, r"step \d+")
    settle(dash_duo)
    js(
        dash_duo,
        """
        window.__shown = [];
        const el = document.getElementById('step-status');
        new MutationObserver(() => {
          window.__shown.push(el.textContent);
        }).observe(el, {childList: true, subtree: true, characterData: true});
        """,
    )
    dash_duo.find_element("#speed").click()
    for opt in dash_duo.find_elements("[role=option]"):
        if opt.text.strip() == "10/s":
            opt.click()
            break
    dash_duo.find_element("#play").click()
    dash_duo.wait_for_text_to_equal("#play", "⏸ Pause", timeout=TIMEOUT)
    deadline = js(dash_duo, "return Date.now()") + 4000
    while js(dash_duo, "return Date.now()") < deadline:
        pass
    dash_duo.find_element("#play").click()
    settle(dash_duo)
    shown = js(dash_duo, "return window.__shown")
    # The status names each run's own step: every status drawn must be the next
    # merged step after the one drawn before it.
    cursors = []
    for text in shown:
        found = re.findall(r"step ([\d,]+)", text)
        if found:
            cursors.append(tuple(int(x.replace(",", "")) for x in found))
    distinct = list(dict.fromkeys(cursors))
    assert len(distinct) >= 5
    # Consecutive merged steps: exactly one of the two runs moved by one each time.
    for a, b in itertools.pairwise(distinct):
        moved = sorted(y - x for x, y in zip(a, b, strict=True))
        assert moved == [0, 1], (a, b)
    assert settled_logs(dash_duo) == []
