"""``/proc/pid/maps`` reads one seq_file buffer per read() and drops mmap_lock between.

Kernel: fs/seq_file.c ``seq_read_iter`` fills one ``PAGE_SIZE`` buffer per read()
between ``m->op->start`` and ``m->op->stop``; fs/proc/task_mmu.c ``m_start`` takes
``mmap_read_lock_killable`` and ``m_stop`` releases it, and the next read resumes
with ``vma_iter_init(&priv->iter, mm, last_addr)``; once past the last VMA
``m_start`` returns NULL before locking (the EOF read).
"""

from __future__ import annotations

from typing import Any

import pytest

from vmaviz.engine.engine import Engine
from vmaviz.model.ops import maps_line_bytes
from vmaviz.scenario import load_scenario_text

NLIBS = 80
PATH = "/usr/lib/x86_64-linux-gnu/lib00.so"


def scenario(writer: bool) -> str:
    libs = "\n".join(
        f"    - {{name: lib{i:02d}, pages: 8, prot: rx, file: lib{i:02d}.so}}" for i in range(NLIBS)
    )
    w = (
        "  - name: W\n    start_ns: 5000\n    ops:\n      - munmap: {vma: lib60}\n"
        if writer
        else ""
    )
    return (
        "name: maps-buffers\ndescription: maps read in page-sized buffers\n"
        "kernel: {per_vma_lock: true, cpus: 2}\nmm:\n  vmas:\n"
        f"{libs}\nthreads:\n  - name: R\n    ops:\n      - read_proc_maps: {{}}\n{w}"
    )


def run(writer: bool, mode: str) -> tuple[Engine, list[dict[str, Any]]]:
    e = Engine(load_scenario_text(scenario(writer)), mode=mode).run()
    return e, [e.trace.row(i) for i in range(len(e.trace))]


def test_line_length_follows_show_map_vma() -> None:
    e, _ = run(False, "per_vma")
    vma = e.k.mm.live_vmas()[0]
    # A file line: the header is padded to column 72, one space, the path, "\n".
    assert maps_line_bytes(vma) == 72 + 1 + len(PATH) + 1


@pytest.mark.parametrize("mode", ["per_vma", "mmap_lock"])
def test_one_read_lock_per_page_sized_buffer(mode: str) -> None:
    _, rows = run(False, mode)
    line = 72 + 1 + len(PATH) + 1
    per_buffer = (4096 - 1) // line  # a line fits only if the buffer stays short of full
    buffers = -(-NLIBS // per_buffer)
    assert buffers == 3  # 37 + 37 + 6 lines
    locks = [x for x in rows if x["event"] == "down_read:acquired"]
    unlocks = [x for x in rows if x["event"] == "mmap_read_unlock"]
    assert len(locks) == len(unlocks) == buffers
    reads = [x for x in rows if x["event"] == "syscall:read:/proc/pid/maps"]
    assert len(reads) == buffers + 1  # and the EOF read
    shown = [i for i, x in enumerate(rows) if x["event"] == "show_map_vma"]
    assert len(shown) == NLIBS
    # Between two buffers the read lock is dropped: count lines per locked section.
    cuts = [i for i, x in enumerate(rows) if x["event"] == "mmap_read_unlock"]
    per = [
        sum(1 for s in shown if lo < s < hi) for lo, hi in zip([-1, *cuts[:-1]], cuts, strict=True)
    ]
    assert per == [per_buffer, per_buffer, NLIBS - 2 * per_buffer]
    # The EOF read takes no lock: nothing follows the last unlock but that read.
    assert rows[cuts[-1] + 1 :][0]["event"] == "syscall:read:/proc/pid/maps"
    assert all(x["event"] != "down_read:acquired" for x in rows[cuts[-1] :])


@pytest.mark.parametrize("mode", ["per_vma", "mmap_lock"])
def test_writer_is_woken_at_every_buffer_boundary(mode: str) -> None:
    """m_stop's up_read wakes the queued munmap between buffers (kernel/locking/rwsem.c
    ``up_read`` -> ``rwsem_wake``), but the reader's next read() is back first and
    steals the free lock (``rwsem_down_read_slowpath``: reader optimistic lock
    stealing when neither WRITER_LOCKED nor HANDOFF is set), so the woken writer
    fails its retry once per boundary and gets the lock after the last buffer.
    """
    e, rows = run(True, mode)
    tid = {t.name: t.tid for t in e.k.threads}
    r_unlocks = [
        i for i, x in enumerate(rows) if x["tid"] == tid["R"] and x["event"] == "mmap_read_unlock"
    ]
    retries = [
        i
        for i, x in enumerate(rows)
        if x["tid"] == tid["W"] and x["event"] == "down_write:retry_failed"
    ]
    w_lock = next(
        i
        for i, x in enumerate(rows)
        if x["tid"] == tid["W"] and x["event"] == "down_write:acquired_after_wait"
    )
    assert len(r_unlocks) == 3
    # One failed wake-up per boundary between two buffers ...
    assert len(retries) == len(r_unlocks) - 1
    for lo, hi, retry in zip(r_unlocks, r_unlocks[1:], retries, strict=False):
        assert lo < retry < hi
    # ... and the lock after the reader's last unlock; every VMA was shown (the munmap
    # came after the whole file was read).
    assert w_lock > r_unlocks[-1]
    assert sum(x["event"] == "show_map_vma" for x in rows) == NLIBS
