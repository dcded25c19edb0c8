"""Drive the app's callbacks over HTTP, as the browser does (tests and ``bench ui``).

:class:`Browser` plays one browser tab against a Flask test client: it reads
``/_dash-dependencies``, builds the ``/_dash-update-component`` payloads the Dash
renderer would send, and keeps the props the responses set (the session id, the
``#run`` store, the cursor, ``#sent``), so a test can step through a scenario
without Chromium.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from flask.testing import FlaskClient

from vmaviz.ui.html_render import text_of

SIDE_KINDS = (
    "narration",
    "mmap-lock",
    "vma-table",
    "threads",
    "rcu",
    "violations",
    "address-space",
    "maple-tree",
    "timeline",
)


def _parse_id(text: str) -> Any:
    return json.loads(text) if text.startswith("{") else text


def _outputs(spec: str, primary: bool = False) -> list[tuple[Any, str]]:
    """``..a.b...c.d@hash..`` -> ``[(id, prop), ...]`` (``primary``: skip ``@`` ones)."""
    spec = spec.removeprefix("..").removesuffix("..") if spec.startswith("..") else spec
    out = []
    for part in spec.split("..."):
        ident, prop = part.rsplit(".", 1)
        if primary and "@" in prop:
            continue
        out.append((_parse_id(ident), prop.split("@", 1)[0]))
    return out


def _generic(prop_id: str) -> str:
    """``{"side":"left","type":"timeline"}.figure`` -> the same with ``"side":["ALL"]``."""
    ident, _, prop = prop_id.rpartition(".")
    if not ident.startswith("{"):
        return prop_id
    parsed = json.loads(ident)
    for k in parsed:
        if k != "type":
            parsed[k] = ["ALL"]
    return f"{_key(parsed)}.{prop}"


def _key(ident: Any) -> str:
    if isinstance(ident, dict):
        return json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return str(ident)


class Browser:
    """One browser tab: its own session id and the props the server sent it.

    Args:
        client: A Flask test client of the app.
        session: The session id (default: a fresh one, as a page load makes).
    """

    def __init__(self, client: FlaskClient | HttpClient, session: str | None = None) -> None:
        self.client = client
        self.deps: list[dict[str, Any]] = client.get("/_dash-dependencies").get_json()
        self.props: dict[tuple[str, str], Any] = {
            ("session-id", "data"): session or uuid.uuid4().hex,
            ("sent", "data"): {},
            ("cursor", "data"): 0,
            ("log-side", "value"): "left",
            ("granularity", "value"): "step",
            ("bp-kinds", "value"): [],
            ("play-timer", "disabled"): True,
        }
        self.sides: list[str] = ["left"]
        self.last_bytes = 0
        self.last_seconds = 0.0
        self.figure_bytes = 0
        self.figure_seconds = 0.0
        self.nav_seq = 0
        #: DOM id -> the HTML the step callback last drew there.
        self.html: dict[str, str] = {}
        #: Pattern-matching ids on the page by their type (other than the sides'),
        #: for ALL inputs: the be-the-scheduler rows.
        self.patterns: dict[str, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------ plumbing

    def dep(self, output_id: str, prop: str, trigger: str | None = None) -> dict[str, Any]:
        """The callback that writes ``output_id.prop``.

        The one writing it whose inputs include ``trigger`` (``id.prop``), or else
        the one writing it as its own output (not ``allow_duplicate``).
        """
        target = _generic(f"{output_id}.{prop}")
        for d in self.deps:
            writes = any(f"{_key(i)}.{p}" == target for i, p in _outputs(d["output"]))
            ins = {f"{_key(_parse_id(x['id']))}.{x['property']}" for x in d["inputs"]}
            if writes and trigger is not None and _generic(trigger) in {_generic(x) for x in ins}:
                return d
        for d in self.deps:
            if any(i == output_id and p == prop for i, p in _outputs(d["output"], True)):
                return d
        raise KeyError(f"{output_id}.{prop}")

    def _value(self, ident: Any, prop: str) -> Any:
        return self.props.get((_key(ident), prop))

    def _expand(self, ident: Any, prop: str, with_value: bool) -> Any:
        """An input/output/state entry; ALL wildcards expand over the known sides."""
        if isinstance(ident, dict) and any(v == ["ALL"] for v in ident.values()):
            if "side" in ident:
                items = [{**ident, "side": s} for s in self.sides]
            else:
                items = list(self.patterns.get(str(ident.get("type")), []))
            return [
                {
                    "id": it,
                    "property": prop,
                    **({"value": self._value(it, prop)} if with_value else {}),
                }
                for it in items
            ]
        entry: dict[str, Any] = {"id": ident, "property": prop}
        if with_value:
            entry["value"] = self._value(ident, prop)
        return entry

    def payload(self, d: dict[str, Any], changed: list[str]) -> dict[str, Any]:
        """The request body the renderer sends to fire callback ``d`` with this tab's props."""
        outs = [self._expand(i, p, False) for i, p in _outputs(d["output"])]
        return {
            "output": d["output"],
            "outputs": outs if len(outs) > 1 or d["output"].startswith("..") else outs[0],
            "inputs": [self._expand(_parse_id(x["id"]), x["property"], True) for x in d["inputs"]],
            "state": [self._expand(_parse_id(x["id"]), x["property"], True) for x in d["state"]],
            "changedPropIds": changed,
        }

    def call(
        self,
        output_id: str,
        prop: str,
        changed: Mapping[str, Any],
        set_props: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fire the callback writing ``output_id.prop`` after setting ``changed``.

        Args:
            output_id, prop: Identify the callback by one of its outputs.
            changed: ``"id.prop" -> value`` of the inputs that changed (the trigger).
            set_props: Other ``"id.prop" -> value`` to set first (not triggers).

        Returns:
            The ``response`` dict of the server (also merged into :attr:`props`).
        """
        for name, value in {**(set_props or {}), **changed}.items():
            ident, p = name.rsplit(".", 1)
            self.props[(ident, p)] = value
        d = self.dep(output_id, prop, next(iter(changed), None))
        payload = self.payload(d, list(changed))
        t0 = time.perf_counter()
        res = self.client.post("/_dash-update-component", json=payload)
        self.last_seconds = time.perf_counter() - t0
        # Closing is what a server does once the response is sent (it runs the
        # step's deferred garbage collection: session.paused_gc).
        close = getattr(res, "close", None)
        if callable(close):
            close()
        if res.status_code == 204:
            self.last_bytes = 0
            return {}
        if res.status_code != 200:
            raise AssertionError(f"{res.status_code}: {res.get_data(as_text=True)[:2000]}")
        self.last_bytes = len(res.get_data())
        body = res.get_json()
        response: dict[str, Any] = body.get("response", {})
        for ident, props in response.items():
            for p, value in props.items():
                old = self.props.get((ident, p))
                if (
                    isinstance(value, dict)
                    and "__dash_patch_update" in value
                    and old is not None
                    and not (isinstance(old, dict) and "__dash_patch_update" in old)
                ):
                    # (A prop this tab never received, like a figure inside #body,
                    # keeps the patch itself.)
                    value = apply_patch(old, value)
                self.props[(ident, p)] = value
        return response

    # ------------------------------------------------------------ what a user does

    def open(self, search: str = "") -> dict[str, Any]:
        """Load the page (with a permalink query string): controls, then the run."""
        sel = self.call("scenario", "value", {"url.search": search})
        return self.configure(sel)

    def configure(self, sel: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Fire ``load_run`` with the current control values, then the first step."""
        changed = {}
        for ident in (
            "scenario",
            "mode",
            "arch",
            "cpus",
            "seed",
            "view",
            "patches",
            "compare-kind",
        ):
            changed[f"{ident}.value"] = self.props.get((ident, "value"))
        changed["sched.data"] = self.props.get(("sched", "data"))
        res = self.call("run", "data", changed)
        self.html.update(((res.get("delta-html") or {}).get("data") or {}).get("html") or {})
        info = self.props.get(("run", "data")) or {}
        self.sides = [s["side"] for s in info.get("sides", [])] or ["left"]
        return self.show()

    def select(self, **values: Any) -> dict[str, Any]:
        """Change controls (``scenario=``, ``mode=``, ``view=``...) as a user would."""
        if "scenario" in values:
            self.call("scenario", "value", {"scenario.value": values.pop("scenario")})
        for ident, value in values.items():
            self.props[(ident, "value")] = value
        return self.configure()

    def show(self) -> dict[str, Any]:
        """Fire the step callback for the current cursor (as a cursor change does).

        Then, when the step asked for figures, the figure callback, as the browser
        does; :attr:`last_seconds`/:attr:`last_bytes` stay those of the step callback
        and :attr:`figure_seconds`/:attr:`figure_bytes` are the figure callback's.
        """
        res = self.call("step-html", "data", {"cursor.data": self.cursor})
        step = (res.get("step-html") or {}).get("data") or {}
        drawn = step.get("html") or {}
        self.html.update(drawn)
        # What the browser's render does with the rest of the step (assets/vmaviz.js).
        if step.get("search"):
            self.props[("permalink-search", "data")] = step["search"]
        if "event-log" in drawn:
            self.props[("log-rows", "ids")] = [
                int(x) for x in re.findall(r"data-step='(\d+)'", drawn["event-log"])
            ]
        step_seconds, step_bytes = self.last_seconds, self.last_bytes
        self.figure_seconds, self.figure_bytes = 0.0, 0
        request = step.get("figures")
        if request:
            # Every figure counts as on screen here (assets/vmaviz.js: figureGate).
            figs = self.call("counters-graph", "figure", {"figure-go.data": request})
            self.figure_seconds, self.figure_bytes = self.last_seconds, self.last_bytes
            res = {**res, **figs}
        self.last_seconds, self.last_bytes = step_seconds, step_bytes
        return res

    def press(self, button: str, **set_props: Any) -> dict[str, Any]:
        """Click a navigation button (``step-fwd``, ``bp-run``...), then show the step.

        At "step" granularity the step buttons move the cursor in the browser
        (``assets/vmaviz.js``); this does the same here.
        """
        moves = {"step-fwd": 1, "step-back": -1, "step-fwd10": 10, "step-back10": -10}
        total = int((self.props.get(("run", "data")) or {}).get("total", 0))
        new: int | None = None
        if button == "step-start":
            new = 0
        elif button == "step-end":
            new = total
        elif button in moves and self.props.get(("granularity", "value")) == "step":
            new = max(0, min(total, self.cursor + moves[button]))
        elif button in moves:
            # Function/operation moves: the browser sends them as a nav-request.
            self.nav_seq += 1
            request = {"move": moves[button], "at": self.nav_seq}
            res = self.call("cursor", "data", {"nav-request.data": request})
            return self.show() if "cursor" in res else res
        if new is not None:
            if new == self.cursor:
                return {}
            self.props[("cursor", "data")] = new
            return self.show()
        clicks = (self.props.get((button, "n_clicks")) or 0) + 1
        extra = {f"{k.replace('__', '-')}": v for k, v in set_props.items()}
        res = self.call("cursor", "data", {f"{button}.n_clicks": clicks}, extra)
        if "cursor" in res:
            return self.show()
        return res

    def click_log_row(self, index: int) -> dict[str, Any]:
        """Click the event-log row of step ``index`` (assets/vmaviz.js sets log-click)."""
        self.nav_seq += 1
        res = self.call("cursor", "data", {"log-click.data": {"step": index, "at": self.nav_seq}})
        if "cursor" in res:
            return self.show()
        return res

    # ------------------------------------------------------------ be the scheduler

    def scheduler(self, on: bool = True) -> list[tuple[int, str]]:
        """Switch "be the scheduler" on and list the rows offered: (tid, text)."""
        self.call("bts-list", "children", {"bts-on.value": ["on"] if on else []})
        rows: list[tuple[int, str]] = []
        ids: list[dict[str, Any]] = []
        for node in layout_nodes(self.props.get(("bts-list", "children"))):
            ident = node["props"].get("id")
            if isinstance(ident, dict) and ident.get("type") == "bts-pick":
                ids.append(ident)
                rows.append((int(ident["tid"]), _text(node["props"].get("children"))))
        self.patterns["bts-pick"] = ids
        return rows

    def _after_pick(self, res: dict[str, Any]) -> dict[str, Any]:
        if "sched" in res:
            self.configure()
            self.scheduler()
        return res

    def _scheduler_on(self) -> None:
        if self.props.get(("bts-on", "value")) != ["on"] or "bts-pick" not in self.patterns:
            self.scheduler()

    def pick(self, tid: int) -> dict[str, Any]:
        """Click the row of thread ``tid`` (be the scheduler), then load the new run."""
        self._scheduler_on()
        ident = {"tid": tid, "type": "bts-pick"}
        self.props[(_key(ident), "n_clicks")] = 1
        res = self.call("sched", "data", {f"{_key(ident)}.n_clicks": 1})
        self.props[(_key(ident), "n_clicks")] = None
        return self._after_pick(res)

    def key(self, n: int) -> dict[str, Any]:
        """Press key ``n`` (1-9), as assets/scheduler.js reports it."""
        self._scheduler_on()
        self.nav_seq += 1
        return self._after_pick(
            self.call("sched", "data", {"bts-key.data": {"n": n, "at": self.nav_seq}})
        )

    def click_lane(self, step: int) -> dict[str, Any]:
        """Click the timeline bar of step ``step`` with "be the scheduler" on: the
        thread whose lane it is moves next (assets/lanes.js sets timeline-click)."""
        self._scheduler_on()
        self.nav_seq += 1
        click = {"side": "left", "step": step, "at": self.nav_seq}
        return self._after_pick(self.call("sched", "data", {"timeline-click.data": click}))

    def undo(self) -> dict[str, Any]:
        """Click "Undo choice"."""
        self._scheduler_on()
        clicks = (self.props.get(("bts-undo", "n_clicks")) or 0) + 1
        return self._after_pick(self.call("sched", "data", {"bts-undo.n_clicks": clicks}))

    def explore(self, polls: int = 600, wait: float = 0.1) -> dict[str, Any]:
        """Press Explore and poll until the search ends (at most ``polls`` polls).

        Returns the last poll's response; when it opened a counterexample, the
        page is reloaded with it (as the browser does).
        """
        clicks = (self.props.get(("explore-go", "n_clicks")) or 0) + 1
        self.call("explore-job", "data", {"explore-go.n_clicks": clicks})
        res: dict[str, Any] = {}
        for i in range(polls):
            if self.props.get(("explore-poll", "disabled")) is not False:
                break
            res = self.call("explore-progress", "children", {"explore-poll.n_intervals": i + 1})
            if self.props.get(("explore-poll", "disabled")):
                break
            time.sleep(wait)
        if "sched" in res:
            self.configure()
        return res

    @property
    def cursor(self) -> int:
        return int(self.props.get(("cursor", "data")) or 0)

    @property
    def session(self) -> str:
        return str(self.props[("session-id", "data")])

    def text(self, ident: str, prop: str = "children") -> str:
        """The visible text of a prop the server set (components flattened), or of
        the HTML the step callback drew into element ``ident``."""
        if prop == "children" and ident in self.html:
            return text_of(self.html[ident])
        return _text(self.props.get((ident, prop)))

    def side_text(self, kind: str, side: str = "left") -> str:
        return self.text(_key({"side": side, "type": kind}))


def apply_patch(target: Any, patch: dict[str, Any]) -> Any:
    """Apply a serialised :class:`dash.Patch` the way the renderer does (Assign, Delete)."""
    root = copy.deepcopy(target)
    for op in patch["operations"]:
        loc = op["location"]
        if not loc:
            root = op["params"].get("value")
            continue
        node = root
        for key in loc[:-1]:
            node = node[key]
        if op["operation"] == "Assign":
            node[loc[-1]] = op["params"]["value"]
        elif op["operation"] == "Delete":
            del node[loc[-1]]
        else:
            raise NotImplementedError(op["operation"])
    return root


def layout_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every component in a layout's JSON form (a dict with ``props``), depth first,
    wherever it stands: in ``children`` or in any other prop."""
    if isinstance(node, list):
        for item in node:
            yield from layout_nodes(item)
    elif isinstance(node, dict):
        props = node.get("props")
        if isinstance(props, dict):
            yield node
            node = props
        for value in node.values():
            yield from layout_nodes(value)


def find_node(layout: Any, ident: Any) -> dict[str, Any] | None:
    """The first component of ``layout`` (JSON form) whose id is ``ident``."""
    return next((n for n in layout_nodes(layout) if n["props"].get("id") == ident), None)


def _text(node: Any) -> str:
    if node is None:
        return ""
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list):
        return " ".join(t for t in (_text(n) for n in node) if t)
    if isinstance(node, dict):
        props = node.get("props")
        if isinstance(props, dict):
            return _text(props.get("children"))
    return ""


class HttpResponse:
    """The bits of a Flask test response :class:`Browser` uses, for a real server."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.body = body

    def get_data(self, as_text: bool = False) -> Any:
        return self.body.decode() if as_text else self.body

    def get_json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """A stand-in for Flask's test client that talks HTTP to a running server.

    Lets :class:`Browser` drive a real deployment, e.g. ``gunicorn -w 2 'app:server'``.
    """

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _open(self, request: Any) -> HttpResponse:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as res:
                return HttpResponse(res.status, res.read())
        except urllib.error.HTTPError as err:
            return HttpResponse(err.code, err.read())

    def get(self, path: str) -> HttpResponse:
        import urllib.request

        return self._open(urllib.request.Request(self.base_url + path))

    def post(self, path: str, json: Any = None) -> HttpResponse:
        import json as json_module
        import urllib.request

        body = json_module.dumps(json).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._open(req)
