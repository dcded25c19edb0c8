"""What goes over the wire on each step: plain JSON, hashes, and patches of what changed.

Dash serialises component trees through ``to_plotly_json`` and a JSON encoder with a
Python ``default`` hook, which costs about 50 µs per component; a step's views have
a few thousand. :func:`plain` converts a tree once into dicts and lists (the exact
JSON Dash would send), after which hashing, comparing and sending it are cheap.

:func:`patch_between` turns two versions of a figure into a :class:`dash.Patch` with
only the leaves that changed, so a step that changes one bar does not resend the
figure. (The step's text panels go as HTML instead: :mod:`vmaviz.ui.html_render`.)
"""

from __future__ import annotations

import hashlib
import json
import pickle
from typing import Any

from dash import Patch
from dash.development.base_component import Component
from plotly.basedatatypes import BaseFigure

#: Instance attributes of a Dash component that are bookkeeping, not props.
_NOT_PROPS = frozenset({"available_properties", "available_wildcard_properties"})

#: A patch with more operations than this is sent as the whole value instead.
MAX_PATCH_OPS = 120


_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """``value`` with every Dash component (and figure) replaced by its JSON form."""
    if isinstance(value, Component):
        props = {
            k: v if type(v) in _SCALARS else plain(v)
            for k, v in value.__dict__.items()
            if k[0] != "_" and k not in _NOT_PROPS
        }
        return {"props": props, "type": value._type, "namespace": value._namespace}
    if isinstance(value, list | tuple):
        return [v if type(v) in _SCALARS else plain(v) for v in value]
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else plain(v) for k, v in value.items()}
    if isinstance(value, BaseFigure):
        # plotly's encoder handles numpy arrays; json parses back at C speed.
        return json.loads(value.to_json())
    to_json = getattr(value, "to_plotly_json", None)
    if to_json is not None:
        return plain(to_json())
    return value


def digest(value: Any) -> str:
    """A short hash of plain data (dicts with the same insertion order hash alike).

    Only ever compared with hashes made by the same code from the same kind of data,
    so a cheap pickle of the value does: a false "changed" just redraws a view.
    """
    return hashlib.blake2b(pickle.dumps(value, 5), digest_size=8).hexdigest()


def patch_between(old: Any, new: Any, max_ops: int = MAX_PATCH_OPS) -> Patch | None:
    """A :class:`~dash.Patch` turning ``old`` into ``new`` (plain JSON values).

    Returns:
        The patch, or ``None`` when it would not be smaller than sending ``new``
        (a different shape at the top, or more than ``max_ops`` changes).
    """
    ops: list[tuple[str, list[Any], Any]] = []

    def walk(o: Any, n: Any, path: list[Any]) -> bool:
        """Record the changes; False when there are too many."""
        if len(ops) > max_ops:
            return False
        if type(o) is not type(n):
            ops.append(("set", path, n))
            return True
        if isinstance(n, dict):
            if "namespace" in n and (
                o.get("type") != n.get("type") or o.get("namespace") != n.get("namespace")
            ):
                ops.append(("set", path, n))
                return True
            for k, v in n.items():
                if k not in o:
                    ops.append(("set", [*path, k], v))
                elif o[k] != v and not walk(o[k], v, [*path, k]):
                    return False
            for k in o:
                if k not in n:
                    ops.append(("del", [*path, k], None))
            return True
        if isinstance(n, list):
            if len(o) != len(n):
                ops.append(("set", path, n))
                return True
            for i, (a, b) in enumerate(zip(o, n, strict=True)):
                if a != b and not walk(a, b, [*path, i]):
                    return False
            return True
        if o != n:
            ops.append(("set", path, n))
        return True

    if not walk(old, new, []) or len(ops) > max_ops:
        return None
    if any(not path for _, path, _ in ops):
        return None
    patch = Patch()
    for op, path, value in ops:
        target: Any = patch
        for key in path[:-1]:
            target = target[key]
        if op == "set":
            target[path[-1]] = value
        else:
            del target[path[-1]]
    return patch
