"""Lessons: an ordered path through the scenarios, with predictions checked by the model.

A lesson is a YAML file in ``lessons/`` (see the README, "Lessons"):
:func:`~vmaviz.lessons.loader.load_lesson` validates it with ``file:line: field``
errors, and :mod:`vmaviz.lessons.decide` finds each checkpoint's step and decides
which choice is right from a run of the model. Nothing here imports Dash.
"""

from vmaviz.lessons.loader import (
    LESSON_DIR,
    Checkpoint,
    Choice,
    Lesson,
    bundled_lessons,
    load_lesson,
    load_lesson_text,
)

__all__ = [
    "LESSON_DIR",
    "Checkpoint",
    "Choice",
    "Lesson",
    "bundled_lessons",
    "load_lesson",
    "load_lesson_text",
]
