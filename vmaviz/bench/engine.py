"""``python -m vmaviz bench engine``: simulated steps/s and retained bytes per step.

The workload is built in memory: 64 threads in one mm.  Most loop over faults on
their own VMA (and, when the model has ``mmap``/``munmap``, map, touch and unmap a
small anonymous VMA each round); a few take the mmap write lock (``mprotect`` when
the model has it, else ``hold_mmap_write``) so faults meet writers.  The op mix is
chosen from :data:`vmaviz.model.kernel.OP_ENTRY` at run time, since the model gains
ops over time.  Each mode runs for about ``seconds`` of wall time; the figures are
printed beside the targets, never asserted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

THREADS = 64
WRITERS = 8
TARGET_STEPS_PER_S = 250_000
TARGET_BYTES_PER_STEP = 200
#: Steps between wall-clock checks (small enough to stop within a few ms).
CHUNK = 5_000


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
    return 0
