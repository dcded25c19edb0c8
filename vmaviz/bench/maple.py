"""``python -m vmaviz bench maple``: walks/s and stores/s on a 1,000-VMA tree."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from vmaviz.model.maple import MapleTree, MasWalk

PAGE = 4096


@dataclass
class MapleBench:
    vmas: int
    height: int
    walks_per_s: float
    stepped_walks_per_s: float
    stores_per_s: float
    store_mix: dict[str, int]


def build_tree(n: int, seed: int = 1) -> tuple[MapleTree, list[tuple[int, int]]]:
    """A top-down mmap layout of ``n`` VMAs of 1-16 pages with occasional guard gaps."""
    rnd = random.Random(seed)
    tree = MapleTree()
    top = 0x7F00_0000_0000
    vmas = []
    for i in range(n):
        pages = rnd.choice((1, 2, 4, 8, 16))
        top -= (pages + rnd.choice((0, 0, 1))) * PAGE
        tree.store_range(top, top + pages * PAGE - 1, i + 1)
        vmas.append((top, top + pages * PAGE))
    return tree, vmas


def run(n_vmas: int = 1000, seconds: float = 1.0, seed: int = 1) -> MapleBench:
    tree, vmas = build_tree(n_vmas, seed)
    rnd = random.Random(seed + 1)
    addrs = [rnd.randrange(vmas[-1][0], vmas[0][1]) for _ in range(10000)]

    # Plain lookups (mas_walk run to completion).
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a in addrs:
            tree.walk(a)
        done += len(addrs)
    walks = done / (time.perf_counter() - t0)

    # The RCU reader the engine uses: one step per level.
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a in addrs[:2000]:
            MasWalk(tree, a).run()
        done += 2000
    stepped = done / (time.perf_counter() - t0)

    # VMA-shaped stores: munmap whole, remap, split-like partial stores.
    mix: dict[str, int] = {}
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(1000):
            start, end = vmas[rnd.randrange(len(vmas))]
            kind = rnd.random()
            if kind < 0.4:
                res = tree.store_range(start, end - 1, None)
                mix[res.op] = mix.get(res.op, 0) + 1
                res = tree.store_range(start, end - 1, 7)
            elif kind < 0.7 and end - start > PAGE:
                res = tree.store_range(start, start + PAGE - 1, 9)
            else:
                res = tree.store_range(start, end - 1, 11)
            mix[res.op] = mix.get(res.op, 0) + 1
            done += 2 if kind < 0.4 else 1
    stores = done / (time.perf_counter() - t0)
    return MapleBench(n_vmas, tree.height, walks, stepped, stores, mix)


def main(seconds: float = 1.0) -> int:
    r = run(seconds=seconds)
    print(f"maple tree bench: {r.vmas} VMAs, height {r.height}")
    print(f"  walks/s (mas_walk):            {r.walks_per_s:12,.0f}   (target >= 200,000)")
    print(f"  stepped RCU walks/s (MasWalk): {r.stepped_walks_per_s:12,.0f}")
    print(f"  stores/s:                      {r.stores_per_s:12,.0f}   (target >= 20,000)")
    mix = ", ".join(f"{k} {v}" for k, v in sorted(r.store_mix.items()))
    print(f"  store paths taken: {mix}")
    return 0
