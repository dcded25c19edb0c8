"""The cache can neither run planted code nor break a session (issue 11, items 1, 8, 9).

A value in the cache is loaded only when it carries this installation's HMAC; a file
planted in the cache directory (or a value put in Redis) for a session id of the
attacker's choosing is a miss, and the unpickling it asks for never happens. The
directory is private, a corrupt entry is rebuilt, and a deleted directory comes back.
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from vmaviz.ui.app_factory import create_app
from vmaviz.ui.cache import (
    MAGIC,
    CacheSecurityError,
    SignedSerializer,
    cache_config,
    cache_secret,
    private_dir,
    secure_config,
)
from vmaviz.ui.session import Config
from vmaviz.ui.testing import Browser

SECRET = b"0123456789abcdef0123456789abcdef"
SMALL = """\
name: small
description: two threads fault one VMA
mm:
  vmas:
    - {name: heap, start: "0x10000000", pages: 4, prot: rw}
threads:
  - name: a
    ops:
      - touch: {vma: heap, pages: "0-1"}
  - name: b
    ops:
      - touch: {vma: heap, pages: "2-3"}
"""


class Planted:
    """Unpickling this creates ``path``: proof that a cache entry ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def evil(marker: Path) -> bytes:
    return pickle.dumps(Planted(marker))


def test_the_evil_pickle_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    # The planted payload of the tests below is live: plain pickle.loads runs it.
    marker = tmp_path / "ran"
    pickle.loads(evil(marker)).close()
    assert marker.exists()


def file_app(tmp_path: Path) -> Any:
    return create_app(
        {
            "CACHE_TYPE": "FileSystemCache",
            "CACHE_DIR": str(tmp_path / "cache"),
            "VMAVIZ_SECRET": SECRET,
        }
    )


def backend(app: Any) -> Any:
    return app.server.extensions["vmaviz_store"].cache.cache


def plant_file(app: Any, key: str, payload: bytes) -> Path:
    """Write ``payload`` where the file cache keeps ``key``, as cachelib lays it out."""
    cache = backend(app)
    path = Path(cache._get_filename(key))
    path.write_bytes(struct.pack("I", 0) + payload)
    return path


# =====================================================================
# 1. A planted entry never runs
# =====================================================================


def test_a_planted_session_file_is_never_unpickled(tmp_path: Path) -> None:
    app = file_app(tmp_path)
    marker = tmp_path / "ran"
    session = "attacker-chosen-id"
    for slot in ("step", "figures", "nav"):
        plant_file(app, f"sess:{session}:{slot}", evil(marker))
    tab = Browser(app.server.test_client(), session=session)
    tab.open("?scenario=default")
    tab.press("step-fwd")
    tab.press("step-fwd")
    tab.press("step-back")
    assert "step 0 /" in tab.text("step-status")
    assert not marker.exists()


def test_a_planted_run_file_is_a_miss_and_the_run_is_rebuilt(tmp_path: Path) -> None:
    app = file_app(tmp_path)
    store = app.server.extensions["vmaviz_store"]
    config = Config("default")
    _scenario, key = store._run_key(config, config.mode, config.arch)
    marker = tmp_path / "ran"
    plant_file(app, f"run:{key}", evil(marker))
    # Also a planted entry in our own format with a forged signature.
    forged = MAGIC + b"\0" * 32 + evil(marker)
    plant_file(app, "scn:upload:forged", forged)
    assert store.cache.get("scn:upload:forged") is None
    run = store.run(config)
    assert run.steps > 0 and run.key == key
    assert not marker.exists()


def test_entries_signed_with_another_secret_are_misses(tmp_path: Path) -> None:
    mine, theirs = SignedSerializer(SECRET), SignedSerializer(b"another-secret-another-secret!!")
    blob = theirs.dumps({"x": 1})
    assert mine.loads(blob) is None
    assert theirs.loads(blob) == {"x": 1}
    assert mine.loads(mine.dumps([1, 2])) == [1, 2]


def test_a_value_planted_in_redis_is_never_unpickled(tmp_path: Path, redis_url: str) -> None:
    import redis

    prefix = f"{tmp_path.name}:"
    app = create_app(
        {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": prefix,
            "VMAVIZ_SECRET": SECRET,
        }
    )
    marker = tmp_path / "ran"
    session = "attacker-chosen-id"
    raw = redis.Redis.from_url(redis_url)
    # cachelib's own format for a pickled value ("!" + pickle), and ours forged.
    raw.set(f"{prefix}sess:{session}:step", b"!" + evil(marker))
    raw.set(f"{prefix}sess:{session}:nav", MAGIC + b"\1" * 32 + evil(marker))
    tab = Browser(app.server.test_client(), session=session)
    tab.open("?scenario=default")
    tab.press("step-fwd")
    assert "step 0 /" in tab.text("step-status")  # the first step (0-based)
    assert not marker.exists()
    # What the app wrote itself is signed and reads back.
    store = app.server.extensions["vmaviz_store"]
    store.cache.set("probe", {"ok": True})
    assert raw.get(f"{prefix}probe").startswith(MAGIC)
    assert store.cache.get("probe") == {"ok": True}


# =====================================================================
# The private directory and the secret
# =====================================================================


