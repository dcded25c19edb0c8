"""``python -m vmaviz bench browser``: what a person waits for, in headless Chromium.

The app is started as its own process (``python app.py`` on a free loopback port,
with a fresh cache directory) and driven by selenium through Debian's Chromium at
1400x900, the way the browser tests drive it. A script installed before the page's
own scripts (``Page.addScriptToEvaluateOnNewDocument``) records, in page time:

- every long task (a ``PerformanceObserver`` of type ``longtask``: main-thread work
  over 50 ms, which is what makes a page feel stuck);
- every ``/_dash-update-component`` request in flight (a wrapper around ``fetch``);
- every DOM change (a ``MutationObserver`` over the whole document);
- the time of the last key press.

A view has *settled* when no request is in flight, nothing has changed in the DOM
and no long task ran for :data:`QUIET_MS`, and the step status names the step the
key asked for. The settle time is from the key press to the end of the last DOM
change, request or long task before that quiet spell: the moment the page stopped
moving. Figures are printed beside the targets of the issue, never asserted.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Headless Chromium as root on a machine without network access (the browser tests
#: and the screenshots use them too): no sandbox, GPU, background connections.
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW = (1400, 900)
#: The page has settled after this long with no request, DOM change or long task.
QUIET_MS = 300
STEPS = 30
PLAY_SECONDS = 10
SCENARIOS = ("default", "pft-per-thread-vma", "android-app-launch")
VIEWS = ("single", "compare")

TARGET_OPEN_WARM_S = 1.5
TARGET_OPEN_COLD_S = 3.0
TARGET_OPEN_COLD_COMPARE_S = 4.0
TARGET_STEP_P95_MS = 150.0
TARGET_PLAY_STEPS_PER_S = 9.5
TARGET_LONG_TASK_MS = 100.0

#: Installed before any script of the page: the probes described in the module doc.
PROBE = r"""
(function () {
  var vz = window.__vz = {long: [], inflight: 0, last: 0, key: 0, statuses: []};
  function mark(t) { if (t > vz.last) { vz.last = t; } }
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) {
        vz.long.push([e.startTime, e.duration]);
        mark(e.startTime + e.duration);
      });
    }).observe({type: "longtask", buffered: true});
  } catch (e) { vz.noLongTasks = true; }
  var fetch0 = window.fetch;
  window.fetch = function () {
    vz.inflight += 1;
    mark(performance.now());
    return fetch0.apply(this, arguments).finally(function () {
      vz.inflight -= 1;
      mark(performance.now());
    });
  };
  document.addEventListener("keydown", function (e) { vz.key = performance.now(); }, true);
  function observe() {
    new MutationObserver(function () {
      mark(performance.now());
      var s = document.getElementById("step-status");
      var text = s ? s.textContent : "";
      var n = vz.statuses.length;
      if (!n || vz.statuses[n - 1][1] !== text) {
        vz.statuses.push([performance.now(), text]);
      }
    }).observe(document, {subtree: true, childList: true, attributes: true,
                           characterData: true});
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", observe);
  } else { observe(); }
})();
"""


_TEXT_OF = "var e = document.getElementById(arguments[0]); return e ? e.textContent : '';"
_OPTIONS = "[role=option], .dash-dropdown-option"


@dataclass
class Result:
    """What one scenario and view measured (seconds for opens, ms for the rest)."""

    scenario: str
    view: str
    open_cold_s: float = float("nan")
    open_warm_s: float = float("nan")
    step_ms: dict[str, list[float]] = field(default_factory=dict)
    play_steps_per_s: float = float("nan")
    longest_task_ms: float = 0.0
    deepest: int = 0


def free_port() -> int:
    """A free TCP port on the loopback (for a server this process starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float, poll: float = 0.2) -> bool:
    """Whether something accepts connections on loopback ``port`` within ``timeout`` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(poll)
    return False


@contextmanager
def serving(
    argv: list[str], port: int, env: dict[str, str], stop_seconds: float = 10
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server (``argv``, from the repository root) until the block ends.

    ``env`` is added to this process's environment, without ``VMAVIZ_REDIS_URL``
    (the server gets its own cache). Yields once ``port`` accepts connections;
    stops it with SIGTERM (then SIGKILL after ``stop_seconds``).

    Raises:
        RuntimeError: nothing listened on ``port`` within 60 s.
    """
    full = {k: v for k, v in os.environ.items() if k != "VMAVIZ_REDIS_URL"}
    full.update(env)
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if not wait_for_port(port, 60):
            raise RuntimeError(f"{argv[0]} did not listen on port {port} within 60 s")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def app_server(cache_dir: str) -> Iterator[str]:
    """``python app.py`` on a free loopback port with its own cache; yields its URL."""
    port = free_port()
    env = {"VMAVIZ_PORT": str(port), "VMAVIZ_HOST": "127.0.0.1", "VMAVIZ_CACHE_DIR": cache_dir}
    with serving([sys.executable, str(REPO_ROOT / "app.py")], port, env):
        yield f"http://127.0.0.1:{port}"


