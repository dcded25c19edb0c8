"""Dash ``html`` components as HTML text, for the views the browser redraws every step.

Why: a step used to send its panels as Dash components. The Dash renderer then
turned each of their hundreds of elements into a React component wired to its store,
and every later update notified all of them: on a big scenario that, not the server,
was most of a step's time. The panels are still built with the same
:mod:`vmaviz.ui.panels` functions (so they are tested as components), then written
out here as HTML text that ``assets/vmaviz.js`` (``render``) puts in place in one go.

Every text and attribute value is escaped, only known attributes are written, and
links may only be relative or http(s): names from an uploaded scenario can never
become markup or script.
"""

from __future__ import annotations

import html as _html
import json
import re
from collections.abc import Mapping
from typing import Any

from dash.development.base_component import Component

#: Elements written without a closing tag.
_VOID = frozenset({"br", "hr", "img", "input", "wbr", "col"})

#: Dash prop -> HTML attribute (props not named here, nor aria-*/data-*, are refused).
_ATTRS = {
    "className": "class",
    "title": "title",
    "role": "role",
    "colSpan": "colspan",
    "rowSpan": "rowspan",
    "htmlFor": "for",
    "tabIndex": "tabindex",
    "type": "type",
    "href": "href",
    "target": "target",
    "scope": "scope",
    "lang": "lang",
    "dir": "dir",
    "open": "open",
    "hidden": "hidden",
    "disabled": "disabled",
    "value": "value",
    "rel": "rel",
}
#: Props Dash components carry that have no place in the HTML.
_IGNORED = frozenset({"n_clicks", "n_clicks_timestamp", "key", "loading_state", "disable_n_clicks"})
#: CSS properties whose plain numbers take no unit (as React writes them).
_UNITLESS = frozenset(
    {"fontWeight", "opacity", "zIndex", "flex", "flexGrow", "flexShrink", "lineHeight", "order"}
)
_SAFE_HREF = re.compile(r"^(https?://|/|#|\?|\.{0,2}/)[^\s<>\"']*$|^[\w./#?=&%-]*$")


def dom_id(ident: Any) -> str:
    """The DOM id Dash gives a component id (a dict id: sorted keys, compact JSON)."""
    if isinstance(ident, Mapping):
        return json.dumps(dict(sorted(ident.items())), separators=(",", ":"))
    return str(ident)


def _kebab(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "-" + m.group(0).lower(), name)


def _style(style: Mapping[str, Any]) -> str:
    parts = []
    for k, v in style.items():
        if v is None:
            continue
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in _UNITLESS:
            v = f"{v}px"
        text = str(v)
        if any(c in text for c in ";{}<>\\") or "url(" in text.lower():
            raise ValueError(f"unsafe style value for {k}: {text!r}")
        parts.append(f"{_kebab(k)}:{text}")
    return ";".join(parts)


def _attrs(props: Mapping[str, Any]) -> str:
    out = []
    for key, value in props.items():
        if key == "children" or key in _IGNORED or value is None or value is False:
            continue
        if key == "id":
            name, text = "id", dom_id(value)
        elif key == "style":
            name, text = "style", _style(value)
        elif key.startswith(("aria-", "data-")) and re.fullmatch(r"[a-z][a-z0-9-]*", key):
            name, text = key, "" if value is True else str(value)
        elif key in _ATTRS:
            name = _ATTRS[key]
            text = "" if value is True else str(value)
            if name == "href" and not _SAFE_HREF.match(text):
                raise ValueError(f"refused link {text!r}")
        else:
            raise ValueError(f"no HTML attribute for the prop {key!r}")
        # Single quotes: the HTML travels inside JSON, where '"' would cost a backslash.
        out.append(f" {name}='{_html.escape(text, quote=True)}'")
    return "".join(out)


def markdown(text: str) -> str:
    """The small Markdown the narration uses: paragraphs, ``code``, **bold**, *em*."""
    paras = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    out = []
    for p in paras:
        pieces = re.split(r"(`[^`]*`)", p)
        rendered = []
        for piece in pieces:
            if len(piece) >= 2 and piece.startswith("`") and piece.endswith("`"):
                rendered.append(f"<code>{_html.escape(piece[1:-1])}</code>")
                continue
            esc = _html.escape(piece)
            esc = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"<strong>\1</strong>", esc)
            esc = re.sub(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])", r"<em>\1</em>", esc)
            rendered.append(esc)
        out.append("<p>" + "".join(rendered).replace("\n", " ") + "</p>")
    return "".join(out)


def _parts(node: Component) -> tuple[str, str, dict[str, Any]]:
    """``node``'s type, namespace and props, as ``to_plotly_json`` gives them.

    Read from the instance directly, in the same order (its props in the order of
    ``_prop_names``, then its ``data-*`` and ``aria-*``): ``to_plotly_json`` asks
    ``hasattr`` of every prop a component could have, which was a third of the
    time a step's panels took to write.
    """
    given = vars(node)
    props = {p: given[p] for p in node._prop_names if p in given}
    for key, value in given.items():
        if key.startswith(("data-", "aria-")):
            props[key] = value
    return str(node._type), str(node._namespace), props


def to_html(node: Any) -> str:
    """``node`` (a Dash component, its JSON form, a string, a number or a list) as HTML."""
    if node is None or node is False:
        return ""
    if isinstance(node, str):
        return _html.escape(node)
    if isinstance(node, int | float):
        return _html.escape(str(node))
    if isinstance(node, list | tuple):
        return "".join(to_html(n) for n in node)
    if isinstance(node, Component):
        kind, ns, props = _parts(node)
    else:
        if not isinstance(node, Mapping) or "type" not in node:
            raise TypeError(f"cannot write {type(node).__name__} as HTML")
        kind, ns = str(node["type"]), str(node.get("namespace", ""))
        props = dict(node.get("props") or {})
    if ns == "dash_core_components" and kind == "Markdown":
        children = props.pop("children", "")
        text = "".join(children) if isinstance(children, list) else str(children or "")
        props.pop("dangerously_allow_html", None)
        props.pop("link_target", None)
        return f"<div{_attrs(props)}>{markdown(text)}</div>"
    if ns != "dash_html_components" or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", kind):
        raise TypeError(f"cannot write {ns}.{kind} as HTML")
    tag = kind.lower()
    inner = to_html(props.get("children"))
    if tag in _VOID:
        return f"<{tag}{_attrs(props)}>"
    return f"<{tag}{_attrs(props)}>{inner}</{tag}>"


def text_of(markup: str) -> str:
    """The visible text of HTML from :func:`to_html` (tests and the HTTP test client)."""
    spaced = re.sub(r"<(br|/p|/li|/tr|/td|/th|/h\d|/div)\b[^>]*>", " ", markup)
    return re.sub(r"\s+", " ", _html.unescape(re.sub(r"<[^>]+>", " ", spaced))).strip()


__all__ = ["dom_id", "markdown", "text_of", "to_html"]
