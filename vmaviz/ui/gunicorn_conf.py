"""gunicorn settings for vmaviz: ``gunicorn -c python:vmaviz.ui.gunicorn_conf 'app:server'``.

Why threads (``gthread``) rather than gunicorn's default sync workers: a sync
worker serves one connection at a time and reads a request until it is complete,
so two clients that send half a request and stop hold both workers, and every
other user waits (tests/test_gunicorn.py shows it). With threads, a stalled client
holds one thread of one worker; a long first run of an uploaded scenario (bounded
by the run budget, see README "Security and limits") holds one thread too, while
the other threads keep serving steps. What no thread pool survives is a flood of
slow clients: put a buffering reverse proxy in front (README).

Every value can be overridden on the command line (``-b``, ``-w``, ``--threads``...).
"""

import os

bind = os.environ.get("VMAVIZ_BIND", "127.0.0.1:8050")
worker_class = "gthread"
workers = int(os.environ.get("VMAVIZ_WORKERS", "2"))
#: Requests one worker serves at once; a stalled client or a long run takes one.
threads = int(os.environ.get("VMAVIZ_THREADS", "8"))
#: A worker silent this long is restarted. gthread workers keep reporting while
#: their threads run, so this does not cut a long run short; the run budget does.
timeout = 120
graceful_timeout = 30
#: Seconds an idle kept-alive connection is kept.
keepalive = 5
#: Request line and header bounds (gunicorn's defaults, stated here on purpose).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
#: Recycle a worker now and then: per-process memory (runs kept in memory, the
#: allocator's high-water mark after a big run) is given back to the system.
max_requests = 20_000
max_requests_jitter = 2_000
