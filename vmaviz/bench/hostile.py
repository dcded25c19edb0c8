"""``python -m vmaviz bench hostile``: validate the worst scenario files an upload can be.

Every generator here returns YAML text no larger than :data:`MAX_FILE_BYTES` (the
upload limit) that aims at one costly stage of the loader:

* :func:`unknown_names`: 10,000 VMA names and as many references to *unknown* names as
  the op limits allow, so every reference asks for a "did you mean";
* :func:`overlapping_vmas`: 10,000 VMAs at one address, each overlapping all others;
* :func:`big_valid`: a valid file with 10,000 VMAs and 1,024 threads that fault,
  mprotect and munmap (it loads, so the engine can run it too);
* :func:`loop_bomb`, :func:`deep_nesting` and :func:`hidden_deep_nesting`: loops
  nested to ``MAX_LOOP_DEPTH`` with ``MAX_LOOP_TIMES`` each, and YAML nested far deeper
  than any scenario needs (plainly, and hidden from a bracket count);
* :func:`alias_bomb`, :func:`merge_bomb` and :func:`name_list_bomb`: YAML aliases that
  would expand to billions of op entries, merge-key entries or VMA name references;
* :func:`zero_cost_spin`: ``spin_poll: 0`` with a writer spinning on a running owner,
  which would stop simulated time.

:data:`HOSTILE` names them all; the benchmark prints, for each, its size, how long
``load_scenario_text`` took and the outcome (``OK`` or the first error). Tests use
the same generators and bound the loader's work by counting, never by timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from vmaviz.scenario.schema import (
    MAX_EXPANDED_OP_ENTRIES,
    MAX_FILE_BYTES,
    MAX_LOOP_DEPTH,
    MAX_LOOP_TIMES,
    MAX_THREADS,
    MAX_VMAS,
)

_HEAD = "name: hostile-{0}\ndescription: worst-case file for the loader ({0})\n"


def _vma_lines(n: int, start: str | None = None, prefix: str = "v") -> list[str]:
    """``n`` flow-mapping VMA entries named ``{prefix}00000`` on; all at ``start`` if given."""
    at = f", start: {start}" if start is not None else ""
    return [f"    - {{name: {prefix}{j:05d}{at}, pages: 1}}" for j in range(n)]


def _check_size(text: str) -> str:
    size = len(text.encode("utf-8"))
    assert size <= MAX_FILE_BYTES, f"generator produced {size} bytes > {MAX_FILE_BYTES}"
    return text


def unknown_names(vmas: int = MAX_VMAS, copies: int = MAX_THREADS) -> str:
    """10,000 declared VMA names and ~200,000 references to names nobody declares.

    The references sit in one thread template with ``count: copies``, each op naming
    ``w${i}_NNN``, so every expanded copy refers to different unknown names of the
    declared names' length (which keeps a naive "did you mean" from skipping any).
    The template has as many ops as ``MAX_EXPANDED_OP_ENTRIES`` allows.

    Args:
        vmas: Declared names.
        copies: ``count`` of the template.

    Returns:
        The YAML text.
    """
    per_copy = MAX_EXPANDED_OP_ENTRIES // copies
    lines = [_HEAD.format("unknown-names"), "mm:\n  vmas:", *_vma_lines(vmas)]
    lines += ["threads:", "  - name: T${i}", f"    count: {copies}", "    ops:"]
    lines += [f'      - {{fault: {{vma: "w${{i}}_{j:03d}", page: 0}}}}' for j in range(per_copy)]
    return _check_size("\n".join(lines) + "\n")


def overlapping_vmas(vmas: int = MAX_VMAS) -> str:
    """``vmas`` VMAs that all start at the same address (each overlaps every other)."""
    lines = [_HEAD.format("overlapping-vmas"), "mm:\n  vmas:"]
    lines += _vma_lines(vmas, start="0x10000000")
    lines += ["threads:", "  - {name: T0, ops: [exit]}"]
    return _check_size("\n".join(lines) + "\n")


def big_valid(vmas: int = MAX_VMAS, threads: int = MAX_THREADS) -> str:
    """A valid file at the VMA and thread limits: every thread faults, mprotects, munmaps.

    Thread ``t`` is written out (not templated, so name resolution sees ``threads``
    distinct op lists). It faults a page of eight VMAs spread over the address space,
    mprotects one of them read-only and back, and unmaps its own VMA ``t`` (no other
    thread unmaps it; others may still fault it, racing the munmap).

    Args:
        vmas: VMAs in ``mm.vmas`` (at least ``threads``).
        threads: Threads.

    Returns:
        The YAML text.
    """
    lines = [_HEAD.format("big-valid"), "kernel: {cpus: 64}", "mm:\n  vmas:"]
    lines += [f"    - {{name: v{j:05d}, pages: 4, anon_vma: true}}" for j in range(vmas)]
    lines.append("threads:")
    for t in range(threads):
        own = f"v{t:05d}"
        ops = [
            f"{{fault: {{vma: v{(t * 37 + 97 * k) % vmas:05d}, page: {k % 4}}}}}" for k in range(8)
        ]
        ops += [
            f"{{mprotect: {{vma: {own}, prot: r}}}}",
            f"{{fault: {{vma: {own}, page: 1, access: read}}}}",
            f"{{mprotect: {{vma: {own}, prot: rw}}}}",
            f"{{munmap: {{vma: {own}}}}}",
        ]
        lines.append(f"  - name: T{t}\n    ops: [{', '.join(ops)}]")
    return _check_size("\n".join(lines) + "\n")


def loop_bomb() -> str:
    """Loops nested ``MAX_LOOP_DEPTH`` deep, each ``MAX_LOOP_TIMES``, in 1,024 threads.

    Counted without unrolling, that is 10**48 ops per thread: the loader must refuse
    it with ``MAX_TOTAL_OPS`` after counting, never by expanding.
    """
    body = "[{fault: {vma: heap, page: 0}}]"
    for _ in range(MAX_LOOP_DEPTH):
        body = f"[{{loop: {{times: {MAX_LOOP_TIMES}, ops: {body}}}}}]"
    text = (
        _HEAD.format("loop-bomb")
        + "mm: {vmas: [{name: heap, pages: 1}]}\n"
        + f"threads:\n  - name: T${{i}}\n    count: {MAX_THREADS}\n    ops: {body}\n"
    )
    return _check_size(text)


def deep_nesting(depth: int = 990) -> str:
    """``look_at`` items nested ``depth`` levels deep (``[[[...]]]``), as many as fit.

    libyaml composes up to 1,000 levels; the loader must refuse each item at
    ``MAX_YAML_DEPTH`` without walking further in.
    """
    head = _HEAD.format("deep-nesting") + "threads: [{name: T0, ops: [exit]}]\nlook_at:\n"
    item = "  - " + "[" * depth + "]" * depth + "\n"
    copies = (MAX_FILE_BYTES - len(head)) // len(item)
    return _check_size(head + item * copies)


def hidden_deep_nesting(depth: int = 990) -> str:
    """Like :func:`deep_nesting`, with a quoted ``"]"`` at each level to hide the depth.

    A bracket count sees depth 1, so the loader's cheap depth filter lets libyaml
    compose it all: this bounds the cost of composing the deepest YAML libyaml takes.
    """
    head = _HEAD.format("hidden-deep-nesting") + "threads: [{name: T0, ops: [exit]}]\nlook_at:\n"
    item = "  - " + '["]", ' * depth + "]" * depth + "\n"
    copies = (MAX_FILE_BYTES - len(head)) // len(item)
    return _check_size(head + item * copies)


def alias_bomb(levels: int = 9, fanout: int = 10) -> str:
    """A "billion laughs" op list: level ``n`` is a loop of ``fanout`` aliases of ``n-1``.

    Expanded naively it is ``fanout**levels`` op entries; the loader must stop at
    ``MAX_OP_ENTRIES``.
    """
    exits = ", ".join(["exit"] * fanout)
    lines = [f"      - &a0 {{loop: {{times: 1, ops: [{exits}]}}}}"]
    for n in range(1, levels):
        refs = ", ".join([f"*a{n - 1}"] * fanout)
        lines.append(f"      - &a{n} {{loop: {{times: 1, ops: [{refs}]}}}}")
    text = _HEAD.format("alias-bomb") + "threads:\n  - name: T0\n    ops:\n"
    return _check_size(text + "\n".join(lines) + "\n")


def merge_bomb(keys: int = 10_000, merges: int = 50_000) -> str:
    """A mapping of ``keys`` entries merged (``<<: *m``) into ``merges`` mappings.

    Each merge copies every key, so a naive loader does ``keys * merges`` work
    (5 * 10**8 with the defaults) for a file of a few hundred KB.
    """
    entries = ", ".join(f"k{j}: 1" for j in range(keys))
    refs = ", ".join(["{<<: *m}"] * merges)
    text = (
        _HEAD.format("merge-bomb")
        + f"look_at: [&m {{{entries}}}, {refs}]\n"
        + "threads: [{name: T0, ops: [exit]}]\n"
    )
    return _check_size(text)


def name_list_bomb(names: int = 50_000, ops: int = 100_000) -> str:
    """One ``hold_mmap_write`` op naming ``names`` VMAs, aliased ``ops`` times in one thread.

    Expanded, that is ``names * ops`` name references (5 * 10**9 by default).
    """
    items = ", ".join(f"n{j}" for j in range(names))
    refs = ", ".join(["*h"] * (ops - 1))
    text = (
        _HEAD.format("name-list-bomb")
        + f"threads:\n  - name: T0\n    ops: [&h {{hold_mmap_write: {{ns: 1, vmas: [{items}]}}}},"
        + f" {refs}]\n"
    )
    return _check_size(text)


def zero_cost_spin() -> str:
    """``spin_poll: 0`` while a writer spins on a running owner of mmap_lock.

    T0 holds mmap_lock for write for 1 ms of compute; T1's mprotect spins on it
    (rwsem_optimistic_spin), each poll costing ``spin_poll`` ns: at 0 the simulated
    clock would never reach the end of T0's hold.
    """
    text = (
        _HEAD.format("zero-cost-spin")
        + "kernel: {cpus: 2}\ncosts: {spin_poll: 0}\n"
        + "mm: {vmas: [{name: buf, pages: 4, anon_vma: true}]}\n"
        + "threads:\n"
        + "  - {name: T0, ops: [{hold_mmap_write: {ns: 1000000}}]}\n"
        + "  - {name: T1, ops: [{compute: {ns: 100}}, {mprotect: {vma: buf, prot: r}}]}\n"
    )
    return _check_size(text)


#: name -> generator; every one returns at most MAX_FILE_BYTES of YAML.
HOSTILE: dict[str, Callable[[], str]] = {
    "unknown_names": unknown_names,
    "overlapping_vmas": overlapping_vmas,
    "big_valid": big_valid,
    "loop_bomb": loop_bomb,
    "deep_nesting": deep_nesting,
    "hidden_deep_nesting": hidden_deep_nesting,
    "alias_bomb": alias_bomb,
    "merge_bomb": merge_bomb,
    "name_list_bomb": name_list_bomb,
    "zero_cost_spin": zero_cost_spin,
}


@dataclass
class HostileResult:
    """One hostile file's validation.

    Attributes:
        name: Key of :data:`HOSTILE`.
        size: Bytes of YAML.
        seconds: Wall time of ``load_scenario_text``.
        outcome: ``OK ...`` or the first error.
        errors: Errors reported (0 when it loaded).
    """

    name: str
    size: int
    seconds: float
    outcome: str
    errors: int


def measure(name: str) -> HostileResult:
    """Generate ``HOSTILE[name]`` and time one ``load_scenario_text`` of it."""
    from vmaviz.scenario import ScenarioErrors, load_scenario_text

    text = HOSTILE[name]()
    t0 = time.perf_counter()
    try:
        sc = load_scenario_text(text, f"{name}.yaml")
    except ScenarioErrors as exc:
        seconds = time.perf_counter() - t0
        first = str(exc.errors[0]) if exc.errors else "?"
        return HostileResult(name, len(text.encode()), seconds, first, len(exc.errors))
    seconds = time.perf_counter() - t0
    outcome = f"OK: {len(sc.vmas)} vmas, {len(sc.threads)} threads, {sc.op_count()} ops"
    return HostileResult(name, len(text.encode()), seconds, outcome, 0)


def main(seconds: float = 1.0) -> int:
    """Print size, validate time and outcome of every hostile file.

    Args:
        seconds: Unused (one load each is the measurement); kept for the ``bench``
            runner's signature.

    Returns:
        0.
    """
    del seconds
    print(f"hostile scenario files (upload limit {MAX_FILE_BYTES:,} bytes)")
    print(f"{'file':<20} {'bytes':>9} {'validate':>10}  outcome")
    for name in HOSTILE:
        r = measure(name)
        outcome = r.outcome if len(r.outcome) <= 110 else r.outcome[:107] + "..."
        print(f"{r.name:<20} {r.size:>9,} {r.seconds * 1000:>8.1f}ms  {outcome}")
    return 0
