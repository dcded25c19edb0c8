"""Requests no page of the app sends get 4xx, never a 500 (issue 11, item 10).

A malformed callback body, an unknown component-suite path, and forged values in
every input and state of every server callback: the answer is 200/204 (the value
was usable) or 400, and the tab keeps working afterwards.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.ui.app_factory import create_app
from vmaviz.ui.testing import Browser

UPDATE = "/_dash-update-component"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    cache = tmp_path_factory.mktemp("guard") / "cache"
    app = create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(cache)})
    with app.server.test_client() as c:
        yield c


def post(client: FlaskClient, body: str | bytes) -> int:
    return client.post(UPDATE, data=body, content_type="application/json").status_code


def step_body(tab: Browser, cursor: Any) -> str:
    d = tab.dep("step-html", "data")
    body = tab.payload(d, ["cursor.data"])
    for entry in body["inputs"]:
        if isinstance(entry, dict) and entry["id"] == "cursor":
            entry["value"] = cursor
    return json.dumps(body)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b"[]",
        b'"text"',
        b"[" * 100_000,
        json.dumps({"output": "nope.data", "outputs": {}, "inputs": []}).encode(),
        json.dumps({"output": "cursor.data", "outputs": 1, "inputs": []}).encode(),
        json.dumps({"output": "cursor.data", "outputs": {}, "inputs": [1]}).encode(),
        json.dumps({"output": "cursor.data", "outputs": {}, "inputs": [], "state": {}}).encode(),
        json.dumps(
            {"output": "cursor.data", "outputs": {}, "inputs": [], "changedPropIds": [1]}
        ).encode(),
    ],
    ids=[
        "text",
        "empty",
        "list",
        "string",
        "deep",
        "unknown",
        "outputs",
        "inputs",
        "state",
        "changed",
    ],
)
def test_a_malformed_callback_body_is_400(client: FlaskClient, body: bytes) -> None:
    assert post(client, body) == 400


def test_nan_and_infinity_in_a_store_are_400_before_any_work(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default")
    good = step_body(tab, 3)
    assert post(client, good) == 200
    for constant in ("Infinity", "-Infinity", "NaN"):
        assert post(client, good.replace('"value": 3', f'"value": {constant}', 1)) == 400


@pytest.mark.parametrize("cursor", [1e308, -(10**30), 10**400, "7", [7], {"n": 7}, True, None])
def test_an_absurd_cursor_is_refused_or_clamped(client: FlaskClient, cursor: Any) -> None:
    tab = Browser(client)
    tab.open("?scenario=default")
    assert post(client, step_body(tab, cursor)) in (200, 204, 400)
    tab.press("step-fwd")
    assert "step 0 /" in tab.text("step-status")


@pytest.mark.parametrize(
    "path",
    [
        "/_dash-component-suites/nope/x.js",
        "/_dash-component-suites/dash/nope.js",
        "/_dash-component-suites/dash/../../etc/passwd",
        "/_dash-component-suites/plotly/package_data/nope.min.js",
    ],
)
def test_an_unknown_component_suite_path_is_404(client: FlaskClient, path: str) -> None:
    res = client.get(path)
    assert res.status_code == 404
    assert b"Traceback" not in res.get_data()


WEIRD: list[Any] = [
    None,
    -1,
    0,
    1e308,
    -(10**30),
    10**30,
    "x",
    "9" * 60,
    "",
    [],
    {},
    True,
    {"a": [1]},
    [[[]]],
    0.5,
    {"move": "x", "at": None},
    {"step": -5, "at": 1},
    ["ALL"],
]


def _forge(entries: list[Any], rng: random.Random) -> None:
    for entry in entries:
        for e in entry if isinstance(entry, list) else [entry]:
            if rng.random() < 0.5:
                e["value"] = rng.choice(WEIRD)


def test_forged_values_in_every_callback_are_never_a_500(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=default")
    tab.press("step-fwd")
    rng = random.Random(11)
    server_deps = [d for d in tab.deps if not d.get("clientside_function")]
    assert len(server_deps) >= 8
    codes: dict[int, int] = {}
    for d in server_deps:
        for _ in range(25):
            body: dict[str, Any] = tab.payload(d, [])
            _forge(body["inputs"], rng)
            _forge(body["state"], rng)
            first = body["inputs"][0] if body["inputs"] else None
            if isinstance(first, dict):
                ident = first["id"]
                ident = json.dumps(ident) if isinstance(ident, dict) else ident
                body["changedPropIds"] = [f"{ident}.{first['property']}"]
            code = post(client, json.dumps(body))
            codes[code] = codes.get(code, 0) + 1
            assert code in (200, 204, 400), (d["output"], body)
    assert codes.get(400, 0) > 0 and codes.get(200, 0) + codes.get(204, 0) > 0
    # The tab that was open meanwhile still steps.
    tab.press("step-fwd")
    assert "step 1 /" in tab.text("step-status")


def test_the_real_pages_requests_pass_the_guard(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=mprotect-vs-fault&view=compare")
    for _ in range(3):
        tab.press("step-fwd")
    assert "mmap_lock: step" in tab.text("step-status")
    tab.press("step-back")
    assert "per-VMA: step" in tab.text("step-status")
