"""Compare view of the same schedule with a patch off and on, over HTTP (no browser).

Driven through :class:`vmaviz.ui.testing.Browser`. The race is
``scenarios/races/detached.yaml``: with ``vma_detached_flag`` off, the schedule
:data:`RACE_SCHED` (the faulter checks vm_lock_seq, the unmapper detaches the VMA,
the faulter takes the lock) breaks invariant 5 at step 27; with the patch on the
same schedule runs clean.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
from flask.testing import FlaskClient

from vmaviz.engine.engine import Engine, EngineError
from vmaviz.scenario import load_scenario
from vmaviz.ui.session import (
    SCENARIO_DIR,
    Config,
    build_run,
    encode_sched,
    from_query,
    patches_back_on,
    to_query,
)
from vmaviz.ui.testing import Browser

RACE = "races/detached"
PATCH = "vma_detached_flag"
RACE_SCHED = [0] * 7 + [1] * 15 + [0] * 6
VIOLATION_STEP = 27
#: The race, then the faulter on: it has 13 steps left with the patch off (the
#: schedule ends its run at step 35) and 18 with it on (its retry under mmap_lock):
#: each side leaves the schedule where the faulter is done.
LONG_SCHED = [0] * 7 + [1] * 15 + [0] * 20


def compare_link(sched: list[int], extra: str = "") -> str:
    return (
        f"?scenario={RACE}&view=compare&compare=patches&patches={PATCH}:off"
        f"&sched={encode_sched(sched)}{extra}"
    )


def info(b: Browser) -> dict[str, Any]:
    return dict(b.props.get(("run", "data")) or {})


def find_href(node: Any, ident: str) -> str | None:
    """The ``href`` of the component with id ``ident`` in a Dash component tree."""
    if isinstance(node, list):
        for n in node:
            found = find_href(n, ident)
            if found is not None:
                return found
    elif isinstance(node, dict):
        props = node.get("props", {})
        if props.get("id") == ident:
            return str(props.get("href"))
        return find_href(props.get("children"), ident)
    return None


# =====================================================================
# Configuration and permalink
# =====================================================================


def test_compare_kind_round_trips_through_the_permalink() -> None:
    cfg = Config(
        scenario=RACE,
        view="compare",
        compare="patches",
        patches=((PATCH, False),),
        sched=tuple(RACE_SCHED),
    )
    query = to_query(cfg, 40)
    assert "compare=patches" in query
    back, cursor, named = from_query(query)
    assert back == cfg
    assert cursor == 40
    assert named["compare"] == "ok"
    # The default kind stays out of links, as before this setting existed.
    assert "compare=" not in to_query(Config(view="compare"), 0)


def test_bad_compare_kind_is_refused() -> None:
    back, _cursor, named = from_query("?scenario=default&view=compare&compare=sideways")
    assert back.compare == "modes"
    assert named["compare"] == "refused"


def test_patch_compare_sides_turn_the_patches_back_on() -> None:
    cfg = Config(view="compare", compare="patches", mode="per_vma", patches=((PATCH, False),))
    sides = cfg.side_configs()
    assert [m for _c, m in sides] == ["per_vma", "per_vma"]
    assert sides[0][0].patches == ((PATCH, False),)
    assert sides[1][0].patches == ((PATCH, True),)
    assert patches_back_on(((PATCH, False), ("other", True))) == ((PATCH, True), ("other", True))
    # Today's compare view is unchanged: the two modes.
    assert Config(view="compare").modes() == ("mmap_lock", "per_vma")


# =====================================================================
# The lenient schedule
# =====================================================================


def test_lenient_run_goes_on_where_the_strict_engine_refuses() -> None:
    """The right side's run follows the schedule while it fits, then goes on
    time-ordered; the engine's own forced schedule still refuses that step."""
    sc = load_scenario(SCENARIO_DIR / "races" / "detached.yaml")
    on = sc.with_overrides(patches={**sc.kernel.patches, PATCH: True})
    mode, arch = sc.kernel.mode, sc.kernel.arch
    with pytest.raises(EngineError, match="thread 0 cannot move at step 40"):
        Engine(on, mode=mode, arch=arch, schedule=LONG_SCHED).run()
    run = build_run("k", on, mode, arch, schedule=tuple(LONG_SCHED), lenient=True)
    assert run.left_schedule == (40, 0)
    assert list(run.tid[:40]) == LONG_SCHED[:40]
    # The run went on to the end past the schedule, and time travel replays it
    # exactly (it follows the recorded thread ids).
    assert run.steps > 40
    last = run.engine.state_at(run.steps)
    assert last.now == run.engine.k.now and last.steps == run.steps
    # A schedule that fits is followed to its end, as the strict engine would.
    fits = build_run("k", on, mode, arch, schedule=tuple(RACE_SCHED), lenient=True)
    assert fits.left_schedule is None
    strict = Engine(on, mode=mode, arch=arch, schedule=RACE_SCHED).run()
    assert list(fits.tid) == list(strict.schedule_taken())


