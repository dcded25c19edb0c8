"""``python -m vmaviz bench engine``: simulated steps/s and retained bytes per step.

The workload is built in memory: 64 threads in one mm.  Most loop over faults on
their own VMA (and, when the model has ``mmap``/``munmap``, map, touch and unmap a
small anonymous VMA each round); a few take the mmap write lock (``mprotect`` when
the model has it, else ``hold_mmap_write``) so faults meet writers.  The op mix is
chosen from :data:`vmaviz.model.kernel.OP_ENTRY` at run time, since the model gains
ops over time.  Each mode runs for about ``seconds`` of wall time; the figures are
printed beside the targets, never asserted.

Then the cost of a step against the number of VMAs (:data:`VMA_COUNTS`): the time
per step of ``exit_mmap`` removing every VMA (:func:`exit_yaml`) and of 64 threads
faulting, mprotecting and unmapping among all of them (:func:`churn_yaml`).  A
step's work must not grow with the VMAs (each tree store is checked where it
wrote, not over the whole tree), so each row should read about the same.  Last,
the largest valid upload (10,000 VMAs, 1,024 threads: ``hostile.big_valid``) as
the app runs it (a keyframe every 1,024 steps): its steps/s, keyframe bytes and
the growth of the process's memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vmaviz.scenario.schema import MAX_THREADS, MAX_VMAS

THREADS = 64
WRITERS = 8
TARGET_STEPS_PER_S = 250_000
TARGET_BYTES_PER_STEP = 200
#: Steps between wall-clock checks (small enough to stop within a few ms).
CHUNK = 5_000
#: The VMA counts of the scaling rows (the last is the scenario limit).
VMA_COUNTS = (1_250, 2_500, 5_000, MAX_VMAS)
#: Threads of the churn workload.
CHURN_THREADS = 64
#: The app's keyframe interval (vmaviz.ui.session.KEYFRAME_EVERY), for the big run.
APP_KEYFRAME_EVERY = 1024


@dataclass
class EngineBench:
    mode: str
    steps: int
    seconds: float
    #: Steps and seconds of the second half of the wall time: the first steps of
    #: the workload are mostly cheap optimistic-spin polls, so this rate is lower.
    late_steps: int
    late_seconds: float
    trace_bytes: int
    keyframe_bytes: int
    keyframes: int
    finished: bool

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0

    @property
    def late_steps_per_s(self) -> float:
        return self.late_steps / self.late_seconds if self.late_seconds else 0.0

    @property
    def bytes_per_step(self) -> float:
        return (self.trace_bytes + self.keyframe_bytes) / self.steps if self.steps else 0.0


def implemented_ops() -> set[str]:
    """The op kinds the engine can run right now."""
    from vmaviz.model.kernel import OP_ENTRY

    return set(OP_ENTRY)


def workload_yaml(
    ops: set[str], threads: int = THREADS, writers: int = WRITERS, times: int = 10_000
) -> str:
    """The benchmark scenario as YAML, using only ``ops`` (plus ``loop``).

    Args:
        ops: The op kinds the engine implements.
        threads: Threads in all.
        writers: How many of them take the mmap write lock.
        times: Rounds of each thread's loop.  The default is long enough that no
            thread finishes within a few seconds of stepping, yet threads * times *
            ops stays under the loader's MAX_TOTAL_OPS.

    Returns:
        The scenario text.
    """
    faulters = threads - writers
    mapping = "mmap" in ops and "munmap" in ops
    lines = [
        "name: bench-engine",
        f"description: {threads} threads faulting and mapping, for steps/s",
        "kernel: {cpus: 16, seed: 1}",
        "mm:",
        "  vmas:",
    ]
    for i in range(faulters):
        lines.append(f"    - {{name: own{i}, pages: 16, prot: rw, anon_vma: true}}")
    for i in range(writers):
        lines.append(f"    - {{name: wr{i}, pages: 8, prot: rw, anon_vma: true}}")
    lines += ["threads:", "  - name: fault${i}", f"    count: {faulters}", "    ops:"]
    lines += ["      - loop:", f"          times: {times}", "          ops:"]
    body = []
    if mapping:
        body += [
            "{mmap: {name: 'tmp${i}', pages: 4}}",
            "{touch: {vma: 'tmp${i}', pages: '0-3'}}",
            "{munmap: {vma: 'tmp${i}'}}",
        ]
    body += [
        "{touch: {vma: 'own${i}', pages: '0-7'}}",
        "{compute: {ns: 2000}}",
    ]
    lines += [f"            - {op}" for op in body]
    lines += ["  - name: writer${i}", f"    count: {writers}", "    ops:"]
    lines += ["      - loop:", f"          times: {times}", "          ops:"]
    if "mprotect" in ops:
        wbody = [
            "{mprotect: {vma: 'wr${i}', prot: r}}",
            "{mprotect: {vma: 'wr${i}', prot: rw}}",
            "{touch: {vma: 'wr${i}', pages: '0-1'}}",
        ]
    else:
        wbody = ["{hold_mmap_write: {ns: 3000, vmas: ['wr${i}']}}"]
    wbody.append("{sleep: {ns: 20000}}")
    lines += [f"            - {op}" for op in wbody]
    return "\n".join(lines) + "\n"


def run_mode(mode: str, seconds: float, ops: set[str] | None = None) -> EngineBench:
    """Step the workload in ``mode`` for about ``seconds`` of wall time."""
    from vmaviz.engine.engine import Engine
    from vmaviz.scenario import load_scenario_text

    scenario = load_scenario_text(workload_yaml(ops or implemented_ops()), "<bench engine>")
    engine = Engine(scenario, mode=mode)
    t0 = time.perf_counter()
    elapsed = 0.0
    finished = False
    half: tuple[int, float] | None = None
    while elapsed < seconds:
        before = len(engine.trace)
        engine.run(max_steps=CHUNK)
        elapsed = time.perf_counter() - t0
        if half is None and elapsed >= seconds / 2:
            half = (len(engine.trace), elapsed)
        if len(engine.trace) - before < CHUNK:
            finished = True
            break
    steps = len(engine.trace)
    h_steps, h_elapsed = half if half is not None else (0, 0.0)
    # Keyframe 0 (the initial state) is kept by every run however short, so it counts.
    kf = sum(len(b) for b in engine.keyframes.values())
    return EngineBench(
        mode,
        steps,
        elapsed,
        steps - h_steps,
        elapsed - h_elapsed,
        engine.trace.nbytes(),
        kf,
        len(engine.keyframes),
        finished,
    )


def _vma_lines(n: int, pages: int) -> list[str]:
    return [f"    - {{name: v{i}, pages: {pages}, anon_vma: true}}" for i in range(n)]


def exit_yaml(vmas: int) -> str:
    """``vmas`` VMAs and one thread that faults one of them and exits.

    Its exit runs ``exit_mmap``: one step to write-lock and one to remove each VMA
    (a tree store each), so almost every step of the run works on a tree of up to
    ``vmas`` entries.
    """
    lines = [
        f"name: bench-exit-{vmas}",
        f"description: exit_mmap over {vmas} VMAs",
        "kernel: {cpus: 2, seed: 1}",
        "mm:",
        "  vmas:",
        *_vma_lines(vmas, 2),
        "threads:",
        "  - name: t0",
        "    ops:",
        '      - touch: {vma: v0, pages: "0-1"}',
        "      - exit: {}",
    ]
    return "\n".join(lines) + "\n"


def churn_yaml(vmas: int, threads: int = CHURN_THREADS, rounds: int = 40) -> str:
    """``vmas`` VMAs; ``threads`` threads fault, mprotect (split and merge) and unmap some.

    Thread ``i`` works on VMA ``v{i}``: ``rounds`` times it touches it and
    mprotects its first half read-only and back (two tree stores each), then
    unmaps it.  The other VMAs only make the tree big.
    """
    lines = [
        f"name: bench-churn-{vmas}",
        f"description: {threads} threads faulting, mprotecting, unmapping among {vmas} VMAs",
        "kernel: {cpus: 16, seed: 1}",
        "mm:",
        "  vmas:",
        *_vma_lines(vmas, 4),
        "threads:",
        "  - name: t${i}",
        f"    count: {threads}",
        "    ops:",
        "      - loop:",
        f"          times: {rounds}",
        "          ops:",
        '            - touch: {vma: "v${i}", pages: "0-3"}',
        '            - mprotect: {vma: "v${i}", pages: "0-1", prot: r}',
        '            - mprotect: {vma: "v${i}", pages: "0-1", prot: rw}',
        '      - munmap: {vma: "v${i}"}',
    ]
    return "\n".join(lines) + "\n"


def us_per_step(yaml_text: str, seconds: float) -> tuple[float, int, bool]:
    """Microseconds per step of the scenario, over at most about ``seconds`` of stepping.

    Building the initial state is not counted.  Returns (us/step, steps, finished).
    """
    from vmaviz.engine.engine import NO_KEYFRAMES, Engine
    from vmaviz.scenario import load_scenario_text

    engine = Engine(load_scenario_text(yaml_text, "<bench engine>"), keyframe_every=NO_KEYFRAMES)
    t0 = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds and not engine.finished:
        engine.run(max_steps=CHUNK)
        elapsed = time.perf_counter() - t0
    steps = len(engine.trace)
    return (elapsed / steps * 1e6 if steps else 0.0), steps, engine.finished


@dataclass
class BigRun:
    steps: int
    seconds: float
    finished: bool
    keyframes: int
    keyframe_bytes: int
    keyframe_interval: int
    rss_growth: int


def run_big(seconds: float) -> BigRun:
    """The largest valid upload, run as the app runs it, for about ``seconds`` at most."""
    from vmaviz.bench.hostile import big_valid
    from vmaviz.engine.engine import Engine, read_rss_bytes
    from vmaviz.scenario import load_scenario_text

    scenario = load_scenario_text(big_valid(MAX_VMAS, MAX_THREADS), "<bench big>")
    rss0 = read_rss_bytes()
    engine = Engine(scenario, keyframe_every=APP_KEYFRAME_EVERY)
    t0 = time.perf_counter()
    elapsed = 0.0
    peak = rss0
    while elapsed < seconds and not engine.finished:
        engine.run(max_steps=CHUNK * 10)
        elapsed = time.perf_counter() - t0
        peak = max(peak, read_rss_bytes())
    return BigRun(
        len(engine.trace),
        elapsed,
        engine.finished,
        len(engine.keyframes),
        sum(len(b) for b in engine.keyframes.values()),
        engine.keyframe_interval,
        peak - rss0,
    )


def main_scaling(seconds: float) -> None:
    print(
        f"  per-step cost against VMAs (us/step, <= ~{seconds:g} s each;"
        " flat rows = independent of the VMA count):"
    )
    print(f"    {'VMAs':>7}  {'exit_mmap':>10}  {f'churn ({CHURN_THREADS} threads)':>20}")
    for n in VMA_COUNTS:
        ex, _, _ = us_per_step(exit_yaml(n), seconds)
        ch, _, _ = us_per_step(churn_yaml(n), seconds)
        print(f"    {n:>7,}  {ex:>10.1f}  {ch:>20.1f}")
    big = run_big(seconds * 8)
    state = "to its end" if big.finished else "cut short"
    print(
        f"  {MAX_VMAS:,} VMAs x {MAX_THREADS:,} threads (hostile big_valid, keyframe every"
        f" {APP_KEYFRAME_EVERY:,}), {state}:"
    )
    print(
        f"    {big.steps:,} steps in {big.seconds:.1f} s"
        f" ({big.steps / big.seconds if big.seconds else 0:,.0f} steps/s);"
        f" {big.keyframes} keyframes, {big.keyframe_bytes / (1 << 20):,.0f} MiB"
        f" (interval now {big.keyframe_interval:,}); process memory +"
        f"{big.rss_growth / (1 << 20):,.0f} MiB"
    )


def main(seconds: float = 1.5) -> int:
    ops = implemented_ops()
    mapping = "mmap" in ops and "munmap" in ops
    writer_op = "mprotect" if "mprotect" in ops else "hold_mmap_write"
    print(
        f"engine bench: {THREADS} threads ({THREADS - WRITERS} faulting"
        f"{' + mmap/munmap' if mapping else ''}, {WRITERS} writing via {writer_op}),"
        f" ~{seconds:g} s per mode"
    )
    for mode in ("per_vma", "mmap_lock"):
        r = run_mode(mode, seconds, ops)
        note = "  (workload finished early)" if r.finished else ""
        print(f"  {mode}:{note}")
        print(
            f"    steps/s:        {r.steps_per_s:12,.0f}   (target >= {TARGET_STEPS_PER_S:,})"
            f"   [{r.steps:,} steps in {r.seconds:.2f} s]"
        )
        print(
            f"    steps/s, 2nd half: {r.late_steps_per_s:10,.0f}"
            f"   [{r.late_steps:,} steps in {r.late_seconds:.2f} s]"
        )
        print(
            f"    bytes/step:     {r.bytes_per_step:12,.1f}   (target <= {TARGET_BYTES_PER_STEP})"
            f"   [trace {r.trace_bytes:,} B + {r.keyframes} keyframes {r.keyframe_bytes:,} B]"
        )
    main_scaling(seconds)
    return 0
