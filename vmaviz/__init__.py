"""vmaviz: visualise Linux 6.4 per-VMA locks and the mm maple tree."""

__version__ = "0.1.0"
