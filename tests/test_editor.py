"""Editing in place, look_at links and what changed: loader, helpers and HTTP tests."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from vmaviz.scenario import load_scenario
from vmaviz.scenario.errors import ScenarioErrors
from vmaviz.scenario.loader import load_scenario_text
from vmaviz.scenario.schema import MAX_FILE_BYTES, LookAtTarget
from vmaviz.ui.app_factory import create_app
from vmaviz.ui.changes import step_changes
from vmaviz.ui.editor import (
    MAX_LINK_YAML_CHARS,
    check_text,
    decode_yaml,
    encode_yaml,
    link_param,
)
from vmaviz.ui.look_at import look_at_rows
from vmaviz.ui.session import SCENARIO_DIR, build_run
from vmaviz.ui.testing import Browser

ROOT = Path(__file__).resolve().parents[1]

HEAD = "name: t\ndescription: d\n"
THREADS = "threads:\n  - name: T0\n    ops: [exit]\n"


def errors_of(text: str) -> list[str]:
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, "x.yaml")
    return str(info.value).splitlines()


# =====================================================================
# Loader: the look_at forms
# =====================================================================


def test_look_at_accepts_strings_events_and_steps() -> None:
    text = (
        HEAD
        + "look_at:\n"
        + "  - plain text\n"
        + '  - {text: "the abort", event: "lock_vma_under_rcu:abort:*", thread: T0}\n'
        + "  - text: a fixed step\n    step: 3\n"
        + THREADS
    )
    sc = load_scenario_text(text, "x.yaml")
    assert sc.look_at == ["plain text", "the abort", "a fixed step"]
    assert sc.look_at_targets == [
        None,
        LookAtTarget(event="lock_vma_under_rcu:abort:*", thread="T0"),
        LookAtTarget(step=3),
    ]


def test_look_at_of_plain_strings_has_no_targets() -> None:
    sc = load_scenario_text(HEAD + "look_at: [a, b]\n" + THREADS, "x.yaml")
    assert sc.look_at == ["a", "b"] and sc.look_at_targets == []


@pytest.mark.parametrize(
    ("bullet", "expected"),
    [
        ("{text: t, event: x, step: 2}", "x.yaml:4: look_at[0]: give exactly one of"),
        ("{text: t}", "x.yaml:4: look_at[0]: give exactly one of"),
        ("{text: t, step: 2, thread: T0}", "x.yaml:4: look_at[0].thread: 'thread' goes with"),
        ("{text: t, event: x, thread: T9}", "x.yaml:4: look_at[0].thread: no thread named 'T9'"),
        ("{text: t, evnt: x}", "x.yaml:4: look_at[0].evnt: unknown key 'evnt' (did you mean"),
        ("{event: x}", "x.yaml:4: look_at[0].text: missing required field 'text'"),
        ("{text: t, step: -1}", "x.yaml:4: look_at[0].step:"),
        ("{text: t, event: [1]}", "x.yaml:4: look_at[0].event:"),
    ],
)
def test_look_at_errors_name_file_line_and_field(bullet: str, expected: str) -> None:
    lines = errors_of(HEAD + "look_at:\n  - " + bullet + "\n" + THREADS)
    assert any(line.startswith(expected) for line in lines), lines


def test_look_at_pattern_length_is_bounded() -> None:
    lines = errors_of(HEAD + "look_at:\n  - {text: t, event: " + "a" * 300 + "}\n" + THREADS)
    assert any("look_at[0].event:" in x and "MAX_NAME_CHARS" in x for x in lines), lines


def test_bundled_look_at_links_resolve_to_matching_steps() -> None:
    """At least five bundled scenarios have targets, and each one found is a step
    whose event code matches the bullet's pattern (and thread)."""
    from fnmatch import fnmatchcase

    with_targets = 0
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        sc = load_scenario(path)
        if not sc.look_at_targets:
            continue
        with_targets += 1
        if sc.op_count() > 2000:
            continue
        run = build_run("t", sc, sc.kernel.mode, sc.kernel.arch)
        rows = look_at_rows(run, sc)
        assert len(rows) == len(sc.look_at)
        found = 0
        for target, row in zip(sc.look_at_targets, rows, strict=True):
            if target is None or row is None:
                continue
            found += 1
            if target.event is not None:
                code = run.engine.trace.codes[int(run.code[row])]
                assert fnmatchcase(code, target.event), (path.name, code, target)
                if target.thread is not None:
                    assert run.thread_name(int(run.tid[row])) == target.thread
                # The first one: no earlier step matches.
                earlier = [
                    r
                    for r in range(row)
                    if fnmatchcase(run.engine.trace.codes[int(run.code[r])], target.event)
                    and (target.thread is None or run.thread_name(int(run.tid[r])) == target.thread)
                ]
                assert earlier == []
        assert found >= 2, path.name
    assert with_targets >= 5


