"""Load and validate scenario files (YAML) into :class:`~vmaviz.scenario.schema.Scenario`.

The YAML is composed into nodes (``yaml.compose``) rather than loaded, so every value
keeps the line it came from; errors can then name ``file:line: field``. Loading goes:

1. read (size limit, UTF-8) and compose the YAML; convert nodes to :class:`YNode`
   (rejecting duplicate keys, odd tags and alias cycles);
2. check the top level, kernel, costs and VMAs; parse each thread *template* once;
3. expand templates (``count`` copies, ``${i}``), checking the size limits first so
   an absurd file is refused before anything big is built;
4. resolve VMA names and page indexes across all expanded threads.

Every problem found is collected; one :class:`ScenarioErrors` carries them all.

Every stage is bounded for any file within ``MAX_FILE_BYTES``: aliases and merge keys
are converted once and their expansion counted against ``MAX_OP_ENTRIES`` and
``MAX_MERGE_ENTRIES``; checking stops after ``MAX_ERRORS`` errors; "did you mean"
runs at most ``MAX_SUGGESTIONS`` times per file over at most
``MAX_SUGGESTION_CANDIDATES`` names; the overlap check sorts once. Whatever the
input, the public functions raise nothing but :class:`ScenarioErrors`.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vmaviz.engine.costs import DEFAULT_COSTS
from vmaviz.model.kernel import PATCHES
from vmaviz.scenario.errors import ScenarioError, ScenarioErrors
from vmaviz.scenario.schema import (
    ARCHES,
    COST_LIMIT_NS,
    DEFAULT_RLIMIT_STACK,
    LOOP_COSTS,
    MAX_CPUS,
    MAX_ERRORS,
    MAX_EXPANDED_OP_ENTRIES,
    MAX_FILE_BYTES,
    MAX_INT_CHARS,
    MAX_LOOP_DEPTH,
    MAX_MERGE_ENTRIES,
    MAX_NAME_CHARS,
    MAX_NS,
    MAX_OP_ENTRIES,
    MAX_PAGES,
    MAX_RCU_GRACE_NS,
    MAX_RLIMIT_STACK,
    MAX_SEED,
    MAX_STEPS,
    MAX_SUGGESTION_CANDIDATES,
    MAX_SUGGESTIONS,
    MAX_THREADS,
    MAX_TOTAL_OPS,
    MAX_VMAS,
    MAX_YAML_DEPTH,
    MMAP_MIN_ADDR,
    NAME_RE,
    OPS,
    PAGE_SIZE,
    PROTS,
    SCENARIO_NAME_RE,
    TASK_SIZE,
    FieldSpec,
    KernelConfig,
    LookAtTarget,
    Op,
    Scenario,
    ThreadSpec,
    VmaSpec,
)

# The C composer is ~6x faster than the pure-Python one on a 1 MiB file and has its
# own nesting limit instead of recursing into RecursionError.
_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
# Only its stateless scalar constructors are used, so one instance serves all loads.
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class _Bad:
    """Marker for a value already reported as wrong, so it is not reported again."""

    def __repr__(self) -> str:
        return "<bad>"


_BAD: Any = _Bad()


class _TooBig(Exception):
    """Raised to stop parsing once the op-entry limit is hit (already reported)."""


class _Stop(Exception):
    """Raised to stop checking once more than :data:`MAX_ERRORS` errors are found."""


#: Start of the message of an unexpected exception turned into a ScenarioError.
INTERNAL_ERROR = "internal error in the scenario loader"

#: Patch names a scenario may switch: the model's toggles, plus ``all``.
PATCH_NAMES: tuple[str, ...] = (*PATCHES, "all")


@dataclass(slots=True)
class YNode:
    """A YAML value with the 1-based line it starts on.

    Attributes:
        kind: ``map``, ``seq`` or ``scalar``.
        value: ``dict[str, YNode]`` for maps, ``list[YNode]`` for sequences, the
            Python value (str, int, bool, float, None) for scalars.
        line: 1-based line number.
        key_lines: For maps, the line of each key.
    """

    kind: str
    value: Any
    line: int
    key_lines: dict[str, int] | None = None


@dataclass(slots=True)
class _Deferred:
    """A non-string field given as a ``${i}`` string in a thread template.

    It is checked once per copy, after substitution (``page: "${i}"``).
    """

    spec: FieldSpec
    raw: str
    line: int
    path: str


@dataclass(slots=True)
class _Template:
    """A parsed ``threads[k]`` entry before ``count`` expansion.

    Attributes:
        index: ``k``, for field paths.
        line: Line of the entry.
        name: The raw name (may hold ``${i}``), or ``None`` if it was bad.
        count: Copies to make, or ``None`` (absent, or bad when ``templated``).
        start_ns: An int, a :class:`_Deferred` or ``_BAD``.
        ops: The parsed ops, with raw ``${i}`` strings and deferred values.
        templated: Whether the entry has a ``count`` key (``${i}`` is expanded).
    """

    index: int
    line: int
    name: str | None
    count: int | None
    start_ns: Any
    ops: list[Op]
    templated: bool


# --- small helpers ------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    # bool is an int subclass; `pages: true` must not mean one page.
    return isinstance(value, int) and not isinstance(value, bool)


def _lines(text: str, indexes: list[int]) -> list[str]:
    """Lines ``indexes`` (0-based, from first to last) of ``text``."""
    if not indexes:
        return []
    return text.splitlines()[min(indexes) : max(indexes) + 1]


def _parse_int(text: str) -> int | None:
    """``text`` as an int: decimal (``"01"`` from ``"${i}1"`` too) or ``0x``/``0o``/``0b``."""
    digits = text.strip().replace("_", "")
    for base in (10, 0):
        try:
            return int(digits, base)
        except ValueError:
            pass
    return None


def _describe(value: Any) -> str:
    """How a wrong value is shown in a message."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {_short(value)!r}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _candidates(word: str, options: Any) -> list[str]:
    """At most :data:`MAX_SUGGESTION_CANDIDATES` of ``options`` worth comparing to ``word``.

    One pass over ``options``: names whose length differs by more than a third can
    never reach difflib's 0.6 cutoff with a short word, so they are skipped; of the
    rest, those sharing the first letter and closest in length come first.
    """
    size = len(word)
    slack = max(2, size // 3)
    close = [o for o in options if isinstance(o, str) and abs(len(o) - size) <= slack]
    if len(close) > MAX_SUGGESTION_CANDIDATES:
        first = word[:1]
        close.sort(key=lambda o: (o[:1] != first, abs(len(o) - size)))
        del close[MAX_SUGGESTION_CANDIDATES:]
    return close


def _addr_range(start: int, pages: int) -> str:
    return f"[{start:#x}, {start + pages * PAGE_SIZE:#x})"


def _range_text(rng: tuple[int, int]) -> str:
    return str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}-{rng[1]}"


_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _flow_depth_bound(text: str) -> int:
    """The flow (``[`` / ``{``) nesting depth of ``text``, judged by its brackets alone.

    Cheap enough for every file, and it only decides whether the exact (slower)
    check runs. Brackets in quoted or block text count too, so it can be off either
    way: too deep costs one extra parse; quoted closing brackets can hide depth, but
    such a file still composes in bounded time (libyaml stops at 1,000 levels;
    ``vmaviz.bench.hostile.hidden_deep_nesting`` is the worst case) and is then
    refused at ``MAX_YAML_DEPTH`` while converting.
    """
    depth = deepest = 0
    for char in _NOT_BRACKETS.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif depth:
            depth -= 1
    return deepest


_RANGE_RE = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")


# --- the loader ---------------------------------------------------------------------


