"""Parameter sweeps: run a templated scenario over many settings and plot the results.

``python -m vmaviz sweep FILE --param threads=1,4,7 --mode both`` runs every
combination in both locking modes and writes ``sweep.csv`` and ``sweep.html``. The
library API is in :mod:`vmaviz.sweep.core` (re-exported here); where runs execute is
chosen in :mod:`vmaviz.sweep.executors`; published results to compare with are in
:mod:`vmaviz.sweep.published`.

Only the standard library, the scenario loader and the engine are imported here;
plotly is imported when a figure is written.
"""

from vmaviz.sweep.core import (
    METRICS,
    RESULT_COLUMNS,
    Job,
    Progress,
    ProgressPrinter,
    SweepError,
    SweepPlan,
    WorkItem,
    execute,
    expand,
    parse_param,
    parse_params,
    plan_sweep,
    run_item,
    run_sweep,
    substitute,
    write_outputs,
)
from vmaviz.sweep.executors import ExecutorUnavailable, InlineExecutor, make_executor

__all__ = [
    "METRICS",
    "RESULT_COLUMNS",
    "ExecutorUnavailable",
    "InlineExecutor",
    "Job",
    "Progress",
    "ProgressPrinter",
    "SweepError",
    "SweepPlan",
    "WorkItem",
    "execute",
    "expand",
    "make_executor",
    "parse_param",
    "parse_params",
    "plan_sweep",
    "run_item",
    "run_sweep",
    "substitute",
    "write_outputs",
]