# =====================================================================
# The permalink's compressed scenario
# =====================================================================


def test_yaml_param_round_trips_and_is_url_safe() -> None:
    text = (SCENARIO_DIR / "first-fault-anon-vma.yaml").read_text()
    value = encode_yaml(text)
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(value) < len(text)
    assert decode_yaml(value) == text


def test_yaml_param_refuses_bad_and_oversized_input() -> None:
    with pytest.raises(ValueError, match="longer than"):
        decode_yaml("A" * (MAX_LINK_YAML_CHARS + 1))
    with pytest.raises(ValueError, match="base64url"):
        decode_yaml("*not*base64*")
    with pytest.raises(ValueError, match="compressed"):
        decode_yaml(base64.urlsafe_b64encode(b"not zlib data at all").decode())
    # A bomb: a short link that inflates past the upload limit is stopped there.
    bomb = base64.urlsafe_b64encode(zlib.compress(b"#" * (MAX_FILE_BYTES + 100), 9)).decode()
    assert len(bomb) < MAX_LINK_YAML_CHARS
    with pytest.raises(ValueError, match="larger than"):
        decode_yaml(bomb.rstrip("="))


def test_check_text_reports_upload_style_errors_and_lines() -> None:
    good = (SCENARIO_DIR / "first-fault-anon-vma.yaml").read_text()
    message, bad = check_text(good)
    assert bad == [] and "No errors" in json.dumps(message, default=str)
    broken = good.replace("page: 1, access: write", "page: 1, acces: write")
    message, bad = check_text(broken)
    line = broken.splitlines().index(next(x for x in broken.splitlines() if "acces:" in x)) + 1
    assert bad == [line]
    assert f"edited.yaml:{line}:" in str(message)


# =====================================================================
# What changed
# =====================================================================


def test_step_changes_names_changed_vma_fields_locks_and_counters() -> None:
    sc = load_scenario(SCENARIO_DIR / "first-fault-anon-vma.yaml")
    run = build_run("t", sc, sc.kernel.mode, sc.kernel.arch)
    from vmaviz.engine.view import snapshot

    # The step that allocates the anon_vma changes the VMA's anon_vma column (9).
    row = run.engine.trace.codes.index("anon_vma_prepare")
    step = int(next(r for r in range(run.steps) if int(run.code[r]) == row))
    prev = snapshot(run.engine.state_at(step))
    cur = snapshot(run.engine.state_at(step + 1))
    changes = step_changes(prev, cur)
    vid = str(cur["vmas"][0]["id"])
    assert prev["vmas"][0]["anon_vma"] is None and cur["vmas"][0]["anon_vma"] is not None
    assert 9 in changes["vmas"][vid]
    # Nothing changed between a snapshot and itself; the initial state has no diff.
    assert step_changes(cur, cur) == {}
    assert step_changes(None, cur) == {}
    # The fault counters move on the step that counts the fault.
    counted = [
        r
        for r in range(run.steps)
        if step_changes(snapshot(run.engine.state_at(r)), snapshot(run.engine.state_at(r + 1))).get(
            "counters"
        )
    ]
    assert counted, "no step moved a counter"


# =====================================================================
# HTTP
# =====================================================================


# app, client: the HTTP app and its test client (tests/conftest.py).


