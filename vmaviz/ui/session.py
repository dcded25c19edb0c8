"""Per-session state and memoised runs, kept in flask-caching and the browser only.

Nothing here is module-level mutable state, so the app runs the same under
``gunicorn -w 2 'app:server'``: every request can land on any worker.

* The browser holds the session id (a ``dcc.Store`` filled when the page is served),
  the configuration (the control values) and the cursor.
* flask-caching (a private file cache by default, Redis when ``VMAVIZ_REDIS_URL``
  is set; every entry signed, see :mod:`vmaviz.ui.cache`) holds what is expensive
  to rebuild: finished runs (:class:`RunData`, keyed by the scenario's canonical text,
  mode, arch, cpus and seed), uploaded scenario texts (keyed by their SHA-256) and,
  per session id, the kernel state of the last step shown, so that stepping forward
  by one re-runs a single step.
* :class:`RunStore` also keeps a few unpickled runs in the worker's memory (a bounded
  LRU owned by the app object, not the module). Runs are deterministic and never
  change once finished, so this is a cache of the shared cache: a worker that misses
  it loads the run from flask-caching, or re-runs the scenario, and gets the same
  result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import os
import pickle
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import numpy as np

from vmaviz.engine.engine import Engine, EngineError, RunBudget
from vmaviz.model.kernel import PATCHES, Kernel
from vmaviz.scenario import Scenario, ScenarioErrors, load_scenario, load_scenario_text
from vmaviz.scenario.schema import ARCHES, MAX_CPUS, MAX_FILE_BYTES, MAX_SEED, MAX_STEPS, MODES
from vmaviz.ui.cache import RUN_TIMEOUT
from vmaviz.ui.changes import SnapshotMemo
from vmaviz.ui.memo import BoundedMemo

if TYPE_CHECKING:
    from flask_caching import Cache

    from vmaviz.engine.timeline import Timeline

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = REPO_ROOT / "scenarios"
DEFAULT_SCENARIO = "default"
#: The explorer's race scenarios (scenarios/races/*.yaml) are named ``races/NAME``.
RACES_PREFIX = "races/"

#: Environment variables read by :func:`app_max_steps` and :func:`app_run_budget`.
MAX_STEPS_ENV = "VMAVIZ_MAX_STEPS"
RUN_SECONDS_ENV = "VMAVIZ_RUN_SECONDS"
MAX_RSS_ENV = "VMAVIZ_MAX_RSS_MB"

#: Steps between the keyframes of app runs: rebuilding any step replays at most this
#: many steps from the nearest keyframe (about 15 ms for 100 threads).
KEYFRAME_EVERY = 1024
#: A run in the app stops with a clear message past this many steps (the CLI allows
#: the schema's MAX_STEPS); override with VMAVIZ_MAX_STEPS.
APP_MAX_STEPS = 2_000_000
#: Wall-clock seconds one run in the app may take (VMAVIZ_RUN_SECONDS); compare view
#: runs two, so a page opens (or says why not) within about twice this.
APP_RUN_SECONDS = 15.0
#: The worker's resident memory at which a run in it stops (VMAVIZ_MAX_RSS_MB): the
#: run that would take the worker past it stops with a message instead.
APP_MAX_RSS_MB = 2560
#: Bytes of keyframes one app run keeps (the engine thins them past it): a worker
#: keeps several runs in memory and in the cache.
APP_KEYFRAME_BYTES = 64 << 20
SESSION_TIMEOUT = 6 * 3600
#: Seconds a run that stopped (step limit, run budget) is answered from memory.
FAIL_TIMEOUT = 600
#: Unpickled runs kept in each worker's memory, weighed by their steps (a run of
#: 100,000 steps with its keyframes takes about 15 MB).
LOCAL_STEPS = 3_000_000
#: Stepping forward by at most this many steps from the session's anchor kernel
#: re-runs them; a longer jump starts from the run's nearest keyframe instead.
SHORT_HOP = 256
#: The anchor kernel moves up to the cursor once it is this many steps behind.
ANCHOR_HOP = 16
#: Longest a background run waits for a foreground request at one budget check (s).
FOREGROUND_WAIT = 0.5
#: After a jump, the anchor is set this many steps before the cursor, so that the
#: next steps back do not each replay from a keyframe.
ANCHOR_BACK = 16
#: Kernels at recent steps kept in each worker's memory (:class:`KernelMemo`): a
#: step forward finds the state before it there (the last step's state after).
KERNEL_MEMO_SIZE = 8
#: Bumped when RunData's meaning changes, so stale cache entries are not reused.
RUN_FORMAT = 1

VIEWS = ("single", "compare")
#: Compare mode: the old kernel on the left (top), the per-VMA lock kernel on the right.
COMPARE_MODES = ("mmap_lock", "per_vma")
SIDES = ("left", "right")
#: What compare view compares: the two modes (``modes``), or the same mode with the
#: page's patch overrides on the left and the patches they turn off back on, on the
#: right (``patches``).
COMPARE_KINDS = ("modes", "patches")


def app_max_steps(env: dict[str, str] | None = None) -> int:
    """The step limit of one run in the app (VMAVIZ_MAX_STEPS, at most MAX_STEPS)."""
    env = dict(os.environ) if env is None else env
    try:
        value = int(env.get(MAX_STEPS_ENV, APP_MAX_STEPS))
    except ValueError:
        value = APP_MAX_STEPS
    return max(1, min(value, MAX_STEPS))


def _env_number(env: dict[str, str], name: str, default: float, lo: float, hi: float) -> float:
    try:
        value = float(env.get(name, default))
    except ValueError:
        return default
    return max(lo, min(value, hi)) if value == value else default  # NaN: the default


def app_run_budget(
    env: dict[str, str] | None = None, pause: Callable[[], None] | None = None
) -> RunBudget:
    """The time and memory budget of one run in the app (see :class:`RunBudget`);
    ``pause`` lets a background run give way to a foreground request."""
    env = dict(os.environ) if env is None else env
    seconds = _env_number(env, RUN_SECONDS_ENV, APP_RUN_SECONDS, 0.1, 3600.0)
    rss_mb = _env_number(env, MAX_RSS_ENV, APP_MAX_RSS_MB, 64, 1 << 20)
    return RunBudget(seconds=seconds, rss_bytes=int(rss_mb) << 20, pause=pause)


# =====================================================================
# Configuration and permalinks
# =====================================================================


@dataclass(frozen=True)
class Config:
    """What to run: a scenario reference and the kernel settings the user chose.

    Attributes:
        scenario: A bundled scenario's file stem (``default``) or ``upload:<sha>``.
        mode: ``per_vma`` or ``mmap_lock`` (ignored in compare view).
        arch: Simulated arch.
        cpus: Simulated CPUs.
        seed: Scheduler seed.
        view: ``single`` or ``compare``.
        patches: Patch toggles that differ from the scenario's own settings, as
            sorted ``(name, on)`` pairs (empty: the scenario's settings).
        sched: A forced schedule prefix (thread ids, -1 the RCU callbacks) the
            user chose ("be the scheduler", or an explorer's counterexample);
            past its end the time-ordered scheduler goes on.
        compare: What compare view compares (:data:`COMPARE_KINDS`): ``modes``
            (mmap_lock against per_vma), or ``patches`` (the page's mode on both
            sides, the patch overrides on the left, the patches they turn off
            back on the right, both following ``sched`` leniently).
    """

    scenario: str = DEFAULT_SCENARIO
    mode: str = "per_vma"
    arch: str = "x86"
    cpus: int = 4
    seed: int = 1
    view: str = "single"
    patches: tuple[tuple[str, bool], ...] = ()
    sched: tuple[int, ...] = ()
    compare: str = "modes"

    def checked(self) -> Config:
        """The same configuration with out-of-range values replaced by defaults."""
        base = Config()
        return Config(
            scenario=self.scenario if is_scenario_ref(self.scenario) else base.scenario,
            mode=self.mode if self.mode in MODES else base.mode,
            arch=self.arch if self.arch in ARCHES else base.arch,
            cpus=self.cpus if _int_in(self.cpus, 1, MAX_CPUS) else base.cpus,
            seed=self.seed if _int_in(self.seed, 0, MAX_SEED) else base.seed,
            view=self.view if self.view in VIEWS else base.view,
            patches=checked_patches(self.patches),
            sched=checked_sched(self.sched),
            compare=self.compare if self.compare in COMPARE_KINDS else base.compare,
        )

    @property
    def compares_patches(self) -> bool:
        """Whether this is compare view of the same mode with the patches off and on."""
        return self.view == "compare" and self.compare == "patches"

    def modes(self) -> tuple[str, ...]:
        """The mode of each side: one in single view, both in compare view."""
        return tuple(mode for _config, mode in self.side_configs())

    def side_configs(self) -> list[tuple[Config, str]]:
        """The configuration and mode of each side's run, left first.

        In patch compare view the right side is the page's configuration with
        every patch its overrides turn off turned back on (:func:`patches_back_on`).
        """
        if self.view != "compare":
            return [(self, self.mode)]
        if self.compare == "patches":
            right = dataclasses.replace(self, patches=patches_back_on(self.patches))
            return [(self, self.mode), (right, self.mode)]
        return [(self, mode) for mode in COMPARE_MODES]


def patches_back_on(patches: tuple[tuple[str, bool], ...]) -> tuple[tuple[str, bool], ...]:
    """The overrides with every patch they turn off turned back on (the rest kept)."""
    return tuple((name, True) for name, _on in patches)


def _int_in(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


#: The longest forced schedule a configuration (and a permalink) may carry: a
#: race is a few hundred steps; longer prefixes make every pick re-run them all.
MAX_SCHED = 20_000
#: The longest ``sched=`` text a permalink may carry (run-length encoded).
MAX_SCHED_TEXT = 8_000


def checked_patches(patches: Any) -> tuple[tuple[str, bool], ...]:
    """Known ``(name, on)`` pairs, sorted by name, the last setting of a name winning
    (anything else is dropped: a JSON round trip turns the pairs into lists)."""
    out: dict[str, bool] = {}
    for item in patches or ():
        if isinstance(item, list | tuple) and len(item) == 2:
            name, on = item
            if isinstance(name, str) and name in PATCHES and isinstance(on, bool):
                out[name] = on
    return tuple(sorted(out.items()))


def checked_sched(sched: Any) -> tuple[int, ...]:
    """The schedule as thread ids, or ``()`` when it is not one (or too long)."""
    if not isinstance(sched, list | tuple) or len(sched) > MAX_SCHED:
        return ()
    if not all(_int_in(t, -1, 1 << 20) for t in sched):
        return ()
    return tuple(sched)


def encode_sched(sched: tuple[int, ...] | list[int]) -> str:
    """Run-length encode a schedule: ``0x5.1.-1x2`` is 0,0,0,0,0,1,-1,-1.

    A forced schedule repeats the same thread for long stretches (a thread runs
    until it is preempted), so the permalink stays short.
    """
    parts: list[str] = []
    i = 0
    while i < len(sched):
        j = i
        while j < len(sched) and sched[j] == sched[i]:
            j += 1
        parts.append(f"{sched[i]}x{j - i}" if j - i > 1 else str(sched[i]))
        i = j
    return ".".join(parts)


def decode_sched(text: str) -> tuple[int, ...]:
    """The schedule a ``sched=`` text names (see :func:`encode_sched`).

    Raises:
        ValueError: a malformed or too long text, or a schedule past :data:`MAX_SCHED`.
    """
    if len(text) > MAX_SCHED_TEXT:
        raise ValueError(f"the schedule is longer than {MAX_SCHED_TEXT} characters")
    out: list[int] = []
    for part in text.split(".") if text else []:
        tid_text, sep, count_text = part.partition("x")
        try:
            tid = int(tid_text)
            count = int(count_text) if sep else 1
        except ValueError:
            raise ValueError(f"schedule entry {part!r} is not THREAD or THREADxCOUNT") from None
        if not -1 <= tid <= 1 << 20 or count < 1 or len(out) + count > MAX_SCHED:
            raise ValueError(f"schedule entry {part!r} is out of range (at most {MAX_SCHED} steps)")
        out.extend([tid] * count)
    return tuple(out)


def encode_patches(patches: tuple[tuple[str, bool], ...]) -> str:
    """``name:off,name2:on``: the patch overrides of a permalink."""
    return ",".join(f"{name}:{'on' if on else 'off'}" for name, on in patches)


def decode_patches(text: str) -> tuple[tuple[str, bool], ...]:
    """The overrides a ``patches=`` text names.

    Raises:
        ValueError: an unknown patch name or a value other than on/off.
    """
    out: dict[str, bool] = {}
    for part in text.split(",") if text else []:
        name, sep, value = part.partition(":")
        if name not in PATCHES:
            raise ValueError(f"unknown patch {name!r}")
        if not sep or value not in ("on", "off"):
            raise ValueError(f"patch {name}: expected on or off, got {value!r}")
        out[name] = value == "on"
    return tuple(sorted(out.items()))


def patch_defaults(scenario: Scenario) -> dict[str, bool]:
    """Every patch toggle as the scenario itself sets it (model default otherwise)."""
    own = scenario.kernel.patches
    return {name: bool(own.get(name, default)) for name, (default, _) in PATCHES.items()}


def patch_overrides(scenario: Scenario, on: Any) -> tuple[tuple[str, bool], ...]:
    """The overrides that turn the scenario's patch settings into the checklist ``on``."""
    chosen = {n for n in on or () if isinstance(n, str)}
    return tuple(
        (name, name in chosen)
        for name, default in sorted(patch_defaults(scenario).items())
        if (name in chosen) != default
    )


def patches_on(scenario: Scenario, patches: tuple[tuple[str, bool], ...]) -> list[str]:
    """The names switched on with ``patches`` applied to the scenario's settings."""
    settings = {**patch_defaults(scenario), **dict(patches)}
    return [name for name in PATCHES if settings[name]]


def is_scenario_ref(ref: Any) -> bool:
    """Whether ``ref`` names a bundled scenario or an upload (by its form only)."""
    if not isinstance(ref, str) or not ref:
        return False
    if ref.startswith("upload:"):
        digest = ref.removeprefix("upload:")
        return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
    # The race scenarios of the explorer live in one subdirectory (RACES_DIR).
    name = ref.removeprefix(RACES_PREFIX)
    return bool(name) and all(c.isalnum() or c in "-_." for c in name) and not name.startswith(".")


def to_query(config: Config, cursor: int, extra: dict[str, str] | None = None) -> str:
    """The permalink query string (with its ``?``) for a configuration and cursor.

    ``step`` is the index of the last step run, as the views number steps (the
    timeline, the event log, CSV exports); it is left out at the initial state. In
    compare view the index counts the steps of both runs merged in time order.
    ``extra`` adds parameters (the breakpoints: ``Breakpoints.to_params``).
    """
    params: dict[str, Any] = {
        "scenario": config.scenario,
        "view": config.view,
        "mode": config.mode,
        "arch": config.arch,
        "cpus": config.cpus,
        "seed": config.seed,
    }
    if config.patches:
        params["patches"] = encode_patches(config.patches)
    if config.sched:
        params["sched"] = encode_sched(config.sched)
    if config.compare != "modes":
        params["compare"] = config.compare
    if cursor > 0:
        params["step"] = int(cursor) - 1
    params.update(extra or {})
    return "?" + urlencode(params)


#: The settings a permalink can name (besides the scenario and the step).
QUERY_SETTINGS = ("mode", "arch", "cpus", "seed", "view", "compare")


def from_query(search: str | None) -> tuple[Config, int | None, dict[str, str]]:
    """Parse a permalink query string.

    Returns:
        The configuration (unknown or bad values replaced by defaults), the cursor
        (steps run: ``step + 1``; ``None`` when the query names no step) and what
        the query named: ``{setting: "ok"}`` for each of ``scenario`` and
        :data:`QUERY_SETTINGS` it set, ``"refused"`` for one whose value was not
        valid (the default is used in its place). A setting it did not name is
        left to the scenario's own settings. ``patches`` and ``sched`` are
        refused whole (an unknown patch, a malformed or too long schedule); the
        reason is then in ``named["patches_reason"]`` / ``named["sched_reason"]``.
    """
    params = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items() if v}

    def num(name: str) -> int | None:
        try:
            text = params[name]
            return int(text) if len(text) <= 12 else None
        except (KeyError, ValueError):
            return None

    base = Config()
    config = Config(
        scenario=params.get("scenario", base.scenario),
        mode=params.get("mode", base.mode),
        arch=params.get("arch", base.arch),
        cpus=v if (v := num("cpus")) is not None else base.cpus,
        seed=v if (v := num("seed")) is not None else base.seed,
        view=params.get("view", base.view),
        compare=params.get("compare", base.compare),
    ).checked()
    named: dict[str, str] = {}
    for key in ("scenario", *QUERY_SETTINGS):
        if key in params:
            named[key] = "ok" if str(getattr(config, key)) == params[key] else "refused"
    extras: dict[str, Any] = {}
    for key, decode in (("patches", decode_patches), ("sched", decode_sched)):
        if key in params:
            try:
                extras[key] = decode(params[key])
                named[key] = "ok"
            except ValueError as exc:
                named[key] = "refused"
                named[f"{key}_reason"] = str(exc)
    if extras:
        config = dataclasses.replace(config, **extras)
    step = num("step")
    cursor = max(0, step + 1) if step is not None else None
    return config, cursor, named


# =====================================================================
# Scenarios
# =====================================================================


def bundled_scenarios(directory: Path = SCENARIO_DIR) -> list[str]:
    """File stems of the bundled scenarios, the default first."""
    names = sorted(p.stem for p in directory.glob("*.yaml"))
    if DEFAULT_SCENARIO in names:
        names.remove(DEFAULT_SCENARIO)
        names.insert(0, DEFAULT_SCENARIO)
    races = sorted(RACES_PREFIX + p.stem for p in (directory / "races").glob("*.yaml"))
    return names + races


def upload_ref(text: str) -> str:
    """The scenario reference of an uploaded text: its SHA-256."""
    return "upload:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class ScenarioMissing(LookupError):
    """A scenario reference that names nothing (an unknown file, an expired upload)."""


# =====================================================================
# Runs
# =====================================================================


def code_fingerprint() -> str:
    """A hash of the source of the model and the engine: a run cached by an older
    version of either is not reused (the shared cache outlives a code update)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = sorted((root / "model").glob("*.py")) + sorted((root / "engine").glob("*.py"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def run_key(scenario: Scenario, mode: str, arch: str, cpus: int, seed: int, code: str = "") -> str:
    """The cache key of one run: a hash of everything its result depends on."""
    h = hashlib.sha256()
    for part in (str(RUN_FORMAT), code, str(KEYFRAME_EVERY), scenario.canonical(), mode, arch):
        h.update(part.encode())
        h.update(b"\0")
    h.update(f"{cpus}\0{seed}".encode())
    return h.hexdigest()


def _np(arr: Any) -> np.ndarray:
    """A zero-copy numpy view of a trace column (an ``array.array``)."""
    return np.frombuffer(arr, dtype=np.dtype(arr.typecode)) if len(arr) else np.zeros(0, np.int64)


class RunData:
    """One finished run with the indexes the app needs to move around in it.

    Only the engine and the timeline are pickled; the numpy indexes are rebuilt on
    demand from the trace.

    Attributes:
        left_schedule: For a run that followed its forced schedule leniently
            (:func:`lenient_run`), the step at which the schedule's thread could
            not move and the time-ordered scheduler took over (with that thread's
            id); ``None`` when it followed the whole schedule (or had none).
    """

    left_schedule: tuple[int, int] | None = None

    def __init__(
        self,
        key: str,
        engine: Engine,
        timeline: Timeline,
        left_schedule: tuple[int, int] | None = None,
    ) -> None:
        self.key = key
        self.engine = engine
        self.timeline = timeline
        self.left_schedule = left_schedule

    def __getstate__(self) -> dict[str, Any]:
        # A kernel pickles without its fault-latency log (it would grow every
        # keyframe), but this is the finished run whose summary the app shows: keep
        # the log, or a run read back from the cache says its faults took 0 ns.
        latencies = self.engine.k.fault_latencies.tobytes()
        return {
            "key": self.key,
            "engine": self.engine,
            "timeline": self.timeline,
            "fault_latencies": latencies,
            "left_schedule": self.left_schedule,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        latencies = state.pop("fault_latencies", b"")
        self.__dict__.update(state)
        log = array("q")
        log.frombytes(latencies)
        self.engine.k.fault_latencies = log

    # ------------------------------------------------------------ basics

    @property
    def steps(self) -> int:
        return len(self.engine.trace)

    @property
    def mode(self) -> str:
        return self.engine.mode

    @property
    def arch(self) -> str:
        return self.engine.arch

    @cached_property
    def thread_names(self) -> list[str]:
        return [th.name for th in self.engine.k.threads]

    def thread_name(self, tid: int) -> str:
        return self.thread_names[tid] if 0 <= tid < len(self.thread_names) else "rcu"

    @cached_property
    def vma_names(self) -> dict[int, str]:
        """Every VMA id the run ever had, to its name."""
        return self.engine.k.mm.vma_names()

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self.engine.summary()

    # ------------------------------------------------------------ columns

    @cached_property
    def time(self) -> np.ndarray:
        return _np(self.engine.trace.time).astype(np.int64)

    @cached_property
    def tid(self) -> np.ndarray:
        return _np(self.engine.trace.tid).astype(np.int64)

    @cached_property
    def code(self) -> np.ndarray:
        return _np(self.engine.trace.code).astype(np.int64)

    @cached_property
    def a(self) -> np.ndarray:
        return _np(self.engine.trace.a).astype(np.int64)

    @cached_property
    def stack(self) -> np.ndarray:
        return _np(self.engine.trace.stack).astype(np.int64)

    @cached_property
    def frame(self) -> np.ndarray:
        return _np(self.engine.trace.frame).astype(np.int64)

    @cached_property
    def op(self) -> np.ndarray:
        return _np(self.engine.trace.op).astype(np.int64)

    def code_id(self, code: str) -> int:
        """The trace's id for an event code (-1 when the run never emitted it)."""
        return self.engine.trace.code_ix.get(code, -1)

    def codes_matching(self, pred: Callable[[str], bool]) -> list[int]:
        return [i for i, c in enumerate(self.engine.trace.codes) if pred(c)]

    def rows_with_codes(self, ids: list[int]) -> np.ndarray:
        if not ids or not self.steps:
            return np.zeros(0, np.int64)
        return np.flatnonzero(np.isin(self.code, ids))

    # ------------------------------------------------------------ boundaries

    @cached_property
    def function_starts(self) -> np.ndarray:
        """Rows that are the first step of a kernel-function activation (sorted)."""
        return _first_rows(self.frame, self.frame == 0)

    @cached_property
    def op_starts(self) -> np.ndarray:
        """Rows that are the first step of a thread's operation (sorted)."""
        key = (self.tid + 1) * (1 << 32) + self.op
        return _first_rows(key, self.tid < 0)

    @cached_property
    def innermost(self) -> list[str]:
        """Innermost function of each interned stack (``""`` for the empty stack)."""
        return [s[-1] if s else "" for s in self.engine.trace.stacks]

    @cached_property
    def functions(self) -> list[str]:
        """Every kernel function that took a step in this run, sorted."""
        used = set(np.unique(self.stack).tolist()) if self.steps else set()
        return sorted({self.innermost[s] for s in used if self.innermost[s]})

    @cached_property
    def violation_rows(self) -> np.ndarray:
        """Rows whose step recorded an invariant violation (sorted, unique)."""
        # Kernel.violate records the 0-based row of the step being taken.
        rows = sorted({s for s, _inv, _msg in self.engine.k.violations if s >= 0})
        return np.array(rows, dtype=np.int64)

    def counters_at(self, n: int) -> dict[str, Any]:
        """``vma_lock`` and ``abort_reasons`` counted over the first ``n`` steps."""
        n = max(0, min(n, self.steps))
        out: dict[str, Any] = {"vma_lock": {}, "abort_reasons": {}}
        for name, rows in self._counter_rows.items():
            count = int(np.searchsorted(rows, n))
            group, _, key = name.partition(".")
            out[group][key] = count
        out["mode"], out["arch"] = self.mode, self.arch
        return out

    @cached_property
    def _counter_rows(self) -> dict[str, np.ndarray]:
        from vmaviz.model.kernel import ABORT_REASONS

        table = {
            "vma_lock.success": ["fault:vma_lock_success"],
            "vma_lock.abort": [f"lock_vma_under_rcu:abort:{r}" for r in ABORT_REASONS],
            "vma_lock.retry": ["fault:vma_lock_retry"],
            "vma_lock.miss": ["lock_vma_under_rcu:miss_retry"],
        }
        for r in ABORT_REASONS:
            table[f"abort_reasons.{r}"] = [f"lock_vma_under_rcu:abort:{r}"]
        return {
            name: self.rows_with_codes([i for c in codes if (i := self.code_id(c)) >= 0])
            for name, codes in table.items()
        }


def _first_rows(key: np.ndarray, always: np.ndarray) -> np.ndarray:
    """Sorted rows where ``key`` appears for the first time, plus every ``always`` row."""
    if not len(key):
        return np.zeros(0, np.int64)
    _, first = np.unique(key, return_index=True)
    mask = np.zeros(len(key), dtype=bool)
    mask[first] = True
    mask |= always
    return np.flatnonzero(mask)


def build_run(
    key: str,
    scenario: Scenario,
    mode: str,
    arch: str,
    max_steps: int | None = None,
    schedule: tuple[int, ...] = (),
    lenient: bool = False,
    pause: Callable[[], None] | None = None,
) -> RunData:
    """Run a scenario to the end within the app's limits (``pause``: see
    :func:`app_run_budget`).

    With ``lenient`` the schedule is followed while its threads can move, and
    the time-ordered scheduler goes on from the first step where one cannot
    (:func:`lenient_run`); otherwise such a step is an error.

    Raises:
        EngineError: past the step limit (:func:`app_max_steps`), or
            :class:`~vmaviz.engine.engine.RunBudgetExceeded` past the time or memory
            budget (:func:`app_run_budget`); the message says which, for the page.
    """
    from vmaviz.engine.timeline import build_timeline

    engine = Engine(
        scenario,
        mode=mode,
        arch=arch,
        keyframe_every=KEYFRAME_EVERY,
        max_steps=max_steps or app_max_steps(),
        keyframe_budget=APP_KEYFRAME_BYTES,
        budget=app_run_budget(pause=pause),
        schedule=list(schedule) if schedule and not lenient else None,
    )
    left_schedule = lenient_run(engine, schedule) if lenient else None
    engine.run()
    engine.trace.flush()
    return RunData(key, engine, build_timeline(engine), left_schedule)


def lenient_run(engine: Engine, schedule: tuple[int, ...]) -> tuple[int, int] | None:
    """Step ``engine`` (built without a schedule) along ``schedule`` while it fits.

    Why: a schedule chosen on one kernel (an explorer's counterexample with a
    patch off) need not fit the same scenario with the patch on, whose threads
    take other paths; the engine's own forced schedule rightly refuses a thread
    that cannot move. Here the run follows the schedule up to that step and
    stops there; the caller's ``engine.run()`` goes on time-ordered. Replays of
    the run stay exact: after a forced step the engine replays the recorded
    thread ids (``Engine.forced``).

    Returns:
        ``(step, thread id)`` of the first entry whose thread could not move,
        or ``None`` when the whole schedule was followed (or the run ended first).
    """
    for n, tid in enumerate(schedule):
        if engine.finished:
            return None
        ready = engine.runnable()
        if not ready:
            return None
        if tid not in ready:
            return n, tid
        engine.step(tid)
    return None


class RunStore:
    """Runs and scenarios by key: the worker's LRU first, then flask-caching, then compute.

    One instance per app (see :func:`vmaviz.ui.app_factory.create_app`).
    """

    def __init__(self, cache: Cache, local_steps: int = LOCAL_STEPS) -> None:
        self.cache = cache
        self.local_steps = local_steps
        self.code = code_fingerprint()
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, Any] = OrderedDict()
        #: The last snapshot each page drew (vmaviz/ui/changes.py: what a step changed).
        self.snapshot_memo = SnapshotMemo()
        #: Kernels at recent steps of any run (SessionState.kernels).
        self.kernel_memo = KernelMemo()
        self._scenarios: dict[tuple[str, float], Scenario] = {}
        self._run_keys: dict[tuple[Any, ...], tuple[Scenario, Scenario, str]] = {}
        #: Runs asked for in the background (:meth:`warm`), run one at a time.
        self._warm_queue: list[tuple[Config, str, str]] = []
        self._warm_thread: threading.Thread | None = None
        #: Foreground requests (a step) in progress; background runs give way to them.
        self._foreground = 0
        self._foreground_cond = threading.Condition()
        #: Set in the background thread while it runs (see yield_to_foreground).
        self._bg = threading.local()

    # ------------------------------------------------------------ scenarios

    def scenario(self, ref: str) -> Scenario:
        """The scenario a reference names.

        Raises:
            ScenarioMissing: unknown bundled name or an upload no longer cached.
            ScenarioErrors: a bundled file that does not validate.
        """
        if ref.startswith("upload:"):
            text = self.cache.get(f"scn:{ref}")
            if not isinstance(text, str):
                raise ScenarioMissing(
                    "this uploaded scenario is no longer on the server; upload the file again"
                )
            return self._memo_scenario(
                (ref, 0.0), lambda: load_scenario_text(text, "uploaded.yaml")
            )
        if not is_scenario_ref(ref):
            raise ScenarioMissing(f"no scenario named {ref!r}")
        path = SCENARIO_DIR / f"{ref}.yaml"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise ScenarioMissing(f"no bundled scenario named {ref!r}") from None
        return self._memo_scenario((ref, mtime), lambda: load_scenario(path))

    def _memo_scenario(self, key: tuple[str, float], load: Callable[[], Scenario]) -> Scenario:
        with self._lock:
            hit = self._scenarios.get(key)
        if hit is not None:
            return hit
        scenario = load()
        with self._lock:
            if len(self._scenarios) > 64:
                self._scenarios.clear()
            self._scenarios[key] = scenario
        return scenario

    def save_upload(self, text: str, filename: str = "uploaded.yaml") -> tuple[str, Scenario]:
        """Validate an uploaded scenario text and keep it; returns (reference, scenario).

        Raises:
            ScenarioErrors: the text does not validate (messages name ``filename``).
        """
        scenario = load_scenario_text(text, filename)
        ref = upload_ref(text)
        self.cache.set(f"scn:{ref}", text, timeout=RUN_TIMEOUT)
        return ref, scenario

    # ------------------------------------------------------------ runs

    def run(self, config: Config, mode: str | None = None, arch: str | None = None) -> RunData:
        """The finished run of ``config`` (``mode``/``arch`` override its own).

        Raises:
            ScenarioMissing, ScenarioErrors, EngineError, ValueError.
        """
        mode = mode or config.mode
        arch = arch or config.arch
        scenario, key = self._run_key(config, mode, arch)
        schedule = self.schedule_of(config, mode, arch)
        lenient = bool(schedule) and config.compares_patches
        # A run that stopped (step limit, run budget) is not tried again for a while:
        # every step and poll of the page would otherwise spend the budget again.
        failed = self.cache.get(f"fail:{key}")
        if isinstance(failed, str):
            raise EngineError(failed)
        try:
            run: RunData = self.get_or_build(
                f"run:{key}",
                lambda: build_run(
                    key,
                    scenario,
                    mode,
                    arch,
                    schedule=schedule,
                    lenient=lenient,
                    pause=self.yield_to_foreground if getattr(self._bg, "on", False) else None,
                ),
                shared=True,
            )
        except EngineError as exc:
            self.cache.set(f"fail:{key}", str(exc), timeout=FAIL_TIMEOUT)
            raise
        return run

    def _run_key(self, config: Config, mode: str, arch: str) -> tuple[Scenario, str]:
        """The scenario with the settings applied, and its run key.

        The key hashes the scenario's canonical text (about 10 ms for a big one), and
        :meth:`peek_run` asks for it on every step: it is worked out once per
        scenario object and settings.

        Raises:
            ScenarioMissing, ScenarioErrors, ValueError.
        """
        base = self.scenario(config.scenario)
        schedule = self.schedule_of(config, mode, arch)
        lenient = bool(schedule) and config.compares_patches
        memo = (id(base), mode, arch, config.cpus, config.seed, config.patches, schedule, lenient)
        known = self._run_keys.get(memo)
        if known is None or known[0] is not base:
            overrides: dict[str, Any] = {}
            if config.patches:
                overrides["patches"] = {**base.kernel.patches, **dict(config.patches)}
            scenario = base.with_overrides(
                mode=mode, arch=arch, cpus=config.cpus, seed=config.seed, **overrides
            )
            key = run_key(scenario, mode, arch, config.cpus, config.seed, self.code)
            if schedule:
                # A forced schedule is a different run of the same scenario.
                # Followed leniently, it may run differently past a step the strict
                # run refuses: another run again.
                mark = "\0lenient" if lenient else ""
                text = f"{key}\0{encode_sched(schedule)}{mark}"
                key = hashlib.sha256(text.encode()).hexdigest()
            if len(self._run_keys) > 256:
                self._run_keys.clear()
            known = (base, scenario, key)
            self._run_keys[memo] = known
        return known[1], known[2]

    @staticmethod
    def schedule_of(config: Config, mode: str, arch: str) -> tuple[int, ...]:
        """The forced schedule of the run of ``config`` in ``mode`` on ``arch``.

        The schedule was chosen on the run the page shows (its mode and arch);
        the other runs of the page (compare view's other side, the counters of
        the other arches) keep the time-ordered scheduler: the same thread ids
        need not fit them. Patch compare view runs both sides in the page's mode
        and arch, and both follow it (leniently: :func:`lenient_run`).
        """
        same = mode == config.mode and arch == config.arch
        if same and (config.view == "single" or config.compares_patches):
            return config.sched
        return ()

    def peek_run(self, config: Config, mode: str, arch: str) -> RunData | None:
        """The run if it is in this worker's memory or the shared cache, else None
        (never runs it: see :meth:`warm`)."""
        try:
            _scenario, run_id = self._run_key(config, mode, arch)
        except (ScenarioMissing, ScenarioErrors, ValueError):
            return None
        key = f"run:{run_id}"
        hit = self._local(key)
        if hit is None:
            hit = self._shared(key)
            if isinstance(hit, RunData):
                self._remember(key, hit)
        return hit if isinstance(hit, RunData) else None

    def warm(self, config: Config, mode: str, arches: list[str]) -> None:
        """Run ``config`` on ``arches`` in a background thread, one run at a time.

        Why: opening a scenario used to wait for its run on every arch (for the
        per-arch counters), three runs the first view does not show. The page now
        opens on its own run; the counters fill in as the others finish.
        """
        with self._lock:
            for arch in arches:
                item = (config, mode, arch)
                if item not in self._warm_queue:
                    self._warm_queue.append(item)
            if self._warm_thread is not None and self._warm_thread.is_alive():
                return
            self._warm_thread = threading.Thread(
                target=self._warm_loop, name="vmaviz-warm", daemon=True
            )
            self._warm_thread.start()

    @contextlib.contextmanager
    def foreground(self) -> Iterator[None]:
        """A request a person waits for (a step) is in progress.

        Background runs (:meth:`warm`) pause at their next budget check (every
        4,096 steps) until it is done: CPython gives two busy threads about half
        the CPU each, which doubled a step's server time on a big scenario while
        the other arches were still running.
        """
        with self._foreground_cond:
            self._foreground += 1
        try:
            yield
        finally:
            with self._foreground_cond:
                self._foreground -= 1
                self._foreground_cond.notify_all()

    def yield_to_foreground(self) -> None:
        """Wait while a foreground request is in progress (at most
        :data:`FOREGROUND_WAIT` seconds at a time, so that a background run that a
        page is waiting for too still finishes)."""
        with self._foreground_cond:
            self._foreground_cond.wait_for(lambda: self._foreground == 0, FOREGROUND_WAIT)

    def warming(self) -> bool:
        """Whether background runs (:meth:`warm`) are still queued or running."""
        with self._lock:
            return bool(self._warm_queue) or (
                self._warm_thread is not None and self._warm_thread.is_alive()
            )

    def _warm_loop(self) -> None:
        while True:
            with self._lock:
                if not self._warm_queue:
                    self._warm_thread = None
                    return
                config, mode, arch = self._warm_queue.pop(0)
            self._bg.on = True
            try:
                self.run(config, mode=mode, arch=arch)
            except SystemExit:
                # The server is stopping (a test server's stop raises it in its
                # threads): drop the rest quietly.
                with self._lock:
                    self._warm_queue.clear()
                    self._warm_thread = None
                return
            except Exception:  # a failing arch is left out of the counters, as before
                continue

    def cached_run(self, key: str, config: Config, mode: str, arch: str) -> RunData:
        """The run with this key: from memory or the cache, else re-run from ``config``."""
        hit = self._local(f"run:{key}")
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        run = self.run(config, mode=mode, arch=arch)
        if run.key != key:
            raise ScenarioMissing("the scenario changed since this page was loaded; reload it")
        return run

    def _local(self, key: str) -> Any:
        with self._lock:
            hit = self._runs.get(key)
            if hit is not None:
                self._runs.move_to_end(key)
                return hit[0]
        return None

    def get_or_build(self, key: str, build: Callable[[], Any], shared: bool = False) -> Any:
        """``key`` from the worker's LRU, else from the shared cache, else ``build()``.

        With ``shared`` the value is also stored in (and looked up from) the shared
        cache, so other workers and later requests skip the build.
        """
        hit = self._local(key)
        if hit is not None:
            return hit
        value: Any = self._shared(key) if shared else None
        if value is None:
            value = build()
            if shared:
                self.cache.set(key, value)
        self._remember(key, value)
        return value

    def _shared(self, key: str) -> Any:
        """The value of ``key`` in the shared cache, or None.

        The cache loads only entries signed by this installation, and anything that
        does not load is None (:class:`vmaviz.ui.cache.SignedSerializer`); the GC
        pause keeps the collector off the thousands of objects a run unpickles into.
        """
        with paused_gc():
            return self.cache.get(key)

    def _remember(self, key: str, value: Any) -> None:
        """Keep ``value`` in this worker's LRU, weighed by its steps."""
        weight = value.steps + 1000 if isinstance(value, RunData) else 1000
        evicted = False
        with self._lock:
            self._runs[key] = (value, weight)
            self._runs.move_to_end(key)
            total = sum(w for _, w in self._runs.values())
            while len(self._runs) > 1 and total > self.local_steps:
                _, (_, w) = self._runs.popitem(last=False)
                total -= w
                evicted = True
        if isinstance(value, RunData):
            keep_out_of_gc(evicted)

    # ------------------------------------------------------------ session state

    def session(self, session: str, slot: str) -> SessionState:
        """The per-session state kept under ``slot`` (one cache entry, read once)."""
        return SessionState(self, session, slot)

    def session_get(self, session: str, name: str) -> Any:
        return self.cache.get(f"sess:{session}:{name}") if session else None

    def session_set(self, session: str, name: str, value: Any) -> None:
        if session:
            self.cache.set(f"sess:{session}:{name}", value, timeout=SESSION_TIMEOUT)


