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
