"""The Results page (``vmaviz.ui.results``) and its data (``vmaviz.results.build``).

Fast: the only simulation is a two-thread-count pft sweep with a few pages; the
page itself reads the committed ``data/results/*.csv``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dash
import plotly
import pytest
from dash import dcc, html
from flask import Flask
from flask_caching import Cache

from vmaviz.results import build as B
from vmaviz.sweep.core import RESULT_COLUMNS
from vmaviz.ui import results as R

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "results"
JOB = "0123456789abcdef0123456789abcdef"
PFT = ("pft-single-vma", "pft-per-thread-vma")


# =====================================================================
# Helpers
# =====================================================================


def walk(component: Any) -> Iterator[Any]:
    """Every component in a Dash tree, depth first."""
    yield component
    children = getattr(component, "children", None)
    if children is None:
        return
    if not isinstance(children, list | tuple):
        children = [children]
    for child in children:
        if hasattr(child, "to_plotly_json"):
            yield from walk(child)


def text_of(component: Any) -> str:
    """All the text in a Dash tree."""
    parts = []
    for c in walk(component):
        children = getattr(c, "children", None)
        items = children if isinstance(children, list | tuple) else [children]
        parts += [str(x) for x in items if isinstance(x, str | int | float)]
    return " ".join(parts)


def graphs(layout: Any) -> dict[str, dcc.Graph]:
    return {c.id: c for c in walk(layout) if isinstance(c, dcc.Graph)}


def fig_dict(fig: Any) -> dict[str, Any]:
    return fig if isinstance(fig, dict) else fig.to_plotly_json()


def trace_names(fig: Any) -> list[str]:
    return [t.get("name", "") for t in fig_dict(fig)["data"]]


def simple_cache() -> Cache:
    return Cache(app=Flask("results-test"), config={"CACHE_TYPE": "SimpleCache"})


class Clock:
    """A settable clock for the job functions."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def layout() -> html.Section:
    return R.results_layout()


@pytest.fixture(scope="module")
def committed() -> dict[str, list[dict[str, Any]]]:
    return {name: B.read_rows(RESULTS / f"{name}.csv") for name in PFT}


def fake_runner(
    rows: dict[str, list[dict[str, Any]]], steps: tuple[int, ...] = (0, 3, 8, 20, 40)
) -> Callable[[Callable[[int, int], None]], dict[str, list[dict[str, Any]]]]:
    """A recompute that reports ``steps`` of 40 runs and returns ``rows``."""

    def run(progress: Callable[[int, int], None]) -> dict[str, list[dict[str, Any]]]:
        for done in steps:
            progress(done, 40)
        return rows

    return run


# =====================================================================
# The build module
# =====================================================================


def test_pft_template_scales_the_pages() -> None:
    full = (B.SWEEP_DIR / "pft-single-vma.yaml").read_text(encoding="utf-8")
    assert B.pft_template("pft-single-vma") == full
    assert '"${i}00-${i}04"' in B.pft_template("pft-single-vma", 5)
    assert 'pages: "0-4"' in B.pft_template("pft-per-thread-vma", 5)
    with pytest.raises(ValueError, match="pages must be"):
        B.pft_template("pft-single-vma", 101)


def test_tiny_sweep_row_schema_and_progress() -> None:
    calls: list[tuple[int, int]] = []
    sweeps = B.run_pft_sweeps((1, 2), pages=4, progress=lambda d, t: calls.append((d, t)))
    assert set(sweeps) == set(PFT)
    for name, rows in sweeps.items():
        assert len(rows) == 4, name
        assert [r["threads"] for r in rows] == [1, 1, 2, 2]
        assert [r["mode"] for r in rows] == ["mmap_lock", "per_vma"] * 2
        for r in rows:
            assert list(r) == ["threads", *RESULT_COLUMNS]
            assert r["faults"] == 4 * r["threads"]
            assert r["faults_per_sec"] > 0
            assert r["invariant_violations"] == 0
            assert r["cpus"] == r["threads"]
    # One count over both sweeps: 0 first, then every run once, in order.
    assert calls == [(0, 8), *((d, 8) for d in range(1, 9))]
    # Thread counts missing from the rows leave their targets out.
    assert B.pft_checks(sweeps["pft-single-vma"], sweeps["pft-per-thread-vma"]) == []