class KernelMemo(BoundedMemo[tuple[str, int], Kernel]):
    """Kernels at recent steps, by (run key, steps run): a worker-local cache.

    A run's state at a step is the same for every session (runs are deterministic),
    so the kernel the last step built "after" is the next step's "before". The
    kernels kept here are read, never stepped: :meth:`SessionState.kernels` replays
    only fresh copies. Bounded to :data:`KERNEL_MEMO_SIZE` (a kernel of 500 VMAs is
    about 7,000 objects).
    """

    def __init__(self, size: int = KERNEL_MEMO_SIZE) -> None:
        super().__init__(size)


class SessionState:
    """One session's state for one callback, as one cache entry: read once, saved once.

    Each callback that keeps per-session state owns its own slot, so callbacks that
    the browser runs at the same time never overwrite each other's state. A missing
    or expired entry is simply empty: everything in it can be recomputed.
    """

    def __init__(self, store: RunStore, session: str, slot: str) -> None:
        self.store = store
        self.session = session
        self.slot = slot
        with paused_gc():
            loaded = store.session_get(session, slot)
        self.data: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        self.dirty = False
        self._anchors: SessionState | None = None

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.dirty = True

    def save(self) -> None:
        if self.dirty and self.session:
            self.store.session_set(self.session, self.slot, self.data)
            self.dirty = False
        if self._anchors is not None:
            self._anchors.save()

    def anchors(self) -> SessionState:
        """The anchor kernels (:meth:`kernels`), an entry of their own: they are large
        and move every few steps, while the slot's other state is saved on most."""
        if self._anchors is None:
            self._anchors = SessionState(self.store, self.session, f"{self.slot}:anchors")
        return self._anchors

    def kernels(self, side: int, run: RunData, n: int) -> tuple[Kernel | None, Kernel]:
        """The kernel before and after step ``n`` of ``run`` (``n`` steps executed).

        The session keeps one pickled "anchor" kernel per side at or a little before the
        cursor. Stepping forward replays the few steps from the anchor (unpickling is a
        copy; nothing is pickled on most steps), and finds the kernel before the step
        in the worker's :class:`KernelMemo` (the last step's "after"); the anchor
        moves up when it falls
        :data:`ANCHOR_HOP` steps behind. Any other move replays from the run's nearest
        keyframe (at most ``KEYFRAME_EVERY`` steps) and re-anchors a little behind the
        cursor, so stepping back one at a time stays cheap too.
        """
        n = max(0, min(n, run.steps))
        memo = self.store.kernel_memo
        after = memo.get((run.key, n))
        before = memo.get((run.key, n - 1)) if n > 0 else None
        if after is not None and (n == 0 or before is not None):
            return before, after
        anchors = self.anchors()
        saved = anchors.get(f"kernel:{side}")
        anchor: tuple[int, bytes] | None = None
        if isinstance(saved, tuple) and len(saved) == 3 and saved[0] == run.key:
            anchor = (int(saved[1]), saved[2])
        lo = max(n - 1, 0)
        if anchor is None or not anchor[0] <= lo <= anchor[0] + SHORT_HOP:
            # Re-anchor behind the cursor: the next steps back start from here too.
            m = max(lo - ANCHOR_BACK, 0)
            blob = pickle.dumps(run.engine.state_at(m), pickle.HIGHEST_PROTOCOL)
            anchor = (m, blob)
            anchors.set(f"kernel:{side}", (run.key, m, blob))
        m, blob = anchor
        with paused_gc():
            if after is None:
                after = run.engine.replay(pickle.loads(blob), m, n)
                memo.put((run.key, n), after)
            if before is None and n > 0:
                before = run.engine.replay(pickle.loads(blob), m, n - 1)
                memo.put((run.key, n - 1), before)
        if before is not None and n - 1 - m > ANCHOR_HOP:
            anchors.set(f"kernel:{side}", (run.key, n - 1, pickle.dumps(before, 5)))
        return before, after


