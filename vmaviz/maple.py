"""``python -m vmaviz.maple``: drive the maple tree model from a line protocol.

This is a stable contract that tools and tests outside the package rely on.
Each line of standard input is one command:

``store FIRST LAST ENTRY``
    Store ``ENTRY`` (a positive integer id, or ``-`` for empty) over the closed
    range ``[FIRST, LAST]`` (decimal integers).
``dump``
    Print one line of JSON, ``{"height": H, "root": NODE}`` (see
    :meth:`vmaviz.model.maple.MapleTree.dump`).

Blank lines and lines starting with ``#`` are ignored.  A malformed line prints
an error naming its line number on standard error and exits with status 2.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from vmaviz.model.maple import ULONG_MAX, MapleTree


class ProtocolError(Exception):
    """A malformed command line."""


def _parse_int(text: str, what: str) -> int:
    # ASCII decimal only: str.isdigit() also accepts superscripts and other scripts.
    if not text or not all("0" <= ch <= "9" for ch in text):
        raise ProtocolError(f"{what} must be a decimal integer, got {text!r}")
    value = int(text)
    if value > ULONG_MAX:
        raise ProtocolError(f"{what} {value} does not fit in 64 bits")
    return value


def run(lines: TextIO, out: TextIO) -> None:
    """Execute the protocol; raises :class:`ProtocolError` with the line number."""
    tree = MapleTree()
    for lineno, raw in enumerate(lines, start=1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            if words[0] == "store" and len(words) == 4:
                first = _parse_int(words[1], "FIRST")
                last = _parse_int(words[2], "LAST")
                if first > last:
                    raise ProtocolError(f"FIRST {first} is greater than LAST {last}")
                if words[3] == "-":
                    entry = None
                else:
                    entry = _parse_int(words[3], "ENTRY")
                    if entry <= 0:
                        raise ProtocolError("ENTRY must be a positive integer or '-'")
                tree.store_range(first, last, entry)
            elif words[0] == "dump" and len(words) == 1:
                out.write(json.dumps(tree.dump(), separators=(", ", ": ")) + "\n")
                out.flush()
            else:
                raise ProtocolError(
                    f"unknown or malformed command {raw.strip()!r} "
                    "(expected 'store FIRST LAST ENTRY' or 'dump')"
                )
        except ProtocolError as exc:
            raise ProtocolError(f"line {lineno}: {exc}") from None


def main() -> int:
    try:
        run(sys.stdin, sys.stdout)
    except ProtocolError as exc:
        print(f"vmaviz.maple: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
