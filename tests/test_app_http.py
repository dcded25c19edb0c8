"""The Dash app over HTTP, through Flask's test client (no browser).

:class:`vmaviz.ui.testing.Browser` sends the same ``/_dash-update-component``
requests as the Dash renderer (built from ``/_dash-dependencies``) and keeps the
props the server sets, so these tests drive the real callbacks end to end.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.engine.engine import Engine
from vmaviz.engine.narrate import narrate
from vmaviz.scenario import load_scenario
from vmaviz.scenario.schema import MAX_FILE_BYTES
from vmaviz.ui.app_factory import TITLE, create_app
from vmaviz.ui.cache import cache_config
from vmaviz.ui.session import KEYFRAME_EVERY, Config, from_query, to_query
from vmaviz.ui.testing import Browser, find_node

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "scenarios" / "default.yaml"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vmaviz-cache")


@pytest.fixture(scope="module")
def app(cache_dir: Path) -> Any:
    return create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(cache_dir)})


@pytest.fixture
def client(app: Any) -> Iterator[FlaskClient]:
    with app.server.test_client() as c:
        yield c


def default_engine() -> Engine:
    return Engine(load_scenario(DEFAULT), keyframe_every=KEYFRAME_EVERY).run()


def upload(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return "data:application/x-yaml;base64," + base64.b64encode(raw).decode()


# =====================================================================
# Page and assets
# =====================================================================


def test_index_is_offline_and_accessible(client: FlaskClient) -> None:
    res = client.get("/")
    assert res.status_code == 200
    body = res.get_data(as_text=True)
    assert f"<title>{TITLE}</title>" in body
    assert "vmaviz.css" in body and "vmaviz.js" in body  # assets/ served locally
    assert "cdn" not in body.lower() and "unpkg" not in body.lower()
    for src in ("/_dash-component-suites/", "/assets/"):
        assert src in body
    js = client.get("/assets/vmaviz.js").get_data(as_text=True)
    assert "preventDefault" in js and "ArrowRight" in js and "clipboard" in js


def test_layout_has_labelled_controls_and_a_session_id(client: FlaskClient) -> None:
    layout = client.get("/_dash-layout").get_json()
    text = json.dumps(layout)
    for ident in ("scenario", "upload", "mode", "arch", "cpus", "seed", "view", "scrubber-box"):
        assert f'"id": "{ident}"' in text
    for button in ("step-fwd", "step-back", "step-fwd10", "play", "bp-run", "copy-link"):
        node = find_node(layout, button)
        assert node is not None and node["props"].get("aria-label"), button
    sid = find_node(layout, "session-id")["props"]["data"]
    again = find_node(client.get("/_dash-layout").get_json(), "session-id")["props"]["data"]
    assert len(sid) == 32 and sid != again  # every page load is a new session


def test_cache_config_uses_a_user_dir_or_redis(tmp_path: Path) -> None:
    files = cache_config({})
    assert files["CACHE_TYPE"] == "FileSystemCache"
    assert not Path(files["CACHE_DIR"]).resolve().is_relative_to(ROOT)
    assert cache_config({"HOME": str(tmp_path)})["CACHE_DIR"] == str(tmp_path / ".cache/vmaviz")
    assert cache_config({"VMAVIZ_CACHE_DIR": str(tmp_path)})["CACHE_DIR"] == str(tmp_path)
    redis = cache_config({"VMAVIZ_REDIS_URL": "redis://localhost:6379/3"})
    assert redis["CACHE_TYPE"] == "RedisCache"
    assert redis["CACHE_REDIS_URL"] == "redis://localhost:6379/3"


# =====================================================================
# Stepping
# =====================================================================


def test_open_and_step_forward_and_back(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("")
    assert tab.props[("scenario", "value")] == "default"
    assert "initial state" in tab.text("step-status")
    assert "Before the first step" in tab.side_text("narration")
    engine = default_engine()
    for step in range(5):
        tab.press("step-fwd")
        assert f"step {step}" in tab.text("step-status")
        title = narrate(engine, step, engine.state_at(step), engine.state_at(step + 1)).title
        assert title in tab.side_text("narration")
    tab.press("step-back")
    assert "step 3" in tab.text("step-status")
    tab.press("step-fwd10")
    assert "step 13" in tab.text("step-status")
    tab.press("step-start")
    assert "initial state" in tab.text("step-status")
    tab.press("step-end")
    assert f"step {len(engine.trace) - 1}" in tab.text("step-status")


def test_step_views_are_patched_and_small(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&step=100")
    sizes = []
    for _ in range(20):
        res = tab.press("step-fwd")
        sizes.append(tab.last_bytes)
        # A view that changed is a full value or a Patch; unchanged views are absent.
        for value in res.values():
            for prop in value.values():
                if isinstance(prop, dict) and "__dash_patch_update" in prop:
                    assert prop["operations"]
    assert max(sizes) < 50_000
    assert sum(sizes) / len(sizes) < 15_000


def test_play_by_operation_stops_at_the_end(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=write-locked-vma")
    tab.props[("granularity", "value")] = "operation"
    tab.props[("play-timer", "disabled")] = False  # playing
    total = tab.props[("run", "data")]["total"]
    res: dict[str, Any] = {}
    for tick in range(1, total + 2):
        res = tab.call(
            "cursor", "data", {"nav-request.data": {"move": 1, "play": True, "at": tick}}
        )
        if tab.cursor == total:
            break
    assert tab.cursor == total
    assert res["play-timer"]["disabled"] is True and "Play" in res["play"]["children"]
    # A step button at the end (not Play) leaves the timer alone.
    tab.props[("play-timer", "disabled")] = True
    res = tab.call("cursor", "data", {"nav-request.data": {"move": 1, "play": False, "at": 0}})
    assert "play-timer" not in res


def test_granularities_move_by_function_and_operation(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&step=50")
    tab.props[("granularity", "value")] = "function"
    tab.press("step-fwd")
    by_function = tab.cursor
    tab.props[("granularity", "value")] = "operation"
    tab.press("step-fwd")
    by_op = tab.cursor
    assert 51 < by_function < by_op
    tab.press("step-back")
    assert tab.cursor < by_op
    engine = default_engine()
    t = engine.trace
    t.flush()
    row = by_op - 1
    # An operation boundary: the thread's op counter changed at that row.
    earlier = [i for i in range(row) if t.tid[i] == t.tid[row]]
    assert not earlier or t.op[earlier[-1]] != t.op[row]


def test_vm_lock_seq_table_changes_at_the_writer(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("")
    tab.press(
        "bp-run",
        **{"bp-kinds.value": ["vma_write"], "bp-vma.value": "jit"},
    )
    status = tab.text("bp-status")
    assert "vma_start_write:seq_set" in status and "main" in status
    table = tab.side_text("vma-table")
    assert "WRITE-LOCKED" in table and "==" in table
    before = tab.side_text("vma-table")
    tab.press(
        "bp-run",
        **{"bp-kinds.value": ["enter"], "bp-function.value": "vma_end_write_all"},
    )
    tab.press("step-fwd")
    tab.press("step-fwd")
    assert tab.side_text("vma-table") != before
    assert "WRITE-LOCKED" not in tab.side_text("vma-table")


@pytest.mark.parametrize(
    ("kinds", "params", "expect"),
    [
        (["fallback"], {}, "lock_vma_under_rcu:abort:no_anon_vma"),
        (["abort"], {"bp-reason.value": "vma_locked"}, "abort:vma_locked"),
        (
            ["enter"],
            {"bp-thread.value": "main", "bp-function.value": "vma_start_write"},
            "main",
        ),
        (["mmap_wait"], {}, ":queued"),
    ],
)
def test_breakpoints(
    client: FlaskClient, kinds: list[str], params: dict[str, Any], expect: str
) -> None:
    tab = Browser(client)
    tab.open("")
    tab.press("bp-run", **{"bp-kinds.value": kinds, **params})
    assert "Breakpoint" in tab.text("bp-status")
    assert expect in tab.text("bp-status")
    assert tab.cursor > 0


def test_no_breakpoint_left_keeps_the_place(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&step=40")
    tab.press("bp-run", **{"bp-kinds.value": ["violation"]})
    assert "No breakpoint fires after" in tab.text("bp-status")
    assert tab.cursor == 41
    tab.press("bp-back", **{"bp-kinds.value": ["violation"]})
    assert "No breakpoint fires before" in tab.text("bp-status")
    assert tab.cursor == 41


def test_run_back_to_the_previous_breakpoint(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("")
    hits = []
    for _ in range(3):
        tab.press("bp-run", **{"bp-kinds.value": ["fallback"]})
        hits.append((tab.cursor, tab.text("bp-status")))
    assert hits[0][0] < hits[1][0] < hits[2][0]
    tab.press("bp-back", **{"bp-kinds.value": ["fallback"]})
    assert (tab.cursor, tab.text("bp-status")) == hits[1]
    tab.press("bp-back", **{"bp-kinds.value": ["fallback"]})
    assert tab.cursor == hits[0][0]


@pytest.mark.parametrize(
    ("scenario", "kind", "event"),
    [
        ("munmap-race-miss", "miss", "lock_vma_under_rcu:miss_retry"),
        ("swap-retry", "retry", "fault:vma_lock_retry"),
    ],
)
def test_miss_and_retry_breakpoints(
    client: FlaskClient, scenario: str, kind: str, event: str
) -> None:
    tab = Browser(client)
    tab.open(f"?scenario={scenario}")
    tab.press("bp-run", **{"bp-kinds.value": [kind]})
    assert event in tab.text("bp-status")
    assert event in tab.text("step-status")


def test_jump_means_the_number_the_link_shows_and_reports_bad_input(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default")
    tab.press("jump-go", **{"jump.value": 40})
    assert tab.cursor == 41 and "step 40" in tab.text("step-status")
    total = tab.props[("run", "data")]["total"]
    tab.press("jump-go", **{"jump.value": total + 5})
    assert f"no step {total + 5:,}" in tab.text("bp-status")
    assert f"0 to {total - 1:,}" in tab.text("bp-status") and tab.cursor == 41
    tab.press("jump-go", **{"jump.value": -3})
    assert "no step -3" in tab.text("bp-status") and tab.cursor == 41
    # Compare view: the merged step, as in the link (step=N) and on the scrubber.
    tab = Browser(client)
    tab.open("?scenario=default&view=compare")
    assert tab.props[("jump", "placeholder")] == "merged step"
    tab.press("jump-go", **{"jump.value": 300})
    assert tab.cursor == 301
    assert "step=300" in tab.props[("permalink-search", "data")]
    total = tab.props[("run", "data")]["total"]
    tab.press("jump-go", **{"jump.value": total})
    assert "of both runs in time order" in tab.text("bp-status")


def test_event_log_row_click_jumps(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&step=40")
    rows = tab.props[("log-rows", "ids")]
    assert 40 in rows
    target = rows[2]
    tab.click_log_row(target)
    assert f"step {target}" in tab.text("step-status")


def test_event_log_filters(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&step=200")
    tab.props[("log-thread", "value")] = "jit"
    res = tab.show()
    assert "event-log" in res["step-html"]["data"]["html"]  # the filtered page is sent
    log = tab.text("event-log")
    assert "jit" in log and "worker" not in log


# =====================================================================
# Permalinks
# =====================================================================


def test_query_string_round_trip() -> None:
    config, cursor, named = from_query("?scenario=swap-retry&mode=mmap_lock&arch=s390&cpus=3")
    assert named == dict.fromkeys(("scenario", "mode", "arch", "cpus"), "ok") and cursor is None
    assert (config.scenario, config.mode, config.arch, config.cpus) == (
        "swap-retry",
        "mmap_lock",
        "s390",
        3,
    )
    assert from_query(to_query(config, 41))[:2] == (config, 41)
    bad, _, named = from_query("?scenario=../../etc/passwd&mode=x&cpus=-4&view=weird")
    assert bad.scenario == "default" and bad.mode == "per_vma" and bad.cpus >= 1
    assert set(named.values()) == {"refused"} and "seed" not in named


def test_counters_of_the_other_arches_arrive_in_the_background(tmp_path: Path) -> None:
    """The page opens on its own run; the other arches' runs join the counters later."""
    app = create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)})
    tab = Browser(app.server.test_client())
    res = tab.open("?scenario=write-locked-vma")
    deadline = time.time() + 120
    while res.get("arch-poll", {}).get("disabled") is False and time.time() < deadline:
        time.sleep(0.2)
        res = tab.call("step-html", "data", {"arch-poll.n_intervals": 1})
        request = ((res.get("step-html") or {}).get("data") or {}).get("figures")
        if request:
            tab.call("counters-graph", "figure", {"figure-go.data": request})
    assert res.get("arch-poll", {}).get("disabled") is True  # nothing left pending
    figure = tab.props[("counters-graph", "figure")]
    assert figure["layout"]["meta"]["arches"] == ["x86", "arm64", "powerpc", "s390"]


