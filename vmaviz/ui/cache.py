"""The app's shared cache: private, signed, and rebuilt rather than trusted.

flask-caching keeps runs, uploads and per-session kernels as pickles, and unpickling
runs code. So nothing is unpickled unless it carries an HMAC-SHA256 signature made
with this installation's secret, which lives outside the cache (a file under the
user's config dir, or ``VMAVIZ_CACHE_SECRET``). A file planted in the cache
directory, or a value written to Redis by someone without the secret, is a cache
miss and is rebuilt; so is any entry that fails to load for any other reason.

The file cache's directory is private: created with mode 0700, and refused when it
exists with another owner, wider permissions, or as a symlink. If it is deleted
while the server runs, the next write recreates it (privately) and says so in the
log.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import pickle
import secrets
import stat
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from flask_caching.backends.filesystemcache import FileSystemCache
from flask_caching.backends.rediscache import RedisCache

log = logging.getLogger(__name__)

#: Environment variables read by :func:`cache_config` and :func:`cache_secret`.
REDIS_ENV = "VMAVIZ_REDIS_URL"
CACHE_DIR_ENV = "VMAVIZ_CACHE_DIR"
SECRET_ENV = "VMAVIZ_CACHE_SECRET"
SECRET_FILE_ENV = "VMAVIZ_SECRET_FILE"

#: Seconds a cache entry lives.
RUN_TIMEOUT = 6 * 3600

#: Marks a signed entry (and its format): the magic, a 32-byte HMAC-SHA256, a pickle.
MAGIC = b"vmz1"
_DIGEST = 32
#: A secret shorter than this (from the environment) is refused: it could be guessed.
MIN_SECRET_BYTES = 16


class CacheSecurityError(RuntimeError):
    """The cache directory or the secret file is not private to this user."""


# =====================================================================
# The private directory and the secret
# =====================================================================


def _check_private(path: Path, kind: str) -> None:
    """Refuse ``path`` unless it is ours and nobody else can read or write it.

    Raises:
        CacheSecurityError: a symlink, another owner, or group/other permissions.
    """
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        raise CacheSecurityError(f"{kind} {path} is a symlink; refusing to use it")
    if st.st_uid != os.getuid():
        raise CacheSecurityError(
            f"{kind} {path} is owned by uid {st.st_uid}, not by this user "
            f"(uid {os.getuid()}); remove it or choose another path"
        )
    if st.st_mode & 0o077:
        raise CacheSecurityError(
            f"{kind} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be private "
            "(0700 for a directory, 0600 for a file): chmod it or remove it"
        )


def private_dir(path: str | Path) -> Path:
    """``path`` as a directory only this user can use: created 0700, else checked.

    Raises:
        CacheSecurityError: it exists but is not private (see :func:`_check_private`).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        p.mkdir(mode=0o700)
    except FileExistsError:
        pass
    else:
        # mkdir's mode is masked by the umask; a umask can only narrow it, but say it.
        os.chmod(p, 0o700)
    if not p.is_dir() and not p.is_symlink():
        raise CacheSecurityError(f"cache directory {p} exists and is not a directory")
    _check_private(p, "cache directory")
    return p


def default_cache_dir(env: dict[str, str]) -> str:
    """``$XDG_CACHE_HOME/vmaviz`` (``~/.cache/vmaviz``), where no other user can create it.

    Why not a fixed name under /tmp: on a shared machine another user could create
    it first. Without a usable home, a per-user name under the temp dir (still
    checked by :func:`private_dir`).
    """
    base = env.get("XDG_CACHE_HOME") or ""
    if not base and env.get("HOME"):
        base = str(Path(env["HOME"]) / ".cache")
    if base:
        try:
            Path(base).mkdir(parents=True, exist_ok=True)
        except OSError:
            base = ""
    if base and os.access(base, os.W_OK):
        return str(Path(base) / "vmaviz")
    return str(Path(tempfile.gettempdir()) / f"vmaviz-cache-{os.getuid()}")


