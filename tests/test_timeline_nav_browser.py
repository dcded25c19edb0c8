"""Perfetto-style navigation of the timeline, in headless Chromium.

Wheel zoom around the pointer, W/A/S/D, the hand-off arrows (toggleable), track
filter, pinning and collapsing, and a shift-dragged range with its statistics from
the server. The visible range and what is drawn are read from the timeline
element's ``data-*`` attributes (assets/lanes.js). Every test ends with a clean
console.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    TIMEOUT,
    file_cache_app,
    keys,
    lanes_attr,
    settle,
    settled_logs,
    side,
    start,
)

pytestmark = pytest.mark.browser

QUERY = "?scenario=start-write-waits-reader&mode=per_vma"
OVER = side("timeline") + " canvas.lanes-over"


def span(dash_duo: Any) -> tuple[float, float]:
    return float(lanes_attr(dash_duo, "left", "x0") or 0), float(
        lanes_attr(dash_duo, "left", "x1") or 0
    )


def wait_attr(dash_duo: Any, name: str, want: Any, negate: bool = False) -> str | None:
    """Poll a data attribute of the timeline until it equals ``want`` (or stops equalling it)."""
    deadline = time.time() + TIMEOUT
    value = lanes_attr(dash_duo, "left", name)
    while time.time() < deadline and ((value == want) == (not negate)) is False:
        time.sleep(0.05)
        value = lanes_attr(dash_duo, "left", name)
    return value


def wait_span_change(dash_duo: Any, before: tuple[float, float]) -> tuple[float, float]:
    """The visible range once it has changed from ``before`` and then held still for
    0.3 s (a redraw of the lanes under load may land between two reads)."""
    deadline = time.time() + TIMEOUT
    now = span(dash_duo)
    while time.time() < deadline and now == before:
        time.sleep(0.05)
        now = span(dash_duo)
    return stable_span(dash_duo)


def stable_span(dash_duo: Any) -> tuple[float, float]:
    """The visible range once it has not moved for 0.3 s."""
    deadline = time.time() + TIMEOUT
    last, since = span(dash_duo), time.time()
    while time.time() < deadline and time.time() - since < 0.3:
        time.sleep(0.05)
        now = span(dash_duo)
        if now != last:
            last, since = now, time.time()
    return last


def mouse(dash_duo: Any, kind: str, fx: float, y: float, shift: bool = False) -> None:
    """A mouse event on the lanes' overlay at ``fx`` of its width and ``y`` px down."""
    dash_duo.driver.execute_script(
        "const c = arguments[0]; const r = c.getBoundingClientRect();"
        "const x = arguments[2] < 1 ? r.left + r.width * arguments[2] : r.left + arguments[2];"
        "c.dispatchEvent(new MouseEvent(arguments[1], {clientX: x, clientY: r.top + arguments[3],"
        " shiftKey: arguments[4], bubbles: true, cancelable: true}));",
        dash_duo.find_element(OVER),
        kind,
        fx,
        y,
        shift,
    )


def test_wheel_and_wasd_change_the_visible_range(dash_duo: Any, tmp_path: Path) -> None:
    start(dash_duo, file_cache_app(tmp_path), QUERY)
    settle(dash_duo)
    x0, x1 = stable_span(dash_duo)
    assert x0 == 0 and x1 > 0
    over = dash_duo.find_element(OVER)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", over)
    # Wheel at 3/4 of the plot: zoom in around the time under the pointer, which
    # stays where it was (so the range's start moves right).
    dash_duo.driver.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect();"
        "c.dispatchEvent(new WheelEvent('wheel', {deltaY: -400, clientX: r.left + r.width * 0.75,"
        " clientY: r.top + 30, bubbles: true, cancelable: true}));",
        over,
    )
    a0, a1 = wait_span_change(dash_duo, (x0, x1))
    assert a1 - a0 < (x1 - x0) * 0.7 and a0 > 0
    # W zooms in, S out, D pans right, A left (the page has focus, no input does).
    dash_duo.driver.execute_script("document.activeElement && document.activeElement.blur();")
    keys(dash_duo, "w")
    b0, b1 = wait_span_change(dash_duo, (a0, a1))
    assert b1 - b0 == pytest.approx((a1 - a0) * 0.8)
    keys(dash_duo, "s")
    c0, c1 = wait_span_change(dash_duo, (b0, b1))
    assert c1 - c0 == pytest.approx(b1 - b0 + (b1 - b0) * 0.25)
    keys(dash_duo, "a")
    d0, d1 = wait_span_change(dash_duo, (c0, c1))
    assert d0 < c0 and d1 - d0 == pytest.approx(c1 - c0)
    keys(dash_duo, "d")
    e0, _e1 = wait_span_change(dash_duo, (d0, d1))
    assert e0 > d0
    # Keys typed into the track filter are not taken by the timeline.
    box = dash_duo.find_element(side("timeline") + " input.lanes-filter")
    box.send_keys("w")
    time.sleep(0.3)
    assert span(dash_duo) == (e0, _e1)
    assert settled_logs(dash_duo) == []


