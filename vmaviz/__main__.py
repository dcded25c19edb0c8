"""``python -m vmaviz``: run, validate, export and benchmark without the browser.

Subcommands::

    validate FILE...                      check scenario files (file:line: field: message)
    run FILE [--mode M] [--arch A] ...    simulate; a table, or --json for the RUN objects
    export FILE --format csv|perfetto     one run's trace (stdout, or -o OUT)
    bench [maple|engine|ui|browser|calibration|hostile|all]  print benchmark figures
    sweep FILE --param NAME=V1,V2 ...     run every combination; write sweep.csv + sweep.html
    explore FILE [--patch NAME=on|off]    search schedules for an invariant violation

Exit status: 0 on success, 1 for a bad scenario or a failed run, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import sys

from vmaviz import cli


def _seed(text: str) -> int:
    """Any integer (decimal, or 0x/0o/0b)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _positive(text: str) -> int:
    value = _seed(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _nonnegative(text: str) -> int:
    value = _seed(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


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
    p.add_argument(
        "--schedule",
        metavar="PATH",
        help="replay a schedule file written by explore --schedule-out (its patches apply)",
    )
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

    p = sub.add_parser(
        "sweep",
        help="run a scenario over parameter values; write sweep.csv and an HTML plot",
        description="Run FILE once per combination of --param values and mode. A value goes"
        " where the file says ${param:NAME}; cpus, seed and arch may also be swept without"
        " one (they override the kernel settings). Writes DIR/sweep.csv and DIR/sweep.html.",
    )
    p.add_argument("file", help="scenario file (YAML) with ${param:NAME} placeholders")
    p.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="NAME=V1,V2,...",
        help="values of one parameter (repeatable; the first is the plot's x axis)",
    )
    p.add_argument("--mode", choices=[*cli.MODES, "both"], default="both", help="default: both")
    p.add_argument("--arch", choices=cli.ARCHES, help="fault handler arch (default: scenario's)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs", type=_positive, default=1, help="parallel local processes (default: 1, inline)"
    )
    where.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a dask scheduler, e.g. tcp://127.0.0.1:8786 (needs requirements-dask.txt)",
    )
    p.add_argument("--out", default="sweep-out", metavar="DIR", help="default: sweep-out")
    p.add_argument(
        "--metric",
        default="faults_per_sec",
        help="plotted column: faults_per_sec (default), makespan_ns, latency_p99_ns,"
        " mmap_read_wait_ns, ... (any numeric column of sweep.csv)",
    )
    p.add_argument(
        "--published",
        metavar="NAME",
        help="published data to overlay: a name in data/published, a CSV path, or none"
        " (default: chosen for scenarios named pft*)",
    )
    p.add_argument("--max-steps", type=_positive, help="stop a run with an error past this")
    p.set_defaults(func=cli.cmd_sweep)

    _explore_parser(sub)

    p = sub.add_parser("bench", help="print benchmark figures")
    p.add_argument("which", nargs="?", choices=[*cli.BENCHES, "all"], help="default: all")
    p.add_argument("--seconds", type=_seconds, default=1.0, help="time per measurement")
    p.set_defaults(func=cli.cmd_bench)
    return parser


def _explore_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``explore FILE ...``: the race explorer's options."""
    p = sub.add_parser(
        "explore",
        help="search a scenario's schedules for an invariant violation",
        description="Search the interleavings of FILE's threads for a violation of the"
        " section 11 invariants: preemption-bounded (default) or PCT. Prints the minimal"
        " counterexample or what was covered.",
    )
    p.add_argument("file", help="scenario file (YAML)")
    p.add_argument(
        "--patch",
        action="append",
        default=[],
        metavar="NAME=on|off",
        help="patch toggle (repeatable; all=on or all=off sets every one first)",
    )
    p.add_argument("--preemptions", type=_nonnegative, default=2, help="bound (default: 2)")
    p.add_argument("--max-schedules", type=_positive, help="stop after this many schedules")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument("--strategy", choices=["bounded", "pct"], default="bounded")
    p.add_argument("--seed", type=_seed, help="PCT seed (default: random, printed)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_positive, default=1, help="local processes (default: 1)")
    where.add_argument("--dask", metavar="ADDRESS", help="run on a dask scheduler")
    p.add_argument(
        "--por",
        action="store_true",
        help="sleep sets (partial-order reduction; off by default: rarely pays in a timed model)",
    )
    p.add_argument("--schedule-out", metavar="PATH", help="write the counterexample here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cli.cmd_explore)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        return cli.EXIT_INTERRUPT
    return cli.run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
