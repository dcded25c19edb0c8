"""``create_app()``: the vmaviz Dash app, wired to its cache.

Each call builds a fresh app with its own :class:`~vmaviz.ui.session.RunStore`; no
module holds mutable state. Assets (CSS, the keyboard/copy-link script) are served
from ``assets/``, Dash's own JavaScript from the installed package
(``serve_locally=True``): the app works offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dash
from flask_caching import Cache

from vmaviz.scenario.schema import MAX_FILE_BYTES
from vmaviz.ui import callbacks, guard
from vmaviz.ui.cache import cache_config, secure_config
from vmaviz.ui.editor import register as register_editor
from vmaviz.ui.layout import TITLE, serve_layout
from vmaviz.ui.lessons import register_lessons
from vmaviz.ui.race_callbacks import register_races
from vmaviz.ui.results import register_results_callbacks
from vmaviz.ui.session import RunStore, release_deferred_gc
from vmaviz.ui.thread_step import register_thread_step
from vmaviz.ui.timeline_nav import register_timeline_nav

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSETS = REPO_ROOT / "assets"

#: Largest request body: a 1 MiB scenario is about 1.4 MB of base64 in the upload
#: callback; anything far beyond that is refused before it is read.
MAX_REQUEST_BYTES = 8 * MAX_FILE_BYTES

__all__ = ["TITLE", "create_app"]


def create_app(cache: dict[str, Any] | None = None) -> dash.Dash:
    """A new vmaviz app.

    Args:
        cache: flask-caching settings (default: :func:`~vmaviz.ui.cache.cache_config`,
            a private file cache, or Redis when VMAVIZ_REDIS_URL is set); a plain
            ``FileSystemCache`` or ``RedisCache`` is made the signed one.
    """
    app = dash.Dash(
        __name__,
        title=TITLE,
        assets_folder=str(ASSETS),
        serve_locally=True,
        update_title="",
        # The glossary and the Results are mounted when scrolled to (layout.lazy_slot):
        # their callbacks name components not in the first layout.
        suppress_callback_exceptions=True,
        compress=False,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    # Whatever the settings, the file and Redis caches are the private, signed ones.
    config = secure_config(dict(cache) if cache is not None else cache_config())
    flask_cache = Cache(server, config=config)
    store = RunStore(flask_cache)
    server.teardown_request(release_deferred_gc)
    server.extensions["vmaviz_store"] = store
    options = callbacks.bundled_options()
    app.layout = lambda: serve_layout(options)
    callbacks.register(app, store)
    register_races(app, store)
    register_thread_step(app, store)
    register_lessons(app, store)
    register_editor(app, store)
    register_timeline_nav(app, store)
    register_results_callbacks(app, flask_cache)
    guard.install(app)
    return app
