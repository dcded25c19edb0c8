"""Load and validate lesson files (YAML) into :class:`Lesson`.

The scenario loader's YAML-with-lines machinery (:class:`vmaviz.scenario.loader._Loader`:
composing, duplicate keys, depth limits, ``did you mean``) is reused, so a lesson's
errors read like a scenario's: ``lessons/x.yaml:12: checkpoints[1].choices[0].event:
...``. Every problem is collected and raised as one
:class:`~vmaviz.scenario.errors.ScenarioErrors`.

The format (documented in the README, "Lessons")::

    title: First fault and anon_vma
    intro: |
      ...
    scenario: first-fault-anon-vma     # a bundled scenario; races/NAME for the races
    view: single                       # or compare (mmap_lock vs per-VMA)
    mode: per_vma                      # optional: mode, arch, patches, sched
    checkpoints:
      - at: {event: "lock_vma_under_rcu:anonymous", thread: T0, nth: 1}   # or {step: 12}
        question: Will this fault take the VMA lock?
        window: 40                     # steps looked at after the checkpoint
        choices:                       # the first of these events to happen is right
          - {text: "Yes", event: "lock_vma_under_rcu:locked"}
          - {text: "No, it falls back", event: "lock_vma_under_rcu:abort:*"}
        explain: ...

A checkpoint with ``counter`` (a per-VMA lock counter) or ``count`` (an event
pattern) asks for a number instead: each choice has a ``value`` and the right one
is the counter's value once the checkpoint's step has run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vmaviz.model.kernel import ABORT_REASONS, PATCHES
from vmaviz.scenario.errors import ScenarioError, ScenarioErrors
from vmaviz.scenario.loader import YNode, _Loader, _Stop, load_scenario
from vmaviz.scenario.schema import ARCHES, MAX_FILE_BYTES, MODES, Scenario

REPO_ROOT = Path(__file__).resolve().parents[2]
LESSON_DIR = REPO_ROOT / "lessons"
SCENARIO_DIR = REPO_ROOT / "scenarios"
RACES_PREFIX = "races/"

#: Bounds on what a lesson may ask for (a lesson is read from a file a teacher wrote).
MAX_LESSON_BYTES = 64 * 1024
MAX_CHECKPOINTS = 8
MAX_CHOICES = 6
MIN_CHOICES = 2
MAX_TEXT_CHARS = 4000
MAX_PATTERN_CHARS = 120
#: Steps after a checkpoint that "which happens first" looks at.
MAX_WINDOW = 5000
DEFAULT_WINDOW = 200
MAX_NTH = 100_000
MAX_STEP = 2_000_000
MAX_SCHED = 20_000
#: Event patterns: event-code characters plus the glob wildcards ``*`` and ``?``.
PATTERN_RE = re.compile(r"^[A-Za-z0-9_:.*?\-]+$")
LESSON_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

#: Counters a ``counter:`` checkpoint may name (the Counters panel's).
COUNTERS: tuple[str, ...] = (
    "vma_lock.success",
    "vma_lock.abort",
    "vma_lock.retry",
    "vma_lock.miss",
    *(f"abort_reasons.{r}" for r in ABORT_REASONS),
)
SIDES = ("mmap_lock", "per_vma")

_TOP_KEYS = (
    "title",
    "intro",
    "scenario",
    "view",
    "mode",
    "arch",
    "patches",
    "sched",
    "checkpoints",
)
_CP_KEYS = ("at", "question", "window", "counter", "count", "choices", "explain")
_AT_KEYS = ("step", "event", "thread", "nth", "side")
_CHOICE_KEYS = ("text", "event", "thread", "otherwise", "value")


@dataclass(frozen=True)
class Choice:
    """One answer of a checkpoint.

    Attributes:
        text: What the user reads.
        event: ``first`` checkpoints: the event-code pattern (glob) that makes it right.
        thread: Only that thread's steps match ``event`` (``None``: any thread).
        otherwise: Right when none of the other choices' events happens in the window.
        value: Counting checkpoints: the value this choice predicts.
    """

    text: str
    event: str | None = None
    thread: str | None = None
    otherwise: bool = False
    value: int | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A point of a lesson where the user predicts what the model does next.

    Attributes:
        line: Line of the entry in the lesson file (for model-check errors).
        step: The step index (as the views number steps), or ``None``.
        event: Else the pattern of the step to stop at (the ``nth`` match).
        thread: Only that thread's steps match ``event``.
        nth: Which match of ``event`` (1-based).
        side: Compare view: the run (``mmap_lock`` or ``per_vma``) the checkpoint is in.
        question: The question.
        window: Steps after the checkpoint that ``first`` looks at.
        counter: Counting: a counter of :data:`COUNTERS`.
        count: Counting: an event pattern whose matching steps are counted.
        count_thread: Only that thread's steps are counted.
        choices: The answers.
        explain: Shown after the answer.
    """

    line: int
    step: int | None
    event: str | None
    thread: str | None
    nth: int
    side: str
    question: str
    window: int
    counter: str | None
    count: str | None
    count_thread: str | None
    choices: tuple[Choice, ...]
    explain: str

    @property
    def kind(self) -> str:
        """``first`` (which choice's event happens first) or ``count``."""
        return "count" if self.counter or self.count else "first"


