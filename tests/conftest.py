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
from pathlib import Path

import pytest
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
