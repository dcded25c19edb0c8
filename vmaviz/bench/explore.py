"""``python -m vmaviz bench explore``: the race explorer's speed and what it finds.

For each race scenario in ``scenarios/races/`` it prints:

* the search speed with every patch on (no violation, so the whole budget is
  search): schedules/s, branch-point states/s and steps/s, and the ratio of
  those steps/s to a plain ``run`` of the same scenario (the engine's hot loop);
* the results table: with the scenario's patch off, the minimal counterexample
  (invariant, preemptions, steps), the schedules explored and the seconds;
* the sleep sets' effect: schedules and seconds of the clean search without
  and with ``por``.

Figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import time
from pathlib import Path

from vmaviz.engine.engine import run_to_end
from vmaviz.explore import explore
from vmaviz.explore.races import NOT_MODELLED, RACES
from vmaviz.explore.search import Bounded, Limits, _Stop, configured
from vmaviz.explore.state import snapshot
from vmaviz.scenario import load_scenario

#: The bound of the speed measurement (all patches on: nothing is found).
SPEED_BOUND = 2


def _run_steps_per_second(path: Path, seconds: float) -> float:
    sc = load_scenario(path)
    steps = 0
    start = time.perf_counter()
    while True:
        steps += len(run_to_end(sc).trace)
        took = time.perf_counter() - start
        if took >= seconds:
            return steps / took


def main(seconds: float = 1.0) -> int:
    """Print the speed table and the results table.

    Args:
        seconds: Time cap of each speed measurement (and of each plain run loop).

    Returns:
        0.
    """
    print(f"explore speed: bounded search, all patches on, bound {SPEED_BOUND}, one process")
    head = ("scenario", "threads", "schedules/s", "states/s", "steps/s", "run steps/s", "ratio")
    print("  ".join(f"{h:>20}" if i == 0 else f"{h:>12}" for i, h in enumerate(head)))
    for race in RACES:
        stem, path = race.stem, race.path
        sc = load_scenario(path)
        _, k0 = configured(sc, {"all": True})
        search = Bounded(snapshot(k0), Limits(seconds=seconds))
        start = time.perf_counter()
        try:
            for b in range(SPEED_BOUND + 1):
                search.run_pass(b)
        except _Stop:
            pass
        took = time.perf_counter() - start
        run_sps = _run_steps_per_second(path, min(seconds, 0.5))
        sps = search.steps / took
        row = (
            stem,
            str(len(sc.threads)),
            f"{search.schedules / took:,.0f}",
            f"{search.states / took:,.0f}",
            f"{sps:,.0f}",
            f"{run_sps:,.0f}",
            f"{sps / run_sps:.2f}",
        )
        print("  ".join(f"{c:>20}" if i == 0 else f"{c:>12}" for i, c in enumerate(row)))
    print()
    print("explore results (the README's table): each race with its toggle off, the minimal")
    print("counterexample; then every patch on, within the same bound")
    print()
    print(
        "| scenario | §12 row | toggle off | invariant | preemptions | steps | schedules "
        "| seconds | all patches on |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for race in RACES:
        sc = load_scenario(race.path)
        r = explore(sc, patches={race.patch: False}, preemptions=race.bound, seconds=60.0)
        ok = explore(sc, patches={"all": True}, preemptions=race.bound, seconds=60.0)
        clean = (
            f"no violation, {ok.schedules:,} schedules"
            + (" (all)" if ok.exhaustive else " (budget hit)")
            if not ok.found
            else f"VIOLATION: invariant {ok.violation.invariant if ok.violation else '?'}"
        )
        cells = (
            race.stem,
            race.row,
            f"`{race.patch}`",
            str(r.violation.invariant) if r.violation else "not found",
            str(r.preemptions if r.preemptions is not None else "-"),
            str(r.steps if r.steps is not None else "-"),
            f"{r.schedules:,}",
            f"{r.seconds:.2f}",
            clean,
        )
        print("| " + " | ".join(cells) + " |")
    print()
    print("sleep sets (--por): every patch on, each race's bound, one process")
    print(f"{'scenario':>24}  {'schedules':>10}  {'with por':>10}  {'seconds':>8}  {'with por':>8}")
    for race in RACES:
        sc = load_scenario(race.path)
        cols = [race.stem]
        for por in (False, True):
            start = time.perf_counter()
            r = explore(sc, patches={"all": True}, preemptions=race.bound, seconds=60.0, por=por)
            cols += [f"{r.schedules:,}", f"{time.perf_counter() - start:.2f}"]
        print(f"{cols[0]:>24}  {cols[1]:>10}  {cols[3]:>10}  {cols[2]:>8}  {cols[4]:>8}")
    print()
    print("Not expressible in the model yet:")
    for what, why in NOT_MODELLED:
        print(f"- {what}: {why}")
    return 0
