"""The step's garbage collection (vmaviz.ui.session.paused_gc)."""

from __future__ import annotations

import gc

import flask

from vmaviz.ui import session


def test_outside_a_request_the_collector_is_back_at_once() -> None:
    assert gc.isenabled()
    with session.paused_gc(collect_young=True):
        assert not gc.isenabled()
        with session.paused_gc():  # nested
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_in_a_request_the_young_collection_waits_for_the_response() -> None:
    app = flask.Flask(__name__)
    seen: dict[str, bool] = {}

    @app.route("/")
    def step() -> str:
        with session.paused_gc(collect_young=True):
            pass
        seen["in_request"] = gc.isenabled()
        return "ok"

    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 200
    assert seen["in_request"] is False  # still paused: the response is not sent yet
    response.close()  # sent: the young collection runs and the collector is back
    assert gc.isenabled()


def test_a_response_never_closed_is_released_by_the_next_step() -> None:
    app = flask.Flask(__name__)

    @app.route("/")
    def step() -> str:
        with session.paused_gc(collect_young=True):
            pass
        return "ok"

    client = app.test_client()
    client.get("/")  # not closed
    assert not gc.isenabled()
    with session.paused_gc():
        pass
    assert gc.isenabled()


def test_a_failed_request_releases_the_collector() -> None:
    app = flask.Flask(__name__)
    app.teardown_request(session.release_deferred_gc)

    @app.route("/")
    def step() -> str:
        with session.paused_gc(collect_young=True):
            pass
        raise RuntimeError("the step failed")

    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 500
    assert gc.isenabled()