def chromium() -> Any:
    """Headless Debian Chromium at 1400x900 with the probe installed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    if shutil.which("chromedriver") is None and Path(CHROMEDRIVER).exists():
        os.environ["PATH"] = f"{os.environ.get('PATH', '')}{os.pathsep}/usr/bin"
    options = Options()
    for arg in (*CHROME_ARGS, f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
    driver.set_script_timeout(120)
    return driver


class Page:
    """One tab of the app, with the probe's clock."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        self.url = url

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def now(self) -> float:
        return float(self.js("return performance.now()"))

    def status(self) -> str:
        return str(self.js(_TEXT_OF, "step-status"))

    def settle(self, since: float, check: Any, timeout: float = 120.0) -> float:
        """Wait until ``check()`` holds and the page is quiet; the ms from ``since``."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            vz = self.js("return [window.__vz.inflight, window.__vz.last, performance.now()]")
            inflight, last, now = vz
            if inflight == 0 and now - last >= QUIET_MS and check():
                return max(float(last) - since, 0.0)
            time.sleep(0.03)
        raise TimeoutError(f"the page did not settle in {timeout:.0f} s (status {self.status()!r})")

    def long_tasks_since(self, t: float) -> list[float]:
        tasks = self.js("return window.__vz.long")
        return [float(d) for s, d in tasks if s + d >= t]

    def load(self, query: str) -> float:
        """Open ``/?query``; the ms until every view is up and the page is quiet."""
        self.driver.get(f"{self.url}/{query}")
        return self.settle(0.0, self.ready)

    def ready(self) -> bool:
        return bool(
            self.js(
                "return !!document.querySelector('#body canvas.lanes-over') &&"
                " !!document.querySelector('#step-status strong') &&"
                " !document.querySelector('[data-dash-is-loading=\"true\"]')"
            )
        )

    def key(self, key: str) -> float:
        """Press ``key`` on the page; the page time of the key down."""
        from selenium.webdriver.common.action_chains import ActionChains

        before = float(self.js("return window.__vz.key"))
        ActionChains(self.driver).send_keys(key).perform()
        t = float(self.js("return window.__vz.key"))
        if t == before:
            raise RuntimeError("the key press did not reach the page")
        return t

    def choose_scenario(self, name: str) -> float:
        """Pick ``name`` in the scenario dropdown; the page time of the choice."""
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, "#scenario").click()
        for opt in self.driver.find_elements(By.CSS_SELECTOR, _OPTIONS):
            if opt.text.strip() == name:
                t = self.now()
                opt.click()
                return t
        raise RuntimeError(f"no option {name!r} in the scenario dropdown")

    def opened(self, name: str) -> Any:
        def check() -> bool:
            info = self.js(_TEXT_OF, "scenario-info")
            return str(info).startswith(name) and "initial state" in self.status() and self.ready()

        return check


def _steps_of(status: str) -> list[int]:
    return [int(x.replace(",", "")) for x in re.findall(r"step ([\d,]+)", status)]


def _expect_change(page: Page, before: str) -> Any:
    return lambda: page.status() != before and page.ready()


def measure_steps(page: Page, key: str, count: int) -> tuple[list[float], float]:
    """``count`` presses of ``key``, each waited for; (settle ms each, longest task ms)."""
    from selenium.webdriver.common.keys import Keys

    real = {"right": Keys.ARROW_RIGHT, "left": Keys.ARROW_LEFT}[key]
    times: list[float] = []
    longest = 0.0
    for _ in range(count):
        before = page.status()
        t = page.key(real)
        times.append(page.settle(t, _expect_change(page, before)))
        longest = max([longest, *page.long_tasks_since(t)])
    return times, longest


def measure_play(page: Page, seconds: float) -> float:
    """Play at 10 steps/s for ``seconds``; distinct steps shown per second."""
    from selenium.webdriver.common.by import By

    page.driver.find_element(By.CSS_SELECTOR, "#speed").click()
    for opt in page.driver.find_elements(By.CSS_SELECTOR, _OPTIONS):
        if opt.text.strip() == "10/s":
            opt.click()
            break
    time.sleep(0.5)
    page.js("window.__vz.statuses=[]")
    t0 = page.now()
    page.driver.find_element(By.CSS_SELECTOR, "#play").click()
    time.sleep(seconds)
    page.driver.find_element(By.CSS_SELECTOR, "#play").click()
    statuses = page.js("return window.__vz.statuses")
    seen = {tuple(_steps_of(text)) for ts, text in statuses if t0 <= ts <= t0 + seconds * 1000}
    seen.discard(())
    return len(seen) / seconds


def run_case(url: str, driver: Any, scenario: str, view: str) -> Result:
    """Open (cold, then warm), step at step 10 and at the deepest step, and Play."""
    page = Page(driver, url)
    res = Result(scenario, view)
    other = "default" if scenario != "default" else "write-locked-vma"
    page.load(f"?scenario={other}&view={view}")
    t = page.choose_scenario(scenario)
    res.open_cold_s = page.settle(t, page.opened(scenario)) / 1000
    # Warm: away and back again, both runs now cached.
    t = page.choose_scenario(other)
    page.settle(t, page.opened(other))
    t = page.choose_scenario(scenario)
    res.open_warm_s = page.settle(t, page.opened(scenario)) / 1000
    page.load(f"?scenario={scenario}&view={view}&step=10")
    # Focus the page on plain text: the body's centre moves with the layout and may
    # be an input (then the arrow keys type into it instead of stepping).
    page.driver.find_element("css selector", "#step-status").click()
    times, longest = measure_steps(page, "right", STEPS)
    res.step_ms["step 10"] = times
    res.longest_task_ms = longest
    from selenium.webdriver.common.keys import Keys

    before = page.status()
    t = page.key(Keys.END)
    page.settle(t, _expect_change(page, before))
    res.deepest = max(_steps_of(page.status()) or [0])
    times, longest = measure_steps(page, "left", STEPS)
    res.step_ms["deepest"] = times
    res.longest_task_ms = max(res.longest_task_ms, longest)
    page.load(f"?scenario={scenario}&view={view}&step=10")
    res.play_steps_per_s = measure_play(page, PLAY_SECONDS)
    return res


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def report(results: list[Result]) -> str:
    """The figures as a Markdown table, each beside its target."""
    head = (
        "| scenario | view | open cold | open warm | step p50/p95 @10 | step p50/p95 @deepest"
        " | play | longest task |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in results:
        s10 = r.step_ms.get("step 10", [])
        sd = r.step_ms.get("deepest", [])
        cold_target = TARGET_OPEN_COLD_COMPARE_S if r.view == "compare" else TARGET_OPEN_COLD_S
        p95 = max(_p(s10, 0.95), _p(sd, 0.95))
        lines.append(
            f"| {r.scenario} | {r.view} "
            f"| {r.open_cold_s:.2f} s {_verdict(r.open_cold_s <= cold_target)} "
            f"| {r.open_warm_s:.2f} s {_verdict(r.open_warm_s <= TARGET_OPEN_WARM_S)} "
            f"| {_p(s10, 0.5):.0f} / {_p(s10, 0.95):.0f} ms "
            f"| {_p(sd, 0.5):.0f} / {_p(sd, 0.95):.0f} ms (step {r.deepest:,}) "
            f"{_verdict(p95 <= TARGET_STEP_P95_MS)} "
            f"| {r.play_steps_per_s:.1f}/s "
            f"{_verdict(r.play_steps_per_s >= TARGET_PLAY_STEPS_PER_S)} "
            f"| {r.longest_task_ms:.0f} ms {_verdict(r.longest_task_ms <= TARGET_LONG_TASK_MS)} |"
        )
    lines.append(
        f"\nTargets: open <= {TARGET_OPEN_WARM_S} s warm, <= {TARGET_OPEN_COLD_S} s cold "
        f"(compare <= {TARGET_OPEN_COLD_COMPARE_S} s); step p95 <= {TARGET_STEP_P95_MS:.0f} ms; "
        f"Play >= {TARGET_PLAY_STEPS_PER_S} of 10 steps/s; no long task over "
        f"{TARGET_LONG_TASK_MS:.0f} ms while stepping. Chromium {WINDOW[0]}x{WINDOW[1]}, "
        f"headless; {STEPS} steps per position."
    )
    return "\n".join(lines)


def main(
    seconds: float = 1.0,
    scenarios: tuple[str, ...] = SCENARIOS,
    views: tuple[str, ...] = VIEWS,
) -> int:
    """Run every case (a fresh server and browser each, cold cache); print the table.

    ``seconds`` is accepted for the CLI; the measurement is fixed (30 steps, 10 s Play).
    """
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        print(
            f"bench browser needs {CHROMIUM} and {CHROMEDRIVER}"
            " (bash scripts/test.sh installs them)"
        )
        return 1
    print("bench browser: what a person waits for, in headless Chromium")
    results = []
    for view in views:
        for scenario in scenarios:
            with (
                tempfile.TemporaryDirectory(prefix="vmaviz-bench-") as cache,
                app_server(cache) as url,
            ):
                driver = chromium()
                try:
                    results.append(run_case(url, driver, scenario, view))
                finally:
                    driver.quit()
            print(report(results[-1:]).splitlines()[2], flush=True)
    print()
    print(report(results))
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``python -m vmaviz.bench.browser [SCENARIO ...] [single|compare ...]``."""
    import argparse

    from vmaviz.ui.session import bundled_scenarios

    parser = argparse.ArgumentParser(
        prog="python -m vmaviz.bench.browser",
        description="What a person waits for in the app, measured in headless Chromium.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="SCENARIO|VIEW",
        help=f"bundled scenarios (default: {', '.join(SCENARIOS)}) and views "
        f"({' or '.join(VIEWS)}; default: both)",
    )
    args = parser.parse_args(argv)
    known = set(bundled_scenarios())
    unknown = [n for n in args.names if n not in VIEWS and n not in known]
    if unknown:
        parser.error(f"no bundled scenario {', '.join(map(repr, unknown))} in scenarios/")
    return main(
        scenarios=tuple(n for n in args.names if n not in VIEWS) or SCENARIOS,
        views=tuple(n for n in args.names if n in VIEWS) or VIEWS,
    )


if __name__ == "__main__":
    sys.exit(cli())
