"""End to end in headless Chromium via dash.testing (selenium + Debian's chromedriver)."""

from __future__ import annotations

from typing import Any

import pytest

from vmaviz.ui.app_factory import create_app

pytestmark = pytest.mark.browser

TREE_SVG = "#maple-tree-graph .main-svg"


def _start(dash_duo: Any) -> None:
    dash_duo.start_server(create_app())
    dash_duo.wait_for_element(TREE_SVG, timeout=30)
    dash_duo.wait_for_contains_text("#maple-tree-graph", "leaf64", timeout=30)


def test_tree_renders_without_console_errors(dash_duo: Any) -> None:
    _start(dash_duo)
    tree_text = dash_duo.find_element("#maple-tree-graph").text
    assert "arange64" in tree_text
    assert "[heap]" in tree_text and "[stack]" in tree_text
    assert "∅" in tree_text
    assert "[0x0, 0xffffffffffffffff]" in tree_text
    space_text = dash_duo.find_element("#address-space-graph").text
    assert "thread guard" in space_text
    assert "[vdso]" in dash_duo.find_element("#vma-table").text
    assert dash_duo.driver.title == "vmaviz — the mm maple tree"
    assert dash_duo.get_logs() == []


def test_mmap_button_adds_a_vma(dash_duo: Any) -> None:
    _start(dash_duo)
    dash_duo.find_element("#mmap-button").click()
    dash_duo.wait_for_contains_text("#status", "mmap #1: 16 pages at 0x7f3a22e1f000", timeout=20)
    dash_duo.wait_for_contains_text("#maple-tree-graph", "mmap #1", timeout=20)
    assert "mmap #1" in dash_duo.find_element("#vma-table").text
    dash_duo.find_element("#reset-button").click()
    dash_duo.wait_for_contains_text("#status", "14 VMAs", timeout=20)
    assert "mmap #1" not in dash_duo.find_element("#vma-table").text
    assert dash_duo.get_logs() == []
