"""Thread-level stepping and the source panel in headless Chromium (issue 14, S).

Ends with no error in the browser console, as every browser test does.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import ROOT, TIMEOUT, file_cache_app, keys, settled_logs, side, start

from vmaviz.scenario import load_scenario
from vmaviz.ui.session import build_run
from vmaviz.ui.source_panel import kernel_lines
from vmaviz.ui.thread_step import target_row

pytestmark = pytest.mark.browser


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return file_cache_app(tmp_path)


def wait_step(dash_duo: Any, step: int) -> None:
    deadline = time.time() + TIMEOUT
    pattern = re.compile(rf"\bstep {step:,}\b")
    while time.time() < deadline:
        if pattern.search(dash_duo.find_element("#step-status").text):
            return
        time.sleep(0.1)
    raise AssertionError(f"never reached step {step}: {dash_duo.find_element('#step-status').text}")


def test_step_over_and_out_on_one_thread_with_the_source_panel(dash_duo: Any, app: Any) -> None:
    run = build_run("d", load_scenario(ROOT / "scenarios" / "default.yaml"), "per_vma", "x86")
    codes = run.engine.trace.codes
    # The first step inside vma_start_read (a callee of lock_vma_under_rcu).
    row = next(i for i in range(run.steps) if codes[int(run.code[i])].startswith("vma_start_read"))
    tid = int(run.tid[row])
    over = target_row(run, row, tid, "over")
    assert over is not None
    out = target_row(run, over, tid, "out")
    assert out is not None and out > over > row

    start(dash_duo, app, f"?scenario=default&step={row}")
    wait_step(dash_duo, row)
    link = dash_duo.wait_for_element(side("source") + " a.source-link", timeout=TIMEOUT)
    assert link.get_attribute("href").startswith("https://elixir.bootlin.com/linux/v6.4/source/")
    fn = dash_duo.find_element(side("source") + " code.source-function").text
    assert fn == "vma_start_read" and fn in kernel_lines()
    assert "src-current" in dash_duo.find_element(side("source") + " pre").get_attribute(
        "innerHTML"
    )

    # The buttons: over (the thread of the current step: no thread picked).
    dash_duo.find_element("#ts-over").click()
    wait_step(dash_duo, over)
    assert "returned" in dash_duo.find_element("#bp-status").text
    # The key: U steps out.
    dash_duo.find_element("body").click()
    keys(dash_duo, "u")
    wait_step(dash_duo, out)
    shown = dash_duo.find_element(side("source") + " code.source-function").text
    assert shown in kernel_lines()
    assert settled_logs(dash_duo) == []