@dataclass(frozen=True)
class Lesson:
    """A validated lesson.

    Attributes:
        name: The file stem (the permalink's ``lesson=``).
        file: The file name as given (for errors).
        title, intro: Shown at the top of the lesson.
        scenario: A bundled scenario reference (``races/NAME`` for the races).
        view: ``single`` or ``compare``.
        mode, arch: ``None``: the scenario's own.
        patches: Patch settings that the lesson fixes, ``(name, on)`` pairs.
        sched: A forced schedule prefix (thread ids, -1 the RCU callbacks).
        checkpoints: In order.
    """

    name: str
    file: str
    title: str
    intro: str
    scenario: str
    view: str
    mode: str | None
    arch: str | None
    patches: tuple[tuple[str, bool], ...]
    sched: tuple[int, ...]
    checkpoints: tuple[Checkpoint, ...] = field(default=())


def scenario_path(ref: str) -> Path | None:
    """The file of a bundled scenario reference, or ``None`` when there is none."""
    name = ref.removeprefix(RACES_PREFIX)
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        return None
    path = SCENARIO_DIR / ("races" if ref.startswith(RACES_PREFIX) else "") / f"{name}.yaml"
    return path if path.is_file() else None


class _LessonChecker:
    """One lesson file's checks; errors go to the scenario loader's collector."""

    def __init__(self, loader: _Loader) -> None:
        self.ld = loader
        self.scenario: Scenario | None = None

    def error(self, line: int | None, path: str, message: str) -> None:
        self.ld.error(line, path, message)

    def text(self, node: YNode | None, line: int, path: str, required: bool = True) -> str:
        if node is None:
            if required:
                self.error(line, path, f"missing required field '{path.rsplit('.', 1)[-1]}'")
            return ""
        if node.kind != "scalar" or not isinstance(node.value, str) or not node.value.strip():
            self.error(node.line, path, "expected non-empty text")
            return ""
        if len(node.value) > MAX_TEXT_CHARS:
            self.error(node.line, path, f"longer than the limit of {MAX_TEXT_CHARS} characters")
            return ""
        return str(node.value).strip()

    def integer(self, node: YNode, path: str, lo: int, hi: int) -> int | None:
        value = node.value
        if node.kind != "scalar" or not isinstance(value, int) or isinstance(value, bool):
            self.error(node.line, path, "expected an integer")
            return None
        if not lo <= value <= hi:
            self.error(node.line, path, f"{value} is out of range ({lo}..{hi})")
            return None
        return int(value)

    def choice_of(self, node: YNode, path: str, options: tuple[str, ...]) -> str | None:
        if node.kind != "scalar" or node.value not in options:
            hint = self.ld.did_you_mean(node.value, options)
            self.error(
                node.line, path, f"expected one of {', '.join(options)}, got {node.value!r}{hint}"
            )
            return None
        return str(node.value)

    def pattern(self, node: YNode, path: str) -> str | None:
        value = node.value
        if node.kind != "scalar" or not isinstance(value, str):
            self.error(node.line, path, "expected an event pattern such as 'fault:*'")
            return None
        if len(value) > MAX_PATTERN_CHARS or not PATTERN_RE.match(value):
            self.error(
                node.line,
                path,
                f"not an event pattern: {value[:40]!r} (letters, digits, _ : . - and the"
                f" wildcards * ?, at most {MAX_PATTERN_CHARS} characters)",
            )
            return None
        return value

    def thread(self, node: YNode | None, path: str) -> str | None:
        if node is None:
            return None
        if node.kind != "scalar" or not isinstance(node.value, str):
            self.error(node.line, path, "expected a thread name")
            return None
        if self.scenario is not None:
            names = [t.name for t in self.scenario.threads]
            if node.value not in names:
                hint = self.ld.did_you_mean(node.value, names)
                self.error(node.line, path, f"unknown thread {node.value!r}{hint}")
                return None
        return str(node.value)

    # --- the parts ----------------------------------------------------------------

    def lesson(self, root: YNode, name: str) -> Lesson | None:
        top = self.ld.mapping(root, "", "a mapping with title, intro, scenario, checkpoints")
        if top is None:
            return None
        self.ld.check_keys(root, "", _TOP_KEYS)
        title = self.text(top.get("title"), root.line, "title")
        intro = self.text(top.get("intro"), root.line, "intro")
        scenario = self.scenario_ref(top.get("scenario"), root.line)
        view = "single"
        if (node := top.get("view")) is not None:
            view = self.choice_of(node, "view", ("single", "compare")) or view
        mode = self.choice_of(n, "mode", MODES) if (n := top.get("mode")) else None
        arch = self.choice_of(n, "arch", ARCHES) if (n := top.get("arch")) else None
        patches = self.patches(top.get("patches"))
        sched = self.sched(top.get("sched"))
        checkpoints = self.checkpoints(top.get("checkpoints"), root.line, view)
        return Lesson(
            name=name,
            file=self.ld.file,
            title=title,
            intro=intro,
            scenario=scenario,
            view=view,
            mode=mode,
            arch=arch,
            patches=patches,
            sched=sched,
            checkpoints=checkpoints,
        )

    def scenario_ref(self, node: YNode | None, line: int) -> str:
        ref = self.text(node, line, "scenario")
        if not ref or node is None:
            return ""
        path = scenario_path(ref)
        if path is None:
            self.error(
                node.line,
                "scenario",
                f"no bundled scenario {ref!r} (a file stem of scenarios/, or races/NAME)",
            )
            return ""
        try:
            self.scenario = load_scenario(path)
        except ScenarioErrors as exc:
            self.error(node.line, "scenario", f"the scenario {ref!r} has errors: {exc.errors[0]}")
        return ref

    def patches(self, node: YNode | None) -> tuple[tuple[str, bool], ...]:
        if node is None:
            return ()
        entries = self.ld.mapping(node, "patches", "a mapping of patch name to true/false")
        if entries is None:
            return ()
        out: dict[str, bool] = {}
        for key, value in entries.items():
            line = (node.key_lines or {}).get(key, node.line)
            if key not in PATCHES:
                hint = self.ld.did_you_mean(key, PATCHES)
                self.error(line, f"patches.{key[:40]}", f"unknown patch{hint}")
            elif value.kind != "scalar" or not isinstance(value.value, bool):
                self.error(value.line, f"patches.{key}", "expected true or false")
            else:
                out[key] = value.value
        return tuple(sorted(out.items()))

    def sched(self, node: YNode | None) -> tuple[int, ...]:
        if node is None:
            return ()
        if node.kind != "seq":
            self.error(node.line, "sched", "expected a list of thread ids")
            return ()
        if len(node.value) > MAX_SCHED:
            self.error(node.line, "sched", f"longer than the limit of {MAX_SCHED} entries")
            return ()
        threads = len(self.scenario.threads) if self.scenario is not None else 1 << 20
        out = []
        for i, item in enumerate(node.value):
            tid = self.integer(item, f"sched[{i}]", -1, threads - 1)
            if tid is not None:
                out.append(tid)
        return tuple(out)

    def checkpoints(self, node: YNode | None, line: int, view: str) -> tuple[Checkpoint, ...]:
        if node is None:
            self.error(line, "checkpoints", "missing required field 'checkpoints'")
            return ()
        if node.kind != "seq" or not node.value:
            self.error(node.line, "checkpoints", "expected a non-empty list of checkpoints")
            return ()
        if len(node.value) > MAX_CHECKPOINTS:
            self.error(
                node.line, "checkpoints", f"more than the limit of {MAX_CHECKPOINTS} checkpoints"
            )
            return ()
        out = []
        for i, item in enumerate(node.value):
            cp = self.checkpoint(item, f"checkpoints[{i}]", view)
            if cp is not None:
                out.append(cp)
        return tuple(out)

    def checkpoint(self, node: YNode, path: str, view: str) -> Checkpoint | None:
        entries = self.ld.mapping(node, path, "a mapping with at, question, choices, explain")
        if entries is None:
            return None
        self.ld.check_keys(node, path, _CP_KEYS)
        before = len(self.ld.errors)
        at = self.at(entries.get("at"), node.line, f"{path}.at", view)
        question = self.text(entries.get("question"), node.line, f"{path}.question")
        explain = self.text(entries.get("explain"), node.line, f"{path}.explain")
        window = DEFAULT_WINDOW
        if (w := entries.get("window")) is not None:
            window = self.integer(w, f"{path}.window", 1, MAX_WINDOW) or window
        counter = count = count_thread = None
        if (c := entries.get("counter")) is not None:
            counter = self.choice_of(c, f"{path}.counter", COUNTERS)
        if (c := entries.get("count")) is not None:
            count, count_thread = self.count(c, f"{path}.count")
            if counter is not None:
                self.error(c.line, f"{path}.count", "give counter or count, not both")
        counting = entries.get("counter") is not None or entries.get("count") is not None
        choices = self.choices(entries.get("choices"), node.line, f"{path}.choices", counting)
        if len(self.ld.errors) != before or at is None:
            return None
        step, event, thread, nth, side = at
        return Checkpoint(
            line=node.line,
            step=step,
            event=event,
            thread=thread,
            nth=nth,
            side=side,
            question=question,
            window=window,
            counter=counter,
            count=count,
            count_thread=count_thread,
            choices=choices,
            explain=explain,
        )

    def at(
        self, node: YNode | None, line: int, path: str, view: str
    ) -> tuple[int | None, str | None, str | None, int, str] | None:
        if node is None:
            self.error(line, path, "missing required field 'at' (a step or an event)")
            return None
        entries = self.ld.mapping(node, path, "a mapping with step, or event (thread, nth)")
        if entries is None:
            return None
        self.ld.check_keys(node, path, _AT_KEYS)
        step = event = None
        if (s := entries.get("step")) is not None:
            step = self.integer(s, f"{path}.step", 0, MAX_STEP)
        if (e := entries.get("event")) is not None:
            event = self.pattern(e, f"{path}.event")
        if (s is None) == (e is None):
            self.error(node.line, path, "give exactly one of step or event")
            return None
        thread = self.thread(entries.get("thread"), f"{path}.thread")
        nth = 1
        if (n := entries.get("nth")) is not None:
            nth = self.integer(n, f"{path}.nth", 1, MAX_NTH) or 1
        side = "per_vma"
        if (sd := entries.get("side")) is not None:
            if view != "compare":
                self.error(sd.line, f"{path}.side", "side is for lessons with view: compare")
            side = self.choice_of(sd, f"{path}.side", SIDES) or side
        return step, event, thread, nth, side

    def count(self, node: YNode, path: str) -> tuple[str | None, str | None]:
        entries = self.ld.mapping(node, path, "a mapping with event (and thread)")
        if entries is None:
            return None, None
        self.ld.check_keys(node, path, ("event", "thread"))
        ev = entries.get("event")
        if ev is None:
            self.error(node.line, f"{path}.event", "missing required field 'event'")
            return None, None
        return self.pattern(ev, f"{path}.event"), self.thread(
            entries.get("thread"), f"{path}.thread"
        )

    def choices(
        self, node: YNode | None, line: int, path: str, counting: bool
    ) -> tuple[Choice, ...]:
        if node is None:
            self.error(line, path, "missing required field 'choices'")
            return ()
        if node.kind != "seq" or not MIN_CHOICES <= len(node.value) <= MAX_CHOICES:
            self.error(
                node.line, path, f"expected a list of {MIN_CHOICES} to {MAX_CHOICES} choices"
            )
            return ()
        out: list[Choice] = []
        values: dict[int, int] = {}
        others = 0
        for i, item in enumerate(node.value):
            cpath = f"{path}[{i}]"
            entries = self.ld.mapping(item, cpath, "a mapping with text and event (or value)")
            if entries is None:
                continue
            self.ld.check_keys(item, cpath, _CHOICE_KEYS)
            text = self.text(entries.get("text"), item.line, f"{cpath}.text")
            ev, th, val, other = (entries.get(k) for k in ("event", "thread", "value", "otherwise"))
            if counting:
                for key, extra in (("event", ev), ("thread", th), ("otherwise", other)):
                    if extra is not None:
                        self.error(
                            extra.line,
                            f"{cpath}.{key}",
                            "a counting checkpoint's choices have a value only",
                        )
                if val is None:
                    self.error(item.line, f"{cpath}.value", "missing required field 'value'")
                    continue
                value = self.integer(val, f"{cpath}.value", 0, MAX_STEP)
                if value is not None and value in values:
                    self.error(
                        val.line, f"{cpath}.value", f"the same value as choices[{values[value]}]"
                    )
                elif value is not None:
                    values[value] = i
                out.append(Choice(text, value=value))
                continue
            if val is not None:
                self.error(
                    val.line, f"{cpath}.value", "value is for checkpoints with counter or count"
                )
            if other is not None:
                if other.kind != "scalar" or other.value is not True:
                    self.error(other.line, f"{cpath}.otherwise", "expected true")
                others += 1
                if ev is not None or th is not None:
                    self.error(item.line, cpath, "an otherwise choice has no event or thread")
                out.append(Choice(text, otherwise=True))
                continue
            if ev is None:
                self.error(
                    item.line,
                    f"{cpath}.event",
                    "missing required field 'event' (or otherwise: true)",
                )
                continue
            out.append(
                Choice(
                    text,
                    event=self.pattern(ev, f"{cpath}.event"),
                    thread=self.thread(th, f"{cpath}.thread"),
                )
            )
        if others > 1:
            self.error(node.line, path, "at most one choice may be otherwise: true")
        return tuple(out)


