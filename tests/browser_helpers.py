"""What the browser tests share: starting the app, waiting for it, reading the page."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains

from vmaviz.ui.app_factory import create_app

STATUS = "#step-status"
NARRATION = '[id=\'{"side":"left","type":"narration"}\']'
VMA_TABLE = '[id=\'{"side":"left","type":"vma-table"}\']'
TIMEOUT = 30
ROOT = Path(__file__).resolve().parents[1]


def side(kind: str, s: str = "left") -> str:
    return f"[id='{json.dumps({'side': s, 'type': kind}, separators=(',', ':'))}']"


def start(dash_duo: Any, app: Any, query: str = "") -> None:
    dash_duo.start_server(app)
    if query:
        dash_duo.driver.get(dash_duo.server_url + "/" + query)
    dash_duo.wait_for_element(side("timeline") + " canvas.lanes-over", timeout=TIMEOUT)
    dash_duo.wait_for_element(NARRATION + " h3", timeout=TIMEOUT)


def settle(dash_duo: Any) -> None:
    """Wait until no callback is in flight, and a little more."""
    deadline = time.time() + TIMEOUT
    script = "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length"
    while time.time() < deadline and dash_duo.driver.execute_script(script):
        time.sleep(0.1)
    time.sleep(0.5)


def settled_logs(dash_duo: Any) -> list[Any]:
    """The console errors, once no callback is in flight (the server stops after)."""
    settle(dash_duo)
    logs: list[Any] = dash_duo.get_logs()
    return logs


def keys(dash_duo: Any, *pressed: str) -> None:
    chain = ActionChains(dash_duo.driver)
    for k in pressed:
        chain.send_keys(k)
    chain.perform()


def status(dash_duo: Any) -> str:
    return text_of(dash_duo, STATUS)


def text_of(dash_duo: Any, selector: str) -> str:
    """The visible text of ``selector`` (as WebDriver reads it), found again if the
    element was replaced while it was read.

    Panels are replaced wholesale (innerHTML) on every step, and the what-changed
    line is added to the narration right after: an element found first and read
    later can be stale in between.
    """
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(50):
        try:
            return str(dash_duo.find_element(selector).text)
        except StaleElementReferenceException:
            time.sleep(0.05)
    return str(dash_duo.find_element(selector).text)


def wait_status(dash_duo: Any, pattern: str) -> str:
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        text = status(dash_duo)
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"status {status(dash_duo)!r} never matched {pattern!r}")


def lanes_attr(dash_duo: Any, s: str, name: str) -> str | None:
    """A ``data-*`` attribute of one side's timeline (assets/vmaviz.js: Lanes)."""
    value = dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : null;",
        json.dumps({"side": s, "type": "timeline"}, separators=(",", ":")),
        f"data-{name}",
    )
    return str(value) if value is not None else None


def cursor_x(dash_duo: Any, s: str) -> float | None:
    """The time (µs) of the cursor drawn over one side's lanes."""
    x = lanes_attr(dash_duo, s, "cursor")
    return float(x) if x else None


def file_cache_app(directory: Path) -> Any:
    return create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(directory)})


__all__ = [
    "NARRATION",
    "ROOT",
    "STATUS",
    "TIMEOUT",
    "VMA_TABLE",
    "cursor_x",
    "file_cache_app",
    "keys",
    "lanes_attr",
    "settle",
    "settled_logs",
    "side",
    "start",
    "status",
    "wait_status",
]
