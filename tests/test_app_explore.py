"""Patch toggles, "be the scheduler" and Explore in the app, over HTTP (no browser).

Driven through :class:`vmaviz.ui.testing.Browser`, which fires the real callbacks
as the Dash renderer would. The race scenario is ``scenarios/races/detached.yaml``:
without ``vma_detached_flag`` one preemption (munmap between the fault's
vm_lock_seq check and its trylock) breaks invariant 5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.engine.engine import Engine
from vmaviz.model.kernel import PATCHES
from vmaviz.scenario import load_scenario
from vmaviz.ui.session import (
    MAX_SCHED,
    Config,
    decode_sched,
    encode_sched,
    from_query,
    to_query,
)
from vmaviz.ui.testing import Browser, find_node

ROOT = Path(__file__).resolve().parents[1]
RACE = "races/detached"
RACE_FILE = ROOT / "scenarios" / "races" / "detached.yaml"
PATCH = "vma_detached_flag"


# app, client: the HTTP app and its test client (tests/conftest.py).


def config(b: Browser) -> dict[str, Any]:
    return dict((b.props.get(("run", "data")) or {}).get("config") or {})


# =====================================================================
# Permalink encoding
# =====================================================================


def test_sched_run_length_round_trip() -> None:
    sched = (0, 0, 0, 1, -1, -1, 2, 0)
    text = encode_sched(sched)
    assert text == "0x3.1.-1x2.2.0"
    assert decode_sched(text) == sched


@pytest.mark.parametrize(
    "text",
    ["0x", "a.b", "0x0", "-2", f"0x{MAX_SCHED + 1}", "0." * 5000],
)
def test_bad_sched_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        decode_sched(text)


def test_patches_and_sched_in_permalink_round_trip() -> None:
    cfg = Config(scenario=RACE, patches=((PATCH, False),), sched=(0, 0, 1))
    query = to_query(cfg, 3)
    assert "patches=vma_detached_flag%3Aoff" in query
    assert "sched=0x2.1" in query
    back, cursor, named = from_query(query)
    assert back == cfg
    assert cursor == 3
    assert named["patches"] == named["sched"] == "ok"


def test_unknown_patch_in_query_is_refused_with_its_reason() -> None:
    back, _cursor, named = from_query("?scenario=default&patches=no_such_patch:off")
    assert back.patches == ()
    assert named["patches"] == "refused"
    assert "no_such_patch" in named["patches_reason"]


# =====================================================================
# Patch toggles
# =====================================================================


def test_patch_panel_lists_every_patch(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert page  # the layout is served by a callback-free index
    layout = client.get("/_dash-layout").get_json()
    text = str(layout)
    for name, (_default, desc) in PATCHES.items():
        assert name in text
        assert desc in text  # the description is the label's tooltip


def test_patch_off_in_link_is_a_different_run(client: FlaskClient) -> None:
    on = Browser(client)
    on.open(f"?scenario={RACE}")
    off = Browser(client)
    off.open(f"?scenario={RACE}&patches={PATCH}:off")
    assert PATCH in on.props[("patches", "value")]
    assert PATCH not in off.props[("patches", "value")]
    assert config(off)["patches"] == [[PATCH, False]]
    assert config(on)["patches"] == []
    assert (
        on.props[("run", "data")]["sides"][0]["key"]
        != off.props[("run", "data")]["sides"][0]["key"]
    )
    assert "patches=vma_detached_flag%3Aoff" in off.props[("permalink-search", "data")]


def test_unknown_patch_link_shows_refusal(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}&patches=bogus:off")
    assert "patches is refused" in b.text("upload-errors")
    assert "bogus" in b.text("upload-errors")
    assert config(b)["patches"] == []


def test_unticking_a_patch_reruns_with_it_off(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}")
    ticked = [p for p in b.props[("patches", "value")] if p != PATCH]
    b.select(patches=ticked)
    assert config(b)["patches"] == [[PATCH, False]]


# =====================================================================
# Be the scheduler
# =====================================================================


def test_scheduler_lists_runnable_threads_with_their_function(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}")
    rows = b.scheduler()
    assert [tid for tid, _ in rows] == [0, 1]
    assert rows[0][1].startswith("1. faulter")
    assert rows[1][1].startswith("2. unmapper")
    assert "fault" in rows[0][1] and "munmap" in rows[1][1]


def test_pick_moves_the_chosen_thread_and_the_link_reproduces_it(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}")
    # The default scheduler starts with the faulter; pick the unmapper instead.
    b.pick(1)
    assert b.cursor == 1
    assert config(b)["sched"] == [1]
    b.key(1)  # then the first listed thread
    assert b.cursor == 2
    sched = config(b)["sched"]
    assert sched[0] == 1 and len(sched) == 2
    link = b.props[("permalink-search", "data")]
    assert "sched=" in link
    # The run's first steps are the ones chosen: replay them in the engine.
    sc = load_scenario(RACE_FILE)
    eng = Engine(sc, schedule=sched).run()
    assert eng.schedule_taken()[:2] == sched
    # A fresh tab with the link opens the same run at the same step.
    again = Browser(client)
    again.open(link)
    assert again.cursor == 2
    assert config(again)["sched"] == sched
    assert (
        again.props[("run", "data")]["sides"][0]["key"]
        == (b.props[("run", "data")]["sides"][0]["key"])
    )
    assert again.side_text("narration") == b.side_text("narration")


def test_click_on_a_lane_picks_its_thread(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}")
    # A step the unmapper took in the default run: its bar is in the unmapper's lane.
    eng = Engine(load_scenario(RACE_FILE)).run()
    taken = eng.schedule_taken()
    assert taken[0] == 0  # the default run starts with the faulter
    b.click_lane(taken.index(1))
    assert config(b)["sched"] == [1]
    assert b.cursor == 1


def test_undo_goes_back_to_the_previous_choice(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}")
    b.pick(1)
    first = list(config(b)["sched"])
    b.pick(0)
    assert len(config(b)["sched"]) == 2
    b.undo()
    assert config(b)["sched"] == first
    assert b.cursor == len(first)


def test_sched_that_does_not_fit_is_a_message_not_a_traceback(client: FlaskClient) -> None:
    b = Browser(client)
    # Thread 7 does not exist in a two-thread scenario.
    b.open(f"?scenario={RACE}&sched=7")
    error = b.text("run-error")
    assert "schedule: thread 7 cannot move at step 0" in error
    assert "Traceback" not in error


def test_malformed_sched_param_is_refused(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}&sched=zz")
    assert "schedule is refused" in b.text("upload-errors")
    assert config(b)["sched"] == []


def test_provoked_violation_is_celebrated(client: FlaskClient) -> None:
    """Forcing the counterexample by hand (the unmapper between the check and the
    trylock) shows the banner naming the invariant, its message and step."""
    b = Browser(client)
    sched = [0] * 7 + [1] * 15 + [0] * 6
    b.open(f"?scenario={RACE}&patches={PATCH}:off&sched={encode_sched(sched)}")
    assert not b.text("run-error")
    b.scheduler()
    banner = b.text("bts-banner")
    assert "invariant 5" in banner
    assert "detached" in banner
    assert "step 27" in banner


# =====================================================================
# Explore
# =====================================================================


def test_explore_finds_the_race_and_opens_it_at_the_violating_step(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}&patches={PATCH}:off")
    b.props[("explore-preemptions", "value")] = 1
    b.explore()
    result = b.text("explore-result")
    assert "Race found" in result
    assert "invariant 5" in result
    assert "preempts" in result  # the explorer's story of the race
    cfg = config(b)
    assert cfg["patches"] == [[PATCH, False]]
    assert cfg["sched"]  # the counterexample is the forced schedule
    assert b.cursor == len(cfg["sched"])
    # The run shown has its first violation at the cursor's step.
    b.scheduler(on=False)
    assert f"step {b.cursor - 1}" in b.text("bts-banner")
    # The timeline carries the preemption marks.
    lanes = b.props.get(('{"side":"left","type":"timeline-data"}', "data"))
    if lanes is None:
        store = find_node(b.props[("body", "children")], {"side": "left", "type": "timeline-data"})
        lanes = dict(store["props"].get("data") or {}) if store else None
    assert lanes is not None and lanes["marks"]


def test_explore_with_every_patch_on_reports_what_it_covered(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}")
    b.props[("explore-preemptions", "value")] = 1
    b.explore()
    result = b.text("explore-result")
    assert "No violation found" in result
    assert "schedules" in result and "at most 1 preemptions" in result
    assert config(b)["sched"] == []