def load_lesson_text(text: str | bytes, filename: str = "<lesson>", name: str = "") -> Lesson:
    """Validate a lesson from YAML text.

    Args:
        text: The YAML (bytes are decoded as UTF-8).
        filename: Shown in error messages.
        name: The lesson's name (its file stem).

    Raises:
        ScenarioErrors: Every problem, each as ``file:line: field: message``.
    """

    def fail(message: str, line: int | None = None) -> ScenarioErrors:
        return ScenarioErrors([ScenarioError(filename, line, "", message)])

    if isinstance(text, bytes):
        if len(text) > MAX_LESSON_BYTES:
            raise fail(f"larger than the limit of {MAX_LESSON_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(f"not UTF-8 text (offset {exc.start})") from None
    if len(text) > MAX_LESSON_BYTES or len(text.encode("utf-8", "replace")) > MAX_LESSON_BYTES:
        raise fail(f"larger than the limit of {MAX_LESSON_BYTES} bytes")
    loader = _Loader(filename)
    lesson = None
    try:
        root = loader.compose(text.removeprefix("\ufeff"))
        if root is not None:
            lesson = _LessonChecker(loader).lesson(root, name)
    except _Stop:
        lesson = None
    if loader.errors or lesson is None:
        raise ScenarioErrors(loader.sorted_errors() or [ScenarioError(filename, None, "", "empty")])
    return lesson


def load_lesson(path: str | Path) -> Lesson:
    """Validate a lesson file (its stem is the lesson's name).

    Raises:
        ScenarioErrors: Every problem (an unreadable file too).
    """
    file = Path(path)
    try:
        with file.open("rb") as f:
            data = f.read(min(MAX_FILE_BYTES, MAX_LESSON_BYTES) + 1)
    except (OSError, ValueError) as exc:
        message = f"cannot read the file: {exc}"
        raise ScenarioErrors([ScenarioError(str(path), None, "", message)]) from None
    return load_lesson_text(data, str(path), name=file.stem)


def bundled_lessons(directory: Path = LESSON_DIR) -> list[str]:
    """The bundled lessons' names, in the path's order (their file names sort in it)."""
    return sorted(p.stem for p in directory.glob("*.yaml") if LESSON_NAME_RE.match(p.stem))
