"""Runs read back from the app's own cache summarise exactly like fresh ones.

Two app instances share one cache, as two workers (or a restart) do: the second
never built the run, it reads it from the cache. Both backends the README offers are
tried: files under a directory, and Redis (a private ``redis-server`` on a loopback
port; scripts/test.sh installs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vmaviz.ui.app_factory import create_app
from vmaviz.ui.session import Config
from vmaviz.ui.testing import Browser


def _cache(backend: str, tmp_path: Path, redis_url: str) -> dict[str, Any]:
    if backend == "files":
        return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "cache")}
    return {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": f"{tmp_path.name}:",
    }


@pytest.mark.parametrize("backend", ["files", "redis"])
def test_compare_summary_is_the_same_after_a_cache_round_trip(
    backend: str, tmp_path: Path, redis_url: str
) -> None:
    config = _cache(backend, tmp_path, redis_url)
    first = create_app(config)
    tab = Browser(first.server.test_client())
    tab.open("?scenario=default&view=compare")
    fresh_table = tab.text("delta-table")
    store = first.server.extensions["vmaviz_store"]
    c = Config("default", view="compare")
    fresh = {m: store.run(c, mode=m).summary for m in ("mmap_lock", "per_vma")}
    assert all(s["faults"]["latency_ns"]["p50"] > 0 for s in fresh.values())

    # Another worker: nothing in its memory, the runs come from the shared cache.
    second = create_app(config)
    other = second.server.extensions["vmaviz_store"]
    with second.server.app_context():
        cached = {m: other.run(c, mode=m) for m in ("mmap_lock", "per_vma")}
    assert {m: r.summary for m, r in cached.items()} == fresh
    tab2 = Browser(second.server.test_client())
    tab2.open("?scenario=default&view=compare")
    assert tab2.text("delta-table") == fresh_table
    assert "0 ns" not in fresh_table