def test_hand_off_arrows_tracks_and_a_selected_range(dash_duo: Any, tmp_path: Path) -> None:
    start(dash_duo, file_cache_app(tmp_path), QUERY)
    settle(dash_duo)
    # early's vma_end_read wakes tuner; tuner's unlock hands mmap_lock to late.
    assert wait_attr(dash_duo, "flows-drawn", "2") == "2"
    toggle = dash_duo.find_element(side("timeline") + " .lanes-arrows input")
    toggle.click()
    assert wait_attr(dash_duo, "flows-drawn", "0") == "0"
    toggle.click()
    assert wait_attr(dash_duo, "flows-drawn", "2") == "2"
    # Zoomed away from both wakes, none is drawn.
    dash_duo.driver.execute_script("window.vmavizLanes.zoom(0.01, 0.5);")
    assert wait_attr(dash_duo, "flows-drawn", "0") == "0"
    dash_duo.driver.execute_script("window.vmavizLanes.zoom(1000, 0.5);")
    assert wait_attr(dash_duo, "flows-drawn", "2") == "2"
    # Filter: only tuner's row is left, so no arrow has both ends shown.
    box = dash_duo.find_element(side("timeline") + " input.lanes-filter")
    box.send_keys("tun")
    assert wait_attr(dash_duo, "rows-shown", "1") == "1"
    assert wait_attr(dash_duo, "flows-drawn", "0") == "0"
    for _ in range(3):
        box.send_keys("\b")
    shown = wait_attr(dash_duo, "rows-shown", "1", negate=True)
    assert shown is not None and int(shown) == 7  # 4 threads, the divider, 2 locks
    # A click on late's name (row 3 of 24 px rows, below a 6 px margin) pins it;
    # a click on faulter's triangle (now second) collapses it.
    mouse(dash_duo, "mousedown", 40, 6 + 3 * 24 + 12)
    assert wait_attr(dash_duo, "pinned", "late") == "late"
    mouse(dash_duo, "mousedown", 5, 6 + 24 + 12)
    assert wait_attr(dash_duo, "collapsed", "1") == "1"
    assert lanes_attr(dash_duo, "left", "flows-drawn") == "2"
    # Shift-drag selects a range; the server sends its statistics.
    mouse(dash_duo, "mousedown", 0.3, 60, shift=True)
    mouse(dash_duo, "mousemove", 0.9, 60, shift=True)
    mouse(dash_duo, "mouseup", 0.9, 60, shift=True)
    sel0 = lanes_attr(dash_duo, "left", "sel0")
    sel1 = lanes_attr(dash_duo, "left", "sel1")
    assert sel0 and sel1 and float(sel0) < float(sel1)
    stats = side("range-stats")
    dash_duo.wait_for_contains_text(stats, "Faults and VMA-lock outcomes", timeout=TIMEOUT)
    # Escape clears the selection and its statistics (not while typing in the filter).
    dash_duo.driver.execute_script("document.activeElement.blur();")
    keys(dash_duo, "\ue00c")
    assert wait_attr(dash_duo, "sel0", "") == ""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and dash_duo.find_element(stats).text:
        time.sleep(0.05)
    assert dash_duo.find_element(stats).text == ""
    assert settled_logs(dash_duo) == []