def test_breakpoints_travel_in_the_permalink(client: FlaskClient) -> None:
    from urllib.parse import parse_qs

    tab = Browser(client)
    query = "?scenario=default&view=single&step=5&bp=miss%2Cviolation&bp_thread=jit"
    tab.open(query)
    restored = tab.call("bp-kinds", "value", {"url.search": query})
    assert restored["bp-kinds"]["value"] == ["miss", "violation"]
    assert restored["bp-thread"]["value"] == "jit"
    tab.press("step-fwd")
    params = parse_qs(tab.props[("permalink-search", "data")].lstrip("?"))
    assert params["bp"] == ["miss,violation"] and params["bp_thread"] == ["jit"]
    # Changing a breakpoint changes the link at once, without a step.
    res = tab.call("permalink-search", "data", {"bp-kinds.value": ["fallback", "retry"]}, {})
    params = parse_qs(res["permalink-search"]["data"].lstrip("?"))
    assert params["bp"] == ["fallback,retry"] and params["step"] == ["6"]
    # The default set (fallback only) leaves the link clean; a link without bp
    # leaves the controls alone.
    tab.props[("bp-thread", "value")] = None
    res = tab.call("permalink-search", "data", {"bp-kinds.value": ["fallback"]}, {})
    assert "bp" not in parse_qs(res["permalink-search"]["data"].lstrip("?"))
    assert tab.call("bp-kinds", "value", {"url.search": "?scenario=default"}) == {}


