"""Errors raised while loading a scenario file.

Every problem is a :class:`ScenarioError` naming the file, the line (1-based) and
the field path, so a user can go straight to the spot. The loader collects all of
them and raises one :class:`ScenarioErrors` rather than stopping at the first.
"""

from __future__ import annotations

from collections.abc import Iterable


class ScenarioError(ValueError):
    """One problem in a scenario file.

    ``str()`` is ``file:line: field: message`` (``line`` and ``field`` are left out
    when unknown), e.g.
    ``scenarios/x.yaml:12: threads[0].ops[3].fault.page: page 20 is beyond vma 'heap'
    (16 pages)``.

    Attributes:
        file: The file name as given to the loader (or ``<upload>``).
        line: 1-based line number, or ``None`` for whole-file problems.
        field: Dotted path of the offending field, e.g. ``mm.vmas[2].start``; ``""``
            for whole-file problems.
        message: What is wrong, for a human.
    """

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ScenarioError({self.file!r}, {self.line!r}, {self.field!r}, {self.message!r})"


class ScenarioErrors(ValueError):
    """All the problems found in one scenario file; ``str()`` is one per line.

    Attributes:
        errors: The individual errors, sorted by line.
    """

    def __init__(self, errors: Iterable[ScenarioError]) -> None:
        self.errors: list[ScenarioError] = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def __len__(self) -> int:
        return len(self.errors)