def test_a_new_cache_directory_is_private(tmp_path: Path) -> None:
    path = private_dir(tmp_path / "a" / "cache")
    assert path.stat().st_mode & 0o777 == 0o700


def test_a_shared_cache_directory_is_refused(tmp_path: Path) -> None:
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    os.chmod(wide, 0o755)
    with pytest.raises(CacheSecurityError, match="0755"):
        private_dir(wide)
    with pytest.raises(CacheSecurityError, match="0755"):
        create_app(
            {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(wide), "VMAVIZ_SECRET": SECRET}
        )
    link = tmp_path / "link"
    link.symlink_to(private_dir(tmp_path / "real"))
    with pytest.raises(CacheSecurityError, match="symlink"):
        private_dir(link)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_a_cache_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    os.chown(other, 65534, 65534)
    with pytest.raises(CacheSecurityError, match="owned by uid 65534"):
        private_dir(other)


def test_the_default_cache_directory_is_not_a_fixed_name_in_tmp(tmp_path: Path) -> None:
    home = cache_config({"HOME": str(tmp_path)})
    assert home["CACHE_DIR"] == str(tmp_path / ".cache" / "vmaviz")
    xdg = cache_config({"XDG_CACHE_HOME": str(tmp_path / "x")})
    assert xdg["CACHE_DIR"] == str(tmp_path / "x" / "vmaviz")
    # Every way of making the app ends with the signed backends.
    for kind in ("FileSystemCache", "RedisCache"):
        assert secure_config({"CACHE_TYPE": kind})["CACHE_TYPE"].startswith("vmaviz.ui.cache.")


def test_the_secret_is_made_once_privately_and_can_come_from_the_environment(
    tmp_path: Path,
) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "conf")}
    first = cache_secret(env)
    assert first == cache_secret(env) and len(first) >= 32
    path = tmp_path / "conf" / "vmaviz" / "cache-secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert not list(path.parent.glob(".secret-*"))
    os.chmod(path, 0o644)
    with pytest.raises(CacheSecurityError, match="0644"):
        cache_secret(env)
    assert cache_secret({"VMAVIZ_CACHE_SECRET": "x" * 40}) == b"x" * 40
    with pytest.raises(CacheSecurityError, match="shorter"):
        cache_secret({"VMAVIZ_CACHE_SECRET": "short"})


# =====================================================================
# 8, 9. Corrupt entries and a deleted directory
# =====================================================================


@pytest.mark.parametrize(
    "payload",
    [b"\x80\x05K", b"", pickle.dumps(1)[:-1], b"garbage" * 10],
    ids=["truncated", "empty", "cut", "garbage"],
)
def test_a_corrupt_signed_entry_is_a_miss(payload: bytes) -> None:
    # Signed (so it reaches pickle) but unloadable: ValueError, EOFError, ... all miss.
    s = SignedSerializer(SECRET)
    blob = MAGIC + s._sign(payload) + payload
    assert s.loads(blob) is None


def test_a_corrupt_cache_entry_does_not_break_the_session(tmp_path: Path) -> None:
    app = file_app(tmp_path)
    tab = Browser(app.server.test_client())
    tab.open("?scenario=default")
    tab.press("step-fwd")
    cache = backend(app)
    # Corrupt every entry: the session's kernels, the run, the scenario memo.
    for name in os.listdir(cache._path):
        path = Path(cache._path) / name
        if path.is_file() and not name.startswith("__"):
            path.write_bytes(struct.pack("I", 0) + MAGIC + b"\xff" * 40)
    tab.press("step-fwd")
    assert "step 1 /" in tab.text("step-status")
    tab.press("step-back")
    assert "step 0 /" in tab.text("step-status")


def test_a_deleted_cache_directory_is_recreated_and_uploads_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = file_app(tmp_path)
    client = app.server.test_client()
    tab = Browser(client)
    tab.open("?scenario=default")
    # Let the background runs of the other arches finish writing first: removing a
    # directory while a file is being renamed into it fails in rmtree itself.
    store = app.server.extensions["vmaviz_store"]
    for _ in range(600):
        if not store.warming():
            break
        time.sleep(0.1)
    assert not store.warming()
    shutil.rmtree(tmp_path / "cache")
    contents = "data:application/x-yaml;base64," + base64.b64encode(SMALL.encode()).decode()
    with caplog.at_level(logging.WARNING, logger="vmaviz.ui.cache"):
        tab.call("scenario", "value", {"upload.contents": contents}, {"upload.filename": "u.yaml"})
    assert "Loaded u.yaml" in tab.text("upload-errors")
    assert "recreating" in caplog.text
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    # The upload is really there: a second tab (another worker) runs it.
    ref = tab.props[("scenario", "value")]
    assert str(ref).startswith("upload:")
    other = Browser(create_app(secure_config(file_app_config(tmp_path))).server.test_client())
    other.open(f"?scenario={ref}")
    assert "gone" not in (other.text("upload-errors") or "")
    assert "step" in other.text("step-status")


def file_app_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "CACHE_TYPE": "FileSystemCache",
        "CACHE_DIR": str(tmp_path / "cache"),
        "VMAVIZ_SECRET": SECRET,
    }
