"""Shared test configuration.

Browser tests use dash.testing's ``dash_duo`` with Debian's Chromium and
chromedriver (``/usr/bin/chromium``, ``/usr/bin/chromedriver``, installed by
scripts/test.sh). pyproject's pytest ``addopts`` passes ``--webdriver Chrome
--headless``; the options below add what headless Chromium needs as root on a
machine without network access.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from selenium.webdriver.chrome.options import Options

from vmaviz.bench.browser import CHROME_ARGS as BROWSER_ARGS
from vmaviz.bench.browser import CHROMEDRIVER, CHROMIUM

CHROME_ARGS = (*BROWSER_ARGS, "--window-size=1400,1000")

# selenium 4.2 looks for chromedriver on PATH.
if shutil.which("chromedriver") is None and Path(CHROMEDRIVER).exists():
    os.environ["PATH"] = f"{os.environ.get('PATH', '')}{os.pathsep}{Path(CHROMEDRIVER).parent}"


def pytest_setup_options() -> Options:
    """dash.testing hook: the Chrome options for ``dash_duo``."""
    options = Options()
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    return options


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private ``redis-server`` on a loopback port (scripts/test.sh installs it)."""
    import subprocess

    from vmaviz.bench.browser import free_port, wait_for_port

    assert Path(REDIS).exists(), "redis-server is missing: run bash scripts/test.sh"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)]
    args += ["--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port(port, 20, poll=0.1), "redis-server did not start"
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Dash app with its own file cache, one per test module (HTTP tests).

    Browser-test modules define their own ``app``; theirs wins in their module.
    """
    from vmaviz.ui.app_factory import create_app

    cache = tmp_path_factory.mktemp("vmaviz-cache")
    return create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(cache)})


@pytest.fixture
def client(app: Any) -> Iterator[FlaskClient]:
    """Flask's test client of :func:`app`."""
    with app.server.test_client() as c:
        yield c
