"""The timeline's hand-off arrows and range statistics, over HTTP as the page uses them.

:class:`vmaviz.ui.testing.Browser` sends the same ``/_dash-update-component`` requests
as the browser: the arrows come once with the run's lanes, the statistics once per
selected range, and no step resends either.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.ui.testing import Browser

STATS = json.dumps({"side": "left", "type": "range-stats"}, sort_keys=True, separators=(",", ":"))
QUERY = "?scenario=start-write-waits-reader&mode=per_vma"


# app, client: the HTTP app and its test client (tests/conftest.py).


def lanes_of(tab: Browser) -> dict[str, Any]:
    def find(node: Any) -> Any:
        if isinstance(node, dict):
            props = node.get("props", {})
            if isinstance(props.get("id"), dict) and props["id"].get("type") == "timeline-data":
                return props["data"]
            for v in node.values():
                hit = find(v)
                if hit is not None:
                    return hit
        if isinstance(node, list):
            for v in node:
                hit = find(v)
                if hit is not None:
                    return hit
        return None

    found: dict[str, Any] = find(tab.props[("body", "children")])
    return found


def select(tab: Browser, t0: Any, t1: Any) -> dict[str, Any]:
    rng = {"side": "left", "t0": t0, "t1": t1}
    return tab.call(STATS, "children", {"timeline-range.data": rng})


def test_arrows_come_with_the_lanes_and_steps_do_not_resend_them(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open(QUERY)
    fl = lanes_of(tab)["flows"]
    rows = lanes_of(tab)["rows"]
    # early's vma_end_read wakes tuner; tuner's mmap_write_unlock hands mmap_lock to late.
    assert [(rows[a], rows[b]) for a, b in zip(fl["from"], fl["to"], strict=True)] == [
        ("early", "tuner"),
        ("tuner", "late"),
    ]
    for _ in range(3):
        res = tab.press("step-fwd10")
        assert not any("timeline" in key or "range-stats" in key for key in res)


def test_a_selected_range_gets_its_statistics(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open(QUERY)
    fl = lanes_of(tab)["flows"]
    res = select(tab, 0, fl["t1"][1])
    body = json.dumps(res[STATS]["children"], ensure_ascii=False)
    text = " ".join(re.findall(r'"children": "([^"]*)"', body))
    assert "Time waiting on each lock in the range" in text
    # Each thread's wait, longest first, with the lock's row name on the lanes.
    assert re.search(r"late mmap_lock [\d.]+ µs tuner vma1 buf [\d.]+ µs", text), text
    assert "fell back to mmap_lock (trylock_failed): 1" in text
    assert "faults: 3" in text
    # Before anything queued: no waits.
    res = select(tab, 0, 1.0)
    assert "No thread waited on a lock in this range." in json.dumps(res[STATS]["children"])
    # Cleared (Escape): the table goes.
    assert select(tab, None, None)[STATS]["children"] is None


@pytest.mark.parametrize(
    ("t0", "t1", "message"),
    [
        ("0", 5, "the selected range's ends are not numbers"),
        (0, 1e30, "the selected range must lie within 0 and"),
    ],
)
def test_a_bad_range_is_refused_with_a_message(
    client: FlaskClient, t0: Any, t1: Any, message: str
) -> None:
    tab = Browser(client)
    tab.open(QUERY)
    assert message in json.dumps(select(tab, t0, t1)[STATS]["children"], ensure_ascii=False)


def test_the_range_callback_is_not_fired_by_a_step(client: FlaskClient) -> None:
    tab = Browser(client)
    deps = [d for d in tab.deps if "range-stats" in d["output"]]
    assert len(deps) == 1
    assert [x["id"] for x in deps[0]["inputs"]] == ["timeline-range"]