def test_rows_round_trip_through_csv(tmp_path: Path) -> None:
    rows = [{"a": 1, "b": 0.1 + 0.2, "c": "x", "d": True, "e": "6.5"}]
    path = tmp_path / "t.csv"
    B.write_rows(rows, path)
    assert B.read_rows(path) == [{"a": 1, "b": 0.1 + 0.2, "c": "x", "d": True, "e": 6.5}]
    B.write_rows([], path, B.TARGET_COLUMNS)
    assert path.read_text().strip() == ",".join(B.TARGET_COLUMNS)


def test_target_groups_and_verdicts() -> None:
    assert B.target_group("pft single VMA: crossover") == "pft-single-vma"
    assert B.target_group("pft per-thread VMA: x") == "pft-per-thread-vma"
    assert B.target_group("Android launch: y") == "android"
    assert B.target_group("TCP zerocopy: z") == "tcp"
    assert B.target_group("fork stress") == "other"
    assert [B.verdict(v) for v in (True, False, None)] == ["PASS", "MISS", "report"]


def test_build_cli_rejects_bad_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        B.main(["--jobs", "0"])
    assert exc.value.code == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_committed_files_are_small_and_complete(
    committed: dict[str, list[dict[str, Any]]],
) -> None:
    for name in B.FILES.values():
        path = RESULTS / name
        assert path.is_file(), name
        assert path.stat().st_size < 200_000, name
    assert (RESULTS / "README.md").is_file()
    for name in PFT:
        rows = committed[name]
        assert sorted({r["threads"] for r in rows}) == list(B.THREADS)
        assert {r["mode"] for r in rows} == set(B.MODES)
        assert list(rows[0]) == ["threads", *RESULT_COLUMNS]
    tcp = B.read_rows(RESULTS / "tcp.csv")
    assert {(r["receive_path"], r["patch"]) for r in tcp} == {(6.4, False), (6.5, True)}
    android = B.read_rows(RESULTS / "android.csv")
    assert {r["mode"] for r in android} == set(B.MODES)
    assert sum(r["thread"] == "main" for r in android) == 2
    targets = B.read_rows(RESULTS / "targets.csv")
    assert list(targets[0]) == list(B.TARGET_COLUMNS)
    assert {t["result"] for t in targets} <= {"PASS", "MISS", "report"}


def test_sweep_targets_match_the_committed_table(
    committed: dict[str, list[dict[str, Any]]],
) -> None:
    table = [t for t in B.read_rows(RESULTS / "targets.csv") if t["source"] == B.SOURCE_SWEEP]
    assert R.sweep_targets(committed) == table
    assert len(table) == 5


# =====================================================================
# The layout
# =====================================================================


def test_layout_has_every_figure_and_explanation(layout: html.Section) -> None:
    assert layout.id == R.RESULTS_ID
    found = graphs(layout)
    assert set(found) == {
        "results-graph-pft-single-vma",
        "results-graph-pft-per-thread-vma",
        "results-graph-android",
        "results-graph-tcp",
    }
    text = text_of(layout)
    for phrase in (
        "calibration.md §1b",
        "calibration.md §1c",
        "up to 20%",
        "tcp_zerocopy_vma_lock",
        "commit 7a7f0946",
        "Shape targets met",
        "Absolute rates are not a target",
    ):
        assert phrase in text, phrase
    # Misses are shown, as misses, beside the figure they belong to.
    assert "✗ MISS" in text and "Missed:" in text
    ids = {getattr(c, "id", None) for c in walk(layout)}
    for needed in ("results-recompute", "results-progress", "results-poll", "results-job"):
        assert needed in ids
    for name in PFT:
        assert f"results-text-{name}" in ids


def test_each_layout_gets_its_own_job_id() -> None:
    def job(section: Any) -> str:
        return next(c.data for c in walk(section) if getattr(c, "id", None) == "results-job")

    a, b = job(R.results_layout()), job(R.results_layout())
    assert a != b and R.valid_job(a) and R.valid_job(b)


def test_layout_without_data_says_how_to_build(tmp_path: Path) -> None:
    section = R.results_layout(tmp_path)
    assert "python -m vmaviz.results.build" in text_of(section)
    assert len(graphs(section)) == 4