_gc_pauses = 0
_gc_lock = threading.Lock()
#: The release of a step whose young collection waits for its response to be sent.
_gc_deferred: list[Callable[[], None]] = []


def _gc_pause() -> None:
    global _gc_pauses
    with _gc_lock:
        _gc_pauses += 1
        gc.disable()


def _gc_resume(collect_young: bool) -> None:
    global _gc_pauses
    with _gc_lock:
        _gc_pauses -= 1
        if _gc_pauses == 0:
            if collect_young:
                gc.collect(0)
            gc.enable()


@contextlib.contextmanager
def paused_gc(collect_young: bool = False) -> Iterator[None]:
    """No cyclic garbage collection inside the block (nests, and across threads).

    Unpickling a kernel allocates thousands of objects, which would set off
    collections that walk the worker's other objects: that, not the unpickling,
    would take most of the time. A step's kernels are garbage in cycles once it is
    drawn; collected while still in use, they would be promoted to the oldest
    generation and freed only by a full collection (100-300 ms, every few steps, on
    a big scenario). With ``collect_young``, the block (a whole step) ends with one
    collection of the youngest generation, which still holds them all and frees
    them. Inside a request, that collection (10-20 ms in compare view of a big
    scenario) runs once the response has been sent, while the browser draws it.
    """
    _release_deferred()  # a response never closed (a test client): release it now
    _gc_pause()
    try:
        yield
    finally:
        if collect_young and _defer_to_close(lambda: _gc_resume(True)):
            pass
        else:
            _gc_resume(collect_young)


