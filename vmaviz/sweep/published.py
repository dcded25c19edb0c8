"""Published benchmark results to overlay on sweep plots (``data/published/*.csv``).

Each CSV has the columns ``threads,mode,faults_per_sec,faults_per_cpu_sec,source``
(see ``data/published/README.md``). A dataset is named by its file name without
``.csv``; :func:`load_published` also takes a path to any CSV with those columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

#: Where the bundled datasets live (the repository's ``data/published``).
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "published"

#: The columns every dataset must have, in file order.
COLUMNS = ("threads", "mode", "faults_per_sec", "faults_per_cpu_sec", "source")
#: The columns that hold a measured value (the metrics a plot can compare).
VALUE_COLUMNS = ("faults_per_sec", "faults_per_cpu_sec")
_MODES = ("per_vma", "mmap_lock")


class PublishedDataError(ValueError):
    """A dataset that cannot be found or read; the message names the file."""


@dataclass(frozen=True)
class PublishedPoint:
    """One published measurement.

    Attributes:
        threads: Worker threads of the benchmark run.
        mode: ``mmap_lock`` (the base kernel) or ``per_vma`` (with per-VMA locks).
        faults_per_sec: Faults over wall-clock time.
        faults_per_cpu_sec: Faults per CPU-second of the worker threads.
        source: Where the number comes from, e.g. ``lore:<message-id>``.
    """

    threads: int
    mode: str
    faults_per_sec: int
    faults_per_cpu_sec: int
    source: str

    def value(self, metric: str) -> int:
        """The value of ``metric`` (one of :data:`VALUE_COLUMNS`)."""
        if metric not in VALUE_COLUMNS:
            raise KeyError(metric)
        return int(getattr(self, metric))


def available() -> list[str]:
    """The names of the bundled datasets, sorted."""
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.stem for p in DATA_DIR.glob("*.csv"))


def resolve(name_or_path: str | Path) -> Path:
    """The CSV file of a dataset name or path.

    Raises:
        PublishedDataError: Neither a bundled dataset nor an existing file.
    """
    text = str(name_or_path)
    if "/" not in text and not text.endswith(".csv"):
        path = DATA_DIR / f"{text}.csv"
        if path.is_file():
            return path
        names = ", ".join(available()) or "none found in " + str(DATA_DIR)
        raise PublishedDataError(f"unknown published dataset {text!r} (available: {names})")
    path = Path(text)
    if not path.is_file():
        raise PublishedDataError(f"{text}: no such published data file")
    return path


def load_published(name_or_path: str | Path) -> list[PublishedPoint]:
    """Load a dataset, in file order.

    Args:
        name_or_path: A name from :func:`available` or a path to a CSV file.

    Returns:
        Its points.

    Raises:
        PublishedDataError: A missing file, a missing column or a bad value
            (the message names the file and line).
    """
    path = resolve(name_or_path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise PublishedDataError(f"{path}: missing column(s) {', '.join(missing)}")
            points = []
            for row in reader:
                points.append(_point(row, path, reader.line_num))
    except OSError as exc:
        raise PublishedDataError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PublishedDataError(f"{path}: not UTF-8 text") from None
    return points


def _point(row: dict[str, str], path: Path, line: int) -> PublishedPoint:
    try:
        threads = int(row["threads"])
        per_sec = int(row["faults_per_sec"])
        per_cpu = int(row["faults_per_cpu_sec"])
    except (TypeError, ValueError):
        raise PublishedDataError(f"{path}:{line}: expected integers in {row}") from None
    mode = row["mode"]
    if mode not in _MODES:
        raise PublishedDataError(f"{path}:{line}: mode must be per_vma or mmap_lock, got {mode!r}")
    return PublishedPoint(threads, mode, per_sec, per_cpu, row["source"] or "")


def auto_pick(scenario_name: str) -> str | None:
    """The dataset to compare a scenario with by default, or ``None``.

    Only pft-like scenarios (names starting with ``pft``) get one: the per-thread-VMA
    dataset when the name says per-thread, else the single shared VMA one.
    """
    name = scenario_name.lower()
    if not name.startswith("pft"):
        return None
    if "per-thread" in name.replace("_", "-"):
        return "pft_per_thread_vma"
    return "pft_threads_single_vma"