def test_pft_figures_have_simulated_lines_and_published_markers(layout: html.Section) -> None:
    for name in PFT:
        fig = fig_dict(graphs(layout)[f"results-graph-{name}"].figure)
        by_name = {t["name"]: t for t in fig["data"]}
        for mode in ("mmap_lock only", "per-VMA locks"):
            sim, pub = by_name[f"simulated: {mode}"], by_name[f"published: {mode}"]
            assert sim["mode"] == "lines+markers" and pub["mode"] == "markers"
            assert list(sim["x"]) == list(B.THREADS) == list(pub["x"])
            # Second cue besides colour: filled vs open marker, line vs none.
            assert pub["marker"]["symbol"].endswith("-open")
            assert not sim["marker"]["symbol"].endswith("-open")
            assert all("source: lore:" in h for h in pub["hovertext"])
        dashes = {
            by_name[f"simulated: {m}"]["line"]["dash"] for m in ("mmap_lock only", "per-VMA locks")
        }
        assert len(dashes) == 2


def test_android_and_tcp_figures_have_bars_and_published_markers(layout: html.Section) -> None:
    found = graphs(layout)
    android = fig_dict(found["results-graph-android"].figure)
    kinds = {t["name"]: t["type"] for t in android["data"]}
    assert kinds["simulated: mmap_lock only"] == "bar"
    assert kinds["simulated: per-VMA locks"] == "bar"
    assert kinds["published: up to 20% shorter (cover letter)"] == "scatter"
    mm = next(t for t in android["data"] if t["name"] == "simulated: mmap_lock only")
    pub = next(t for t in android["data"] if t["type"] == "scatter")
    assert pub["y"][0] == pytest.approx(0.8 * mm["y"][0])
    tcp = fig_dict(found["results-graph-tcp"].figure)
    names = trace_names(tcp)
    assert "simulated: mmap_lock only" in names and "simulated: per-VMA locks" in names
    assert any(n.startswith("published:") for n in names)
    bars = [t for t in tcp["data"] if t["type"] == "bar"]
    assert all(len(t["x"]) == 2 for t in bars)  # the 6.4 path and the 6.5 patch
    assert any("6.5 patch" in x for t in bars for x in t["x"])
    patterns = {t["marker"]["pattern"]["shape"] for t in bars}
    assert len(patterns) == 2  # modes differ by pattern too, not by colour alone


def test_figures_and_configs_are_offline(layout: html.Section) -> None:
    for graph in graphs(layout).values():
        blob = json.dumps(
            {"figure": fig_dict(graph.figure), "config": graph.config},
            cls=plotly.utils.PlotlyJSONEncoder,
        ).lower()
        assert "cdn" not in blob
        assert "https://" not in blob and "http://" not in blob
        assert graph.config.get("displaylogo") is False
    page = json.dumps(layout.to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder).lower()
    assert "<script" not in page and "cdn." not in page


# =====================================================================
# Recompute: progress in the cache
# =====================================================================


def test_progress_hook_and_view_follow_a_fake_sequence() -> None:
    cache, clock = simple_cache(), Clock()
    hook = R.progress_hook(cache, JOB, clock)
    assert R.progress_view(cache.get(R.status_key(JOB)), clock()).running is False
    seen = []
    for done, later in ((0, 0.0), (5, 1.5), (17, 3.0), (40, 9.0)):
        clock.now = 1000.0 + later
        hook(done, 40)
        view = R.progress_view(cache.get(R.status_key(JOB)), clock())
        seen.append((view.value, view.maximum, view.running))
        assert f"{done} of 40 runs" in view.text
    assert seen == [(0, 40, True), (5, 40, True), (17, 40, True), (40, 40, True)]
    # A job whose progress stops moving is reported as dead, and polling stops.
    clock.now += R.STALE_AFTER + 1
    view = R.progress_view(cache.get(R.status_key(JOB)), clock())
    assert view.error and not view.running and "press Recompute again" in view.text


def test_run_job_stores_rows_and_keeps_the_server_lock_fresh(
    committed: dict[str, list[dict[str, Any]]],
) -> None:
    cache, clock = simple_cache(), Clock()
    statuses: list[dict[str, Any]] = []

    def runner(progress: Callable[[int, int], None]) -> dict[str, list[dict[str, Any]]]:
        for done in (0, 10, 40):
            progress(done, 40)
            statuses.append(dict(cache.get(R.status_key(JOB))))
        return committed

    cache.add(R.SERVER_LOCK, JOB, timeout=R.SERVER_LOCK_TIMEOUT)  # as the queue does
    R.run_job(cache, JOB, runner, clock)
    assert [s["done"] for s in statuses] == [0, 10, 40]
    assert all(s["state"] == "running" for s in statuses)
    # Progress reports keep the job's server lock (the queue releases it).
    assert cache.get(R.SERVER_LOCK) == JOB
    assert cache.get(R.rows_key(JOB))["sweeps"] == committed
    view = R.progress_view(cache.get(R.status_key(JOB)), clock())
    assert view.finished and not view.running and (view.value, view.maximum) == (40, 40)