# =====================================================================
# The page
# =====================================================================


def test_patch_compare_view_shows_the_race_on_the_left_only(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(compare_link(RACE_SCHED))
    assert not b.text("run-error")
    run = info(b)
    assert run["config"]["compare"] == "patches"
    left, right = run["sides"]
    assert left["mode"] == right["mode"] == run["config"]["mode"]
    assert left["key"] != right["key"]
    assert left["title"].startswith(f"{PATCH} off")
    assert right["title"].startswith(f"{PATCH} on")
    assert "left the schedule" not in left["title"] + right["title"]
    # The summary: the violation on the left at the counterexample's step, none on
    # the right.
    table = b.text("delta-table")
    assert "first violation" in table
    assert f"step {VIOLATION_STEP}" in table
    assert "none" in table
    # The counters follow the left side (its patches), in the page's mode.
    assert run["counter_mode"] == run["config"]["mode"]
    # The permalink carries the kind, the patches and the schedule.
    link = b.props[("permalink-search", "data")]
    params = parse_qs(link.lstrip("?"))
    assert params["compare"] == ["patches"]
    assert params["patches"] == [f"{PATCH}:off"]
    assert params["sched"] == [encode_sched(RACE_SCHED)]


def test_one_cursor_walks_both_sides_to_the_violation(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(compare_link(RACE_SCHED))
    total = info(b)["total"]
    left, right = info(b)["sides"]
    assert total == left["steps"] + right["steps"]
    # Step the merged cursor to where the left side has run its violating step.
    for cursor in range(1, total + 1):
        b.props[("cursor", "data")] = cursor
        b.show()
        status = b.text("step-status")
        if f"left: step {VIOLATION_STEP}" in status:
            break
    else:
        raise AssertionError("the merged cursor never reached the left side's violation")
    assert "right: step" in status
    assert "invariant 5" in b.side_text("violations", "left")
    assert "invariant 5" not in b.side_text("violations", "right")


def test_the_page_says_where_each_side_left_the_schedule(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(compare_link(LONG_SCHED))
    assert not b.text("run-error")
    left, right = info(b)["sides"]
    assert "left the schedule at step 35 (faulter could not move)" in left["title"]
    assert "left the schedule at step 40 (faulter could not move)" in right["title"]
    assert "step 40 (faulter)" in b.text("delta-table")


def test_bad_compare_kind_in_a_link_is_refused_with_a_note(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}&view=compare&compare=sideways")
    assert "compare is refused" in b.text("upload-errors")
    run = info(b)
    assert run["config"]["compare"] == "modes"
    assert [s["mode"] for s in run["sides"]] == ["mmap_lock", "per_vma"]


def test_explorer_result_links_to_the_patch_compare_view(client: FlaskClient) -> None:
    b = Browser(client)
    b.open(f"?scenario={RACE}&patches={PATCH}:off")
    b.props[("explore-preemptions", "value")] = 1
    b.explore()
    assert "Compare with the patch on" in b.text("explore-result")
    href = find_href(b.props[("explore-result", "children")], "explore-compare")
    assert href is not None
    cfg, cursor, _named = from_query(href)
    assert cfg.view == "compare" and cfg.compare == "patches"
    assert cfg.patches == ((PATCH, False),)
    assert list(cfg.sched) == info(b)["config"]["sched"]
    # Opened, the link shows the left side at its violating step.
    c = Browser(client)
    c.open(href)
    assert c.cursor == cursor
    violation = int(b.cursor) - 1
    assert f"left: step {violation}" in c.text("step-status")
    assert "invariant 5" in c.side_text("violations", "left")
