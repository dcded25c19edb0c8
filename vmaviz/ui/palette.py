"""Colours, patterns, badges and type for every view: the one place they are defined.

The palette is Okabe-Ito (safe for the common forms of colour blindness), and no
meaning is carried by colour alone: every style also has a fill pattern (for bars
and boxes), a short text badge (for table cells and slot labels), a line dash (for
WebGL traces, which cannot be patterned) and a legend label.  Fonts are large and
text is black or white, whichever contrasts better with the fill, so the views
read from the back of a classroom.

Everything here is an immutable constant; nothing holds state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from vmaviz.engine.timeline import SEGMENT_KINDS

#: Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO: Final = MappingProxyType(
    {
        "black": "#000000",
        "orange": "#E69F00",
        "sky_blue": "#56B4E9",
        "bluish_green": "#009E73",
        "yellow": "#F0E442",
        "blue": "#0072B2",
        "vermillion": "#D55E00",
        "reddish_purple": "#CC79A7",
        "grey": "#999999",
    }
)

INK: Final = "#000000"
MUTED: Final = "#444444"
PAPER: Final = "#FFFFFF"
RULE: Final = "#BBBBBB"
GRID: Final = "#E0E0E0"

FONT_SANS: Final = "DejaVu Sans, Verdana, Arial, sans-serif"
FONT_MONO: Final = "DejaVu Sans Mono, Menlo, Consolas, monospace"
#: Base font size (px) of figure text; ticks and labels never go below SMALL_FONT.
FONT_SIZE: Final = 16
SMALL_FONT: Final = 13
TITLE_FONT: Final = 20


@dataclass(frozen=True)
class Style:
    """How one category is drawn.

    Attributes:
        colour: Fill colour (Okabe-Ito or a tint of it).
        pattern: Plotly ``marker.pattern.shape`` ("" for none): the second cue on bars.
        badge: Short text shown on the item itself (cell, bar, slot); "" for the
            baseline category, which is recognised by having no badge.
        label: Legend / hover / screen-reader text.
        text: Text colour that contrasts with ``colour``.
        dash: Line dash for WebGL traces (``solid``, ``dot``, ``dash``, ``longdash``,
            ``dashdot``, ``longdashdot``).
        symbol: Marker symbol, for legends and scatter points.
    """

    colour: str
    pattern: str
    badge: str
    label: str
    text: str = INK
    dash: str = "solid"
    symbol: str = "square"


_O = OKABE_ITO

# --------------------------------------------------------------------- VMA lock state
#: A VMA's lock state (``vmaviz.engine.view.lock_state``) -> style.
LOCK_STATES: Final = MappingProxyType(
    {
        "unlocked": Style(_O["bluish_green"], "", "", "unlocked", INK, "solid", "square"),
        "read_locked": Style(
            _O["sky_blue"], ".", "R", "read-locked (R: readers)", INK, "dot", "circle"
        ),
        "write_locked": Style(
            _O["vermillion"],
            "x",
            "W",
            "write-locked (vm_lock_seq == mm_lock_seq)",
            INK,
            "dash",
            "x",
        ),
        "detached": Style(
            "#D9D9D9", "/", "D", "detached (out of the tree)", INK, "longdash", "diamond"
        ),
        "rcu_pending": Style(
            _O["reddish_purple"],
            "-",
            "RCU",
            "freed after an RCU grace period",
            INK,
            "dashdot",
            "hourglass",
        ),
        "freed": Style(PAPER, "", "F", "freed", MUTED, "dot", "square-open"),
    }
)

# ------------------------------------------------------------------ timeline segments
# Warm colours are waits (orange: read, purple: write), blue/black hold mmap_lock, green is
# the per-VMA fast path; vermillion is reserved for a write-locked VMA, as everywhere.
SEGMENT_STYLES: Final = MappingProxyType(
    {
        "running": Style("#C8C8C8", "", "", "running (user space)", INK, "solid", "square"),
        "faulting": Style(_O["sky_blue"], "", "F", "in a page fault", INK, "solid", "circle"),
        "spinning": Style(_O["yellow"], "+", "S", "spinning on a CPU", INK, "dot", "cross"),
        "wait_mmap_read": Style(
            _O["orange"], "/", "wR", "waits for mmap_lock (read)", INK, "dash", "triangle-down"
        ),
        "wait_mmap_write": Style(
            _O["reddish_purple"],
            "\\",
            "wW",
            "waits for mmap_lock (write)",
            INK,
            "longdash",
            "triangle-up",
        ),
        "hold_mmap_read": Style(
            _O["blue"], "-", "R", "holds mmap_lock (read)", PAPER, "solid", "diamond"
        ),
        "hold_mmap_write": Style(
            _O["black"], "x", "W", "holds mmap_lock (write)", PAPER, "solid", "x"
        ),
        "hold_vma_read": Style(
            _O["bluish_green"], "|", "V", "holds a VMA lock (read)", INK, "solid", "star"
        ),
        # A light vermillion: waiting to write-lock a VMA, next to vermillion write-locked.
        "wait_vma_write": Style(
            "#F4B183",
            "/",
            "wV",
            "waits for a VMA lock (write)",
            INK,
            "dashdot",
            "hourglass",
        ),
        "blocked_other": Style(
            "#D0D0D0", "x", "B", "blocked (barrier, userfault)", INK, "longdashdot", "square-x"
        ),
        "sleeping": Style("#F2F2F2", ".", "z", "sleeping", INK, "dot", "circle-open"),
        "done": Style(PAPER, "", "", "done", MUTED, "dot", "square-open"),
    }
)

#: Lock-track modes drawn under the threads: (lock kind, mode) -> style.
LOCK_MODE_STYLES: Final = MappingProxyType(
    {
        "mmap_read": Style(
            _O["blue"], "-", "R", "mmap_lock held for read", PAPER, "solid", "diamond"
        ),
        "mmap_write": Style(_O["black"], "x", "W", "mmap_lock held for write", PAPER, "solid", "x"),
        "vma_read": Style(
            _O["bluish_green"], "|", "R", "VMA lock held for read", INK, "solid", "star"
        ),
        "vma_write": Style(
            _O["black"], "+", "w", "VMA rwsem held for write (in vma_start_write)", PAPER
        ),
        "vma_write_locked": Style(
            _O["vermillion"],
            "x",
            "W",
            "VMA write-locked (vm_lock_seq == mm_lock_seq)",
            INK,
            "dash",
            "x",
        ),
    }
)

# ---------------------------------------------------------------------- threads
#: ``snapshot()["threads"][i]["state"]`` -> style (badges spell the state out).
THREAD_STATES: Final = MappingProxyType(
    {
        "running": Style(_O["sky_blue"], "", "RUN", "running on a CPU"),
        "spinning": Style(_O["yellow"], "+", "SPIN", "spinning on a CPU (optimistic spin)"),
        "ready": Style("#C8C8C8", "", "READY", "runnable, waiting for a CPU"),
        "blocked": Style(_O["orange"], "/", "BLOCKED", "asleep on a lock"),
        "sleeping": Style("#F2F2F2", ".", "SLEEP", "asleep on a timer"),
        "barrier": Style("#E8C9DC", "x", "BARRIER", "waiting at a barrier"),
        "done": Style(PAPER, "", "DONE", "exited", MUTED),
    }
)

# ------------------------------------------------------------------ architectures
#: Simulated architecture -> style (counters figure).
ARCH_STYLES: Final = MappingProxyType(
    {
        "x86": Style(_O["blue"], "", "x86", "x86-64 (do_user_addr_fault)", PAPER),
        "arm64": Style(_O["orange"], "/", "arm64", "arm64 (do_page_fault)"),
        "powerpc": Style(_O["bluish_green"], ".", "ppc", "powerpc (___do_page_fault)"),
        "s390": Style(_O["reddish_purple"], "x", "s390", "s390 (do_exception)"),
    }
)

#: ``vma_lock`` counter key -> the /proc/vmstat event it models.
VMA_LOCK_COUNTERS: Final = MappingProxyType(
    {
        "success": "VMA_LOCK_SUCCESS",
        "abort": "VMA_LOCK_ABORT",
        "retry": "VMA_LOCK_RETRY",
        "miss": "VMA_LOCK_MISS",
    }
)

#: Maple tree drawing.
TREE_COLOURS: Final = MappingProxyType(
    {
        "internal_head": "#9CC7E6",  # blue tint
        "internal_body": "#E3EFF8",
        "leaf_head": "#9ED9C4",  # bluish-green tint
        "leaf_body": "#E0F3EC",
        "null": "#EDEDED",
        "child": PAPER,
        "dead_head": "#CFCFCF",
        "dead_body": "#F4F4F4",
        "dead_entry": "#DCDCDC",
        "edge": "#4D4D4D",
        "dead_edge": "#7A7A7A",
    }
)


def style_of(table: Mapping[str, Style], key: str) -> Style:
    """``table[key]``, or a neutral grey style naming ``key`` for an unknown key."""
    found = table.get(key)
    if found is not None:
        return found
    return Style(_O["grey"], "", key[:3].upper(), key)


def format_ns(ns: float) -> str:
    """A duration or instant for people: ``850 ns``, ``51.7 µs``, ``2.04 ms``, ``1.5 s``."""
    value = float(ns)
    mag = abs(value)
    if mag < 1_000:
        return f"{value:.0f} ns"
    for unit, scale in (("µs", 1e3), ("ms", 1e6), ("s", 1e9)):
        if mag < scale * 1_000 or unit == "s":
            v = value / scale
            digits = 2 if abs(v) < 10 else 1 if abs(v) < 100 else 0
            return f"{v:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def hexaddr(value: int) -> str:
    """An address as the kernel prints it: ``0x`` and lowercase hex."""
    return f"{value:#x}"


__all__ = [
    "ARCH_STYLES",
    "FONT_MONO",
    "FONT_SANS",
    "FONT_SIZE",
    "INK",
    "LOCK_MODE_STYLES",
    "LOCK_STATES",
    "MUTED",
    "OKABE_ITO",
    "PAPER",
    "SEGMENT_KINDS",
    "SEGMENT_STYLES",
    "SMALL_FONT",
    "THREAD_STATES",
    "TITLE_FONT",
    "TREE_COLOURS",
    "VMA_LOCK_COUNTERS",
    "Style",
    "format_ns",
    "hexaddr",
    "style_of",
]
