"""``python -m vmaviz``: run, validate, export and benchmark without the browser.

Subcommands::

    validate FILE...                      check scenario files (file:line: field: message)
    run FILE [--mode M] [--arch A] ...    simulate; a table, or --json for the RUN objects
    export FILE --format csv|perfetto     one run's trace (stdout, or -o OUT)
    bench [maple|engine|all]              print benchmark figures

Exit status: 0 on success, 1 for a bad scenario or a failed run, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import sys

from vmaviz import cli


def _positive(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be in (0, 3600], got {value}")
    return value


def _run_options(p: argparse.ArgumentParser, *, multi: bool) -> None:
    """The configuration flags shared by ``run`` and ``export``."""
    modes = [*cli.MODES, "both"] if multi else list(cli.MODES)
    arches = [*cli.ARCHES, "all"] if multi else list(cli.ARCHES)
    p.add_argument("file", help="scenario file (YAML)")
    p.add_argument("--mode", choices=modes, help="locking mode (default: the scenario's)")
    p.add_argument("--arch", choices=arches, help="fault handler arch (default: the scenario's)")
    p.add_argument("--seed", type=_seed, help="scheduler seed (default: the scenario's)")
    p.add_argument("--cpus", type=_positive, help="simulated CPUs (default: the scenario's)")
    p.add_argument("--max-steps", type=_positive, help="stop with an error past this many steps")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vmaviz",
        description="Run, validate, export and benchmark vmaviz scenarios without the browser.",
        epilog="Exit status: 0 OK, 1 bad scenario or failed run, 2 bad usage.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check scenario files")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (YAML)")
    p.set_defaults(func=cli.cmd_validate)

    p = sub.add_parser("run", help="simulate a scenario and print the results")
    _run_options(p, multi=True)
    p.add_argument("--json", action="store_true", help='print {"scenario": ..., "runs": [...]}')
    p.set_defaults(func=cli.cmd_run)

    p = sub.add_parser("export", help="write one run's trace as CSV or Perfetto JSON")
    _run_options(p, multi=False)
    p.add_argument("--format", required=True, choices=["csv", "perfetto"], help="output format")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    p.add_argument(
        "--no-step-events",
        action="store_true",
        help="perfetto: leave out the per-step instant events (about half the size)",
    )
    p.set_defaults(func=cli.cmd_export)

    p = sub.add_parser("bench", help="print benchmark figures")
    p.add_argument("which", nargs="?", choices=[*cli.BENCHES, "all"], help="default: all")
    p.add_argument("--seconds", type=_seconds, default=1.0, help="time per measurement")
    p.set_defaults(func=cli.cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return cli.EXIT_INTERRUPT
    return cli.run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
