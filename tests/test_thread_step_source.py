"""Thread-level stepping and the kernel source panel (issue 14, feature S).

The step-over/out targets are checked against the kernel's own frames: the
engine's state before each step holds every thread's call stack with activation
ids, so "the function returned" is "its activation id is no longer on the
thread's stack", found by replaying the run (not by the trace arithmetic that
:mod:`vmaviz.ui.thread_step` uses).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from vmaviz.engine import narrate
from vmaviz.model.kernel import ARCH_HANDLER, STEPS
from vmaviz.scenario import load_scenario
from vmaviz.ui import source_panel as S
from vmaviz.ui.html_render import to_html
from vmaviz.ui.session import RunData, build_run
from vmaviz.ui.testing import Browser
from vmaviz.ui.thread_step import MOVES, activation_end, target_row

ROOT = Path(__file__).resolve().parents[1]
NAMES_FILE = ROOT / "tests" / "data" / "linux-6.4-names.txt"
#: Scenarios with nested kernel calls on several threads.
SCENARIOS = ("default", "fault-vs-munmap")


@functools.cache
def run_of(name: str) -> RunData:
    return build_run(name, load_scenario(ROOT / "scenarios" / f"{name}.yaml"), "per_vma", "x86")


@functools.cache
def live_fids(name: str) -> list[dict[int, list[int]]]:
    """Before each row (index n: after n steps), each thread's stack of activation ids."""
    run = run_of(name)
    out = []
    for n in range(run.steps + 1):
        k = run.engine.state_at(n)
        out.append({th.tid: [fr.fid for fr in th.frames] for th in k.threads})
    return out


def oracle_return(name: str, ref: int, fid: int) -> int | None:
    """The first row of ``ref``'s thread, after ``ref``, not taken inside activation ``fid``.

    A step is inside ``fid`` when ``fid`` is on the thread's stack both before and
    after it (the thread ran with ``fid`` below it all the step long); when the step
    pops ``fid``, when the activation that took it had ``fid`` at or below it.
    """
    run = run_of(name)
    tid = int(run.tid[ref])
    live = live_fids(name)
    for j in np.flatnonzero(run.tid == tid):
        if j <= ref:
            continue
        before, after = live[int(j)].get(tid, []), live[int(j) + 1].get(tid, [])
        took = int(run.frame[j])
        inside = fid in before and (
            fid in after or (took in before and fid in before[: before.index(took) + 1])
        )
        if not inside:
            return int(j)
    return None


def nested_rows(run: RunData, limit: int = 160) -> Iterator[int]:
    """Rows (among the first ``limit``) of a thread inside at least two kernel frames."""
    stacks = run.engine.trace.stacks
    for r in range(min(limit, run.steps)):
        if run.tid[r] >= 0 and len(stacks[int(run.stack[r])]) >= 2:
            yield r


# =====================================================================
# Step over / step out / by operation
# =====================================================================


@pytest.mark.parametrize("name", SCENARIOS)
def test_step_over_and_out_land_where_the_kernel_frames_returned(name: str) -> None:
    run = run_of(name)
    live = live_fids(name)
    checked = 0
    for r in nested_rows(run):
        tid = int(run.tid[r])
        own = int(run.frame[r])
        # The thread's stack before or after the step holds the activation that took
        # it (an operation's first call is pushed during its first step).
        frames = next((f for f in (live[r].get(tid, []), live[r + 1].get(tid, [])) if own in f), [])
        if len(frames) < 2:
            continue
        caller = frames[frames.index(own) - 1]
        assert target_row(run, r, tid, "over") == oracle_return(name, r, own)
        assert target_row(run, r, tid, "out") == oracle_return(name, r, caller)
        checked += 1
    assert checked >= 40


def test_step_over_skips_the_callees() -> None:
    """Over from lock_vma_under_rcu's first step lands after vma_start_read's steps."""
    run = run_of("default")
    stacks = run.engine.trace.stacks
    codes = run.engine.trace.codes
    r = next(
        i for i in range(run.steps) if codes[int(run.code[i])] == "lock_vma_under_rcu:rcu_read_lock"
    )
    tid = int(run.tid[r])
    end = target_row(run, r, tid, "over")
    assert end is not None
    mine = [i for i in range(r, end) if run.tid[i] == tid]
    # Everything the thread did until then ran inside lock_vma_under_rcu, including
    # vma_start_read's steps one level deeper; the landing step is outside it.
    assert all("lock_vma_under_rcu" in stacks[int(run.stack[i])] for i in mine)
    assert any(stacks[int(run.stack[i])][-1] == "vma_start_read" for i in mine)
    assert "lock_vma_under_rcu" not in stacks[int(run.stack[end])]


