"""Small text formatters shared by the figure builders and the app."""

from __future__ import annotations

PAGE_SIZE = 4096

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def hexaddr(value: int) -> str:
    """Format an index/address the way the kernel prints it: ``0x`` + lowercase hex."""
    return f"{value:#x}"


def human_size(nbytes: int) -> str:
    """Binary-prefixed size: ``4 KiB``, ``8 MiB``, ``1.5 GiB``, ``16 EiB``."""
    size = float(nbytes)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            if unit == "B" or size.is_integer():
                return f"{int(size)} {unit}"
            return f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def ellipsize(text: str, width: int) -> str:
    """Cut ``text`` to at most ``width`` characters, marking a cut with an ellipsis."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"