def test_a_bare_link_uses_the_scenarios_own_settings(client: FlaskClient) -> None:
    """``?scenario=X`` alone: X's declared CPUs (android-app-launch: 8), not the default 4."""
    from vmaviz.scenario import load_scenario

    own = load_scenario(ROOT / "scenarios" / "android-app-launch.yaml").kernel
    assert own.cpus != Config().cpus
    tab = Browser(client)
    tab.call("scenario", "value", {"url.search": "?scenario=android-app-launch"})
    assert tab.props[("cpus", "value")] == own.cpus
    assert (tab.props[("mode", "value")], tab.props[("arch", "value")]) == (own.mode, own.arch)
    assert tab.props[("upload-errors", "children")] is None
    # A named setting wins; the others still come from the scenario.
    tab.call("scenario", "value", {"url.search": "?scenario=android-app-launch&cpus=2"})
    assert tab.props[("cpus", "value")] == 2 and tab.props[("seed", "value")] == own.seed


def test_a_link_to_an_unknown_scenario_says_so(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.call("scenario", "value", {"url.search": "?scenario=no-such-thing&cpus=banana"})
    assert tab.props[("scenario", "value")] == "default"
    text = tab.text("upload-errors")
    assert "no-such-thing" in text and "default" in text
    tab.call("scenario", "value", {"url.search": "?scenario=../etc&cpus=banana"})
    text = tab.text("upload-errors")
    assert "no scenario" in text and "cpus" in text


def test_permalink_restores_the_exact_view(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=mprotect-vs-fault&mode=mmap_lock&arch=arm64&cpus=2&seed=7&step=40")
    for ident, value in (("mode", "mmap_lock"), ("arch", "arm64"), ("cpus", 2), ("seed", 7)):
        assert tab.props[(ident, "value")] == value
    assert "step 40" in tab.text("step-status")
    search = tab.props[("permalink-search", "data")]
    again = Browser(client)
    again.open(search)
    assert again.text("step-status") == tab.text("step-status")
    assert again.side_text("narration") == tab.side_text("narration")
    assert again.side_text("vma-table") == tab.side_text("vma-table")


# =====================================================================
# Uploads
# =====================================================================


def test_upload_bad_yaml_shows_errors_inline(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("")
    bad = "name: t\ndescription: x\nmm:\n  vmas:\n    - {name: a, pages: 4}\nthreads:\n"
    bad += "  - name: T0\n    ops:\n      - fault: {vma: nope, page: 0}\n"
    tab.call("scenario", "value", {"upload.contents": upload(bad)}, {"upload.filename": "x.yaml"})
    errors = tab.text("upload-errors")
    assert "x.yaml:" in errors and "nope" in errors
    assert tab.props[("scenario", "value")] == "default"  # the run shown is unchanged


def test_upload_size_limit_is_enforced_on_the_server(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("")
    big = b"# " + b"x" * (MAX_FILE_BYTES + 10)
    tab.call("scenario", "value", {"upload.contents": upload(big)}, {"upload.filename": "big.yaml"})
    assert "limit" in tab.text("upload-errors")
    garbage = "data:text/yaml;base64,@@@not base64@@@"
    tab.call("scenario", "value", {"upload.contents": garbage}, {"upload.filename": "g.yaml"})
    assert "base64" in tab.text("upload-errors")


def test_upload_good_yaml_runs_it(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("")
    text = (ROOT / "scenarios" / "first-fault-anon-vma.yaml").read_text()
    tab.call("scenario", "value", {"upload.contents": upload(text)}, {"upload.filename": "f.yaml"})
    ref = tab.props[("scenario", "value")]
    assert ref.startswith("upload:")
    assert any(o["value"] == ref for o in tab.props[("scenario", "options")])
    tab.configure()
    tab.press("step-end")
    assert "first-fault-anon-vma" in json.dumps(tab.props[("scenario-info", "children")])
    # The permalink names the upload by its hash: another tab restores it.
    other = Browser(client)
    other.open(tab.props[("permalink-search", "data")])
    assert other.text("step-status") == tab.text("step-status")


# =====================================================================
# Sessions and workers
# =====================================================================


def test_two_sessions_interleaved_do_not_share_state(app: Any, client: FlaskClient) -> None:
    a = Browser(client)
    b = Browser(client)
    a.open("?scenario=default")
    b.open("?scenario=mprotect-vs-fault")
    seen: dict[str, list[str]] = {"a": [], "b": []}
    for _ in range(6):
        a.press("step-fwd")
        seen["a"].append(a.side_text("narration"))
        b.press("step-fwd")
        b.press("step-fwd")
        seen["b"].append(b.side_text("narration"))
    assert "step 5" in a.text("step-status")
    assert "step 11" in b.text("step-status")
    # Each session saw exactly what a session of its own sees.
    for key, search, stride in (("a", "default", 1), ("b", "mprotect-vs-fault", 2)):
        alone = Browser(client)
        alone.open(f"?scenario={search}")
        for i in range(6):
            for _ in range(stride):
                alone.press("step-fwd")
            assert alone.side_text("narration") == seen[key][i]
    # The server keeps per-session state under each session's own id.
    store = app.server.extensions["vmaviz_store"]
    with app.server.app_context():
        sa = store.session(a.session, "step").anchors().get("kernel:0")
        sb = store.session(b.session, "step").anchors().get("kernel:0")
    ka = a.props[("run", "data")]["sides"][0]["key"]
    kb = b.props[("run", "data")]["sides"][0]["key"]
    assert sa[0] == ka and sb[0] == kb and ka != kb


def test_two_workers_share_only_the_cache(cache_dir: Path, tmp_path: Path) -> None:
    """Like ``gunicorn -w 2``: requests of one tab alternate between two app processes."""
    shared = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)}
    one, two = create_app(shared), create_app(shared)
    c1, c2 = one.server.test_client(), two.server.test_client()
    tab = Browser(c1)
    tab.open("?scenario=default&step=30")
    reference = Browser(create_app(shared).server.test_client())
    reference.open("?scenario=default&step=30")
    for i in range(8):
        tab.client = c2 if i % 2 == 0 else c1
        tab.press("step-fwd" if i < 6 else "step-back")
        reference.press("step-fwd" if i < 6 else "step-back")
        assert tab.text("step-status") == reference.text("step-status")
        assert tab.side_text("narration") == reference.side_text("narration")
        assert tab.side_text("vma-table") == reference.side_text("vma-table")
    # A worker that never ran the scenario serves it from the shared cache.
    fresh = Browser(create_app(shared).server.test_client())
    fresh.open("?scenario=default&step=34")
    assert fresh.text("step-status") == tab.text("step-status")


# =====================================================================
# Compare mode
# =====================================================================


def test_compare_mode_moves_both_sides_with_one_cursor(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default&view=compare")
    info = tab.props[("run", "data")]
    assert [s["mode"] for s in info["sides"]] == ["mmap_lock", "per_vma"]
    assert tab.sides == ["left", "right"]
    assert "mmap_lock" in tab.text("delta-table") or tab.props[("delta-table", "children")]
    narrations = []
    for _ in range(4):
        res = tab.press("step-fwd10")
        left, right = tab.side_text("narration", "left"), tab.side_text("narration", "right")
        narrations.append((left, right))
        status = tab.text("step-status")
        assert "mmap_lock:" in status and "per-VMA:" in status and "step" in status
        # One cursor: both timelines get the same cursor time, and no figure is
        # redrawn to move it (the browser moves an overlay).
        xs = res["step-html"]["data"]["cursor_x"]
        assert set(xs) == {"left", "right"} and xs["left"] == xs["right"] > 0
        assert not any("timeline" in key for key in res)
    assert len({n for n, _ in narrations}) > 1 and len({n for _, n in narrations}) > 1


def test_lanes_arrive_with_the_run_and_no_step_redraws_them(client: FlaskClient) -> None:
    """The timeline's data comes once, in the run's body; steps only move its cursor."""
    tab = Browser(client)
    tab.open("?scenario=default&view=compare")
    body = json.dumps(tab.props[("body", "children")])
    stores = re.findall(r'"type": "timeline-data"', body)
    assert len(stores) == 2
    for _ in range(3):
        res = tab.press("step-fwd10")
        assert not any("timeline" in key for key in res)
        assert set(res["step-html"]["data"]["cursor_x"]) == {"left", "right"}


# =====================================================================
# Exports
# =====================================================================


@pytest.mark.parametrize(
    ("button", "name", "needle"),
    [
        ("export-csv", "default-per_vma-x86.csv", "step,"),
        ("export-perfetto", "default-per_vma-x86.perfetto.json", "traceEvents"),
        ("export-yaml", "default.yaml", "name: default"),
    ],
)
def test_exports(client: FlaskClient, button: str, name: str, needle: str) -> None:
    tab = Browser(client)
    tab.open("")
    res = tab.call("download", "data", {f"{button}.n_clicks": 1})
    data = res["download"]["data"]
    assert data["filename"] == name
    content = base64.b64decode(data["content"]).decode() if data["base64"] else data["content"]
    assert needle in content


# =====================================================================
# gunicorn
# =====================================================================


def test_gunicorn_two_workers(tmp_path: Path) -> None:
    """``gunicorn -w 2 'app:server'`` serves the app; a tab's steps land on both workers."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    from vmaviz.ui.testing import HttpClient

    # gunicorn is pinned in requirements.txt, so it is always there to test.
    gunicorn = Path(sys.executable).parent / "gunicorn"
    assert gunicorn.exists() or shutil.which("gunicorn") is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**__import__("os").environ, "VMAVIZ_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("VMAVIZ_REDIS_URL", None)
    proc = subprocess.Popen(
        [str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "120", "app:server"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        http = HttpClient(f"http://127.0.0.1:{port}")
        deadline = time.time() + 60
        while True:
            try:
                if http.get("/").status_code == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "no server")
            time.sleep(0.2)
        tab = Browser(http)  # type: ignore[arg-type]
        tab.open("?scenario=default&step=60")
        ref_cache = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "ref")}
        reference = Browser(create_app(ref_cache).server.test_client())
        reference.open("?scenario=default&step=60")
        for _ in range(6):
            tab.press("step-fwd")
            reference.press("step-fwd")
            assert tab.text("step-status") == reference.text("step-status")
            assert tab.side_text("narration") == reference.side_text("narration")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_figures_equal_the_builders_on_the_whole_snapshot(client: FlaskClient) -> None:
    """The figure callback draws from a subset of the snapshot: it must not matter."""
    from vmaviz.engine.view import snapshot
    from vmaviz.ui import wire
    from vmaviz.ui.figures import address_space_figure, dead_nodes, maple_tree_figure

    tab = Browser(client)
    tab.open("?scenario=default&step=368")  # jit write-locked, nodes awaiting RCU
    res = tab.props
    engine = default_engine()
    k = engine.state_at(369)
    snap = snapshot(k)
    for kind, fig in (
        ("address-space", address_space_figure(snap)),
        ("maple-tree", maple_tree_figure(snap, dead=dead_nodes(k))),
    ):
        sent = res[(json.dumps({"side": "left", "type": kind}, separators=(",", ":")), "figure")]
        assert sent == wire.plain(fig), kind
