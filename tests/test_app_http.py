"""The Dash app over HTTP, through Flask's test client (no browser)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.ui.app_factory import TITLE, create_app

FIGURE_IDS = ("address-space-graph", "maple-tree-graph")


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    app = create_app()
    with app.server.test_client() as c:
        yield c


def _ids(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        props = node.get("props")
        if isinstance(props, dict) and isinstance(props.get("id"), str):
            found.add(props["id"])
        for value in node.values():
            found |= _ids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _ids(value)
    return found


def test_index(client: FlaskClient) -> None:
    res = client.get("/")
    assert res.status_code == 200
    body = res.get_data(as_text=True)
    assert f"<title>{TITLE}</title>" in body
    assert "vmaviz.css" in body  # the assets/ stylesheet is served locally
    assert "cdn" not in body.lower()


def test_layout_has_figures(client: FlaskClient) -> None:
    res = client.get("/_dash-layout")
    assert res.status_code == 200
    layout = res.get_json()
    ids = _ids(layout)
    assert set(FIGURE_IDS) | {"vma-table", "mmap-button", "added-mmaps"} <= ids
    text = json.dumps(layout)
    assert "leaf64" in text and "arange64" in text and "[heap]" in text


def test_dependencies(client: FlaskClient) -> None:
    res = client.get("/_dash-dependencies")
    assert res.status_code == 200
    deps = res.get_json()
    assert len(deps) == 1
    assert "maple-tree-graph.figure" in deps[0]["output"]


def _post_mmap(client: FlaskClient, clicks: int, pages: Any, added: list[Any]) -> dict[str, Any]:
    (dep,) = client.get("/_dash-dependencies").get_json()
    outputs = [
        {"id": part.split(".")[0], "property": part.split(".")[1]}
        for part in dep["output"].strip(".").split("...")
    ]
    payload = {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [
            {"id": "mmap-button", "property": "n_clicks", "value": clicks},
            {"id": "reset-button", "property": "n_clicks", "value": 0},
        ],
        "state": [
            {"id": "mmap-pages", "property": "value", "value": pages},
            {"id": "added-mmaps", "property": "data", "value": added},
        ],
        "changedPropIds": ["mmap-button.n_clicks"],
    }
    res = client.post("/_dash-update-component", json=payload)
    assert res.status_code == 200, res.get_data(as_text=True)
    response: dict[str, Any] = res.get_json()["response"]
    return response


def test_mmap_callback_places_topdown(client: FlaskClient) -> None:
    out = _post_mmap(client, 1, 16, [])
    added = out["added-mmaps"]["data"]
    # Highest hole below ld.so that fits 16 pages: the 51-page hole above libc .data.
    assert added == [["mmap #1", 0x7F3A22E1F000, 0x7F3A22E2F000]]
    assert "mmap #1: 16 pages at 0x7f3a22e1f000" in out["status"]["children"]
    assert "mmap #1" in json.dumps(out["maple-tree-graph"]["figure"])

    # 40 pages no longer fit there (35 left): next hole down, just below libc.
    again = _post_mmap(client, 2, 40, added)
    assert again["added-mmaps"]["data"][1] == ["mmap #2", 0x7F3A22C00000, 0x7F3A22C28000]


def test_mmap_callback_rejects_bad_pages(client: FlaskClient) -> None:
    out = _post_mmap(client, 1, -3, [])
    assert out["added-mmaps"]["data"] == []
    assert "pages must be" in out["status"]["children"]