def test_run_job_records_a_failure() -> None:
    cache = simple_cache()

    def broken(progress: Callable[[int, int], None]) -> dict[str, list[dict[str, Any]]]:
        progress(0, 40)
        raise RuntimeError("engine exploded")

    R.run_job(cache, JOB, broken)
    view = R.progress_view(cache.get(R.status_key(JOB)), time.time())
    assert view.error and "engine exploded" in view.text


def test_one_recompute_at_a_time_per_server_the_rest_queued(
    committed: dict[str, list[dict[str, Any]]],
) -> None:
    cache, clock = simple_cache(), Clock()
    spawned: list[Callable[[], None]] = []
    ran: list[str] = []
    inner = fake_runner(committed)

    def runner(progress: Callable[[int, int], None]) -> dict[str, list[dict[str, Any]]]:
        # Which job is running: the one whose status the hook just wrote.
        progress(0, 40)
        ran.append(next(j for j in jobs if cache.get(R.status_key(j))["state"] == "running"))
        assert cache.get(R.SERVER_LOCK) == ran[-1]
        return inner(progress)

    queue = R.RecomputeQueue(cache, runner, clock=clock, spawn=spawned.append, max_queued=2)
    jobs = [f"{c}" * 32 for c in "abcd"]
    assert queue.submit(jobs[0]) == "queued"
    assert queue.submit(jobs[0]) == "already"
    assert queue.submit(jobs[1]) == "queued"
    assert queue.submit(jobs[2]) == "queued"
    # One running and two waiting: the fourth page is turned away, with a message.
    assert queue.submit(jobs[3]) == "full"
    assert len(spawned) == 1  # one thread runs the whole queue
    views = [R.progress_view(cache.get(R.status_key(j)), clock()) for j in jobs[:3]]
    assert "0 recomputes ahead" in views[0].text and "2 recomputes ahead" in views[2].text
    assert all(v.running for v in views)
    spawned[0]()  # the thread: runs the jobs one after another, in order
    assert ran == jobs[:3]
    assert cache.get(R.SERVER_LOCK) is None
    for j in jobs[:3]:
        assert R.progress_view(cache.get(R.status_key(j)), clock()).finished
    # Finished jobs can run again; the queue starts a new thread for them.
    assert queue.submit(jobs[3]) == "queued" and len(spawned) == 2


def test_a_queued_job_waits_for_another_workers_recompute(
    committed: dict[str, list[dict[str, Any]]],
) -> None:
    cache, clock = simple_cache(), Clock()
    spawned: list[Callable[[], None]] = []
    waits: list[str] = []

    def sleep(_seconds: float) -> None:
        waits.append(R.progress_view(cache.get(R.status_key(JOB)), clock()).text)
        if len(waits) == 3:
            cache.delete(R.SERVER_LOCK)  # the other worker's recompute ends

    cache.add(R.SERVER_LOCK, "f" * 32, timeout=R.SERVER_LOCK_TIMEOUT)
    queue = R.RecomputeQueue(
        cache, fake_runner(committed), clock=clock, sleep=sleep, spawn=spawned.append
    )
    assert queue.submit(JOB) == "queued"
    spawned[0]()
    assert len(waits) == 3 and all("another worker" in w for w in waits)
    assert R.progress_view(cache.get(R.status_key(JOB)), clock()).finished


def test_a_cache_failure_in_the_queue_thread_does_not_stop_the_queue_for_good(
    committed: dict[str, list[dict[str, Any]]],
) -> None:
    cache, clock = simple_cache(), Clock()
    spawned: list[Callable[[], None]] = []
    queue = R.RecomputeQueue(cache, fake_runner(committed), clock=clock, spawn=spawned.append)
    assert queue.submit(JOB) == "queued"
    real_add = cache.add

    def broken_add(*_args: Any, **_kwargs: Any) -> bool:
        raise OSError("disk gone")

    cache.add = broken_add  # type: ignore[method-assign]
    with pytest.raises(OSError):
        spawned[0]()
    cache.add = real_add  # type: ignore[method-assign]
    # The job is still queued; the next click starts a new thread, which runs it.
    assert queue.submit("e" * 32) == "queued" and len(spawned) == 2
    spawned[1]()
    for job in (JOB, "e" * 32):
        assert R.progress_view(cache.get(R.status_key(job)), clock()).finished


