"""``python -m vmaviz``: run, validate, export and benchmark without the browser."""

from __future__ import annotations

import argparse
import sys


def _bench(args: argparse.Namespace) -> int:
    which = args.which or "all"
    status = 0
    if which in ("maple", "all"):
        from vmaviz.bench import maple

        status |= maple.main(seconds=args.seconds)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vmaviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="print benchmark figures")
    bench.add_argument("which", nargs="?", choices=["maple", "all"], help="which benchmark")
    bench.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