@pytest.mark.parametrize("name", SCENARIOS)
def test_thread_step_and_operation_targets(name: str) -> None:
    run = run_of(name)
    for tid in range(len(run.thread_names)):
        rows = np.flatnonzero(run.tid == tid)
        if len(rows) < 3:
            continue
        mid = int(rows[len(rows) // 2])
        # step / back: the thread's neighbouring rows, other threads' rows skipped.
        assert target_row(run, mid, tid, "step") == int(rows[len(rows) // 2 + 1])
        assert target_row(run, mid, tid, "back") == int(rows[len(rows) // 2 - 1])
        assert target_row(run, None, tid, "step") == int(rows[0])
        assert target_row(run, int(rows[-1]), tid, "step") is None
        # Operations: the first row whose op number differs from the current one.
        ops = run.op[rows]
        later = rows[(rows > mid) & (ops != run.op[mid])]
        expect = int(later[0]) if len(later) else None
        assert target_row(run, mid, tid, "next_op") == expect
        starts = [int(rows[0])] + [int(x) for x in rows[1:][ops[1:] != ops[:-1]]]
        before = [s for s in starts if s < mid]
        assert target_row(run, mid, tid, "prev_op") == (before[-1] if before else None)


def test_moves_from_another_threads_row_use_the_threads_own_position() -> None:
    run = run_of("default")
    tid = 1
    rows = np.flatnonzero(run.tid == tid)
    # A row of another thread between two of tid's rows: tid's position is its last row.
    gaps = [int(r) for r in range(int(rows[0]), int(rows[-1])) if run.tid[r] != tid]
    g = gaps[0]
    last = int(rows[rows < g][-1])
    for move in ("over", "out"):
        assert target_row(run, g, tid, move) == target_row(run, last, tid, move)


def test_bad_moves_are_refused() -> None:
    run = run_of("default")
    with pytest.raises(ValueError, match="unknown move"):
        target_row(run, 0, 0, "sideways")
    with pytest.raises(ValueError, match="level"):
        activation_end(run, 0, 9)
    assert target_row(run, 0, 99, "step") is None  # no such thread


# =====================================================================
# The source panel
# =====================================================================


def names_64() -> set[str]:
    return {
        line.split("\t")[0]
        for line in NAMES_FILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }


def showable() -> set[str]:
    """Every name the panel can show: the model's kfuncs, narration's functions and
    aliases, the arch handlers, and the functions on the bundled scenarios' stacks."""
    from tests.test_kernel_names import LATER, MODEL_EVENTS, traced_names

    stacks, _, _ = traced_names()
    names = set(STEPS) | set(narrate._SOURCES) | set(narrate._ALIASES.values())
    names |= set(ARCH_HANDLER.values()) | set(stacks)
    return names - set(MODEL_EVENTS) - set(LATER)


def test_every_name_the_panel_can_show_is_a_6_4_name_with_a_line() -> None:
    lines = S.kernel_lines()
    known = names_64()
    assert set(lines) <= known
    missing = sorted(n for n in showable() if n not in lines)
    assert missing == []
    for path, line in lines.values():
        assert re.fullmatch(r"[a-z0-9_/\-]+\.[ch]", path) and line > 0


def test_the_panel_never_shows_a_later_or_model_name() -> None:
    # The 6.4.1 StackRot fix's function gives way to the 6.4 function below it,
    # and user-space model events show no kernel function at all.
    assert S.shown_function("lock_mm_and_find_vma", ("touch", "do_user_addr_fault")) == (
        "do_user_addr_fault"
    )
    assert S.shown_function("compute", ("compute",)) is None
    text = to_html(S.source_panel("compute", ("compute",)))
    assert "user space" in text and "elixir" not in text


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_step_shows_a_6_4_function_and_its_link(name: str) -> None:
    run = run_of(name)
    trace = run.engine.trace
    known = names_64()
    pairs = {(int(c), int(s)) for c, s in zip(run.code, run.stack, strict=True)}
    for c, s in pairs:
        code, stack = trace.codes[c], trace.stacks[s]
        fn = S.shown_function(code, stack)
        if fn is None:
            assert not any(f in known for f in stack)
            continue
        assert fn in known
        path, line = S.kernel_lines()[fn]
        html_text = to_html(S.source_panel(code, stack, "why"))
        assert f"https://elixir.bootlin.com/linux/v6.4/source/{path}#L{line}" in html_text
        for shown in re.findall(r"<code[^>]*>([a-z_0-9]+)</code>", html_text):
            # Every code span that looks like a function is a 6.4 name or the detail.
            assert shown in known or shown == code.partition(":")[2].split(":")[-1], shown


def test_excerpt_is_the_pc_branch_that_emitted_the_step() -> None:
    ex = S.model_excerpt("vma_start_read", "vma_start_read:trylock_ok")
    assert ex is not None and ex.path == "vmaviz/model/kernel.py"
    assert ex.lines[0].strip() == "if pc == 1:"
    assert '"vma_start_read:trylock_ok"' in ex.lines[ex.mark]
    # The branch ends before the next one.
    assert not any("pc == 2" in line or "seq_ok" in line for line in ex.lines)
    # An f-string code and a helper's literal are found too.
    walk = S.model_excerpt("lock_vma_under_rcu", "lock_vma_under_rcu:abort:no_anon_vma")
    assert walk is not None and '"no_anon_vma"' in walk.lines[walk.mark]
    assert len(walk.lines) <= S.MAX_EXCERPT
    # Cached: one object per (function, code).
    assert S.model_excerpt("vma_start_read", "vma_start_read:trylock_ok") is ex


# =====================================================================
# Over HTTP
# =====================================================================


# app, client: the HTTP app and its test client (tests/conftest.py).


def thread_move(tab: Browser, move: str) -> dict[str, Any]:
    """Click a thread-move button: its callback sends a nav-request, then navigate."""
    clicks = (tab.props.get((f"ts-{move}", "n_clicks")) or 0) + 1
    res = tab.call("nav-request", "data", {f"ts-{move}.n_clicks": clicks})
    request = res["nav-request"]["data"]
    out = tab.call("cursor", "data", {"nav-request.data": request})
    if "cursor" in out:
        tab.show()
    return out


def test_http_thread_picker_and_moves(client: FlaskClient) -> None:
    run = run_of("default")
    tab = Browser(client)
    tab.open("?scenario=default&step=10")
    res = tab.call("ts-thread", "options", {"run.data": tab.props[("run", "data")]})
    assert res["ts-thread"]["options"] == run.thread_names
    # Clicking a lane bar picks that bar's thread.
    pick = tab.call("ts-thread", "value", {"timeline-click.data": {"side": "left", "step": 9}})
    assert pick["ts-thread"]["value"] == run.thread_names[int(run.tid[9])]
    tid = int(run.tid[9])
    row = tab.cursor - 1
    thread_move(tab, "over")
    want = target_row(run, row, tid, "over")
    assert want is not None and tab.cursor == want + 1
    assert "returned" in tab.text("bp-status")
    row = tab.cursor - 1
    thread_move(tab, "out")
    want = target_row(run, row, tid, "out")
    assert want is not None and tab.cursor == want + 1
    for move in ("step", "back", "next_op", "prev_op"):
        row = tab.cursor - 1
        thread_move(tab, move)
        want = target_row(run, row, tid, move)
        # No such step (the thread's last operation): the cursor stays and says so.
        assert tab.cursor == (row + 1 if want is None else want + 1), move
        if want is None:
            assert "no such step" in tab.text("bp-status")
    assert set(MOVES) == {"step", "back", "over", "out", "next_op", "prev_op"}


def test_http_bad_thread_and_no_step_leave_the_cursor(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&step=5")
    before = tab.cursor
    tab.props[("ts-thread", "value")] = "x" * 10_000
    thread_move(tab, "step")
    assert tab.cursor == before and "Pick a thread" in tab.text("bp-status")
    tab.press("step-end")
    end = tab.cursor
    # The last step is RCU's (the callbacks run after every thread): with no thread
    # picked, nothing moves; a thread past its last step has no later step.
    tab.props[("ts-thread", "value")] = None
    thread_move(tab, "step")
    assert tab.cursor == end and "pick a thread" in tab.text("bp-status")
    tab.props[("ts-thread", "value")] = "main"
    thread_move(tab, "step")
    assert tab.cursor == end and "no such step" in tab.text("bp-status")


def test_http_source_panel_follows_the_step_and_is_sent_only_when_it_changes(
    client: FlaskClient,
) -> None:
    run = run_of("default")
    trace = run.engine.trace
    tab = Browser(client)
    tab.open("?scenario=default")
    assert tab.cursor == 0
    assert "No step yet" in tab.side_text("source")
    sent = 0
    for step in range(12):
        res = tab.press("step-fwd")
        html_parts = ((res.get("step-html") or {}).get("data") or {}).get("html") or {}
        key = '{"side":"left","type":"source"}'
        code, stack = trace.codes[int(run.code[step])], trace.stacks[int(run.stack[step])]
        fn = S.shown_function(code, stack)
        text = tab.side_text("source")
        assert fn is not None and fn in text
        assert S.kernel_lines()[fn][0] in text
        assert "elixir.bootlin.com/linux/v6.4/source/" in tab.html[key]
        sent += key in html_parts
    # Consecutive steps with the same code and stack send nothing new; here every
    # step differs in one of them, except where the default run repeats (none, or
    # fewer than all).
    assert 1 <= sent <= 12
