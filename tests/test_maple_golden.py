"""Golden vectors: the model's trees equal the real kernel's, node for node.

``tests/data/maple/*.json`` hold store sequences and what lib/maple_tree.c (the
kernel file compiled into the kernel's userspace harness) made of them: a hash of
the dump after every store and full dumps at checkpoints.  They are regenerated
with ``tests/data/maple/generate.py`` on a machine that has the oracle binary;
this test only replays them.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import pytest
from maple_helpers import dump_diff

from vmaviz.model.maple import MapleTree

DATA = Path(__file__).resolve().parent / "data" / "maple"
FILES = sorted(DATA.glob("*.json"))


def dump_hash(dump: dict) -> str:
    """As generate.py: SHA-256 of the sorted-key compact JSON, 16 hex digits."""
    text = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_golden_data_present() -> None:
    assert len(FILES) >= 20, f"golden vectors missing from {DATA}"
    total = sum(p.stat().st_size for p in FILES)
    assert total < 3_500_000
    heights: set[int] = set()
    for path in FILES:
        g = _load(path)
        assert g["name"] == path.stem
        assert 50 <= len(g["stores"]) <= 800
        assert len(g["hashes"]) == len(g["stores"])
        assert g["checkpoints"][-1][0] == len(g["stores"])
        for n, dump in g["checkpoints"]:
            assert g["hashes"][n - 1] == dump_hash(dump)
            heights.add(dump["height"])
    assert {0, 1, 2, 3} <= heights


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_sequence(path: Path) -> None:
    g = _load(path)
    checkpoints = dict((n, d) for n, d in g["checkpoints"])
    tree = MapleTree()
    for i, (first, last, entry) in enumerate(g["stores"], start=1):
        tree.store_range(first, last, entry)
        dump = tree.dump()
        if i in checkpoints:
            diff = dump_diff(dump, checkpoints[i])
            assert diff is None, f"after store {i} {g['stores'][i - 1]}: model vs kernel: {diff}"
        if dump_hash(dump) != g["hashes"][i - 1]:
            later = [n for n in checkpoints if n > i]
            pytest.fail(
                f"{path.name}: the model's tree differs from the kernel's after store {i} "
                f"{g['stores'][i - 1]} (height {tree.height}); the next full kernel dump "
                f"is at store {later[0] if later else '-'}"
            )
    assert tree.validate() == []
