"""A run that exceeds the app's limits stops with a message in the page (issue 11, item 2).

The message says which limit; the page stays usable; and the run is not tried again
on every request while its failure is remembered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vmaviz.ui import session
from vmaviz.ui.app_factory import create_app
from vmaviz.ui.testing import Browser


def test_a_run_over_the_step_limit_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMAVIZ_MAX_STEPS", "50")
    builds: list[str] = []
    real = session.build_run

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(session, "build_run", counting)
    app = create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "c")})
    client = app.server.test_client()
    tab = Browser(client)
    tab.open("?scenario=default")
    text = tab.text("run-error")
    assert "the run stopped" in text and "step limit" in text and "50" in text
    assert len(builds) == 1
    # Another tab (or a reload) gets the same message without running it again.
    again = Browser(client)
    again.open("?scenario=default")
    assert again.text("run-error") == text
    assert len(builds) == 1


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"VMAVIZ_RUN_SECONDS": "0.1"}, "time limit reached"),
        ({"VMAVIZ_MAX_RSS_MB": "64"}, "memory limit reached"),
    ],
    ids=["seconds", "memory"],
)
def test_a_run_over_its_time_or_memory_budget_stops_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    # android-app-launch runs far more steps than one budget check interval (4,096
    # steps), and this process is far above 64 MiB: both budgets must trip.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "c")})
    tab = Browser(app.server.test_client())
    tab.open("?scenario=android-app-launch")
    text = tab.text("run-error")
    assert "the run stopped" in text and words in text and "make the scenario smaller" in text
    # The page still works: another scenario opens and steps.
    tab.open("?scenario=default")
    tab.press("step-fwd")
    assert "step 0 /" in tab.text("step-status")


def test_the_budget_settings_are_read_and_clamped() -> None:
    budget = session.app_run_budget({})
    assert budget.seconds == session.APP_RUN_SECONDS
    assert budget.rss_bytes == session.APP_MAX_RSS_MB << 20
    odd = session.app_run_budget({"VMAVIZ_RUN_SECONDS": "nan", "VMAVIZ_MAX_RSS_MB": "1"})
    assert odd.seconds == session.APP_RUN_SECONDS and odd.rss_bytes == 64 << 20
    assert session.app_run_budget({"VMAVIZ_RUN_SECONDS": "banana"}).seconds == 15.0
