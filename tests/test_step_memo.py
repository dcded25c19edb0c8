"""The step callback's shortcuts give what the long way gives.

- :class:`~vmaviz.ui.session.KernelMemo`: the kernels a step reuses (the last step's
  state after is the next one's state before) are the run's states at those steps,
  and replaying later steps never changes them.
- :func:`~vmaviz.ui.html_render.to_html` reads a component's props directly: the
  HTML is the same as from the component's JSON form.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.utils
import pytest
from flask import Flask
from flask_caching import Cache

from vmaviz.engine.view import snapshot
from vmaviz.ui import panels as P
from vmaviz.ui.html_render import to_html
from vmaviz.ui.session import Config, KernelMemo, RunStore


@pytest.fixture(scope="module")
def store() -> RunStore:
    server = Flask(__name__)
    cache = Cache(server, config={"CACHE_TYPE": "SimpleCache"})
    return RunStore(cache)


def _state(store: RunStore, session: str) -> Any:
    return store.session(session, "step")


def test_a_step_forward_reuses_the_state_before_it(store: RunStore) -> None:
    run = store.run(Config("default", "per_vma", "x86", 4, 1))
    state = _state(store, "s1")
    n = 40
    before, after = state.kernels(0, run, n)
    assert before is not None
    assert snapshot(after) == snapshot(run.engine.state_at(n))
    assert snapshot(before) == snapshot(run.engine.state_at(n - 1))
    # One step on: the state before is the very kernel drawn as "after".
    before2, after2 = state.kernels(0, run, n + 1)
    assert before2 is after
    assert snapshot(after2) == snapshot(run.engine.state_at(n + 1))
    # Replaying on did not change the kernel kept for step n.
    assert snapshot(after) == snapshot(run.engine.state_at(n))


def test_another_session_gets_the_same_states_from_the_memo(store: RunStore) -> None:
    run = store.run(Config("default", "per_vma", "x86", 4, 1))
    _state(store, "s2").kernels(0, run, 120)
    before, after = _state(store, "s3").kernels(0, run, 120)
    assert before is not None
    assert snapshot(after) == snapshot(run.engine.state_at(120))
    assert snapshot(before) == snapshot(run.engine.state_at(119))


def test_stepping_back_and_jumping_give_the_run_states(store: RunStore) -> None:
    run = store.run(Config("mprotect-vs-fault", "per_vma", "x86", 4, 1))
    state = _state(store, "s4")
    for n in (30, 29, 28, 5, 0, run.steps, run.steps - 1):
        before, after = state.kernels(0, run, n)
        assert snapshot(after) == snapshot(run.engine.state_at(n)), n
        if n == 0:
            assert before is None
        else:
            assert before is not None
            assert snapshot(before) == snapshot(run.engine.state_at(n - 1)), n


def test_the_memo_is_bounded_and_keeps_the_newest() -> None:
    memo = KernelMemo(size=3)
    kernels = [object() for _ in range(5)]
    for i, k in enumerate(kernels):
        memo.put(("run", i), k)  # type: ignore[arg-type]
    assert memo.get(("run", 0)) is None and memo.get(("run", 1)) is None
    assert [memo.get(("run", i)) for i in (2, 3, 4)] == kernels[2:]
    assert memo.get(("other", 4)) is None


def _plain(component: Any) -> Any:
    """The component's JSON form all the way down (what Dash sends)."""
    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


@pytest.mark.parametrize("scenario", ["default", "android-app-launch"])
def test_panels_write_the_same_html_as_their_json_form(store: RunStore, scenario: str) -> None:
    run = store.run(Config(scenario, "per_vma", "x86", 4, 1))
    snap = snapshot(run.engine.state_at(min(run.steps, 300)))
    panels = [
        P.vma_table(snap),
        P.threads_panel(snap),
        P.mmap_lock_panel(snap),
        P.rcu_panel(snap),
        P.violations_panel(snap),
    ]
    for panel in panels:
        text = to_html(panel)
        assert text.startswith("<") and len(text) > 100
        assert text == to_html(_plain(panel))
