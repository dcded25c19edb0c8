"""Regenerate ``data/results/*.csv``: the data of the app's Results page.

Usage::

    .venv/bin/python -m vmaviz.results.build [--jobs N] [--out DIR]

Writes, into ``data/results`` by default:

* ``pft-single-vma.csv`` and ``pft-per-thread-vma.csv``: the sweep templates
  ``scenarios/sweep/pft-*.yaml`` run through the sweep core (:mod:`vmaviz.sweep.core`)
  over :data:`THREADS` in both modes, one row per run (the sweep's columns);
* ``android.csv``: ``scenarios/android-app-launch.yaml`` in both modes, one row per
  thread (its completion and blocked time) with the run's makespan and launch time;
* ``tcp.csv``: ``scenarios/tcp-zerocopy.yaml`` in both modes, with the 6.4 receive
  path and with the 6.5 patch ``tcp_zerocopy_vma_lock`` (receive under the per-VMA
  lock, the path the cover letter's numbers are for), one row per thread;
* ``targets.csv``: the shape targets: the pft ones checked on the sweeps above (the
  same criteria as ``python -m vmaviz bench calibration``), then the calibration
  table itself (:mod:`vmaviz.bench.calibration`).

Everything is deterministic: a rebuild with the same code writes the same files.
The functions here are also what the page's "Recompute" button runs.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from vmaviz.bench.calibration import Target, mmap_lock_share, pft_targets, scenario_targets
from vmaviz.engine.engine import run_to_end
from vmaviz.scenario import load_scenario
from vmaviz.sweep.core import Progress, SweepPlan, execute, plan_sweep, write_csv
from vmaviz.sweep.executors import make_executor
from vmaviz.sweep.published import PublishedPoint, load_published

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "data" / "results"
SCENARIOS = ROOT / "scenarios"
SWEEP_DIR = SCENARIOS / "sweep"

#: Thread counts of the pft sweeps: those of the published tables (calibration.md §1b/§1c).
THREADS: tuple[int, ...] = (1, 4, 7, 12, 21, 30, 48, 79, 110, 128)
MODES: tuple[str, ...] = ("mmap_lock", "per_vma")
#: Pages each pft thread faults: the templates' own count (pft: MemTotal/5 / threads).
PFT_PAGES = 100
#: The pft sweeps: result name -> (template file, published dataset).
PFT_SWEEPS: dict[str, tuple[str, str]] = {
    "pft-single-vma": ("pft-single-vma.yaml", "pft_threads_single_vma"),
    "pft-per-thread-vma": ("pft-per-thread-vma.yaml", "pft_per_thread_vma"),
}
ANDROID_SCENARIO = "android-app-launch.yaml"
TCP_SCENARIO = "tcp-zerocopy.yaml"
#: The patch that gives tcp_zerocopy_receive the 6.5 path (commit 7a7f0946).
TCP_PATCH = "tcp_zerocopy_vma_lock"

FILES: dict[str, str] = {
    "pft-single-vma": "pft-single-vma.csv",
    "pft-per-thread-vma": "pft-per-thread-vma.csv",
    "android": "android.csv",
    "tcp": "tcp.csv",
    "targets": "targets.csv",
}
TARGET_COLUMNS = ("group", "target", "simulated", "published", "result", "source")
#: ``source`` of the pft targets checked on the sweeps, and of the calibration table.
SOURCE_SWEEP = "sweep"
SOURCE_CALIBRATION = "bench calibration"

Row = dict[str, Any]


# =====================================================================
# pft sweeps
# =====================================================================


def pft_template(name: str, pages: int = PFT_PAGES) -> str:
    """The text of a pft sweep template, each thread faulting ``pages`` pages.

    The templates fault 100 pages per thread; fewer pages (for quick tests) keep
    every thread's slice where it is and fault only its first ``pages`` pages.

    Args:
        name: A key of :data:`PFT_SWEEPS`.
        pages: Pages per thread, 1 to 100.

    Raises:
        KeyError: An unknown sweep.
        ValueError: ``pages`` out of range, or a template that no longer has the
            page range this function rewrites.
    """
    text = (SWEEP_DIR / PFT_SWEEPS[name][0]).read_text(encoding="utf-8")
    if not 1 <= pages <= PFT_PAGES:
        raise ValueError(f"pages must be 1 to {PFT_PAGES}, got {pages}")
    if pages == PFT_PAGES:
        return text
    if name == "pft-single-vma":
        old, new = 'pages: "${i}00-${i}99"', f'pages: "${{i}}00-${{i}}{pages - 1:02d}"'
    else:
        old, new = 'pages: "0-99"', f'pages: "0-{pages - 1}"'
    if text.count(old) != 1:
        raise ValueError(f"{PFT_SWEEPS[name][0]}: expected one {old} to scale the pages")
    return text.replace(old, new)


def plan_pft(name: str, threads: Sequence[int] = THREADS, pages: int = PFT_PAGES) -> SweepPlan:
    """The sweep plan of one pft template over ``threads`` in both modes."""
    filename = f"scenarios/sweep/{PFT_SWEEPS[name][0]}"
    return plan_sweep(
        pft_template(name, pages), {"threads": list(threads)}, MODES, filename=filename
    )


def run_pft_sweeps(
    threads: Sequence[int] = THREADS,
    pages: int = PFT_PAGES,
    executor: Executor | None = None,
    progress: Progress | None = None,
    names: Sequence[str] = tuple(PFT_SWEEPS),
) -> dict[str, list[Row]]:
    """Run the pft sweeps, one after the other, with one progress count over all runs.

    Args:
        threads: Thread counts (each also the CPU count).
        pages: Pages per thread (see :func:`pft_template`).
        executor: Where runs execute (default: inline).
        progress: ``progress(done, total)`` over every run of every sweep: called with
            ``done == 0`` first, then after each run.
        names: Which sweeps (keys of :data:`PFT_SWEEPS`).

    Returns:
        Sweep name -> its rows (``threads``, then the sweep's result columns).
    """
    plans = {name: plan_pft(name, threads, pages) for name in names}
    total = sum(len(p.items) for p in plans.values())
    offset = 0
    out: dict[str, list[Row]] = {}
    if progress is not None:
        progress(0, total)
    for name, plan in plans.items():
        base = offset

        def step(done: int, _total: int, base: int = base) -> None:
            if progress is not None and done > 0:
                progress(base + done, total)

        out[name] = execute(plan, executor, step)
        offset += len(plan.items)
    return out


def curves(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, float]]:
    """``{mode: {threads: faults_per_sec}}`` of sweep rows."""
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        out.setdefault(str(r["mode"]), {})[int(r["threads"])] = float(r["faults_per_sec"])
    return out


def published_curves(points: Sequence[PublishedPoint]) -> dict[str, dict[int, float]]:
    """``{mode: {threads: faults_per_sec}}`` of published points."""
    out: dict[str, dict[int, float]] = {}
    for p in points:
        out.setdefault(p.mode, {})[p.threads] = float(p.faults_per_sec)
    return out


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _m(x: float) -> str:
    return f"{x / 1e6:.2f}M"


def pft_checks(
    single: Sequence[Mapping[str, Any]] | None,
    per_thread: Sequence[Mapping[str, Any]] | None,
) -> list[Target]:
    """The pft shape targets (calibration.md §5.1, §5.2) checked on sweep rows.

    The criteria and names are those of :func:`vmaviz.bench.calibration.pft_targets`;
    the published side is computed the same way from ``data/published``. A target
    whose thread counts are not all in the rows is left out.

    Args:
        single: Rows of the single-VMA sweep (or ``None``).
        per_thread: Rows of the per-thread-VMA sweep (or ``None``).

    Returns:
        The targets that could be checked, per-thread VMA first.
    """
    out: list[Target] = []
    if per_thread:
        sim = curves(per_thread)
        pub = published_curves(load_published(PFT_SWEEPS["pft-per-thread-vma"][1]))
        out += _per_thread_checks(sim, pub)
    if single:
        sim = curves(single)
        pub = published_curves(load_published(PFT_SWEEPS["pft-single-vma"][1]))
        out += _single_checks(sim, pub)
    return out


def _has(c: Mapping[str, Mapping[int, float]], *threads: int) -> bool:
    return all(n in c.get(m, {}) for m in MODES for n in threads)


def _per_thread_checks(
    sim: Mapping[str, Mapping[int, float]], pub: Mapping[str, Mapping[int, float]]
) -> list[Target]:
    out: list[Target] = []
    if _has(sim, 30, 128):
        smm, pmm = sim["mmap_lock"], pub["mmap_lock"]
        plateau = smm[128] / smm[30]
        out.append(
            Target(
                "pft per-thread VMA: mmap_lock 128 thr / 30 thr <= 1.3",
                f"{plateau:.2f} ({_m(smm[30])} -> {_m(smm[128])} faults/s)",
                f"{pmm[128] / pmm[30]:.2f} ({_m(pmm[30])} -> {_m(pmm[128])})",
                plateau <= 1.3,
            )
        )
    if _has(sim, 128):
        spv, smm = sim["per_vma"], sim["mmap_lock"]
        ppv, pmm = pub["per_vma"], pub["mmap_lock"]
        ratio = spv[128] / smm[128]
        out.append(
            Target(
                "pft per-thread VMA: per_vma / mmap_lock at 128 thr in [2.0, 4.0]",
                f"{ratio:.2f} ({_m(spv[128])} vs {_m(smm[128])})",
                f"{ppv[128] / pmm[128]:.2f} ({_m(ppv[128])} vs {_m(pmm[128])})",
                2.0 <= ratio <= 4.0,
            )
        )
    return out


def _single_checks(
    sim: Mapping[str, Mapping[int, float]], pub: Mapping[str, Mapping[int, float]]
) -> list[Target]:
    out: list[Target] = []
    spv, smm = sim.get("per_vma", {}), sim.get("mmap_lock", {})
    ppv, pmm = pub["per_vma"], pub["mmap_lock"]
    if _has(sim, 4):
        d4 = spv[4] / smm[4] - 1
        out.append(
            Target(
                "pft single VMA: per_vma 0-12% slower at 4 thr",
                _pct(d4),
                _pct(ppv[4] / pmm[4] - 1),
                -0.12 <= d4 <= 0.0,
            )
        )
    high_threads = (79, 110, 128)
    if _has(sim, *high_threads):
        high = [spv[n] / smm[n] - 1 for n in high_threads]
        out.append(
            Target(
                "pft single VMA: per_vma 15-35% faster at >= 79 thr",
                ", ".join(_pct(x) for x in high),
                ", ".join(_pct(ppv[n] / pmm[n] - 1) for n in high_threads),
                all(0.15 <= x <= 0.35 for x in high),
            )
        )
    common = sorted(set(spv) & set(smm))
    if common and common[0] <= 7 and common[-1] >= 21:
        cross = next((n for n in common if spv[n] > smm[n]), None)
        pub_cross = next((n for n in sorted(ppv) if ppv[n] > pmm.get(n, float("inf"))), None)
        out.append(
            Target(
                "pft single VMA: crossover between 7 and 21 thr",
                f"first faster at {cross} thr" if cross is not None else "never faster",
                f"first faster at {pub_cross} thr" if pub_cross is not None else "never faster",
                cross is not None and 7 <= cross <= 21,
            )
        )
    return out


# =====================================================================
# Android launch and TCP zerocopy
# =====================================================================


def _role(name: str, roles: Mapping[str, str], default: str) -> str:
    for prefix, role in roles.items():
        if name == prefix or re.fullmatch(rf"{re.escape(prefix)}\d+", name):
            return role
    return default


def android_rows(path: Path | None = None) -> list[Row]:
    """The Android launch in both modes: one row per (mode, thread).

    Columns: ``mode, thread, role, done_ns, blocked_ns, faults`` of the thread, then
    the run's ``launch_ns`` (the UI thread ``main``'s completion: the launch time),
    ``makespan_ns``, ``faults_via_vma_lock``, ``mmap_read_wait_ns``,
    ``mmap_write_wait_ns`` and ``trace_sha256``.
    """
    scenario = load_scenario(path or SCENARIOS / ANDROID_SCENARIO)
    roles = {"main": "ui", "w": "thread-setup"}
    rows: list[Row] = []
    for mode in MODES:
        s = run_to_end(scenario, mode).summary()
        launch = next(int(t["done_ns"]) for t in s["threads"] if t["name"] == "main")
        for t in s["threads"]:
            rows.append(
                {
                    "mode": mode,
                    "thread": t["name"],
                    "role": _role(t["name"], roles, "other"),
                    "done_ns": int(t["done_ns"]),
                    "blocked_ns": int(t["blocked_ns"]),
                    "faults": int(t["faults"]),
                    "launch_ns": launch,
                    "makespan_ns": int(s["sim_ns"]),
                    "faults_via_vma_lock": int(s["faults"]["via_vma_lock"]),
                    "mmap_read_wait_ns": int(s["mmap_lock"]["read_wait_ns"]),
                    "mmap_write_wait_ns": int(s["mmap_lock"]["write_wait_ns"]),
                    "trace_sha256": s["trace_sha256"],
                }
            )
    return rows


def tcp_rows(path: Path | None = None) -> list[Row]:
    """TCP zerocopy in both modes, on the 6.4 and the 6.5 receive path: one row per thread.

    Columns: ``receive_path`` (``6.4``: under mmap_read_lock; ``6.5``: with the patch
    ``tcp_zerocopy_vma_lock``, under the per-VMA lock), ``patch`` (``True`` on 6.5),
    ``mode, thread, role, done_ns, blocked_ns``, then the run's ``makespan_ns``,
    ``mmap_lock_share`` (CPU time in mmap_lock acquire/release, see
    :func:`vmaviz.bench.calibration.mmap_lock_share`) and ``trace_sha256``.
    """
    base = load_scenario(path or SCENARIOS / TCP_SCENARIO)
    roles = {"rx": "receiver", "tuner": "madvise-writer"}
    rows: list[Row] = []
    for receive_path, patched in (("6.4", False), ("6.5", True)):
        scenario = base.with_overrides(patches={TCP_PATCH: True}) if patched else base
        for mode in MODES:
            engine = run_to_end(scenario, mode)
            s = engine.summary()
            share = mmap_lock_share(engine)
            for t in s["threads"]:
                rows.append(
                    {
                        "receive_path": receive_path,
                        "patch": patched,
                        "mode": mode,
                        "thread": t["name"],
                        "role": _role(t["name"], roles, "other"),
                        "done_ns": int(t["done_ns"]),
                        "blocked_ns": int(t["blocked_ns"]),
                        "makespan_ns": int(s["sim_ns"]),
                        "mmap_lock_share": share,
                        "trace_sha256": s["trace_sha256"],
                    }
                )
    return rows


# =====================================================================
# Targets
# =====================================================================


def target_group(name: str) -> str:
    """The page section a target belongs to, from its name."""
    lowered = name.lower()
    for prefix, group in (
        ("pft single vma", "pft-single-vma"),
        ("pft per-thread vma", "pft-per-thread-vma"),
        ("android", "android"),
        ("tcp", "tcp"),
    ):
        if lowered.startswith(prefix):
            return group
    return "other"


def verdict(ok: bool | None) -> str:
    """``PASS``, ``MISS``, or ``report`` (a number shown without a pass mark)."""
    return "report" if ok is None else ("PASS" if ok else "MISS")


def target_rows(targets: Sequence[Target], source: str) -> list[Row]:
    """Targets as :data:`TARGET_COLUMNS` rows."""
    return [
        {
            "group": target_group(t.name),
            "target": t.name,
            "simulated": t.simulated,
            "published": t.published,
            "result": verdict(t.ok),
            "source": source,
        }
        for t in targets
    ]


def calibration_rows() -> list[Row]:
    """The calibration table of ``python -m vmaviz bench calibration``, as rows."""
    return target_rows(pft_targets() + scenario_targets(), SOURCE_CALIBRATION)


# =====================================================================
# Files
# =====================================================================


def read_rows(path: Path) -> list[Row]:
    """A CSV written here, with numbers and booleans read back as such."""
    with path.open(encoding="utf-8", newline="") as f:
        return [{k: parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


_INT_RE = re.compile(r"-?\d+")


def parse_cell(text: str | None) -> Any:
    """A CSV cell as an int, a float, a bool, or the text itself."""
    if text is None:
        return ""
    if _INT_RE.fullmatch(text):
        return int(text)
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        return text


def write_rows(rows: Sequence[Mapping[str, Any]], path: Path, columns: Sequence[str] = ()) -> None:
    """Write rows (floats as their shortest exact text), or just a header when empty."""
    if rows:
        write_csv(rows, path)
        return
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(columns)


def build(
    out_dir: Path = RESULTS_DIR,
    jobs: int = 1,
    threads: Sequence[int] = THREADS,
    pages: int = PFT_PAGES,
    log: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Regenerate every results file.

    Args:
        out_dir: Where to write (created if missing).
        jobs: Parallel runs of the pft sweeps (1: inline; more: a process pool).
        threads: Thread counts of the pft sweeps.
        pages: Pages per pft thread.
        log: Called with one line per stage (default: silent).

    Returns:
        Result name -> the file written.
    """
    say = log or (lambda _msg: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in FILES.items()}
    executor = make_executor(jobs)
    start = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            say(f"pft sweeps: {done}/{total} runs, {time.monotonic() - start:.1f} s")

    try:
        sweeps = run_pft_sweeps(threads, pages, executor, progress)
    finally:
        executor.shutdown()
    for name, rows in sweeps.items():
        write_rows(rows, paths[name])
    say(f"android: {time.monotonic() - start:.1f} s")
    write_rows(android_rows(), paths["android"])
    say(f"tcp: {time.monotonic() - start:.1f} s")
    write_rows(tcp_rows(), paths["tcp"])
    say(f"targets: {time.monotonic() - start:.1f} s")
    targets = target_rows(
        pft_checks(sweeps.get("pft-single-vma"), sweeps.get("pft-per-thread-vma")),
        SOURCE_SWEEP,
    )
    targets += calibration_rows()
    write_rows(targets, paths["targets"], TARGET_COLUMNS)
    say(f"done in {time.monotonic() - start:.1f} s")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vmaviz.results.build``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m vmaviz.results.build",
        description="Regenerate data/results/*.csv, the data of the app's Results page.",
    )
    parser.add_argument("--jobs", type=int, default=1, help="parallel pft runs (default 1: inline)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help=f"output directory (default {RESULTS_DIR})"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    paths = build(args.out, jobs=args.jobs, log=lambda msg: print(f"build: {msg}", file=sys.stderr))
    for path in paths.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
