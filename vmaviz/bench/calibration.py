"""``python -m vmaviz bench calibration``: the shape targets of the calibration issue.

Each target is measured with the one default cost table (no per-scenario cost
tuning) and printed beside the published value from
``../shared/reference/calibration.md``, with pass/fail.  Page counts are scaled
down (each pft thread faults ``PFT_PAGES`` pages) so the whole table runs in
seconds; throughput is faults per simulated second, which does not depend on
the page count once the run is long enough to reach steady state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmaviz.engine.engine import Engine, run_to_end
from vmaviz.scenario import load_scenario, load_scenario_text

PFT_PAGES = 48
#: "About 0.5%" of cycles in mmap_lock lock/unlock (cover letter): within a factor of 2.
TCP_SHARE_BAND = (0.0025, 0.01)
PFT_THREADS = (1, 4, 7, 12, 21, 30, 48, 79, 110, 128)
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass
class Target:
    name: str
    simulated: str
    published: str
    ok: bool | None  # None: report only


def pft_text(threads: int, per_thread_vma: bool, pages: int = PFT_PAGES) -> str:
    """A pft-like scenario: every thread write-faults ``pages`` fresh anonymous pages.

    ``per_thread_vma`` gives each thread its own VMA (pft ``-M``); otherwise all
    threads fault disjoint slices of one shared VMA (mmtests pft-threads).  As
    in pft, the VMAs start without an ``anon_vma``: the first fault takes the
    mmap_lock path and creates it.
    """
    if per_thread_vma:
        vmas = "".join(f"    - {{name: v{i}, pages: {pages}}}\n" for i in range(threads))
        body = "".join(
            f'  - name: t{i}\n    ops:\n      - touch: {{vma: v{i}, pages: "0-{pages - 1}"}}\n'
            for i in range(threads)
        )
    else:
        vmas = f"    - {{name: region, pages: {pages * threads}}}\n"
        body = "".join(
            f"  - name: t{i}\n    ops:\n"
            f'      - touch: {{vma: region, pages: "{i * pages}-{(i + 1) * pages - 1}"}}\n'
            for i in range(threads)
        )
    kind = "per-thread-vma" if per_thread_vma else "single-vma"
    return (
        f"name: pft-{kind}-{threads}\n"
        f"description: pft with {threads} threads ({kind}), {pages} pages each\n"
        f"kernel: {{cpus: {threads}}}\n"
        f"mm:\n  vmas:\n{vmas}threads:\n{body}"
    )


def faults_per_sec(summary: dict[str, Any]) -> float:
    return float(summary["faults"]["total"]) / max(1, int(summary["sim_ns"])) * 1e9


def pft_curve(
    per_thread_vma: bool,
    mode: str,
    threads: tuple[int, ...] = PFT_THREADS,
) -> dict[int, float]:
    """Simulated faults/s per thread count."""
    out = {}
    for n in threads:
        sc = load_scenario_text(pft_text(n, per_thread_vma), f"pft-{n}.yaml")
        out[n] = faults_per_sec(run_to_end(sc, mode).summary())
    return out


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def pft_targets() -> list[Target]:
    out: list[Target] = []
    mm = pft_curve(True, "mmap_lock")
    pv = pft_curve(True, "per_vma")
    plateau = mm[128] / mm[30]
    out.append(
        Target(
            "pft per-thread VMA: mmap_lock 128 thr / 30 thr <= 1.3",
            f"{plateau:.2f} ({mm[30] / 1e6:.2f}M -> {mm[128] / 1e6:.2f}M faults/s)",
            "1.04 (6.25M -> 6.47M)",
            plateau <= 1.3,
        )
    )
    ratio = pv[128] / mm[128]
    out.append(
        Target(
            "pft per-thread VMA: per_vma / mmap_lock at 128 thr in [2.0, 4.0]",
            f"{ratio:.2f} ({pv[128] / 1e6:.2f}M vs {mm[128] / 1e6:.2f}M)",
            "2.89 (18.68M vs 6.47M, +189%)",
            2.0 <= ratio <= 4.0,
        )
    )
    smm = pft_curve(False, "mmap_lock")
    spv = pft_curve(False, "per_vma")
    d4 = spv[4] / smm[4] - 1
    out.append(
        Target(
            "pft single VMA: per_vma 0-12% slower at 4 thr", _pct(d4), "-8.1%", -0.12 <= d4 <= 0.0
        )
    )
    high = [spv[n] / smm[n] - 1 for n in (79, 110, 128)]
    out.append(
        Target(
            "pft single VMA: per_vma 15-35% faster at >= 79 thr",
            ", ".join(_pct(x) for x in high),
            "+23.8%, +27.5%, +24.6%",
            all(0.15 <= x <= 0.35 for x in high),
        )
    )
    cross = next((n for n in PFT_THREADS if spv[n] > smm[n]), None)
    out.append(
        Target(
            "pft single VMA: crossover between 7 and 21 thr",
            f"first faster at {cross} thr",
            "12 thr (+5.9%)",
            cross is not None and 7 <= cross <= 21,
        )
    )
    return out


def _scenario_delta(name: str, metric: Callable[[dict[str, Any]], float]) -> tuple[float, float]:
    sc = load_scenario(SCENARIOS / name)
    a = metric(run_to_end(sc, "mmap_lock").summary())
    b = metric(run_to_end(sc, "per_vma").summary())
    return a, b


def scenario_targets() -> list[Target]:
    out: list[Target] = []

    def makespan(s: dict[str, Any]) -> float:
        return float(s["sim_ns"])

    for fname, label, published, lo, hi in (
        (
            "android-app-launch.yaml",
            "Android launch: 5-30% shorter with per-VMA locks",
            "up to -20%",
            -0.30,
            -0.05,
        ),
        ("kernbench-neutral.yaml", "neutral (kernbench-like): within +-2%", "~0%", -0.02, 0.02),
        ("spf-test.yaml", "spf_test T=100 V=2 P=10 (report only)", "-83% (SPF)", None, None),
        ("fork-stress.yaml", "fork stress (report only)", "+7% with per-VMA locks", None, None),
    ):
        if not (SCENARIOS / fname).exists():
            out.append(Target(label, f"scenario {fname} missing", published, False))
            continue
        a, b = _scenario_delta(fname, makespan)
        d = b / a - 1
        ok = None if lo is None or hi is None else lo <= d <= hi
        out.append(Target(label, f"{_pct(d)} makespan", published, ok))
    tcp = SCENARIOS / "tcp-zerocopy.yaml"
    if tcp.exists():
        # The cover letter's numbers are for receive under the per-VMA lock, which
        # merged in 6.5 (7a7f0946): run with that patch on, and say so.
        sc = load_scenario(tcp).with_overrides(patches={"tcp_zerocopy_vma_lock": True})
        runs = {m: run_to_end(sc, m) for m in ("mmap_lock", "per_vma")}
        s_mm, s_pv = runs["mmap_lock"].summary(), runs["per_vma"].summary()

        def receivers_blocked(s: dict[str, Any]) -> int:
            return sum(int(t["blocked_ns"]) for t in s["threads"] if t["name"].startswith("rx"))

        b_pv, b_mm = receivers_blocked(s_pv), receivers_blocked(s_mm)
        out.append(
            Target(
                "TCP zerocopy (6.5 receive path): receivers never blocked by the "
                "madvise writer (per_vma)",
                f"{b_pv:,} ns blocked",
                "0",
                b_pv == 0,
            )
        )
        out.append(
            Target(
                "TCP zerocopy: receivers blocked in mmap_lock mode",
                f"{b_mm:,} ns blocked",
                "about the writer's hold time",
                b_mm > 0,
            )
        )
        share_mm, share_pv = (mmap_lock_share(runs[m]) for m in ("mmap_lock", "per_vma"))
        # Published: mmap_read_lock + unlock ~0.5% of cycles -> <0.1% (cover letter).
        # "About 0.5%" is taken as within a factor of 2; per_vma must drop below 0.1%.
        # (The commit's ~1% counts find_tcp_vma as well, which this share does not.)
        out.append(
            Target(
                "TCP zerocopy: share of CPU time in mmap_lock lock/unlock, 0.25-1% -> <0.1%",
                f"{share_mm:.2%} -> {share_pv:.2%}",
                "~0.5% -> <0.1% (cover letter)",
                TCP_SHARE_BAND[0] <= share_mm <= TCP_SHARE_BAND[1] and share_pv < 0.001,
            )
        )
    else:
        out.append(Target("TCP zerocopy", "scenario tcp-zerocopy.yaml missing", "", False))
    return out


def mmap_lock_share(engine: Engine) -> float:
    """CPU time in ``mmap_lock`` acquire/release steps over all thread CPU time.

    A step's duration is the time until the same thread's next step; steps whose
    event code names an mmap_lock acquire or release count as lock time.
    """
    t = engine.trace
    t.flush()
    codes = t.codes
    lock_codes = {
        i
        for i, c in enumerate(codes)
        if c.startswith(("down_read:", "down_write:", "fault:mmap_read_trylock"))
        or c in ("mmap_read_unlock", "mmap_write_unlock", "mmap_write_downgrade")
    }
    key0 = {i for i in lock_codes if not codes[i].startswith(("down_read:", "down_write:"))}
    # After these the thread sleeps until woken: that wait is not CPU time.
    sleeps = {i for i, c in enumerate(codes) if c.endswith((":queued", ":retry_failed"))}
    sleeps |= {i for i, c in enumerate(codes) if c in ("sleep", "exit")}
    last: dict[int, tuple[int, bool, bool]] = {}
    total = locked = 0
    for i in range(len(t)):
        tid = t.tid[i]
        if tid < 0:
            continue
        now = t.time[i]
        prev = last.get(tid)
        if prev is not None and not prev[2]:
            dur = now - prev[0]
            total += dur
            if prev[1]:
                locked += dur
        code = t.code[i]
        # down_* steps on a VMA lock (a != 0) are not mmap_lock time.
        is_lock = code in key0 or (code in lock_codes and t.a[i] == 0)
        last[tid] = (now, is_lock, code in sleeps)
    return locked / total if total else 0.0


def main(seconds: float = 1.0) -> int:
    """Print the table (``seconds`` is ignored: the targets run to completion)."""
    del seconds
    rows = pft_targets() + scenario_targets()
    w = max(len(r.name) for r in rows)
    print(f"{'target':<{w}}  {'simulated':<40}  {'published':<28}  result")
    for r in rows:
        verdict = "report" if r.ok is None else ("PASS" if r.ok else "MISS")
        print(f"{r.name:<{w}}  {r.simulated:<40}  {r.published:<28}  {verdict}")
    return 0
