"""vmaviz: visualise Linux 6.4 per-VMA locks and the mm maple tree."""

import os

# The simulator does no linear algebra: numpy's OpenBLAS worker threads (one per
# core, busy-waiting after start) would only compete with the engine for the CPUs.
# Set before any vmaviz module imports numpy; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