def test_a_dead_jobs_status_does_not_block_it_forever(
    committed: dict[str, list[dict[str, Any]]],
) -> None:
    cache, clock = simple_cache(), Clock()
    spawned: list[Callable[[], None]] = []
    R.progress_hook(cache, JOB, clock)(3, 40)  # a worker that died mid-run
    queue = R.RecomputeQueue(cache, fake_runner(committed), clock=clock, spawn=spawned.append)
    assert queue.submit(JOB) == "already"
    clock.now += R.STALE_AFTER + 1
    assert queue.submit(JOB) == "queued"


def test_recompute_update_click_then_polls(committed: dict[str, list[dict[str, Any]]]) -> None:
    cache, clock = simple_cache(), Clock()
    spawned: list[Callable[[], None]] = []
    queue = R.RecomputeQueue(cache, fake_runner(committed), clock=clock, spawn=spawned.append)
    out = R.recompute_update(cache, "results-recompute", JOB, queue, clock=clock)
    assert out.poll_disabled is False and out.button_disabled is True
    assert out.figures == {} and "Queued" in out.status
    again = R.recompute_update(cache, "results-recompute", JOB, queue, clock=clock)
    assert "already running or queued" in again.status and len(spawned) == 1
    hook = R.progress_hook(cache, JOB, clock)
    hook(12, 40)
    poll = R.recompute_update(cache, "results-poll", JOB, queue, clock=clock)
    assert (poll.progress_value, poll.progress_max) == ("12", 40)
    assert poll.poll_disabled is False and poll.figures == {}
    spawned[0]()  # the thread's body: runs the fake sweep to the end
    done = R.recompute_update(cache, "results-poll", JOB, queue, clock=clock)
    assert done.poll_disabled is True and done.button_disabled is False
    assert set(done.figures) == set(PFT) == set(done.texts)
    for name in PFT:
        names = trace_names(done.figures[name])
        assert "simulated: per-VMA locks" in names and "published: per-VMA locks" in names
        assert "not written to data/results" in text_of(html.Div(done.texts[name]))
    assert len(done.as_tuple()) == 5 + 2 * len(PFT)


def test_recompute_update_without_a_job_id() -> None:
    cache = simple_cache()
    queue = R.RecomputeQueue(cache, fake_runner({}))
    out = R.recompute_update(cache, "results-recompute", None, queue)
    assert out.poll_disabled is True and "reload" in out.status


def test_callbacks_over_http(tmp_path: Path, committed: dict[str, list[dict[str, Any]]]) -> None:
    """The registered callback, driven as the browser drives it (a click, then polls)."""
    app = dash.Dash(__name__, serve_locally=True)
    cache = Cache(app.server, config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)})
    app.layout = lambda: R.results_layout()
    R.register_results_callbacks(app, cache, runner=fake_runner(committed))
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if "results-status.children" in d["output"])
    outputs = [
        dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
        for o in dep["output"].strip(".").split("...")
    ]

    def call(trigger: str, n: int) -> dict[str, Any]:
        prop = "n_clicks" if trigger == "results-recompute" else "n_intervals"
        body = {
            "output": dep["output"],
            "outputs": outputs,
            "inputs": [
                {"id": "results-recompute", "property": "n_clicks", "value": n},
                {"id": "results-poll", "property": "n_intervals", "value": n},
            ],
            "changedPropIds": [f"{trigger}.{prop}"],
            "state": [{"id": "results-job", "property": "data", "value": JOB}],
        }
        r = client.post("/_dash-update-component", json=body)
        assert r.status_code == 200
        return r.get_json()["response"]

    first = call("results-recompute", 1)
    assert first["results-poll"]["disabled"] is False
    deadline = time.monotonic() + 10
    while True:
        resp = call("results-poll", 1)
        if resp["results-poll"]["disabled"]:
            break
        assert time.monotonic() < deadline, resp["results-status"]
        time.sleep(0.05)
    assert "Recomputed" in resp["results-status"]["children"]
    figure = resp["results-graph-pft-single-vma"]["figure"]
    assert "published: mmap_lock only" in trace_names(figure)
