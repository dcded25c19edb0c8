"""The documented gunicorn setup survives clients that send half a request.

``gunicorn -c python:vmaviz.ui.gunicorn_conf 'app:server'`` (README: Deploying):
two threaded workers. Clients that open a connection and stop mid-request (in the
headers, or in the body of a callback) hold a thread each; another user's page and
steps are still served. The same stalled clients against gunicorn's default sync
workers, two of them, leave no worker for anyone: shown here too, as the reason
for the setting.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from vmaviz.bench.browser import free_port, serving
from vmaviz.ui.testing import Browser, HttpClient

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@contextmanager
def gunicorn(tmp_path: Path, *extra: str) -> Iterator[tuple[str, int]]:
    """A gunicorn master with the bundled settings; yields its URL and pid."""
    port = free_port()
    args = [GUNICORN, "-c", "python:vmaviz.ui.gunicorn_conf", "-b", f"127.0.0.1:{port}"]
    env = {"VMAVIZ_CACHE_DIR": str(tmp_path / "cache")}
    with serving([*args, *extra, "app:server"], port, env, stop_seconds=20) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


def stall(stack: ExitStack, url: str, header_only: bool) -> None:
    """Open a connection that sends part of a request and then nothing."""
    port = int(url.rsplit(":", 1)[1])
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
    if header_only:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    else:
        sock.sendall(
            b"POST /_dash-update-component HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"output"'
        )


def serves_a_user(url: str, timeout: float) -> bool:
    """Whether a page opens and steps within ``timeout`` seconds per request."""
    try:
        tab = Browser(HttpClient(url, timeout=timeout))
        tab.open("?scenario=default")
        tab.press("step-fwd")
        return "step 0 /" in tab.text("step-status")
    except (OSError, AssertionError):
        return False


def test_stalled_clients_leave_the_threaded_workers_serving(tmp_path: Path) -> None:
    with gunicorn(tmp_path) as (url, _pid), ExitStack() as stack:
        assert serves_a_user(url, 60)  # warm: both workers have imported the app
        for i in range(6):
            stall(stack, url, header_only=i % 2 == 0)
        # A liveness bound, not a timing: a blocked server never answers at all.
        assert serves_a_user(url, 60)


@pytest.mark.parametrize("workers", [2])
def test_the_same_stalled_clients_block_default_sync_workers(tmp_path: Path, workers: int) -> None:
    # Why the setting: gunicorn's default worker class holds a worker per stalled request.
    # (--threads 1: with more threads gunicorn quietly runs gthread instead.)
    sync = ("-k", "sync", "--threads", "1", "-w", str(workers))
    with gunicorn(tmp_path, *sync) as (url, _pid), ExitStack() as stack:
        assert serves_a_user(url, 60)
        for _ in range(workers):
            stall(stack, url, header_only=False)
        assert not serves_a_user(url, 5)


def worker_rss_mb(master: int) -> list[int]:
    """Resident MiB of each worker process of the gunicorn ``master``."""
    out = []
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:
            continue
        out.append(int(fields[1]) * os.sysconf("SC_PAGE_SIZE") >> 20)
    return out


def test_hostile_uploads_do_not_stop_another_users_steps(tmp_path: Path) -> None:
    """Two users upload the largest valid file and the worst invalid one while a third
    steps: the third is served throughout, the uploads end with the page's answer
    (the run or the limit it reached), and no worker passes its memory cap."""
    import base64
    import threading

    from vmaviz.bench.hostile import big_valid, unknown_names

    def upload(url: str, text: str, out: list[str]) -> None:
        tab = Browser(HttpClient(url, timeout=300))
        tab.open("?scenario=default")
        data = "data:application/x-yaml;base64," + base64.b64encode(text.encode()).decode()
        tab.call("scenario", "value", {"upload.contents": data}, {"upload.filename": "h.yaml"})
        out.append(tab.text("upload-errors"))
        if "Loaded" in out[-1]:
            tab.configure()
            out.append(tab.text("run-error") or tab.text("step-status"))

    cap_mb = 2560
    with ExitStack() as stack:
        url, master = stack.enter_context(
            gunicorn(tmp_path, "--env", f"VMAVIZ_MAX_RSS_MB={cap_mb}")
        )
        assert serves_a_user(url, 60)
        answers: list[list[str]] = [[], []]
        texts = (big_valid(), unknown_names())
        threads = [
            threading.Thread(target=upload, args=(url, text, out))
            for text, out in zip(texts, answers, strict=True)
        ]
        for t in threads:
            t.start()
        peak = 0
        steps_served = 0
        while any(t.is_alive() for t in threads):
            assert serves_a_user(url, 60)
            steps_served += 1
            peak = max([peak, *worker_rss_mb(master)])
        for t in threads:
            t.join()
    assert steps_served >= 1
    big, bad = answers
    assert "Loaded h.yaml" in big[0]
    # The big one either ran (a step is shown) or says which limit it reached.
    assert "step" in big[1] or "limit reached" in big[1]
    assert "errors" in bad[0] and "MAX_ERRORS" in bad[0]
    assert peak < cap_mb + 256  # the run stops at the cap (checked every 4,096 steps)
