"""Running ``python -m vmaviz`` as a user would, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vmaviz import cli

REPO = Path(__file__).resolve().parents[1]


def run_vmaviz(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m vmaviz ARGS`` in a subprocess (debug tracebacks off), captured."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(cli.DEBUG_ENV, None)
    return subprocess.run(
        [sys.executable, "-m", "vmaviz", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=timeout,
        check=False,
    )
