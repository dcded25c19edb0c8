"""The timeline as data for the browser's canvas renderer: state in, JSON out.

Why not a Plotly figure: a figure of thousands of bars is laid out again in SVG on
every update, and above a few thousand items Plotly needs WebGL, whose context alone
took 3.5 s to create in headless Chromium (software GL). Perfetto's answer is the
one taken here: the browser draws the lanes on a 2-D canvas
(``assets/vmaviz.js``: ``Lanes``), summarises by zoom level (items under a pixel are
painted in priority order, so a short wait is never hidden by the running around
it), and moves the cursor on a second canvas without redrawing the lanes.

:func:`timeline_data` gives one run's lanes: row names, the drawing styles (colour,
hatch pattern and badge: every state is told apart without colour) and the items as
column arrays in µs. The step of each item is what a click jumps to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vmaviz.engine.flows import Flows
from vmaviz.engine.timeline import SEGMENT_KINDS, Timeline
from vmaviz.ui.palette import LOCK_MODE_STYLES, SEGMENT_STYLES, Style

#: Timeline x unit: time in ns is divided by this (µs).
TIME_SCALE = 1_000.0
#: At most this many items are sent; above it time is binned (:func:`_coarsen`).
ITEM_BUDGET = 200_000
#: Item labels (hover text) are sent up to this many items.
LABEL_LIMIT = 50_000
#: At most this many VMA lock rows (the busiest) under the thread rows.
MAX_LOCK_ROWS = 24

#: Lock modes drawn exactly like a thread segment kind (one legend entry for both).
_SHARED_LOCK_STYLES = ("mmap_read", "mmap_write", "vma_read")

#: When items must be binned, the state shown for a time bin: the most telling one
#: present in it (a short wait is not hidden by the running around it). Also the
#: order in which the browser paints, last first, for the same reason.
PRIORITY = (
    "wait_mmap_write",
    "wait_mmap_read",
    "wait_vma_write",
    "spinning",
    "blocked_other",
    "hold_mmap_write",
    "vma_write_locked",
    "mmap_write",
    "vma_write",
    "hold_mmap_read",
    "mmap_read",
    "hold_vma_read",
    "vma_read",
    "faulting",
    "running",
    "sleeping",
    "done",
)

_Arrays = tuple[Any, Any, Any, Any, Any]  # start, end, row, step, label index


def _lock_key(key: int, mode: str) -> str:
    if key == 0:
        return "mmap_write" if mode == "write" else "mmap_read"
    return {"read": "vma_read", "write": "vma_write"}.get(mode, "vma_write_locked")


def _pick_lock_rows(tl: Timeline, limit: int) -> tuple[list[Any], int]:
    """mmap_lock, then the ``limit`` busiest VMA locks; and how many were left out."""
    locks = [lk for lk in tl.locks if lk.key == 0]
    vma = [lk for lk in tl.locks if lk.key != 0 and lk.intervals]
    hidden = 0
    if len(vma) > limit:
        busy = sorted(vma, key=lambda lk: -sum(iv.end_ns - iv.start_ns for iv in lk.intervals))
        keep = {lk.key for lk in busy[:limit]}
        hidden = len(vma) - limit
        vma = [lk for lk in vma if lk.key in keep]
    return locks + sorted(vma, key=lambda lk: lk.key), hidden


def _columns(
    tl: Timeline, locks: Sequence[Any], lock_row0: int, keys: Sequence[str]
) -> tuple[dict[str, _Arrays], list[str]]:
    """Every segment and shown lock interval as numpy columns, split by drawing key,
    and the table of distinct labels the label column indexes.

    Column-wise (``zip(*segments)`` per thread) rather than item by item: a million
    segments take a fraction of a second.
    """
    starts: list[int] = []
    ends: list[int] = []
    kinds: list[str] = []
    steps: list[int] = []
    rows: list[int] = []
    labels: list[str] = []
    for r, th in enumerate(tl.threads):
        if th.segments:
            s, e, k, lab, st = zip(*th.segments, strict=True)
            starts += s
            ends += e
            kinds += k
            labels += lab
            steps += st
            rows += [r] * len(s)
    for j, lk in enumerate(locks):
        if lk.intervals:
            s, e, m, lab, st = zip(*lk.intervals, strict=True)
            starts += s
            ends += e
            kinds += [_lock_key(lk.key, mode) for mode in m]
            labels += lab
            steps += st
            rows += [lock_row0 + j] * len(s)
    table: dict[str, int] = {}
    label_ix = np.fromiter(
        (table.setdefault(x, len(table)) for x in labels), dtype=np.int64, count=len(labels)
    )
    kind = np.array(kinds)
    cols = [np.asarray(c, dtype=np.int64) for c in (starts, ends, rows, steps)]
    out: dict[str, _Arrays] = {}
    for key in keys:
        sel = kind == key
        out[key] = (cols[0][sel], cols[1][sel], cols[2][sel], cols[3][sel], label_ix[sel])
    return out, list(table)


def _coarsen(
    arrays: dict[str, _Arrays], budget: int, span_ns: int, n_rows: int, step_times: Any
) -> tuple[dict[str, _Arrays], int]:
    """At most about ``budget`` items, by binning time when there are more.

    Each row's time is cut into equal bins (``budget // rows`` of them, 200 to 4,000);
    a bin shows the highest-priority state present in it (:data:`PRIORITY`: waits
    first), and runs of bins with one state become one item (labels are dropped).

    Returns:
        The arrays and the bin width in ns (0 when no binning was needed).
    """
    total = sum(len(a[0]) for a in arrays.values())
    if total <= budget or n_rows <= 0:
        return arrays, 0
    nb = int(min(4000, max(200, budget // n_rows)))
    span = max(int(span_ns), 1)
    bw = max(-(-span // nb), 1)
    keys = list(arrays)
    cover = np.zeros((len(keys), n_rows, nb + 1), dtype=np.int32)
    for ki, (s, e, r, _st, _lab) in enumerate(arrays.values()):
        if not len(s):
            continue
        b0 = np.clip(s // bw, 0, nb - 1)
        b1 = np.clip((e - 1) // bw, 0, nb - 1)
        np.add.at(cover[ki], (r, b0), 1)
        np.add.at(cover[ki], (r, b1 + 1), -1)
    covered = np.cumsum(cover, axis=2)[:, :, :nb] > 0
    prio = np.array([keys.index(k) for k in PRIORITY if k in keys], dtype=np.int64)
    ordered = covered[prio]
    winner = np.where(ordered.any(axis=0), prio[np.argmax(ordered, axis=0)], -1).reshape(-1)
    bins = np.tile(np.arange(nb), n_rows)
    rows = np.repeat(np.arange(n_rows), nb)
    change = np.ones(len(winner), dtype=bool)
    change[1:] = (winner[1:] != winner[:-1]) | (bins[1:] == 0)
    heads = np.flatnonzero(change)
    tails = np.concatenate((heads[1:] - 1, [len(winner) - 1]))
    kind = winner[heads]
    start = bins[heads] * bw
    end = np.minimum((bins[tails] + 1) * bw, span)
    times = np.frombuffer(step_times, dtype=np.int64) if len(step_times) else np.zeros(1, np.int64)
    step = np.clip(np.searchsorted(times, start, side="right") - 1, 0, max(len(times) - 1, 0))
    out: dict[str, _Arrays] = {}
    for ki, key in enumerate(keys):
        sel = kind == ki
        out[key] = (start[sel], end[sel], rows[heads][sel], step[sel], np.full(sel.sum(), -1))
    return out, int(bw)


def _style(key: str) -> Style:
    return SEGMENT_STYLES[key] if key in SEGMENT_STYLES else LOCK_MODE_STYLES[key]


#: At most this many hand-off arrows are sent (the first ones in time).
FLOW_LIMIT = 20_000


def flow_columns(tl: Timeline, flows: Flows | None) -> dict[str, list[Any]]:
    """The hand-off arrows as columns: ``from``/``to`` (rows), ``t0``/``t1`` (µs),
    ``key`` (the lock) and ``granted`` (1 when the lock was handed over)."""
    cols: dict[str, list[Any]] = {c: [] for c in ("from", "to", "t0", "t1", "key", "granted")}
    if flows is None or not len(flows):
        return cols
    row_of = np.full(max((th.tid for th in tl.threads), default=0) + 2, -1, dtype=np.int64)
    for r, th in enumerate(tl.threads):
        row_of[th.tid] = r
    ok = (flows.waker < len(row_of) - 1) & (flows.woken < len(row_of) - 1)
    sel = np.flatnonzero(ok)[:FLOW_LIMIT]
    src = row_of[flows.waker[sel]]
    dst = row_of[flows.woken[sel]]
    keep = (src >= 0) & (dst >= 0)
    sel = sel[keep]
    cols["from"] = src[keep].tolist()
    cols["to"] = dst[keep].tolist()
    cols["t0"] = np.round(flows.t0_ns[sel] / TIME_SCALE, 4).tolist()
    cols["t1"] = np.round(flows.t1_ns[sel] / TIME_SCALE, 4).tolist()
    cols["key"] = flows.key[sel].tolist()
    cols["granted"] = flows.granted[sel].astype(np.int64).tolist()
    return cols


def timeline_data(tl: Timeline, title: str = "", flows: Flows | None = None) -> dict[str, Any]:
    """One run's lanes for the canvas renderer.

    Args:
        tl: The timeline.
        title: Shown above the lanes (default: scenario, mode and arch).
        flows: The run's lock wakes (:func:`vmaviz.engine.flows.wake_flows`), drawn
            as hand-off arrows between thread rows (``flows`` in the result:
            :func:`flow_columns`).

    Returns:
        A JSON-ready dict: ``title``; ``rows`` (thread names, then ``── locks ──``
        and the lock rows); ``threads`` (how many rows are threads); ``end_us`` (the last step) and
        ``work_end_us`` (when the last thread was done);
        ``kinds`` (per drawing key, in paint order: ``key``, ``label``, ``badge``,
        ``colour``, ``pattern``, ``text``, ``legend``); ``items`` with columns
        ``start``/``end`` (µs), ``row``, ``kind`` (index into ``kinds``), ``step``
        and ``label`` (index into ``labels``, -1 for none); ``labels``;
        ``hidden_locks`` (VMA locks left out beyond :data:`MAX_LOCK_ROWS`) and
        ``coarsened_ns`` (0, or the bin width used to fit :data:`ITEM_BUDGET`).
    """
    locks, hidden = _pick_lock_rows(tl, MAX_LOCK_ROWS)
    n_threads = len(tl.threads)
    rows = [str(t.name) for t in tl.threads]
    lock_row0 = n_threads + 1 if locks else n_threads
    if locks:
        rows.append("── locks ──")
        rows += [str(lk.name) for lk in locks]
    keys = (*SEGMENT_KINDS, *LOCK_MODE_STYLES)
    arrays, labels = _columns(tl, locks, lock_row0, keys)
    arrays, coarse = _coarsen(arrays, ITEM_BUDGET, tl.end_ns, len(rows), tl.step_times)
    total = sum(len(a[0]) for a in arrays.values())
    if coarse or total > LABEL_LIMIT:
        labels = []
    # Paint order: least telling first, so that the waits end up on top.
    order = [k for k in reversed(PRIORITY) if k in arrays]
    kinds = []
    cols: dict[str, list[Any]] = {c: [] for c in ("start", "end", "row", "kind", "step", "label")}
    for ki, key in enumerate(order):
        st = _style(key)
        s, e, r, step, lab = arrays[key]
        kinds.append(
            {
                "key": key,
                "label": st.label,
                "badge": st.badge,
                "colour": st.colour,
                "pattern": st.pattern,
                "text": st.text,
                # A lock mode drawn like a thread state shares that state's legend entry.
                "legend": bool(len(s)) and key not in _SHARED_LOCK_STYLES,
            }
        )
        cols["start"] += np.round(s / TIME_SCALE, 4).tolist()
        cols["end"] += np.round(e / TIME_SCALE, 4).tolist()
        cols["row"] += r.tolist()
        cols["kind"] += [ki] * len(s)
        cols["step"] += step.tolist()
        cols["label"] += (lab if labels else np.full(len(s), -1)).tolist()
    # The threads' work ends when the last one is done; RCU callbacks may run on
    # long after. The view opens on the work (the tail is a zoom-out away).
    work_end = (
        max(
            (
                next((seg.end_ns for seg in reversed(th.segments) if seg.kind != "done"), 0)
                for th in tl.threads
            ),
            default=0,
        )
        or tl.end_ns
    )
    return {
        "title": title or f"{tl.scenario}: {tl.mode}, {tl.arch}",
        "work_end_us": max(work_end, 1) / TIME_SCALE,
        "rows": rows,
        "threads": n_threads,
        "end_us": max(tl.end_ns, 1) / TIME_SCALE,
        "kinds": kinds,
        "items": cols,
        "labels": labels,
        "hidden_locks": hidden,
        "coarsened_ns": coarse,
        "flows": flow_columns(tl, flows),
    }


__all__ = [
    "FLOW_LIMIT",
    "ITEM_BUDGET",
    "MAX_LOCK_ROWS",
    "PRIORITY",
    "TIME_SCALE",
    "flow_columns",
    "timeline_data",
]
