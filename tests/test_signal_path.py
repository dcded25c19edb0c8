"""The signal quick path after a VMA-lock RETRY (reference §3.1 step 7)."""

from __future__ import annotations

import pytest

from vmaviz.engine.engine import Engine
from vmaviz.model.kernel import ARCHES
from vmaviz.scenario import load_scenario_text

SWAP = """
name: swap-signal
description: a swapped page faulted by a thread with a signal pending
kernel: {cpus: 1}
mm:
  vmas:
    - {name: buf, pages: 2, anon_vma: true}
threads:
  - name: T
    ops:
      - touch: {vma: buf, pages: "0-0"}
      - swap_out: {vma: buf, pages: "0-0"}
      - fault: {vma: buf, page: 0, access: read}
"""


def _events(e: Engine) -> list[str]:
    return [e.trace.row(i)["event"] for i in range(len(e.trace))]


@pytest.mark.parametrize("arch", ARCHES)
def test_retry_with_a_signal_pending_returns_without_the_mmap_fallback(arch: str) -> None:
    e = Engine(load_scenario_text(SWAP, "swap-signal.yaml"), arch=arch)
    e.k.threads[0].signal_pending = True
    e.run()
    ev = _events(e)
    q = ev.index("fault:signal_pending_quick_exit")
    # The first RETRY returns without the mmap_lock fallback; the signal is
    # delivered and the access faults again (arch_do_signal_or_restart, then the
    # instruction re-executes), retries under the VMA lock a second time and, with
    # no signal pending now, swaps the page in under mmap_lock.
    assert ev.count("fault:signal_pending_quick_exit") == 1
    assert e.k.vma_lock["retry"] == 2
    assert q < ev.index("fault:vma_lock_retry") < ev.index("do_swap_page:swap_in")
    assert not e.k.threads[0].signal_pending


@pytest.mark.parametrize("arch", ARCHES)
def test_retry_without_a_signal_falls_back_to_mmap_lock(arch: str) -> None:
    e = Engine(load_scenario_text(SWAP, "swap-signal.yaml"), arch=arch).run()
    ev = _events(e)
    assert "fault:signal_pending_quick_exit" not in ev
    assert "fault:vma_lock_retry" in ev
    assert "do_swap_page:swap_in" in ev
    assert e.k.vma_lock["retry"] == 1
