"""``python -m vmaviz bench ui``: server time and payload of the app's step callback.

A 100-thread scenario is built in memory, long enough to pass 100,000 steps, and
loaded into a fresh app (its own temporary cache) the way an upload would be. Then,
through Flask's test client and the same ``/_dash-update-component`` requests the
browser sends (:class:`vmaviz.ui.testing.Browser`), the cursor jumps to step 10 and
to step 100,000 and is stepped forward one step at a time from there; each step
request is timed and its response measured. The figures are printed beside the
targets (p95 <= 50 ms, < 50 kB per step), never asserted.
"""

from __future__ import annotations

import statistics
import tempfile
import time

THREADS = 100
#: The VMAs the faulting threads share (a real process has far fewer VMAs than threads).
SHARED_VMAS = 12
WRITERS = 4
TARGET_P95_MS = 50.0
TARGET_PAYLOAD_BYTES = 50_000
POSITIONS = (10, 100_000)
STEPS_PER_POSITION = 40


def workload_yaml(threads: int = THREADS, rounds: int = 6) -> str:
    """The benchmark scenario: faulting threads on shared VMAs, a few mprotect writers.

    Args:
        threads: Threads in all (``WRITERS`` of them call mprotect).
        rounds: Loop rounds of each faulting thread; 6 gives about 120,000 steps.
    """
    faulters = threads - WRITERS
    lines = [
        "name: bench-ui",
        f"description: {threads} threads faulting on {SHARED_VMAS} shared VMAs, "
        f"{WRITERS} of them calling mprotect",
        "kernel: {cpus: 8, seed: 1}",
        "mm:",
        "  vmas:",
    ]
    for i in range(SHARED_VMAS):
        lines.append(f"    - {{name: heap{i}, pages: 512, prot: rw, anon_vma: true}}")
    lines.append("    - {name: jit, pages: 16, prot: rw, anon_vma: true}")
    per_vma = max(1, faulters // SHARED_VMAS)
    lines += ["threads:"]
    for v in range(SHARED_VMAS):
        count = per_vma if v < SHARED_VMAS - 1 else faulters - per_vma * (SHARED_VMAS - 1)
        lines += [
            f"  - name: t{v}_${{i}}",
            f"    count: {count}",
            "    ops:",
            "      - loop:",
            f"          times: {rounds}",
            "          ops:",
            f"            - {{touch: {{vma: heap{v}, pages: '${{i}}-${{i}}'}}}}",
            "            - {compute: {ns: 3000}}",
            f"            - {{touch: {{vma: heap{v}, pages: '0-15', access: read}}}}",
        ]
    lines += [
        "  - name: w${i}",
        f"    count: {WRITERS}",
        "    ops:",
        "      - loop:",
        "          times: 30",
        "          ops:",
        "            - {mprotect: {vma: jit, prot: rx}}",
        "            - {mprotect: {vma: jit, prot: rw}}",
        "            - {sleep: {ns: 20000}}",
    ]
    return "\n".join(lines) + "\n"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main(seconds: float = 1.0) -> int:
    """Run the benchmark; ``seconds`` is accepted for the CLI but the run is fixed."""
    from vmaviz.ui.app_factory import create_app
    from vmaviz.ui.testing import Browser

    text = workload_yaml()
    with tempfile.TemporaryDirectory(prefix="vmaviz-bench-") as cache_dir:
        app = create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": cache_dir})
        store = app.server.extensions["vmaviz_store"]
        with app.server.app_context():
            ref, _ = store.save_upload(text)
        client = app.server.test_client()
        t0 = time.perf_counter()
        tab = Browser(client)
        tab.props[("scenario", "options")] = [{"label": "bench", "value": ref}]
        tab.open(f"?scenario={ref}&mode=per_vma&arch=x86&cpus=8&seed=1")
        load_s = time.perf_counter() - t0
        # The other arches' runs (for the counters) go on in the background after the
        # page opened; the steps are timed once they are done, as a user's would be.
        while store.warming():
            time.sleep(0.1)
        warm_s = time.perf_counter() - t0 - load_s
        info = tab.props[("run", "data")]
        steps = info["total"]
        print(
            f"ui bench: {THREADS} threads, {steps:,} steps (per_vma, x86); "
            f"open (run + timeline) {load_s:.1f} s, the other 3 arches in the background "
            f"{warm_s:.1f} s more"
        )
        for pos in POSITIONS:
            if pos + STEPS_PER_POSITION > steps:
                print(f"  step {pos:,}: beyond the run ({steps:,} steps), skipped")
                continue
            # Jump there (the slider or a permalink), then step forward one at a time.
            tab.props[("jump", "value")] = pos
            tab.press("jump-go")
            jump_ms = tab.last_seconds * 1000
            jump_kb = tab.last_bytes / 1000
            times: list[float] = []
            sizes: list[int] = []
            fig_times: list[float] = []
            fig_sizes: list[int] = []
            for _ in range(STEPS_PER_POSITION):
                tab.press("step-fwd")
                times.append(tab.last_seconds * 1000)
                sizes.append(tab.last_bytes)
                if tab.figure_bytes:
                    fig_times.append(tab.figure_seconds * 1000)
                    fig_sizes.append(tab.figure_bytes)
            p50, p95 = _pct(times, 0.50), _pct(times, 0.95)
            print(f"  at step {pos:,} (then {STEPS_PER_POSITION} steps forward):")
            print(
                f"    step callback p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   "
                f"(target p95 <= {TARGET_P95_MS:.0f} ms)"
            )
            print(
                f"    payload per step  mean {statistics.fmean(sizes) / 1000:6.1f} kB   "
                f"max {max(sizes) / 1000:6.1f} kB   (target < {TARGET_PAYLOAD_BYTES // 1000} kB)"
            )
            print(f"    the jump there: {jump_ms:.1f} ms, {jump_kb:.1f} kB")
            if fig_times:
                print(
                    f"    figure callback (after the step, when a figure changed): "
                    f"{len(fig_times)} of {STEPS_PER_POSITION} steps, p50 "
                    f"{_pct(fig_times, 0.5):.1f} ms, p95 {_pct(fig_times, 0.95):.1f} ms, "
                    f"mean {statistics.fmean(fig_sizes) / 1000:.1f} kB"
                )
    return 0