def default_secret_file(env: dict[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/vmaviz/cache-secret`` (``~/.config/...``): outside the cache."""
    base = env.get("XDG_CONFIG_HOME") or ""
    if not base:
        base = str(Path(env.get("HOME") or tempfile.gettempdir()) / ".config")
    return Path(base) / "vmaviz" / "cache-secret"


_secret_lock = threading.Lock()


def cache_secret(env: dict[str, str] | None = None) -> bytes:
    """This installation's signing secret.

    ``VMAVIZ_CACHE_SECRET`` when set (workers on several machines sharing one Redis
    must share it), else the file ``VMAVIZ_SECRET_FILE`` or
    :func:`default_secret_file`, created (0600, 32 random bytes) on first use and
    refused when another user could read it.

    Raises:
        CacheSecurityError: the secret is too short, or its file is not private.
    """
    env = dict(os.environ) if env is None else env
    given = env.get(SECRET_ENV, "")
    if given:
        if len(given.encode()) < MIN_SECRET_BYTES:
            raise CacheSecurityError(
                f"{SECRET_ENV} is shorter than {MIN_SECRET_BYTES} bytes; use a long random value"
            )
        return given.encode()
    path = Path(env.get(SECRET_FILE_ENV) or default_secret_file(env))
    with _secret_lock:
        private_dir(path.parent)
        if not path.exists():
            # Written whole to a temporary name, then linked into place: a worker
            # starting at the same time sees no file or the whole secret, and of two
            # links only one succeeds.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32).hex().encode())
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        _check_private(path, "secret file")
        secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise CacheSecurityError(f"secret file {path} is empty or too short; remove it")
    return secret


# =====================================================================
# Signed entries
# =====================================================================


class SignedSerializer:
    """Pickles that are loaded only when their HMAC-SHA256 is this installation's.

    The serializer interface of cachelib (``dump``/``load`` for files,
    ``dumps``/``loads`` for Redis). Whatever cannot be loaded (unsigned, forged,
    truncated, or failing to unpickle for any reason) loads as None, a miss.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def dumps(self, value: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
        payload = pickle.dumps(value, protocol)
        return MAGIC + self._sign(payload) + payload

    def loads(self, blob: bytes | None) -> Any:
        if not isinstance(blob, bytes | bytearray) or not blob.startswith(MAGIC):
            if blob is not None:
                log.warning("vmaviz cache: an unsigned entry was ignored")
            return None
        head = len(MAGIC)
        digest, payload = bytes(blob[head : head + _DIGEST]), bytes(blob[head + _DIGEST :])
        if not hmac.compare_digest(digest, self._sign(payload)):
            log.warning("vmaviz cache: an entry with a wrong signature was ignored")
            return None
        try:
            return pickle.loads(payload)
        except Exception:  # a signed entry from an older code version: rebuild it
            log.warning("vmaviz cache: an entry that did not load was ignored", exc_info=True)
            return None

    def dump(self, value: Any, f: IO[bytes], protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        f.write(self.dumps(value, protocol))

    def load(self, f: IO[bytes]) -> Any:
        return self.loads(f.read())


class _SecretFactory:
    """flask-caching's ``factory`` with this installation's secret added.

    ``VMAVIZ_SECRET`` in the cache settings (tests) or :func:`cache_secret`.
    """

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        kwargs["secret"] = config.get("VMAVIZ_SECRET") or cache_secret()
        return super().factory(app, config, args, kwargs)  # type: ignore[misc]


class PrivateFileCache(_SecretFactory, FileSystemCache):
    """flask-caching's file cache in a private directory, with signed entries.

    A deleted directory is recreated (privately) by the next write, with a warning
    in the log; reads from it meanwhile are misses.
    """

    def __init__(self, cache_dir: str, *args: Any, secret: bytes, **kwargs: Any) -> None:
        private_dir(cache_dir)
        self.serializer = SignedSerializer(secret)  # type: ignore[assignment]
        super().__init__(cache_dir, *args, **kwargs)

    def _ensure_dir(self) -> None:
        if os.path.isdir(self._path):
            return
        log.warning("vmaviz cache: directory %s was deleted; recreating it (0700)", self._path)
        private_dir(self._path)
        self._update_count(value=0)

    def set(self, key: str, value: Any, timeout: Any = None, mgmt_element: bool = False) -> bool:
        self._ensure_dir()
        return bool(super().set(key, value, timeout, mgmt_element))

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        self._ensure_dir()
        return bool(super().add(key, value, timeout))


class SignedRedisCache(_SecretFactory, RedisCache):
    """flask-caching's Redis cache with signed entries (never unpickles a forged value)."""

    def __init__(self, *args: Any, secret: bytes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.serializer = SignedSerializer(secret)  # type: ignore[assignment]


#: What a plain flask-caching type becomes in :func:`secure_config`.
_SECURE_TYPES = {
    "FileSystemCache": f"{__name__}.PrivateFileCache",
    "RedisCache": f"{__name__}.SignedRedisCache",
}


def secure_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the file and Redis caches replaced by their signed versions.

    Every way of making the app (:func:`cache_config`, tests, benchmarks) goes
    through here, so no configuration can bring back an unsigned cache.
    """
    out = dict(config)
    kind = out.get("CACHE_TYPE", "")
    out["CACHE_TYPE"] = _SECURE_TYPES.get(kind, kind)
    return out


def cache_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    """flask-caching settings: Redis when VMAVIZ_REDIS_URL is set, else private files.

    The file cache lives in :func:`default_cache_dir` (or VMAVIZ_CACHE_DIR), never
    in the repository; every worker of one machine shares it.
    """
    env = dict(os.environ) if env is None else env
    url = env.get(REDIS_ENV, "").strip()
    if url:
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_KEY_PREFIX": "vmaviz:",
            "CACHE_DEFAULT_TIMEOUT": RUN_TIMEOUT,
        }
    return {
        "CACHE_TYPE": "FileSystemCache",
        "CACHE_DIR": env.get(CACHE_DIR_ENV) or default_cache_dir(env),
        "CACHE_THRESHOLD": 5000,
        "CACHE_DEFAULT_TIMEOUT": RUN_TIMEOUT,
    }