_VMA_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("name", required=True),
    "start": FieldSpec("addr"),
    "pages": FieldSpec("int", required=True, lo=1, hi=MAX_PAGES, limit="MAX_PAGES = 2**36"),
    "prot": FieldSpec("choice", default="rw", choices=PROTS),
    "file": FieldSpec("str"),
    "shared": FieldSpec("bool", default=False),
    "anon_vma": FieldSpec("bool", default=False),
    "growsdown": FieldSpec("bool", default=False),
    "uffd": FieldSpec("bool", default=False),
}

_KERNEL_FIELDS: dict[str, FieldSpec] = {
    "per_vma_lock": FieldSpec("bool", default=True),
    "arch": FieldSpec("choice", default="x86", choices=ARCHES),
    "cpus": FieldSpec("int", default=4, lo=1, hi=MAX_CPUS, limit="MAX_CPUS"),
    "seed": FieldSpec("int", default=1, lo=0, hi=MAX_SEED, limit="MAX_SEED = 2**64 - 1"),
    "rcu_grace_ns": FieldSpec(
        "int", default=20_000, lo=0, hi=MAX_RCU_GRACE_NS, limit="MAX_RCU_GRACE_NS = 10 s"
    ),
    "rlimit_stack": FieldSpec(
        "int",
        default=DEFAULT_RLIMIT_STACK,
        lo=4096,
        hi=MAX_RLIMIT_STACK,
        limit="MAX_RLIMIT_STACK = 2**47 (128 TiB)",
    ),
    "patches": FieldSpec("patches", default={}),
}

_TOP_KEYS = ("name", "description", "question", "look_at", "kernel", "costs", "mm", "threads")
_THREAD_KEYS = ("name", "count", "start_ns", "ops")

# Kinds whose values are strings anyway: `${i}` in them is substituted in place
# rather than deferring the whole check.
_STRING_KINDS = frozenset({"str", "name", "vma", "newvma", "thread"})