def release_deferred_gc(error: BaseException | None = None) -> None:
    """Release a step's deferred collection now when its request failed (a failed
    request sends no response whose close would run it). A Flask teardown hook."""
    if error is not None:
        _release_deferred()


def _release_deferred() -> None:
    """Run every deferred release now (another thread may be taking them too)."""
    while True:
        try:
            release = _gc_deferred.pop()
        except IndexError:
            return
        release()


def _defer_to_close(release: Callable[[], None]) -> bool:
    """Run ``release`` once the current response is sent; False outside a request."""
    import flask

    if not flask.has_request_context():
        return False
    done = threading.Event()

    def once() -> None:
        if not done.is_set():
            done.set()
            with contextlib.suppress(ValueError):
                _gc_deferred.remove(once)
            release()

    _gc_deferred.append(once)

    @flask.after_this_request
    def _close(response: Any) -> Any:
        response.call_on_close(once)
        return response

    return True


def describe_error(exc: BaseException) -> str:
    """One message for anything :meth:`RunStore.run` raises on a user's input."""
    if isinstance(exc, ScenarioErrors):
        return str(exc)
    if isinstance(exc, EngineError):
        return f"the run stopped: {exc}"
    return str(exc)


def upload_text(contents: str | None, filename: str | None) -> str:
    """Decode a ``dcc.Upload`` data URL, enforcing the 1 MiB limit server-side.

    Raises:
        ValueError: too large, not base64, or not UTF-8 text (with a message for the user).
    """
    import base64
    import binascii

    name = filename or "the file"
    if not contents or "," not in contents:
        raise ValueError(f"{name}: nothing was uploaded")
    data = contents.split(",", 1)[1]
    # Check the size before decoding: base64 is 4 characters for 3 bytes.
    if len(data) * 3 // 4 > MAX_FILE_BYTES + 2:
        raise ValueError(
            f"{name}: the file is larger than the {MAX_FILE_BYTES // 1024} KiB limit "
            "for scenario files (MAX_FILE_BYTES)"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name}: the upload is not valid base64 data") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(
            f"{name}: the file is {len(raw):,} bytes, over the {MAX_FILE_BYTES:,}-byte limit "
            "for scenario files (MAX_FILE_BYTES)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a UTF-8 text file (expected scenario YAML)") from None


def keep_out_of_gc(evicted: bool = False) -> None:
    """Move the objects alive now (the runs kept in memory) out of the collector's way.

    Why: every step unpickles a kernel or two, thousands of objects in cycles that
    only the cyclic collector frees; its full collections then walked every object
    of the runs in memory as well, and took 200-300 ms, every few steps, of a big
    scenario. Frozen objects are not walked (``gc.freeze``). When a run has left the
    LRU, everything is unfrozen once so that a full collection can free it.
    """
    if evicted:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
