"""Requests the app was never meant to get are answered 4xx, before any work.

Dash answers a malformed callback body, an unknown component-suite path or a forged
store value with an exception, which Flask turns into a 500 and a traceback in the
log. Here:

* a callback request whose body is not the JSON shape the renderer sends (or names
  a callback this app does not have, or holds ``NaN``/``Infinity``) gets 400 before
  Dash runs anything (the body is parsed once, and Dash reuses the parse);
* an unknown ``/_dash-component-suites/`` path gets 404;
* a callback that still fails on a value no page of this app could send (a wrong
  type or an absurd number in a store) gets 400; the log keeps the traceback, so a
  real bug stays visible.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
from dash.exceptions import CallbackException, DependencyException
from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider

log = logging.getLogger(__name__)

UPDATE_PATH = "/_dash-update-component"

#: Errors a callback raises when a value has a type or size no page would send.
BAD_VALUE_ERRORS = (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError)


class BadPayload(ValueError):
    """A callback request body that is not what Dash's renderer sends."""


def _no_constants(name: str) -> Any:
    raise BadPayload(f"{name} is not a JSON value")


def _dep_list(body: dict[str, Any], key: str) -> None:
    items = body.get(key, [])
    if not isinstance(items, list):
        raise BadPayload(f"{key} must be a list")
    for item in items:
        # A pattern-matching input is a list of dependencies; the app has none, but
        # accept the shape rather than guess.
        for dep in item if isinstance(item, list) else [item]:
            if not isinstance(dep, dict) or not isinstance(dep.get("property"), str):
                raise BadPayload(f"each of {key} needs an id and a property")
            if not isinstance(dep.get("id"), str | dict):
                raise BadPayload(f"each of {key} needs an id and a property")


def check_update_body(body: Any, outputs: set[str]) -> None:
    """Raise :class:`BadPayload` unless ``body`` is a callback request of this app.

    Args:
        body: The parsed request body (None: it was not JSON).
        outputs: The output specs of the app's server callbacks (``callback_map``).
    """
    if not isinstance(body, dict):
        raise BadPayload("the body must be a JSON object")
    output = body.get("output")
    if not isinstance(output, str) or output not in outputs:
        raise BadPayload("unknown callback output")
    if not isinstance(body.get("outputs"), dict | list):
        raise BadPayload("outputs must be an object or a list")
    _dep_list(body, "inputs")
    _dep_list(body, "state")
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        raise BadPayload("changedPropIds must be a list of strings")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing ``NaN`` and ``Infinity`` (not JSON; no page sends them).

    The server parses each request body once with it (``request.get_json`` caches
    the result for Dash), so the guard below checks the parsed body, not a copy.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _no_constants)
        return super().loads(s, **kwargs)


def _bad_request(message: str) -> Response:
    return Response(message + "\n", status=400, mimetype="text/plain")


def install(app: dash.Dash) -> None:
    """Guard ``app``'s Flask server (call after every callback is registered)."""
    server: Flask = app.server
    server.json = StrictJSONProvider(server)
    outputs = set(app.callback_map)

    @server.before_request
    def _check_update() -> Response | None:
        if request.method != "POST" or request.path != UPDATE_PATH:
            return None
        try:
            # A body nested too deep for the parser is as bad as one that is not JSON.
            body = request.get_json(silent=True)
        except RecursionError:
            body = None
        try:
            check_update_body(body, outputs)
        except BadPayload as exc:
            return _bad_request(f"bad callback request: {exc}")
        return None

    @server.errorhandler(DependencyException)
    def _unknown_asset(_exc: DependencyException) -> Response:
        return Response("not found\n", status=404, mimetype="text/plain")

    for kind in BAD_VALUE_ERRORS:
        server.register_error_handler(kind, _bad_value)
    server.register_error_handler(CallbackException, _bad_spec)


def _bad_spec(exc: CallbackException) -> Response:
    """400 for outputs/inputs that do not match the callback (Dash's own check).

    Its subclasses (a callback returning something Dash cannot send) are bugs of
    this app and stay 500s.
    """
    if type(exc) is CallbackException and request.path == UPDATE_PATH:
        return _bad_request(f"bad callback request: {exc}")
    log.error("error on %s", request.path, exc_info=exc)
    return Response("internal server error\n", status=500, mimetype="text/plain")


def _bad_value(exc: Exception) -> Response:
    """400 for a callback that failed on a value; other requests keep their 500."""
    if request.path != UPDATE_PATH:
        log.error("error on %s", request.path, exc_info=exc)
        return Response("internal server error\n", status=500, mimetype="text/plain")
    log.warning("callback refused a value it cannot use", exc_info=exc)
    return _bad_request("bad callback request: a value has the wrong type or size")
