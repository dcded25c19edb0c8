"""Take the README screenshots (docs/screenshots/*.png) with headless Chromium.

Run: ``.venv/bin/python scripts/screenshots.py`` (needs /usr/bin/chromium and
/usr/bin/chromedriver, as the browser tests do). The app runs in this process on a
free port with a temporary cache; each view is loaded from its permalink.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmaviz.bench.browser import CHROME_ARGS, free_port  # noqa: E402
from vmaviz.ui.app_factory import create_app  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
WIDTH, HEIGHT = 1400, 900
MAX_BYTES = 400_000


def browser() -> webdriver.Chrome:
    options = Options()
    for arg in (*CHROME_ARGS, "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options)
    # The viewport, not the window, should be WIDTH x HEIGHT.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def settle(driver: webdriver.Chrome, text: str, timeout: float = 30) -> None:
    """Wait until the step status shows ``text`` and the figures have drawn."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if text in driver.find_element(By.ID, "step-status").text:
                break
        except Exception:
            pass
        time.sleep(0.2)
    time.sleep(2.5)


def shoot(driver: webdriver.Chrome, name: str) -> None:
    path = OUT / f"{name}.png"
    driver.save_screenshot(str(path))
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT)}: {size:,} bytes")
    if size > MAX_BYTES:
        print(f"  warning: over {MAX_BYTES:,} bytes")


def wait_for(driver: webdriver.Chrome, css: str, timeout: float = 30) -> None:
    """Wait (at most ``timeout`` s) until an element matches ``css``."""
    deadline = time.time() + timeout
    while time.time() < deadline and not driver.find_elements(By.CSS_SELECTOR, css):
        time.sleep(0.2)


def shoot_at(
    driver: webdriver.Chrome, css: str, name: str, above: int = 10, pause: float = 1.5
) -> None:
    """Scroll the element ``css`` to the top of the window (``above`` px below it, for
    the sticky stepper), let it draw for ``pause`` s, and take screenshot ``name``."""
    driver.execute_script(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'start'});"
        "window.scrollBy(0, -arguments[1]);",
        css,
        above,
    )
    time.sleep(pause)
    shoot(driver, name)


def shoot_explore(driver: webdriver.Chrome, base: str) -> None:
    """A race found by Explore (detached flag off), open at its violating step."""
    driver.get(base + "?scenario=races%2Fdetached&patches=vma_detached_flag%3Aoff")
    settle(driver, "initial state")
    bound = driver.find_element(By.ID, "explore-preemptions")
    bound.clear()
    bound.send_keys("1")
    driver.find_element(By.ID, "explore-go").click()
    wait_for(driver, "#explore-found", timeout=120)
    settle(driver, "step 27")
    shoot_at(driver, "#explore-box", "explore")


def shoot_lesson(driver: webdriver.Chrome, base: str) -> None:
    """A lesson's checkpoint answered, with the model's next steps revealed."""
    driver.get(base + "?lesson=01-first-fault&checkpoint=1")
    settle(driver, "step 4")
    driver.find_elements(By.CSS_SELECTOR, "#lesson-choice label")[0].click()
    driver.find_element(By.ID, "lesson-check").click()
    wait_for(driver, "#lesson-verdict")
    shoot_at(driver, "#lessons-box", "lesson")


def shoot_lessons_page(driver: webdriver.Chrome, base: str) -> None:
    """The Lessons page, with the progress of this browser (after shoot_lesson)."""
    driver.get(base + "lessons")
    wait_for(driver, "#lessons-continue")
    time.sleep(1.0)
    shoot(driver, "lessons-page")


def shoot_source(driver: webdriver.Chrome, base: str) -> None:
    """The kernel source panel at a step inside vma_start_read (issue 14, S)."""
    driver.get(base + "?scenario=default&step=10")
    settle(driver, "step 10")
    shoot_at(driver, ".source-panel", "source", above=140)


def shoot_editor(driver: webdriver.Chrome, base: str) -> None:
    """The in-page editor with an error marked, and the step's changes highlighted."""
    driver.get(base + "?scenario=first-fault-anon-vma&step=9")
    settle(driver, "step 9")
    driver.find_element(By.CSS_SELECTOR, "#editor-details summary").click()
    deadline = time.time() + 30
    while time.time() < deadline and not driver.execute_script(
        "return document.getElementById('editor-text').value.length"
    ):
        time.sleep(0.2)
    driver.execute_script(
        "const a = document.getElementById('editor-text');"
        "const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;"
        "set.call(a, a.value.replace('pages: 16', 'pages: sixteen'));"
        "a.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    wait_for(driver, ".editor-error")
    shoot_at(driver, ".editor-section", "editor")


def main() -> int:
    """Take every screenshot, or only the one named as the argument (a key of ``only``)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as cache:
        app = create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": cache})
        port = free_port()
        server = make_server("127.0.0.1", port, app.server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{port}/"
        driver = browser()
        only = {
            "explore": shoot_explore,
            "lesson": shoot_lesson,
            "lessons-page": shoot_lessons_page,
            "source": shoot_source,
            "editor": shoot_editor,
        }
        if len(sys.argv) == 2 and sys.argv[1] in only:
            try:
                only[sys.argv[1]](driver, base)
            finally:
                driver.quit()
                server.shutdown()
            return 0
        try:
            for shoot_one in only.values():
                shoot_one(driver, base)
            driver.get(base + "?scenario=default&step=369")
            settle(driver, "step 369")
            shoot(driver, "single")

            driver.get(base + "?scenario=default&view=compare&step=660")
            settle(driver, "per-VMA")
            shoot(driver, "compare")

            driver.get(base + "?scenario=default&step=40")
            settle(driver, "step 40")
            driver.find_element(By.ID, "bp-summary").click()
            driver.find_element(By.ID, "bp-run").click()
            settle(driver, "abort")
            shoot(driver, "breakpoints")

            driver.get(base + "?scenario=default&step=369")
            settle(driver, "step 369")
            bad = Path(cache) / "my-scenario.yaml"
            bad.write_text(
                "name: my-scenario\ndescription: a typo or two\nmm:\n  vmas:\n"
                "    - {name: heap, pages: 16, prot: rw}\n"
                "threads:\n  - name: T0\n    ops:\n      - fault: {vma: haep, page: 0}\n"
                "      - mprotect: {vma: heap, prot: rwz}\n"
            )
            field = driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]")
            field.send_keys(str(bad))
            time.sleep(2.5)
            shoot(driver, "upload-errors")

            driver.get(base + "?scenario=default&step=369")
            settle(driver, "step 369")
            shoot_at(driver, ".timeline-panel", "lower", above=95)
            shoot_at(driver, ".address-space-panel", "memory", above=95)

            driver.get(base + "?scenario=default&step=369")
            settle(driver, "step 369")
            # The Results are mounted when scrolled to (layout.lazy_slot).
            driver.execute_script(
                "document.getElementById('results-slot').scrollIntoView({block: 'start'});"
            )
            wait_for(driver, "section.results .js-plotly-plot")
            shoot_at(driver, "section.results", "results", above=95, pause=2.5)
        finally:
            driver.quit()
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
