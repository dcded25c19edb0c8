"""vmaviz entry point: ``python app.py`` serves http://127.0.0.1:8050 (debug off).

``server`` is the Flask app, for WSGI servers (README: Deploying with gunicorn)::

    gunicorn -c python:vmaviz.ui.gunicorn_conf 'app:server'

Environment: VMAVIZ_HOST / VMAVIZ_PORT (default 127.0.0.1:8050), VMAVIZ_DEBUG=1 for
Dash's debug mode, VMAVIZ_REDIS_URL to keep the cache in Redis (default: a private
directory, ~/.cache/vmaviz), VMAVIZ_CACHE_DIR to move that directory; the run budget
and the cache secret are in README "Security and limits".
"""

import os

from werkzeug.serving import WSGIRequestHandler

from vmaviz.ui.app_factory import create_app

app = create_app()
server = app.server


class _NoDelayHandler(WSGIRequestHandler):
    """Werkzeug's handler with Nagle's algorithm off on each connection.

    Why: the development server writes a response's headers and body in separate
    sends; with Nagle on, the body waited for the browser's delayed ACK, about 40 ms
    added to every step request.
    """

    disable_nagle_algorithm = True


if __name__ == "__main__":
    app.run(
        host=os.environ.get("VMAVIZ_HOST", "127.0.0.1"),
        port=int(os.environ.get("VMAVIZ_PORT", "8050")),
        debug=os.environ.get("VMAVIZ_DEBUG", "") not in ("", "0"),
        request_handler=_NoDelayHandler,
    )