class _Loader:
    """One load: the error list plus the state shared by the passes."""

    def __init__(self, filename: str) -> None:
        self.file = filename
        self.errors: list[ScenarioError] = []
        self._seen: set[tuple[int | None, str, str]] = set()
        # Appended to messages while checking one copy of a thread template.
        self.note = ""
        self.op_entries = 0
        self._memo: dict[int, YNode] = {}
        # Ops that are per-copy instances of templated ops (their errors name the copy).
        self._copies: set[int] = set()
        # Names and sizes of mm.vmas entries dropped for errors, so ops using them do
        # not also get "unknown vma".
        self._broken_vmas: dict[str, int | None] = {}
        self._active: set[int] = set()
        # Template path of every op object ("threads[0].ops[3]"); copies share it.
        self.op_paths: dict[int, str] = {}
        # Per template op: the args holding ${i}, or None if neither they nor its body do.
        self._templated: dict[int, tuple[str, ...] | None] = {}
        # Name resolution (filled by _resolve): pages of each name, the names in
        # mm.vmas, the threads (by index) mmapping each name and the line of its
        # first mmap, and every name for "did you mean".
        self._bounds: dict[str, int] = {}
        self._mm_names: set[str] = set()
        self._declared_by: dict[str, set[int]] = {}
        self._first_decl: dict[str, int] = {}
        self._known: list[str] = []
        # "Did you mean" lookups done (capped at MAX_SUGGESTIONS).
        self.suggestions = 0
        # Entries copied by merge keys so far (capped at MAX_MERGE_ENTRIES).
        self._merged = 0
        # Whether checking stopped at MAX_ERRORS.
        self.stopped = False

    # --- errors ---------------------------------------------------------------------

    def error(self, line: int | None, field: str, message: str) -> None:
        """Record one error (duplicates, e.g. from thread copies, are dropped).

        Raises:
            _Stop: This is error number ``MAX_ERRORS + 1``: nothing more is checked.
        """
        message += self.note
        key = (line, field, message)
        if key not in self._seen:
            self._seen.add(key)
            self.errors.append(ScenarioError(self.file, line, field, message))
            if len(self.errors) > MAX_ERRORS:
                self.stopped = True
                raise _Stop

    def sorted_errors(self) -> list[ScenarioError]:
        """Errors in line order, at most :data:`MAX_ERRORS`, then a note if checking stopped."""
        errors = sorted(self.errors, key=lambda e: e.line or 0)[:MAX_ERRORS]
        if self.stopped:
            errors.append(
                ScenarioError(
                    self.file,
                    None,
                    "",
                    f"... more errors not listed: checking stopped at the limit of {MAX_ERRORS}"
                    " errors (MAX_ERRORS)",
                )
            )
        return errors

    def did_you_mean(self, word: Any, options: Any) -> str:
        """`` (did you mean 'x'?)`` for the option closest to ``word``, or ``""``.

        Only the first :data:`MAX_SUGGESTIONS` lookups of a file compare anything, each
        against at most :data:`MAX_SUGGESTION_CANDIDATES` options, so a file full of
        unknown names costs no more than a few.
        """
        if not isinstance(word, str) or len(word) > MAX_NAME_CHARS:
            return ""
        if self.suggestions >= MAX_SUGGESTIONS:
            return ""
        self.suggestions += 1
        close = difflib.get_close_matches(word, _candidates(word, options), n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""

    # --- YAML -> YNode --------------------------------------------------------------

    def compose(self, text: str) -> YNode | None:
        """Parse ``text``; return the root node, or ``None`` after reporting why not."""
        if _flow_depth_bound(text) > MAX_YAML_DEPTH and self._too_deep(text):
            return None
        try:
            root = yaml.compose(text, Loader=_LOADER)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = f"invalid YAML: {exc.problem or exc.context}"
            if exc.context and exc.problem and exc.context_mark is not None:
                message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
            elif exc.context and exc.problem:
                message += f" ({exc.context})"
            lines = [m.line for m in (exc.context_mark, exc.problem_mark) if m is not None]
            if any("${" in line for line in _lines(text, lines)):
                # `{name: T${i}}`: braces end a flow mapping early; a common slip.
                message += '; inside [...] or {...}, quote text with ${i}: "T${i}"'
            self.error(None if mark is None else mark.line + 1, "", message)
            return None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            self.error(line, "", f"invalid YAML: {exc.reason} (character {exc.character!r})")
            return None
        except yaml.YAMLError as exc:  # pragma: no cover - every YAMLError above has a mark
            self.error(None, "", f"invalid YAML: {exc}")
            return None
        except RecursionError:
            # Only the pure-Python composer recurses per nesting level.
            self.error(
                None,
                "",
                f"invalid YAML: nested deeper than the limit of {MAX_YAML_DEPTH} levels"
                " (MAX_YAML_DEPTH)",
            )
            return None
        if root is None:
            self.error(None, "", "empty scenario file (expected a mapping with name, threads, ...)")
            return None
        return self.convert(root, "", 0)

    def _too_deep(self, text: str) -> bool:
        """Whether ``text`` nests deeper than :data:`MAX_YAML_DEPTH` (reported if so).

        libyaml's scanner does work proportional to the flow nesting depth for every
        token, so 1 MiB of ``[[[...]]]`` nested 990 deep takes seconds to compose.
        Reading events lazily stops at the first container past the limit.
        """
        depth = 0
        try:
            for event in yaml.parse(text, Loader=_LOADER):
                if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                    depth += 1
                    if depth > MAX_YAML_DEPTH:
                        mark = event.start_mark
                        self.error(
                            None if mark is None else mark.line + 1,
                            "",
                            f"invalid YAML: nested deeper than the limit of {MAX_YAML_DEPTH}"
                            " levels (MAX_YAML_DEPTH)",
                        )
                        return True
                elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                    depth -= 1
        except yaml.YAMLError:
            pass  # compose() reports it, with its position
        return False

    def convert(self, node: yaml.Node, path: str, depth: int) -> YNode:
        """Turn a composed node into a :class:`YNode` tree."""
        line = node.start_mark.line + 1
        key = id(node)
        if key in self._memo:
            # An alias: share the converted value (keeps "billion laughs" linear here;
            # the op-entry limit bounds the work done on what it expands to).
            return self._memo[key]
        if key in self._active:
            self.error(line, path, "recursive YAML alias (an anchor used inside itself)")
            return YNode("scalar", _BAD, line)
        if depth > MAX_YAML_DEPTH:
            self.error(
                line,
                path,
                f"nested deeper than the limit of {MAX_YAML_DEPTH} levels (MAX_YAML_DEPTH)",
            )
            return YNode("scalar", _BAD, line)
        self._active.add(key)
        try:
            if isinstance(node, yaml.ScalarNode):
                result = YNode("scalar", self._scalar(node, line, path), line)
            elif isinstance(node, yaml.SequenceNode):
                result = self._sequence(node, line, path, depth)
            else:
                assert isinstance(node, yaml.MappingNode)
                result = self._mapping(node, line, path, depth)
        finally:
            self._active.discard(key)
        self._memo[key] = result
        return result

    def _scalar(self, node: yaml.ScalarNode, line: int, path: str) -> Any:
        tag = node.tag
        constructor = _CONSTRUCTOR
        if tag == _TAG + "str":
            return node.value
        if tag == _TAG + "timestamp":
            # Plain text that happens to look like a date (a description, a name).
            return node.value
        if tag == _TAG + "null":
            if node.value in ("", "~", "null", "Null", "NULL"):
                return None
        elif tag == _TAG + "int" and len(node.value) > MAX_INT_CHARS:
            # Python refuses to convert more than 4300 digits, and printing a huge hex
            # literal's value would; no field takes anything near this long.
            self.error(
                line,
                path,
                f"integer literal of {len(node.value)} characters is longer than the limit"
                f" {MAX_INT_CHARS} (MAX_INT_CHARS)",
            )
            return _BAD
        elif tag in (_TAG + "int", _TAG + "bool", _TAG + "float"):
            try:
                if tag == _TAG + "int":
                    return constructor.construct_yaml_int(node)
                if tag == _TAG + "bool":
                    return constructor.construct_yaml_bool(node)
                return constructor.construct_yaml_float(node)
            except (ValueError, KeyError, IndexError, TypeError, OverflowError, yaml.YAMLError):
                # PyYAML's constructors trust the resolver: an explicit `!!int abc` or
                # `!!bool maybe` fails inside them in several ways.
                pass
            kind = tag.removeprefix(_TAG)
            self.error(line, path, f"{_short(node.value)!r} is not a valid !!{kind} value")
            return _BAD
        self.error(line, path, f"unsupported YAML value {_short(node.value)!r} (tag {tag})")
        return _BAD

    def _sequence(self, node: yaml.SequenceNode, line: int, path: str, depth: int) -> YNode:
        if node.tag != _TAG + "seq":
            self.error(line, path, f"unsupported YAML tag {node.tag} (use a plain list)")
            return YNode("scalar", _BAD, line)
        items = [self.convert(n, f"{path}[{i}]", depth + 1) for i, n in enumerate(node.value)]
        return YNode("seq", items, line)

    def _mapping(self, node: yaml.MappingNode, line: int, path: str, depth: int) -> YNode:
        if node.tag != _TAG + "map":
            self.error(line, path, f"unsupported YAML tag {node.tag} (use a plain mapping)")
            return YNode("scalar", _BAD, line)
        values: dict[str, YNode] = {}
        key_lines: dict[str, int] = {}
        merged: list[tuple[str, YNode, int]] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _TAG + "merge":
                merged.extend(self._merge_sources(value_node, key_line, path, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_line, path, "mapping keys must be plain names, not lists/mappings")
                continue
            # The key's text, not its YAML 1.1 value: `no:` or `1:` stay strings.
            key = str(key_node.value)
            child = f"{path}.{_short(key)}" if path else _short(key)
            if key in values:
                self.error(
                    key_line,
                    child,
                    f"duplicate key '{_short(key)}' (first given on line {key_lines[key]})",
                )
                continue
            values[key] = self.convert(value_node, child, depth + 1)
            key_lines[key] = key_line
        # `<<: *anchor` merges fill in keys not given explicitly (YAML merge-key rules).
        for key, value, key_line in merged:
            if key not in values:
                values[key] = value
                key_lines[key] = key_line
        return YNode("map", values, line, key_lines)

    def _merge_sources(
        self, node: yaml.Node, line: int, path: str, depth: int
    ) -> Iterator[tuple[str, YNode, int]]:
        source = self.convert(node, path, depth + 1)
        sources = source.value if source.kind == "seq" else [source]
        for src in sources:
            if src.kind != "map" or src.key_lines is None:
                if src.value is not _BAD:
                    self.error(line, path, "'<<' must merge a mapping or a list of mappings")
                continue
            # Aliases let a short file merge one big mapping many times over.
            self._merged += len(src.value)
            if self._merged > MAX_MERGE_ENTRIES:
                self.error(
                    line,
                    path,
                    f"YAML merge keys ('<<') copy more than {MAX_MERGE_ENTRIES} entries in the"
                    " file (MAX_MERGE_ENTRIES)",
                )
                return
            for key, value in src.value.items():
                yield key, value, src.key_lines[key]

    # --- generic field checks -------------------------------------------------------

    def mapping(self, node: YNode, path: str, what: str) -> dict[str, YNode] | None:
        """``node``'s entries if it is a mapping, else report and return ``None``."""
        if node.kind == "map":
            result: dict[str, YNode] = node.value
            return result
        if node.value is not _BAD:
            self.error(node.line, path, f"expected {what}, got {_describe(node.value)}")
        return None

    def check_keys(self, node: YNode, path: str, allowed: Any) -> None:
        """Report keys of mapping ``node`` that are not in ``allowed``."""
        assert node.key_lines is not None
        for key in node.value:
            if key not in allowed:
                self.error(
                    node.key_lines[key],
                    f"{path}.{_short(key)}" if path else _short(key),
                    f"unknown key '{_short(key)}'{self.did_you_mean(key, allowed)}"
                    f" (allowed: {', '.join(allowed)})",
                )

    def fields(
        self,
        node: YNode | None,
        line: int,
        path: str,
        specs: dict[str, FieldSpec],
        tmpl: bool,
        depth: int = 0,
        only: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        """Check the mapping ``node`` against ``specs``.

        Args:
            node: The mapping, or ``None`` for "no fields given".
            line: Line to report missing fields on.
            path: Field path of the mapping.
            specs: Allowed fields.
            tmpl: Whether this is inside a thread template with ``count``.
            depth: Loop nesting depth (for ``ops`` fields).
            only: Report keys not in ``specs`` as unknown.

        Returns:
            The values with defaults filled in, and whether all were valid.
        """
        before = len(self.errors)
        entries: dict[str, YNode] = {}
        if node is not None:
            if only:
                self.check_keys(node, path, specs)
            entries = node.value
        args: dict[str, Any] = {}
        for name, spec in specs.items():
            child = entries.get(name)
            fpath = f"{path}.{name}" if path else name
            if child is None:
                if spec.required:
                    self.error(line, fpath, f"missing required field '{name}'")
                    args[name] = _BAD
                else:
                    args[name] = list(spec.default) if spec.kind == "vmas" else spec.default
                continue
            args[name] = self.value(spec, child, fpath, tmpl, depth)
        # A value reported while the YAML was converted (`!!int abc`) is _BAD without a
        # new error here; it must still not pass as valid.
        ok = len(self.errors) == before and not any(v is _BAD for v in args.values())
        return args, ok

    def value(self, spec: FieldSpec, node: YNode, path: str, tmpl: bool, depth: int = 0) -> Any:
        """Check one field value; return it converted, a :class:`_Deferred`, or ``_BAD``."""
        if node.value is _BAD:
            return _BAD
        if spec.kind == "ops":
            return self.ops(node, path, depth + 1, tmpl)
        if spec.kind == "vmas":
            if node.kind != "seq":
                self.error(
                    node.line, path, f"expected a list of vma names, got {_describe_node(node)}"
                )
                return _BAD
            names = []
            for j, item in enumerate(node.value):
                # Each name is copied per thread copy and checked per reference, and an
                # alias can repeat a long list: count it like an op entry.
                self.count_entry(item.line, f"{path}[{j}]")
                names.append(self.value(FieldSpec("vma"), item, f"{path}[{j}]", tmpl))
            return _BAD if any(n is _BAD for n in names) else names
        if spec.kind == "at":
            entries = self.mapping(node, path, "a mapping {vma: NAME, page: INT}")
            if entries is None:
                return _BAD
            at, ok = self.fields(node, node.line, path, _AT_FIELDS, tmpl)
            return at if ok else _BAD
        if spec.kind == "patches":
            return self._patches(node, path)
        if node.kind != "scalar":
            self.error(node.line, path, f"expected {_expected(spec)}, got {_describe_node(node)}")
            return _BAD
        value = node.value
        if isinstance(value, str) and "${" in value and spec.kind != "text":
            if not tmpl:
                self.error(
                    node.line,
                    path,
                    f"'{_short(value)}': ${{i}} is only expanded in threads with a count",
                )
                return _BAD
            if "${" in value.replace("${i}", ""):
                self.error(
                    node.line, path, f"'{_short(value)}': the only template variable is ${{i}}"
                )
                return _BAD
            if len(value) > MAX_NAME_CHARS:
                # Every thread copy holds its own substituted text.
                self.error(
                    node.line,
                    path,
                    f"template value of {len(value)} characters is longer than the limit"
                    f" {MAX_NAME_CHARS} (MAX_NAME_CHARS)",
                )
                return _BAD
            if spec.kind in _STRING_KINDS:
                return self.check(spec, value, node.line, path, False)
            return _Deferred(spec, value, node.line, path)
        return self.check(spec, value, node.line, path, False)

    def check(self, spec: FieldSpec, value: Any, line: int, path: str, expanded: bool) -> Any:
        """Check a scalar against ``spec``.

        Args:
            spec: The field spec.
            value: The scalar.
            line: Where it is.
            path: Its field path.
            expanded: ``value`` is a string produced by ``${i}`` substitution, so
                numbers and bools arrive as text and are parsed here.

        Returns:
            The checked value or ``_BAD``.
        """
        kind = spec.kind
        if kind in ("int", "addr"):
            number = value
            if isinstance(value, str) and (expanded or kind == "addr"):
                if len(value) > MAX_INT_CHARS:
                    self.error(
                        line,
                        path,
                        f"number of {len(value)} characters is longer than the limit"
                        f" {MAX_INT_CHARS} (MAX_INT_CHARS)",
                    )
                    return _BAD
                number = _parse_int(value)
            if not _is_int(number):
                hint = " or a hex string like '0x7f0000000000'" if kind == "addr" else ""
                self.error(line, path, f"expected an integer{hint}, got {_describe(value)}")
                return _BAD
            if kind == "addr":
                return self._addr(number, line, path)
            if number < spec.lo:
                self.error(line, path, f"{number} is below the minimum {spec.lo}")
                return _BAD
            if number > spec.hi:
                limit = f" ({spec.limit})" if spec.limit else ""
                self.error(line, path, f"{number} is above the limit {spec.hi}{limit}")
                return _BAD
            return number
        if kind == "bool":
            if expanded and value in ("true", "false"):
                return value == "true"
            if not isinstance(value, bool):
                self.error(line, path, f"expected true or false, got {_describe(value)}")
                return _BAD
            return value
        if not isinstance(value, str) and kind != "range":
            self.error(line, path, f"expected {_expected(spec)}, got {_describe(value)}")
            return _BAD
        if kind not in ("text", "range") and len(value) > MAX_NAME_CHARS:
            # Names are copied into every thread copy and every message that quotes them.
            self.error(
                line,
                path,
                f"{_short(value)!r} is {len(value)} characters, longer than the limit"
                f" {MAX_NAME_CHARS} (MAX_NAME_CHARS)",
            )
            return _BAD
        if kind in ("str", "text"):
            if not value.strip():
                self.error(line, path, "must not be empty")
                return _BAD
            return value
        if kind in ("name", "vma", "newvma", "thread"):
            if not NAME_RE.fullmatch(value):
                self.error(
                    line,
                    path,
                    f"{value!r} is not a valid name (letters, digits, '_', '.', '-';"
                    " not starting with a digit)",
                )
                return _BAD
            return value
        if kind == "choice":
            if value not in spec.choices:
                self.error(
                    line,
                    path,
                    f"expected one of {', '.join(spec.choices)}, got {_short(value)!r}"
                    f"{self.did_you_mean(value, spec.choices)}",
                )
                return _BAD
            return value
        assert kind == "range", kind
        return self._range(value, line, path, expanded)

    def _range(self, value: Any, line: int, path: str, expanded: bool) -> Any:
        if _is_int(value):
            first = last = value
        elif isinstance(value, str) and (match := _RANGE_RE.fullmatch(value)):
            longest = max(len(match[1]), len(match[2] or ""))
            if longest > len(str(MAX_PAGES - 1)):
                # Also keeps int() below Python's 4300-digit conversion limit.
                self.error(
                    line,
                    path,
                    f"page number of {longest} digits is above the limit {MAX_PAGES - 1}"
                    " (MAX_PAGES - 1)",
                )
                return _BAD
            first = int(match[1])
            last = int(match[2]) if match[2] is not None else first
        else:
            self.error(
                line,
                path,
                f"expected a page range like '0-15', '3' or 3, got {_describe(value)}",
            )
            return _BAD
        if first < 0:
            self.error(line, path, f"page {first} is negative")
            return _BAD
        if first > last:
            self.error(
                line,
                path,
                f"range '{_short(str(value))}' is reversed (first page {first} > last {last})",
            )
            return _BAD
        if last >= MAX_PAGES:
            self.error(
                line, path, f"page {last} is above the limit {MAX_PAGES - 1} (MAX_PAGES - 1)"
            )
            return _BAD
        return (first, last)

    def _addr(self, addr: int, line: int, path: str) -> Any:
        if addr % PAGE_SIZE:
            self.error(line, path, f"start {addr:#x} is not page-aligned (a multiple of 4096)")
            return _BAD
        if addr < MMAP_MIN_ADDR:
            self.error(
                line,
                path,
                f"start {addr:#x} is below mmap_min_addr {MMAP_MIN_ADDR:#x} (MMAP_MIN_ADDR)",
            )
            return _BAD
        if addr >= TASK_SIZE:
            self.error(
                line,
                path,
                f"start {addr:#x} is beyond the user address space ({TASK_SIZE:#x}, TASK_SIZE)",
            )
            return _BAD
        return addr

    def _patches(self, node: YNode, path: str) -> Any:
        entries = self.mapping(node, path, "a mapping of patch names to true/false")
        if entries is None:
            return _BAD
        assert node.key_lines is not None
        patches: dict[str, bool] = {}
        for key, child in entries.items():
            kpath = f"{path}.{_short(key)}"
            if key not in PATCHES and key != "all":
                # The model only knows vmaviz.model.kernel.PATCHES; an unknown name
                # would otherwise fail only when the run starts, without a line.
                self.error(
                    node.key_lines[key],
                    kpath,
                    f"unknown patch '{_short(key)}'{self.did_you_mean(key, PATCH_NAMES)}"
                    f" (known: {', '.join(PATCH_NAMES)})",
                )
                continue
            if child.value is _BAD:
                continue
            value = self.check(FieldSpec("bool"), child.value, child.line, kpath, False)
            if value is not _BAD:
                patches[key] = value
        return patches if len(patches) == len(entries) else _BAD

    # --- the document ---------------------------------------------------------------

    def scenario(self, root: YNode) -> dict[str, Any] | None:
        """Check the top level; return the parts of the scenario (or ``None``)."""
        top = self.mapping(
            root, "", "a mapping at the top level (name, description, mm, threads, ...)"
        )
        if top is None:
            return None
        self.check_keys(root, "", _TOP_KEYS)
        head, _ = self.fields(root, root.line, "", _HEAD_FIELDS, False, only=False)
        if isinstance(head["name"], str) and not SCENARIO_NAME_RE.fullmatch(head["name"]):
            self.error(
                top["name"].line,
                "name",
                f"{_short(head['name'])!r} is not a valid scenario name (lowercase letters, digits,"
                " '_', '.', '-')",
            )
        look_at, targets = self._look_at(top.get("look_at"))
        kernel = self._kernel(top.get("kernel"))
        costs = self._costs(top.get("costs"))
        vmas = self._vmas(top.get("mm"))
        templates = self._threads(top.get("threads"), root.line)
        threads: list[ThreadSpec] = []
        if templates is not None:
            expanded = self._expand(templates, top["threads"])
            if expanded:
                self._resolve(vmas, expanded)
            threads = [thread for thread, _ in expanded]
        if templates is not None:
            self._look_at_threads(targets, {t.name for t in threads})
        return {
            "name": head["name"],
            "description": head["description"],
            "question": head["question"],
            "look_at": look_at,
            "look_at_targets": [t for t, _, _ in targets] if any(t for t, _, _ in targets) else [],
            "kernel": kernel,
            "costs": costs,
            "vmas": vmas,
            "threads": threads,
        }

    def _look_at(
        self, node: YNode | None
    ) -> tuple[list[str], list[tuple[LookAtTarget | None, int, int]]]:
        """The ``look_at`` bullets: their texts, and each one's target with its line.

        A bullet is a string, ``{text, event: PATTERN, thread: NAME?}`` or
        ``{text, step: N}``; the thread names are checked once the threads are known
        (:meth:`_look_at_threads`).
        """
        if node is None:
            return [], []
        if node.kind != "seq":
            if node.value is not _BAD:
                self.error(
                    node.line, "look_at", f"expected a list of strings, got {_describe_node(node)}"
                )
            return [], []
        texts: list[str] = []
        targets: list[tuple[LookAtTarget | None, int, int]] = []
        for j, item in enumerate(node.value):
            path = f"look_at[{j}]"
            if item.kind != "map":
                if (v := self.value(FieldSpec("text"), item, path, False)) is not _BAD:
                    texts.append(v)
                    targets.append((None, item.line, j))
                continue
            args, ok = self.fields(item, item.line, path, _LOOK_AT_FIELDS, False)
            if not ok:
                continue
            if (args["event"] is None) == (args["step"] is None):
                self.error(item.line, path, "give exactly one of 'event' (a pattern) or 'step'")
                continue
            if args["thread"] is not None and args["event"] is None:
                self.error(item.line, f"{path}.thread", "'thread' goes with 'event', not 'step'")
                continue
            # (A pattern is a ``str`` field: at most MAX_NAME_CHARS, checked above.)
            event = args["event"]
            texts.append(args["text"])
            target = LookAtTarget(event=event, thread=args["thread"], step=args["step"])
            targets.append((target, item.line, j))
        return texts, targets

    def _look_at_threads(
        self, targets: list[tuple[LookAtTarget | None, int, int]], names: set[str]
    ) -> None:
        """Report a ``look_at`` bullet whose ``thread`` names no thread of the file."""
        for target, line, j in targets:
            if target is not None and target.thread is not None and target.thread not in names:
                self.error(
                    line,
                    f"look_at[{j}].thread",
                    f"no thread named '{_short(target.thread)}'"
                    f"{self.did_you_mean(target.thread, sorted(names))}",
                )

    def _kernel(self, node: YNode | None) -> KernelConfig:
        if node is None or self.mapping(node, "kernel", "a mapping of kernel settings") is None:
            return KernelConfig()
        args, ok = self.fields(node, node.line, "kernel", _KERNEL_FIELDS, False)
        if not ok:
            return KernelConfig()
        patches = dict(args.pop("patches"))
        return KernelConfig(patches=patches, **args)

    def _costs(self, node: YNode | None) -> dict[str, int]:
        if node is None:
            return {}
        entries = self.mapping(node, "costs", "a mapping of cost names to ns")
        if entries is None:
            return {}
        assert node.key_lines is not None
        spec = FieldSpec("int", lo=0, hi=COST_LIMIT_NS - 1, limit="COST_LIMIT_NS - 1")
        costs: dict[str, int] = {}
        for key, child in entries.items():
            path = f"costs.{_short(key)}"
            if key not in DEFAULT_COSTS:
                # The engine's cost table is the only vocabulary; an unknown name would
                # otherwise fail only when the run starts, without a line.
                self.error(
                    node.key_lines[key],
                    path,
                    f"unknown cost '{_short(key)}'{self.did_you_mean(key, DEFAULT_COSTS)}"
                    " (see vmaviz/engine/costs.py for the names)",
                )
                continue
            value = self.value(spec, child, path, False)
            if value == 0 and key in LOOP_COSTS:
                self.error(
                    child.line,
                    path,
                    f"must be at least 1 ns: {key} is charged on every round of a"
                    " wait/retry loop, and at 0 simulated time would stop while a thread spins"
                    f" (LOOP_COSTS: {', '.join(LOOP_COSTS)})",
                )
                continue
            if value is not _BAD:
                costs[key] = value
        return costs

    def _vmas(self, node: YNode | None) -> list[VmaSpec]:
        if node is None:
            return []
        if self.mapping(node, "mm", "a mapping with a 'vmas' list") is None:
            return []
        self.check_keys(node, "mm", ("vmas",))
        items = node.value.get("vmas")
        if items is None:
            return []
        if items.kind != "seq":
            if items.value is not _BAD:
                self.error(
                    items.line, "mm.vmas", f"expected a list of VMAs, got {_describe_node(items)}"
                )
            return []
        if len(items.value) > MAX_VMAS:
            self.error(
                items.line,
                "mm.vmas",
                f"{len(items.value)} VMAs, above the limit {MAX_VMAS} (MAX_VMAS)",
            )
            return []
        vmas: list[VmaSpec] = []
        positions: list[int] = []
        first_line: dict[str, int] = {}
        for j, item in enumerate(items.value):
            path = f"mm.vmas[{j}]"
            if self.mapping(item, path, "a VMA mapping (name, pages, ...)") is None:
                continue
            args, ok = self.fields(item, item.line, path, _VMA_FIELDS, False)
            name = args["name"]
            if isinstance(name, str):
                if name in first_line:
                    self.error(
                        item.value["name"].line,
                        f"{path}.name",
                        f"duplicate vma name '{name}' (first on line {first_line[name]})",
                    )
                    ok = False
                else:
                    first_line[name] = item.value["name"].line
            start, pages = args["start"], args["pages"]
            if _is_int(start) and _is_int(pages) and start + pages * PAGE_SIZE > TASK_SIZE:
                self.error(
                    item.value["start"].line,
                    f"{path}.start",
                    f"vma {_addr_range(start, pages)} ends beyond the user address space"
                    f" limit {TASK_SIZE:#x} (TASK_SIZE)",
                )
                ok = False
            if ok:
                vmas.append(VmaSpec(line=item.line, **args))
                positions.append(j)
            elif isinstance(name, str) and name not in self._broken_vmas:
                self._broken_vmas[name] = pages if _is_int(pages) else None
        self._check_overlaps(vmas, positions)
        total = sum(v.pages for v in vmas) * PAGE_SIZE
        if total > TASK_SIZE - MMAP_MIN_ADDR:
            self.error(
                items.line,
                "mm.vmas",
                f"the VMAs need {total:#x} bytes, more than the user address space"
                f" ({TASK_SIZE - MMAP_MIN_ADDR:#x} bytes, TASK_SIZE - MMAP_MIN_ADDR)",
            )
        return vmas

    def _check_overlaps(self, vmas: list[VmaSpec], positions: list[int]) -> None:
        """Report VMAs overlapping an earlier-starting one: one sort, one pass.

        Args:
            vmas: The valid VMAs.
            positions: Index of each in ``mm.vmas`` (invalid entries were dropped).
        """
        placed = sorted(
            ((v, positions[j]) for j, v in enumerate(vmas) if v.start is not None),
            key=lambda p: (p[0].start or 0, p[1]),
        )
        widest: VmaSpec | None = None  # the placed VMA reaching furthest up so far
        for vma, index in placed:
            assert vma.start is not None and vma.end is not None
            if widest is not None and widest.end is not None and vma.start < widest.end:
                assert widest.start is not None
                self.error(
                    vma.line,
                    f"mm.vmas[{index}].start",
                    f"vma '{vma.name}' {_addr_range(vma.start, vma.pages)} overlaps vma"
                    f" '{widest.name}' {_addr_range(widest.start, widest.pages)}"
                    f" (line {widest.line})",
                )
            if widest is None or (widest.end or 0) < vma.end:
                widest = vma

    # --- threads --------------------------------------------------------------------

    def _threads(self, node: YNode | None, root_line: int) -> list[_Template] | None:
        if node is None:
            self.error(root_line, "threads", "missing required field 'threads'")
            return None
        if node.kind != "seq":
            if node.value is not _BAD:
                self.error(
                    node.line, "threads", f"expected a list of threads, got {_describe_node(node)}"
                )
            return None
        if not node.value:
            self.error(node.line, "threads", "needs at least one thread")
            return None
        templates: list[_Template] = []
        try:
            for k, item in enumerate(node.value):
                template = self._thread(item, k)
                if template is not None:
                    templates.append(template)
        except _TooBig:
            return None
        return templates

    def _thread(self, node: YNode, k: int) -> _Template | None:
        path = f"threads[{k}]"
        entries = self.mapping(node, path, "a thread mapping (name, ops, ...)")
        if entries is None:
            return None
        self.check_keys(node, path, _THREAD_KEYS)
        count: int | None = None
        if "count" in entries:
            value = self.value(_COUNT, entries["count"], f"{path}.count", False)
            count = value if _is_int(value) else None
        tmpl = "count" in entries
        name = _BAD
        if "name" in entries:
            name = self.value(FieldSpec("name"), entries["name"], f"{path}.name", tmpl)
        else:
            self.error(node.line, f"{path}.name", "missing required field 'name'")
        start_ns: Any = 0
        if "start_ns" in entries:
            start_ns = self.value(_START_NS, entries["start_ns"], f"{path}.start_ns", tmpl)
        ops: list[Op] = []
        if "ops" in entries:
            parsed = self.ops(entries["ops"], f"{path}.ops", 0, tmpl)
            ops = parsed if isinstance(parsed, list) else []
        else:
            self.error(node.line, f"{path}.ops", "missing required field 'ops'")
        return _Template(
            index=k,
            line=node.line,
            name=name if isinstance(name, str) else None,
            count=count,
            start_ns=start_ns,
            ops=ops,
            templated=tmpl,
        )

    def ops(self, node: YNode, path: str, depth: int, tmpl: bool) -> Any:
        """Parse an op list (``depth`` counts enclosing loops); a list or ``_BAD``.

        Ops with a known name but bad fields are reported and kept, with ``_BAD`` in
        place of each bad value, so the name checks still see what they use and
        declare. (No scenario is built from them: their errors are raised.)
        """
        if depth > MAX_LOOP_DEPTH:
            self.error(node.line, path, f"loops nest deeper than {MAX_LOOP_DEPTH} (MAX_LOOP_DEPTH)")
            return _BAD
        if node.kind != "seq":
            if node.value is not _BAD:
                self.error(node.line, path, f"expected a list of ops, got {_describe_node(node)}")
            return _BAD
        ops: list[Op] = []
        for j, item in enumerate(node.value):
            self.count_entry(item.line, f"{path}[{j}]")
            op = self._op(item, f"{path}[{j}]", depth, tmpl)
            if op is not None:
                ops.append(op)
        return ops

    def count_entry(self, line: int, path: str) -> None:
        """Count one op entry (or ``vmas`` item) visited, aliases expanded.

        Raises:
            _TooBig: Past :data:`MAX_OP_ENTRIES` (reported here).
        """
        self.op_entries += 1
        if self.op_entries > MAX_OP_ENTRIES:
            self.error(
                line,
                path,
                f"more than {MAX_OP_ENTRIES} op entries in the file (MAX_OP_ENTRIES; each"
                " hold_mmap_write vmas item counts as one); use loop or count to repeat ops",
            )
            raise _TooBig

    def _op(self, item: YNode, path: str, depth: int, tmpl: bool) -> Op | None:
        fields_node: YNode | None = None
        if item.kind == "scalar" and isinstance(item.value, str):
            kind = item.value
        elif item.kind == "map" and len(item.value) == 1:
            kind, fields_node = next(iter(item.value.items()))
        elif item.kind == "map":
            keys = list(item.value)
            if not keys:
                self.error(
                    item.line,
                    path,
                    "an op is a one-key mapping like {fault: {vma: heap, page: 0}}, got an"
                    " empty mapping",
                )
                return None
            hint = ""
            if keys[0] in OPS and all(k in OPS[keys[0]] for k in keys[1:]):
                hint = f" (indent the fields under '{keys[0]}:')"
            shown = ", ".join(_short(k) for k in keys[:10]) + (", ..." if len(keys) > 10 else "")
            self.error(
                item.line,
                path,
                f"an op is a one-key mapping like {{fault: {{vma: heap, page: 0}}}}, got keys"
                f" {shown}{hint}",
            )
            return None
        else:
            if item.value is not _BAD:
                self.error(
                    item.line,
                    path,
                    f"expected an op (a name or a one-key mapping), got {_describe_node(item)}",
                )
            return None
        if kind not in OPS:
            self.error(
                item.line, path, f"unknown op '{_short(kind)}'{self.did_you_mean(kind, OPS)}"
            )
            return None
        specs = OPS[kind]
        fpath = f"{path}.{kind}"
        if fields_node is not None and fields_node.kind == "scalar" and fields_node.value is None:
            fields_node = None  # `- fork:` or `- fork: null`
        if fields_node is not None and fields_node.kind != "map":
            if fields_node.value is not _BAD:
                self.error(
                    fields_node.line,
                    fpath,
                    f"the fields of '{kind}' must be a mapping, got {_describe_node(fields_node)}",
                )
            return None
        args, _ = self.fields(fields_node, item.line, fpath, specs, tmpl, depth)
        if kind == "mmap" and args["fixed"] is True and args["at"] is None:
            self.error(item.line, f"{fpath}.at", "fixed: true needs 'at' (where to map)")
        if kind == "mmap" and args["pgoff"] and args["file"] is None:
            # do_mmap ignores the offset of anonymous memory (it uses addr >>
            # PAGE_SHIFT, or 0 when shared): a pgoff there would do nothing.
            self.error(item.line, f"{fpath}.pgoff", "pgoff needs 'file' (anonymous has none)")
        if (
            kind == "mremap"
            and isinstance(args["name"], str)
            and args["move"] is False
            and args["maymove"] is False
        ):
            self.error(
                fields_node.line if fields_node else item.line,
                f"{fpath}.name",
                "a new name only makes sense with move: true or maymove: true (the range "
                "stays in place otherwise)",
            )
        body = None
        if kind == "loop":
            body = args.pop("ops")
            if not isinstance(body, list):
                body = []
        op = Op(kind, args, item.line, body)
        self.op_paths[id(op)] = path
        return op

    # --- expansion ------------------------------------------------------------------

    def _expand(
        self, templates: list[_Template], node: YNode
    ) -> list[tuple[ThreadSpec, _Template]]:
        """Expand ``count`` templates, after checking the limits that bound the work."""
        copies = sum(t.count or 1 for t in templates)
        if copies > MAX_THREADS:
            self.error(
                node.line,
                "threads",
                f"{copies} threads after count expansion, above the limit {MAX_THREADS}"
                " (MAX_THREADS)",
            )
            return []
        entries = sum((t.count or 1) * _entries(t.ops) for t in templates)
        if entries > MAX_EXPANDED_OP_ENTRIES:
            self.error(
                node.line,
                "threads",
                f"{entries} op entries after count expansion, above the limit"
                f" {MAX_EXPANDED_OP_ENTRIES} (MAX_EXPANDED_OP_ENTRIES); use loop to repeat ops",
            )
            return []
        threads: list[tuple[ThreadSpec, _Template]] = []
        first_line: dict[str, int] = {}
        total = 0
        biggest = (0, "")
        for t in templates:
            for i in range(t.count or 1):
                thread = self._copy(t, i)
                if thread is None:
                    continue
                n = _count(thread.ops)
                total += n
                biggest = max(biggest, (n, f"threads[{t.index}] '{thread.name}'"))
                if thread.name in first_line:
                    hint = (
                        " (add ${i} to the name of a thread with count)"
                        if t.count is not None and "${i}" not in (t.name or "")
                        else ""
                    )
                    self.error(
                        t.line,
                        f"threads[{t.index}].name",
                        f"duplicate thread name '{thread.name}' (first on line"
                        f" {first_line[thread.name]}){hint}",
                    )
                else:
                    first_line[thread.name] = t.line
                threads.append((thread, t))
        if total > MAX_TOTAL_OPS:
            self.error(
                node.line,
                "threads",
                f"{total} ops after expanding loops and counts, above the limit {MAX_TOTAL_OPS}"
                f" (MAX_TOTAL_OPS; largest: {biggest[1]} with {biggest[0]})",
            )
            return []
        return threads

    def _copy(self, t: _Template, i: int) -> ThreadSpec | None:
        """Copy ``i`` of template ``t``, or ``None`` if the template was broken."""
        if t.name is None or (t.templated and t.count is None):
            return None
        if not t.templated:
            if not _is_int(t.start_ns):
                return None
            return ThreadSpec(t.name, t.start_ns, t.ops, t.line)
        name = t.name.replace("${i}", str(i))
        self.note = f" (in thread {name})"
        try:
            start_ns = self._subst(t.start_ns, i)
            ops = self._expand_ops(t.ops, i)
        finally:
            self.note = ""
        if not _is_int(start_ns):
            return None
        return ThreadSpec(name, start_ns, ops, t.line)

    def _expand_ops(self, ops: list[Op], i: int) -> list[Op]:
        out: list[Op] = []
        for op in ops:
            keys = self._template_keys(op)
            if keys is None:
                out.append(op)  # shared between copies: ops are never mutated
                continue
            args = dict(op.args)
            for key in keys:
                args[key] = self._subst(args[key], i)
            body = None if op.body is None else self._expand_ops(op.body, i)
            copy = Op(op.kind, args, op.line, body)
            self.op_paths[id(copy)] = self.op_paths[id(op)]
            self._copies.add(id(copy))
            out.append(copy)
        return out

    def _template_keys(self, op: Op) -> tuple[str, ...] | None:
        """Keys of ``op.args`` holding ``${i}``; ``None`` if neither they nor the body do."""
        key = id(op)
        if key not in self._templated:
            keys = tuple(k for k, v in op.args.items() if _has_template(v))
            body = op.body is not None and any(self._template_keys(o) is not None for o in op.body)
            self._templated[key] = keys if keys or body else None
        return self._templated[key]

    def _subst(self, value: Any, i: int) -> Any:
        if isinstance(value, str):
            return value.replace("${i}", str(i))
        if isinstance(value, _Deferred):
            text = value.raw.replace("${i}", str(i))
            return self.check(value.spec, text, value.line, value.path, True)
        if isinstance(value, list):
            return [self._subst(v, i) for v in value]
        if isinstance(value, dict):
            return {k: self._subst(v, i) for k, v in value.items()}
        return value

    # --- names ----------------------------------------------------------------------

    def _resolve(self, vmas: list[VmaSpec], expanded: list[tuple[ThreadSpec, _Template]]) -> None:
        """Check that ops name declared VMAs and stay within their pages.

        VMA names are global labels: an op may use a name from ``mm.vmas``, one that
        another thread mmaps (the threads run concurrently, so any order is
        possible), or one its own thread mmapped earlier.
        """
        self._bounds = {v.name: v.pages for v in vmas}
        self._mm_names = set(self._bounds) | set(self._broken_vmas)
        for name, pages in self._broken_vmas.items():
            if pages is not None:
                self._bounds.setdefault(name, pages)
        self._declared_by = {}
        self._first_decl = {}
        for k, (thread, _) in enumerate(expanded):
            for op in _walk(thread.ops):
                for name, pages in _declarations(op):
                    self._declared_by.setdefault(name, set()).add(k)
                    self._first_decl.setdefault(name, op.line)
                    if _is_int(pages):
                        self._bounds[name] = max(self._bounds.get(name, 0), pages)
        self._known = sorted(self._mm_names | set(self._declared_by))
        self._thread_names = sorted(thread.name for thread, _ in expanded)
        for k, (thread, _) in enumerate(expanded):
            local: set[str] = set()  # names this thread has mmapped so far
            for op in _walk(thread.ops):
                # Ops shared by all copies of a template give the same errors in each
                # copy; only per-copy ops say which copy.
                self.note = f" (in thread {thread.name})" if id(op) in self._copies else ""
                self._check_refs(op, f"{self.op_paths[id(op)]}.{op.kind}", k, local)
                local.update(name for name, _ in _declarations(op))
        self.note = ""

    def _ref(self, name: Any, line: int, path: str, thread: int, local: set[str]) -> bool:
        """Whether ``name`` may be used here; report it if not."""
        if not isinstance(name, str):
            return False  # already reported as a bad value
        if name in self._mm_names or name in local:
            return True
        declarers = self._declared_by.get(name)
        # Declared by another thread (not a set difference: a name mmapped by all 1,024
        # threads would copy that set at each of its references).
        if declarers and (len(declarers) > 1 or thread not in declarers):
            return True
        if name in self._declared_by:
            self.error(
                line,
                path,
                f"vma '{name}' is used before the mmap that declares it"
                f" (line {self._first_decl[name]})",
            )
        else:
            self.error(
                line,
                path,
                f"unknown vma '{name}'{self.did_you_mean(name, self._known)} (declare it in"
                " mm.vmas or with an mmap op)",
            )
        return False

    def _check_refs(self, op: Op, path: str, thread: int, local: set[str]) -> None:
        args = op.args
        if op.kind == "signal":
            target = args["thread"]
            if isinstance(target, str) and target not in self._thread_names:
                self.error(
                    op.line,
                    f"{path}.thread",
                    f"unknown thread '{target}'{self.did_you_mean(target, self._thread_names)}",
                )
            return
        if op.kind == "hold_mmap_write" and isinstance(args["vmas"], list):
            for j, name in enumerate(args["vmas"]):
                self._ref(name, op.line, f"{path}.vmas[{j}]", thread, local)
            return
        if op.kind == "mmap":
            at = args["at"]
            if isinstance(at, dict) and self._ref(
                at["vma"], op.line, f"{path}.at.vma", thread, local
            ):
                self._check_page(at["page"], at["vma"], op.line, f"{path}.at.page")
            return
        if "vma" not in args or not self._ref(args["vma"], op.line, f"{path}.vma", thread, local):
            return
        vma = args["vma"]
        bound = self._bounds.get(vma)
        if bound is None:
            return  # a broken mm.vmas entry without a valid size
        if op.kind == "fault":
            self._check_page(args["page"], vma, op.line, f"{path}.page")
        elif op.kind == "tcp_zerocopy_receive":
            pages = args["pages"]
            if _is_int(pages) and pages > bound:
                self.error(
                    op.line,
                    f"{path}.pages",
                    f"{pages} pages is more than vma '{vma}' has ({bound} pages)",
                )
        elif isinstance(args.get("pages"), tuple):
            rng = args["pages"]
            if rng[1] >= bound:
                self.error(
                    op.line,
                    f"{path}.pages",
                    f"pages {_range_text(rng)} go beyond vma '{vma}' ({bound} pages)",
                )

    def _check_page(self, page: Any, vma: str, line: int, path: str) -> None:
        bound = self._bounds.get(vma)
        if bound is not None and _is_int(page) and page >= bound:
            self.error(line, path, f"page {page} is beyond vma '{vma}' ({bound} pages)")


_AT_FIELDS = {"vma": FieldSpec("vma", required=True), "page": OPS["fault"]["page"]}
_LOOK_AT_FIELDS = {
    "text": FieldSpec("text", required=True),
    "event": FieldSpec("str"),
    "thread": FieldSpec("str"),
    "step": FieldSpec("int", hi=MAX_STEPS - 1, limit="MAX_STEPS"),
}

_HEAD_FIELDS = {
    "name": FieldSpec("text", required=True),
    "description": FieldSpec("text", required=True),
    "question": FieldSpec("text"),
}
_COUNT = FieldSpec("int", lo=1, hi=MAX_THREADS, limit="MAX_THREADS")
_START_NS = FieldSpec("int", default=0, lo=0, hi=MAX_NS, limit="MAX_NS = 10 s")


def _describe_node(node: YNode) -> str:
    if node.kind == "map":
        return "a mapping"
    if node.kind == "seq":
        return "a list"
    return _describe(node.value)


def _expected(spec: FieldSpec) -> str:
    return {
        "int": "an integer",
        "addr": "an address",
        "bool": "true or false",
        "str": "a string",
        "text": "a string",
        "name": "a name",
        "vma": "a vma name",
        "newvma": "a vma name",
        "choice": f"one of {', '.join(spec.choices)}",
        "range": "a page range like '0-15'",
    }.get(spec.kind, spec.kind)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, _Deferred):
        return True
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    return False


def _entries(ops: list[Op]) -> int:
    """Op list entries, loop bodies counted once, each ``vmas`` name as one more."""
    total = 0
    for op in ops:
        total += 1
        if op.body is not None:
            total += _entries(op.body)
        names = op.args.get("vmas")
        if isinstance(names, list):
            total += len(names)
    return total


def _count(ops: list[Op]) -> int:
    """Like :func:`count_ops`, but tolerates loops whose ``times`` was reported bad."""
    total = 0
    for op in ops:
        if op.body is None:
            total += 1
        elif _is_int(op.args["times"]):
            total += op.args["times"] * _count(op.body)
    return total


def _walk(ops: list[Op]) -> Iterator[Op]:
    """Ops in program order, loop bodies once, loops before their bodies."""
    for op in ops:
        yield op
        if op.body is not None:
            yield from _walk(op.body)


def _declarations(op: Op) -> Iterator[tuple[str, Any]]:
    """(name, pages) of VMA names ``op`` declares or resizes."""
    args = op.args
    if op.kind == "mmap" and isinstance(args["name"], str):
        yield args["name"], args["pages"]
    elif op.kind == "mremap":
        target = args["name"] if isinstance(args["name"], str) else args["vma"]
        if isinstance(target, str):
            yield target, args["new_pages"]


# --- public API ---------------------------------------------------------------------


def _fail(filename: str, message: str, line: int | None = None) -> ScenarioErrors:
    return ScenarioErrors([ScenarioError(filename, line, "", message)])


def load_scenario_text(
    text: str | bytes, filename: str = "<upload>", *, path: Path | None = None
) -> Scenario:
    """Load a scenario from YAML text, e.g. a browser upload.

    Args:
        text: The YAML (bytes are decoded as UTF-8).
        filename: Shown in error messages.
        path: Recorded as :attr:`Scenario.path` (``load_scenario`` passes the file).

    Returns:
        The validated scenario.

    Raises:
        ScenarioErrors: Every problem found, each with file, line and field.
    """
    if isinstance(text, bytes):
        data = text
        if len(data) > MAX_FILE_BYTES:
            raise _too_big(filename, len(data))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise _fail(
                filename,
                f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})",
                line,
            ) from None
    if not isinstance(text, str):
        raise _fail(filename, f"expected YAML text, got {type(text).__name__}")
    # Characters never outnumber UTF-8 bytes, so the cheap check comes first.
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise _too_big(filename, len(text.encode("utf-8", "surrogatepass")))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate (from a str built in Python, never from decoded bytes).
        line = text.count("\n", 0, exc.start) + 1
        raise _fail(
            filename, f"not valid Unicode text (lone surrogate at offset {exc.start})", line
        ) from None
    source = text.removeprefix("\ufeff")
    loader = _Loader(filename)
    try:
        with _gc_paused():
            root = loader.compose(source)
            parts = loader.scenario(root) if root is not None else None
    except _Stop:
        parts = None
    except (MemoryError, RecursionError):
        # Not expected within MAX_FILE_BYTES, but an upload must never take the
        # server down with a traceback.
        raise _fail(filename, "the file is too complex to check (out of memory or stack)") from None
    except Exception as exc:
        # A bug in the loader. The fuzz tests assert this never happens; if it does,
        # callers (the CLI, an upload) still get a schema error rather than a 500.
        raise _fail(
            filename,
            f"{INTERNAL_ERROR} ({type(exc).__name__}: {_short(str(exc))}); please report this file",
        ) from exc
    if loader.errors or parts is None:
        raise ScenarioErrors(loader.sorted_errors())
    return Scenario(**parts, source_text=text, path=path)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) for one load.

    A 1 MiB file becomes a few hundred thousand small objects (nodes, ops, dicts),
    none in reference cycles; the collector's passes over them took half the load
    time. Whatever is left over is collected after the load as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _too_big(filename: str, size: int) -> ScenarioErrors:
    return _fail(
        filename, f"file is {size} bytes, above the limit {MAX_FILE_BYTES} (MAX_FILE_BYTES, 1 MiB)"
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file.

    Args:
        path: The YAML file. Error messages show it as given.

    Returns:
        The validated scenario, with :attr:`Scenario.path` and ``source_text`` set.

    Raises:
        ScenarioErrors: Every problem found (including an unreadable file).
    """
    filename = str(path)
    file = Path(path)
    try:
        # Read one byte past the limit rather than trusting stat(): a pipe or a file
        # that grows would otherwise slip through.
        with file.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        size = len(data)
        if size > MAX_FILE_BYTES and file.is_file():
            size = file.stat().st_size
    except (OSError, ValueError) as exc:
        # ValueError: a path with a NUL byte.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise _fail(filename, f"cannot read the file: {reason}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(filename, size)
    return load_scenario_text(data, filename, path=file)


def validate_main(paths: list[str]) -> int:
    """``python -m vmaviz validate FILE...``: check scenario files.

    Prints ``OK path: N threads, M ops`` for each good file and the errors (one per
    line, ``file:line: field: message``) for each bad one.

    Args:
        paths: The files to check.

    Returns:
        0 if every file is valid, else 1.
    """
    if not paths:
        print("validate: no scenario files given", file=sys.stderr)
        return 1
    status = 0
    for path in paths:
        try:
            scenario = load_scenario(path)
        except ScenarioErrors as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        print(f"OK {path}: {len(scenario.threads)} threads, {scenario.op_count()} ops")
    return status
