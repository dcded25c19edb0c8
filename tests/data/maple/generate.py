#!/usr/bin/env python3
"""Regenerate the maple tree golden vectors in this folder (a dev tool, not a test).

Each ``*.json`` file here is one store sequence with what the REAL kernel's
``lib/maple_tree.c`` makes of it, as reported by a reference oracle binary: the
kernel file compiled into the kernel's own userspace test harness
(tools/testing/radix-tree), driven by the same line protocol as
``python -m vmaviz.maple``.  The oracle is not part of this repository and does
not exist in CI; ``tests/test_maple_golden.py`` only replays the committed data.

Usage::

    python tests/data/maple/generate.py [--oracle BIN] [--check-oracle BIN] [NAME ...]

Every sequence is run through the primary oracle (default Linux 6.12) and the
check oracle (default Linux 6.1); a sequence on which the two kernels disagree
is not written (Linux 6.4 sits between them).  The model is replayed as well and
any disagreement with the oracle is reported loudly (the file is still written:
the oracle is the truth).

File format (compact JSON)::

    {"name": ..., "description": ..., "oracle": ["linux 6.12", "linux 6.1"],
     "every": K,                               # a full dump after every K-th store
     "stores": [[first, last, id_or_null], ...],
     "hashes": [h1, h2, ...],                  # dump_hash() after every store
     "checkpoints": [[n_stores, dump], ...]}   # full dumps, including the final one

``dump_hash`` is the first 16 hex digits of the SHA-256 of the dump serialised
with sorted keys and no spaces (see ``tests/test_maple_golden.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

from maple_helpers import PAGE, RefMap, run_vma_ops  # noqa: E402

from vmaviz.model.maple import ULONG_MAX, MapleTree  # noqa: E402

DEFAULT_ORACLE = "/opt/oracle/maple-oracle-6.12"
DEFAULT_CHECK = "/opt/oracle/maple-oracle-6.1"
MAX_CHECKPOINTS = 8
MAX_STORES = 800

Store = tuple[int, int, int | None]


def dump_hash(dump: dict) -> str:
    text = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ workloads


def _stores_from_ops(ops: list[tuple]) -> list[Store]:
    ref = RefMap()
    out: list[Store] = []

    def store(first: int, last: int, entry: int | None) -> None:
        ref.store(first, last, entry)
        out.append((first, last, entry))

    run_vma_ops(ops, store, ref)
    return out


def _idx(rng: random.Random) -> int:
    return rng.randrange(1 << 20)


def _part(rng: random.Random) -> str:
    return rng.choice(["whole", "head", "tail", "middle"])


def _random_op(rng: random.Random, weights: dict[str, int]) -> tuple:
    kind = rng.choices(list(weights), list(weights.values()))[0]
    if kind in ("mmap", "mmap_up"):
        return (kind, rng.randint(1, 16), rng.randint(0, 2))
    if kind in ("munmap", "mprotect"):
        return (kind, _idx(rng), _part(rng), rng.randint(1, 16))
    if kind == "merge":
        return (kind, _idx(rng), rng.randint(1, 3))
    if kind == "mremap":
        return (kind, _idx(rng), rng.randint(1, 16))
    if kind in ("grow_down", "grow_up"):
        return (kind, _idx(rng), rng.randint(1, 8))
    if kind == "fixed":
        return (kind, rng.randrange(8192), rng.randint(1, 64), rng.random() < 0.6)
    if kind == "bignull":
        return ("fixed", rng.randrange(8192), rng.randint(16, 2048), False)
    if kind == "burst":
        return (kind, rng.randint(5, 60), rng.randint(1, 8), rng.randint(0, 2))
    raise ValueError(kind)


def _ops(rng: random.Random, n: int, weights: dict[str, int]) -> list[tuple]:
    return [_random_op(rng, weights) for _ in range(n)]


def w_topdown_burst(seed: int, pages: int, gap: int, n: int) -> Callable[[], list[Store]]:
    def make() -> list[Store]:
        rng = random.Random(seed)
        ops = [("mmap", rng.randint(1, pages), rng.randint(0, gap)) for _ in range(n)]
        return _stores_from_ops(ops)

    return make


def w_bottomup_burst(seed: int, n: int) -> Callable[[], list[Store]]:
    def make() -> list[Store]:
        rng = random.Random(seed)
        return _stores_from_ops(
            [("mmap_up", rng.randint(1, 8), rng.randint(0, 1)) for _ in range(n)]
        )

    return make


def w_then(seed: int, build: int, n: int, weights: dict[str, int]) -> Callable[[], list[Store]]:
    """A top-down burst of ``build`` mmaps, then ``n`` random operations."""

    def make() -> list[Store]:
        rng = random.Random(seed)
        ops: list[tuple] = [("mmap", rng.randint(1, 6), rng.randint(0, 2)) for _ in range(build)]
        ops += _ops(rng, n, weights)
        return _stores_from_ops(ops)

    return make


def w_munmap_storm(seed: int, build: int) -> Callable[[], list[Store]]:
    def make() -> list[Store]:
        rng = random.Random(seed)
        ops: list[tuple] = [("mmap", rng.randint(1, 4), rng.randint(0, 2)) for _ in range(build)]
        ops += [("munmap", _idx(rng), "whole", 1) for _ in range(build)]
        return _stores_from_ops(ops)

    return make


def w_height3_collapse(seed: int) -> Callable[[], list[Store]]:
    """Grow to height 3 twice (adjacent, then gapped) and collapse with big NULLs."""

    def make() -> list[Store]:
        rng = random.Random(seed)
        out: list[Store] = []
        a = 0x100000
        for i in range(170):
            out.append((a, a + 2 * PAGE - 1, i + 1))
            a += 2 * PAGE
        out.append((0x100000 + 4 * PAGE, a - 6 * PAGE - 1, None))
        b = 0x40000000
        for i in range(90):
            out.append((b, b + 2 * PAGE - 1, 1000 + i))
            b += 3 * PAGE
        for _ in range(6):
            lo = rng.randrange(0x40000000, b)
            out.append((lo, lo + rng.randint(8, 120) * PAGE - 1, None))
        out.append((0x40000000, b, None))
        out.append((0, 0x100000 + 10 * PAGE - 1, None))
        return out

    return make


def w_raw(seed: int, n: int) -> Callable[[], list[Store]]:
    """Byte-granular random stores, including both ends of the index space."""

    def make() -> list[Store]:
        rng = random.Random(seed)
        out: list[Store] = []
        for i in range(n):
            r = rng.random()
            if r < 0.05:
                first = rng.randrange(0, 64)
            elif r < 0.1:
                first = ULONG_MAX - rng.randrange(0, 1 << 20)
            else:
                first = rng.randrange(1 << 16, 1 << 24)
            span = rng.choice(
                [1, 2, 17, 4096, rng.randrange(1, 1 << 16), rng.randrange(1, 1 << 22)]
            )
            last = min(ULONG_MAX, first + span - 1)
            if first == 0 and last == ULONG_MAX:
                last -= 1
            out.append((first, last, None if rng.random() < 0.3 else i + 1))
        return out

    return make


def w_ops(seed: int, n: int, weights: dict[str, int], burst: int = 0) -> Callable[[], list[Store]]:
    def make() -> list[Store]:
        rng = random.Random(seed)
        ops: list[tuple] = [("burst", burst, 2, 1)] if burst else []
        ops += _ops(rng, n, weights)
        return _stores_from_ops(ops)

    return make


MIXED = {
    "mmap": 6,
    "mmap_up": 2,
    "munmap": 4,
    "mprotect": 4,
    "merge": 2,
    "mremap": 2,
    "grow_down": 1,
    "grow_up": 1,
    "fixed": 2,
    "bignull": 1,
    "burst": 1,
}

WORKLOADS: dict[str, tuple[str, Callable[[], list[Store]]]] = {
    "topdown_small_gapped": (
        "300 top-down mmaps of 1-4 pages, gaps 0-2 pages",
        w_topdown_burst(1, 4, 2, 300),
    ),
    "topdown_adjacent": ("400 top-down adjacent mmaps of 1-3 pages", w_topdown_burst(2, 3, 0, 400)),
    "topdown_large": ("250 top-down mmaps of 1-16 pages, gaps 0-2", w_topdown_burst(3, 16, 2, 250)),
    "bottomup_appends": (
        "300 bottom-up mmaps (appends at the end of a leaf)",
        w_bottomup_burst(4, 300),
    ),
    "munmap_storm_180": (
        "180 mmaps, then every VMA munmapped in random order",
        w_munmap_storm(5, 180),
    ),
    "munmap_storm_60": (
        "60 mmaps, then every VMA munmapped in random order",
        w_munmap_storm(6, 60),
    ),
    "munmap_partial": (
        "120 mmaps, then head/tail/middle/whole munmaps",
        w_then(7, 120, 300, {"munmap": 1}),
    ),
    "mprotect_splits": (
        "80 mmaps, then mprotect-like splits",
        w_then(8, 80, 350, {"mprotect": 1}),
    ),
    "mprotect_split_merge": (
        "100 mmaps, then splits and merges",
        w_then(9, 100, 400, {"mprotect": 3, "merge": 2}),
    ),
    "merges": ("150 mmaps, then merges over 2-4 neighbours", w_then(10, 150, 120, {"merge": 1})),
    "mremap_moves": ("100 mmaps, then mremap moves", w_then(11, 100, 200, {"mremap": 1})),
    "stack_heap_growth": (
        "60 mmaps, then VMAs growing down and up into free space, with munmaps",
        w_then(12, 60, 300, {"grow_down": 2, "grow_up": 2, "munmap": 1, "mmap": 1}),
    ),
    "big_null_spans": (
        "160 mmaps, then large NULL stores across many VMAs and bursts",
        w_then(13, 160, 60, {"bignull": 2, "burst": 1}),
    ),
    "height3_collapse": ("height 3 twice, collapsed by large NULL stores", w_height3_collapse(14)),
    "raw_bytes_a": (
        "byte-granular random stores incl. both ends of the index space",
        w_raw(15, 500),
    ),
    "raw_bytes_b": (
        "byte-granular random stores incl. both ends of the index space",
        w_raw(16, 300),
    ),
}
for _i, _seed in enumerate((101, 102, 103, 104, 105, 106, 107)):
    WORKLOADS[f"mixed_{_i + 1}"] = (
        f"random VMA operations (seed {_seed})",
        w_ops(_seed, 150 + 50 * _i, MIXED, burst=40 * (_i % 3)),
    )
WORKLOADS["fixed_stores"] = (
    "MAP_FIXED-like stores and NULL stores over a 32 MiB area",
    w_ops(120, 500, {"fixed": 3, "bignull": 1, "mmap": 2}),
)
WORKLOADS["short_churn"] = (
    "a short churn on a small tree: mmap, munmap, mprotect",
    w_ops(121, 60, {"mmap": 2, "munmap": 1, "mprotect": 1}),
)


# -------------------------------------------------------------------- oracle


def run_oracle(binary: str, stores: list[Store]) -> list[dict]:
    lines = []
    for first, last, entry in stores:
        lines.append(f"store {first} {last} {'-' if entry is None else entry}")
        lines.append("dump")
    lines.append("validate")
    proc = subprocess.run(
        [binary], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{binary} exited {proc.returncode}: {proc.stderr[-2000:]}")
    out = proc.stdout.splitlines()
    if out[-1] != "ok":
        raise RuntimeError(f"{binary}: validate: {out[-1]}")
    return [json.loads(x) for x in out[:-1]]


def oracle_version(binary: str) -> str:
    proc = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip().replace("maple-oracle ", "") or binary


def model_dumps(stores: list[Store]) -> list[dict]:
    tree = MapleTree()
    out = []
    for first, last, entry in stores:
        tree.store_range(first, last, entry)
        out.append(tree.dump())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--oracle", default=DEFAULT_ORACLE)
    ap.add_argument("--check-oracle", default=DEFAULT_CHECK)
    ap.add_argument("names", nargs="*", help="workloads to regenerate (default: all)")
    args = ap.parse_args()
    for binary in (args.oracle, args.check_oracle):
        if not os.access(binary, os.X_OK):
            print(
                f"generate.py: oracle {binary} not found: nothing regenerated "
                "(the golden data is only generated on a machine with the kernel oracle)",
                file=sys.stderr,
            )
            return 0
    names = args.names or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workloads {unknown}; known: {list(WORKLOADS)}")
    versions = [oracle_version(args.oracle), oracle_version(args.check_oracle)]
    problems = 0
    for name in names:
        desc, make = WORKLOADS[name]
        stores = make()[:MAX_STORES]
        dumps = run_oracle(args.oracle, stores)
        check = run_oracle(args.check_oracle, stores)
        bad = [i for i, (a, b) in enumerate(zip(dumps, check, strict=True)) if a != b]
        if bad:
            print(f"{name}: oracles disagree from store {bad[0] + 1}; not written", file=sys.stderr)
            problems += 1
            continue
        mine = model_dumps(stores)
        diverge = [i for i, (a, b) in enumerate(zip(dumps, mine, strict=True)) if a != b]
        if diverge:
            print(
                f"{name}: MODEL DIFFERS from the oracle from store {diverge[0] + 1}",
                file=sys.stderr,
            )
            problems += 1
        n = len(stores)
        every = max(1, -(-n // MAX_CHECKPOINTS))
        marks = sorted({*range(every, n + 1, every), n})
        data = {
            "name": name,
            "description": desc,
            "oracle": versions,
            "every": every,
            "stores": [list(s) for s in stores],
            "hashes": [dump_hash(d) for d in dumps],
            "checkpoints": [[k, dumps[k - 1]] for k in marks],
        }
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
        heights = sorted({d["height"] for d in dumps})
        print(f"{name}: {n} stores, heights {heights}, {path.stat().st_size // 1024} KiB")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
