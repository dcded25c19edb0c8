"""Explore and "be the scheduler" end to end in headless Chromium (dash.testing).

Every test ends with no error in the browser console. The race scenario is
``scenarios/races/detached.yaml`` (see tests/test_app_explore.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    NARRATION,
    TIMEOUT,
    file_cache_app,
    keys,
    lanes_attr,
    settle,
    settled_logs,
    start,
    text_of,
    wait_status,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

pytestmark = pytest.mark.browser

RACE = "?scenario=races%2Fdetached"
OFF = RACE + "&patches=vma_detached_flag%3Aoff"


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return file_cache_app(tmp_path)


def scheduler_on(dash_duo: Any) -> None:
    dash_duo.find_element("#bts-on input[type=checkbox]").click()
    dash_duo.wait_for_element("#bts-list .bts-pick", timeout=TIMEOUT)


def pick_rows(dash_duo: Any) -> list[str]:
    return [e.text for e in dash_duo.find_elements("#bts-list .bts-pick")]


def permalink(dash_duo: Any) -> str:
    return str(dash_duo.find_element("#permalink").get_attribute("value"))


def wait_link(dash_duo: Any, part: str) -> str:
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        link = permalink(dash_duo)
        if part in link:
            return link
        time.sleep(0.1)
    raise AssertionError(f"the permalink {permalink(dash_duo)!r} never had {part!r}")


def test_be_the_scheduler_with_a_click_and_a_key(dash_duo: Any, app: Any) -> None:
    start(dash_duo, app, RACE)
    wait_status(dash_duo, "initial state")
    scheduler_on(dash_duo)
    rows = pick_rows(dash_duo)
    assert rows[0].startswith("1. faulter") and rows[1].startswith("2. unmapper")
    # A click on the unmapper's row: it takes step 0.
    dash_duo.find_elements("#bts-list .bts-pick")[1].click()
    wait_status(dash_duo, r"step 0\b")
    assert "unmapper" in text_of(dash_duo, NARRATION)
    link = wait_link(dash_duo, "sched=1")
    # Key 1: the first thread listed (the faulter) takes step 1.
    settle(dash_duo)
    dash_duo.find_element("body").click()
    keys(dash_duo, "1")
    wait_status(dash_duo, r"step 1\b")
    link = wait_link(dash_duo, "sched=1.0")
    assert "faulter" in text_of(dash_duo, NARRATION)
    narration = text_of(dash_duo, NARRATION)
    # The permalink reopens the same view.
    dash_duo.driver.get(dash_duo.server_url + "/" + link[link.index("?") :])
    wait_status(dash_duo, r"step 1\b")
    dash_duo.wait_for_contains_text(NARRATION, "faulter", timeout=TIMEOUT)
    assert text_of(dash_duo, NARRATION) == narration
    assert settled_logs(dash_duo) == []


def test_the_scheduler_list_follows_a_plain_step(dash_duo: Any, app: Any) -> None:
    """With "Be the scheduler" on, a step taken with the → key (no pick) lists the
    threads runnable at the new cursor; with it off, a step asks nothing of it."""
    start(dash_duo, app, RACE)
    wait_status(dash_duo, "initial state")
    scheduler_on(dash_duo)
    before = pick_rows(dash_duo)
    settle(dash_duo)
    dash_duo.find_element("body").click()
    for step in range(4):
        keys(dash_duo, Keys.ARROW_RIGHT)
        wait_status(dash_duo, rf"step {step}\b")
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and pick_rows(dash_duo) == before:
        time.sleep(0.1)
    assert pick_rows(dash_duo) != before
    # Off: the list empties and stays empty while stepping.
    dash_duo.find_element("#bts-on input[type=checkbox]").click()
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and pick_rows(dash_duo):
        time.sleep(0.1)
    dash_duo.find_element("body").click()
    keys(dash_duo, Keys.ARROW_RIGHT)
    wait_status(dash_duo, r"step 4\b")
    settle(dash_duo)
    assert pick_rows(dash_duo) == []
    assert settled_logs(dash_duo) == []


def explore_one_preemption(dash_duo: Any, app: Any) -> None:
    """Open the race with its patch off and press Explore with a bound of 1."""
    start(dash_duo, app, OFF)
    wait_status(dash_duo, "initial state")
    bound = dash_duo.find_element("#explore-preemptions")
    bound.clear()
    bound.send_keys("1")
    dash_duo.find_element("#explore-go").click()


def test_explore_shows_progress_then_opens_the_race(dash_duo: Any, app: Any) -> None:
    explore_one_preemption(dash_duo, app)
    # The search takes seconds: the progress bar is there while it runs.
    dash_duo.wait_for_element("#explore-bar", timeout=TIMEOUT)
    dash_duo.wait_for_element("#explore-found", timeout=120)
    found = dash_duo.find_element("#explore-found").text
    assert "Race found" in found and "invariant 5" in found
    # The counterexample opens at the violating step, with its preemptions marked.
    wait_status(dash_duo, r"step 27\b")
    dash_duo.wait_for_contains_text("#bts-banner", "invariant 5", timeout=TIMEOUT)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and not lanes_attr(dash_duo, "left", "marks"):
        time.sleep(0.1)
    assert int(lanes_attr(dash_duo, "left", "marks") or 0) >= 1
    assert "sched=" in permalink(dash_duo)
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, "#explore-bar") == []
    assert settled_logs(dash_duo) == []


def test_explore_result_opens_the_compare_with_the_patch_on(dash_duo: Any, app: Any) -> None:
    """The explorer's "Compare with the patch on" link opens patch compare view:
    the patch off on the left, back on on the right, one cursor at the violation."""
    explore_one_preemption(dash_duo, app)
    dash_duo.wait_for_element("#explore-compare", timeout=120)
    dash_duo.find_element("#explore-compare").click()
    # A full page load of the link: both sides, the left at its violating step.
    wait_status(dash_duo, r"left: step 27\b")
    assert "right: step" in wait_status(dash_duo, r"right: step")
    link = wait_link(dash_duo, "compare=patches")
    assert "sched=" in link and "vma_detached_flag%3Aoff" in link
    dash_duo.wait_for_contains_text("#delta-table", "first violation", timeout=TIMEOUT)
    body = dash_duo.find_element("#body").text
    assert "vma_detached_flag off" in body and "vma_detached_flag on" in body
    assert settled_logs(dash_duo) == []
