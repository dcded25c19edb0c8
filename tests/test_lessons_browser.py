"""A lesson from start to end in Chromium: one wrong and two right predictions.

Ends with ``dash_duo.get_logs() == []``: no error in the browser console.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import TIMEOUT, file_cache_app, settled_logs, start, wait_status
from selenium.webdriver.common.by import By

from vmaviz.lessons import LESSON_DIR, load_lesson
from vmaviz.lessons.decide import decide, direct_runs

pytestmark = pytest.mark.browser


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return file_cache_app(tmp_path)


def wait_text(dash_duo: Any, selector: str, words: str) -> str:
    deadline = time.time() + TIMEOUT
    text = ""
    while time.time() < deadline:
        found = dash_duo.driver.find_elements(By.CSS_SELECTOR, selector)
        text = found[0].text if found else ""
        if words in text:
            return str(text)
        time.sleep(0.1)
    raise AssertionError(f"{selector}: {text!r} never had {words!r}")


def test_lesson_start_to_end(dash_duo: Any, app: Any) -> None:
    lesson = load_lesson(LESSON_DIR / "01-first-fault.yaml")
    runs = direct_runs(lesson)
    decisions = [decide(lesson, i, runs) for i in range(len(lesson.checkpoints))]
    start(dash_duo, app)
    dash_duo.find_element("#lessons-box summary").click()
    dash_duo.find_element("#lesson-link-01-first-fault").click()
    wait_text(dash_duo, "#lesson-question", "Will this first fault")
    # The normal views moved to the checkpoint's step.
    wait_status(dash_duo, rf"step {decisions[0].row}\b")
    # A wrong prediction first.
    dash_duo.driver.find_elements(By.CSS_SELECTOR, "#lesson-choice label")[
        1 - decisions[0].right
    ].click()
    dash_duo.find_element("#lesson-check").click()
    text = wait_text(dash_duo, "#lesson-reveal", "Not this time")
    assert "abort:no_anon_vma" in text and "anon_vma" in text
    wait_text(dash_duo, "#lesson-marks", "Answered 1 of 3")
    for n in (2, 3):
        dash_duo.find_element("#lesson-next").click()
        wait_text(dash_duo, "#lesson-panel", f"Checkpoint {n} of 3")
        wait_status(dash_duo, rf"step {decisions[n - 1].row}\b")
        dash_duo.driver.find_elements(By.CSS_SELECTOR, "#lesson-choice label")[
            decisions[n - 1].right
        ].click()
        dash_duo.find_element("#lesson-check").click()
        wait_text(dash_duo, "#lesson-reveal", "Right!")
        wait_text(dash_duo, "#lesson-marks", f"Answered {n} of 3")
    marks = dash_duo.find_element("#lesson-marks").text
    assert "1 ✗" in marks and "2 ✓" in marks and "3 ✓" in marks
    # Progress is kept in the browser: a reload of a checkpoint's permalink shows it.
    dash_duo.driver.get(dash_duo.server_url + "/?lesson=01-first-fault&checkpoint=1")
    wait_text(dash_duo, "#lesson-marks", "Answered 3 of 3")
    wait_status(dash_duo, rf"step {decisions[0].row}\b")
    assert settled_logs(dash_duo) == []


def test_the_lessons_page_shows_the_path_and_the_progress(dash_duo: Any, app: Any) -> None:
    """/lessons: the path in order, a checkpoint opens in the app, and the page marks
    what this browser answered and continues at the first checkpoint left."""
    from vmaviz.lessons import bundled_lessons

    lesson = load_lesson(LESSON_DIR / "01-first-fault.yaml")
    decisions = decide(lesson, 0, direct_runs(lesson))
    start(dash_duo, app)
    dash_duo.find_element("#lessons-box summary").click()
    dash_duo.find_element("#lessons-page-link").click()
    wait_text(dash_duo, "#lessons-continue", "Start with lesson 1")
    titles = [e.text for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".lessons-path h2")]
    assert titles == [load_lesson(LESSON_DIR / f"{n}.yaml").title for n in bundled_lessons()]
    # The first checkpoint's question opens it in the app.
    dash_duo.driver.find_elements(By.CSS_SELECTOR, ".lesson-checkpoints a")[0].click()
    wait_text(dash_duo, "#lesson-question", "Will this first fault")
    wait_status(dash_duo, rf"step {decisions.row}\b")
    dash_duo.driver.find_elements(By.CSS_SELECTOR, "#lesson-choice label")[
        1 - decisions.right
    ].click()
    dash_duo.find_element("#lesson-check").click()
    wait_text(dash_duo, "#lesson-marks", "Answered 1 of 3")
    # Back on the Lessons page: checkpoint 1 is marked wrong, the rest are open.
    dash_duo.driver.get(dash_duo.server_url + "/lessons")
    go = wait_text(dash_duo, "#lessons-continue", "Continue")
    assert go == "Continue: First fault and anon_vma, checkpoint 2"
    marks = dash_duo.driver.find_elements(By.CSS_SELECTOR, ".lesson-checkpoints .mark")
    assert marks[0].text == "✗" and {m.text for m in marks[1:]} == {"·"}
    assert "Answered 1 of 3" in dash_duo.find_element(".lesson-entry").text
    dash_duo.find_element("#lessons-continue").click()
    wait_text(dash_duo, "#lesson-panel", "Checkpoint 2 of 3")
    assert settled_logs(dash_duo) == []