def test_editor_fills_checks_and_runs(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=first-fault-anon-vma")
    res = tab.call(
        "editor-text",
        "value",
        {"editor-details.n_clicks": 1},
        {"scenario.value": "first-fault-anon-vma"},
    )
    text = res["editor-text"]["value"]
    assert text == (SCENARIO_DIR / "first-fault-anon-vma.yaml").read_text()
    # An error as you type: upload-style message, its line marked in the gutter.
    broken = text.replace("pages: 16", "pages: sixteen")
    res = tab.call("editor-check-out", "children", {"editor-check.data": broken})
    shown = json.dumps(res)
    line = broken.splitlines().index("      pages: sixteen") + 1
    assert f"edited.yaml:{line}: mm.vmas[0].pages" in shown
    assert shown.count("editor-line-bad") == 1
    # Run refuses the broken text, then runs the fixed one as an upload.
    res = tab.call(
        "editor-status", "children", {"editor-run.n_clicks": 1}, {"editor-text.value": broken}
    )
    assert "Fix the errors" in json.dumps(res)
    fixed = text.replace("pages: 16", "pages: 32")
    res = tab.call(
        "editor-status", "children", {"editor-run.n_clicks": 2}, {"editor-text.value": fixed}
    )
    ref = res["scenario"]["value"]
    assert ref.startswith("upload:")
    assert any(o["value"] == ref for o in res["scenario"]["options"])
    tab.call("scenario", "value", {"scenario.value": ref})
    tab.configure()
    tab.press("step-end")
    assert tab.props[("run", "data")]["config"]["scenario"] == ref
    # The edit shows: the VMA is 32 pages now.
    assert "32 pages" in tab.side_text("vma-table")
    # The link the browser adds: the compressed text of that upload.
    link = tab.call("editor-link", "data", {"scenario.value": ref})["editor-link"]["data"]
    assert link["ref"] == ref and decode_yaml(link["yaml"]) == fixed


def test_permalink_with_yaml_reopens_the_edited_scenario(app: Any, client: FlaskClient) -> None:
    text = (
        (SCENARIO_DIR / "first-fault-anon-vma.yaml")
        .read_text()
        .replace("name: first-fault-anon-vma", "name: edited-by-link")
    )
    # A fresh server (another cache) has never seen the upload: the link carries it.
    other = create_app({"CACHE_TYPE": "SimpleCache"})
    with other.server.test_client() as c:
        tab = Browser(c)
        tab.open(f"?scenario=upload:{'0' * 64}&yaml={encode_yaml(text)}&step=3")
        assert tab.props[("scenario", "value")].startswith("upload:")
        assert "edited-by-link" in json.dumps(tab.props[("scenario-info", "children")])
        assert tab.cursor == 4
        # A refused yaml says why, and falls back to the default scenario.
        bad = Browser(c)
        bad.open(f"?scenario=upload:{'1' * 64}&yaml=%21%21%21")
        assert "The link's scenario is refused" in bad.text("upload-errors")


def test_too_long_edited_scenario_falls_back_to_the_upload_reference(app: Any) -> None:
    store = app.server.extensions["vmaviz_store"]
    import random

    rng = random.Random(1)
    filler = "".join(
        f"# {''.join(rng.choice('abcdefghijklmnop') for _ in range(60))}\n" for _ in range(400)
    )
    text = (SCENARIO_DIR / "first-fault-anon-vma.yaml").read_text() + filler
    ref, _ = store.save_upload(text, "big.yaml")
    param = link_param(store, ref)
    assert "yaml" not in param and "more than the 6,000" in param["note"]
    assert link_param(store, "default") == {}


def test_look_at_links_go_to_their_step(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=first-fault-anon-vma")
    info = json.dumps(tab.props[("scenario-info", "children")])
    assert "look-at-link" in info
    steps = [int(s) for s in __import__("re").findall(r'"data-step": "(\d+)"', info)]
    assert steps, info
    res = tab.call("cursor", "data", {"timeline-click.data": {"side": "left", "step": steps[0]}})
    assert res["cursor"]["data"] == steps[0] + 1
    tab.show()
    assert "no_anon_vma" in tab.side_text("narration")


def test_step_html_carries_what_changed(client: FlaskClient) -> None:
    tab = Browser(client)
    tab.open("?scenario=first-fault-anon-vma")
    sc = load_scenario(SCENARIO_DIR / "first-fault-anon-vma.yaml")
    run = build_run("t", sc, sc.kernel.mode, sc.kernel.arch)
    code = run.engine.trace.codes.index("anon_vma_prepare")
    step = int(next(r for r in range(run.steps) if int(run.code[r]) == code))
    tab.props[("cursor", "data")] = step + 1
    res = tab.show()
    changed = res["step-html"]["data"]["changed"]["left"]
    assert any(9 in cols for cols in changed["vmas"].values())
    # Small: names and ids, not panels.
    assert len(json.dumps(changed)) < 2000
    # Stepping forward one reuses the snapshot kept for this session (same answer).
    tab.props[("cursor", "data")] = step + 2
    again = tab.show()["step-html"]["data"]["changed"]["left"]
    assert "vmas" not in again or all(9 not in c for c in again["vmas"].values())


def test_url_params_are_parsed_only(client: FlaskClient) -> None:
    """A query string's yaml is parsed by the safe loader: a YAML tag that would run
    code in an unsafe loader is refused with a message."""
    tab = Browser(client)
    evil = "!!python/object/apply:os.system ['echo hi']\n"
    tab.open(f"?yaml={encode_yaml(evil)}")
    assert "The link's scenario has errors" in tab.text("upload-errors")
    assert tab.props[("scenario", "value")] == "default"
