"""Fatal signals and killable mmap_lock sleeps, as Linux 6.4.0.

Written from the 6.4.0 source (commit 6e5f9d87e):

* kernel/signal.c ``complete_signal``: SIGKILL sets ``SIGNAL_GROUP_EXIT``, puts
  SIGKILL in every thread and ``signal_wake_up(t, 1)`` wakes killable sleepers.
* kernel/locking/rwsem.c ``rwsem_down_write_slowpath`` / ``rwsem_down_read_slowpath``:
  in ``TASK_KILLABLE`` a pending fatal signal sends the waiter to ``out_nolock``,
  ``rwsem_del_wake_waiter`` (``rwsem_del_waiter`` clears HANDOFF and WAITERS only
  when the list empties; a first waiter leaving a non-empty list runs
  ``rwsem_mark_wake(RWSEM_WAKE_ANY)``), and the lock returns ``-EINTR``.
* the killable call sites (mm/mmap.c ``__vm_munmap``, fs/proc/task_mmu.c ``m_start``)
  return ``-EINTR`` at once; the fault path's ``mmap_read_lock`` is uninterruptible.
* include/linux/sched/signal.h ``fault_signal_pending``: a fatal signal counts for
  kernel-mode faults too (arch/*/mm/fault.c then go to the exception fixup).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel_helpers import rows
from vmaviz.engine.engine import Engine
from vmaviz.model.kernel import ARCHES
from vmaviz.model.rwsem import READER, RWSEM_WAIT_TIMEOUT_NS, WRITER, RwSem, Wake
from vmaviz.scenario import ScenarioErrors, load_scenario, load_scenario_text

ROOT = Path(__file__).resolve().parents[1]


def run_text(text: str, **kw: object) -> Engine:
    return Engine(load_scenario_text(text, "s.yaml"), **kw).run()  # type: ignore[arg-type]


def tid_of(e: Engine, name: str) -> int:
    return next(t.tid for t in e.k.threads if t.name == name)


def evs(e: Engine, tid: int | None = None) -> list[dict[str, object]]:
    return [r for r in rows(e) if tid is None or r["tid"] == tid]


def codes(e: Engine, tid: int | None = None) -> list[str]:
    return [str(r["event"]) for r in evs(e, tid)]


# --- the bundled scenario: munmap's killable wait vs a fault's uninterruptible one ---


@pytest.fixture(scope="module")
def killed() -> Engine:
    return Engine(load_scenario(ROOT / "scenarios" / "kill-killable-waiter.yaml")).run()


def test_killable_writer_leaves_the_queue_with_eintr(killed: Engine) -> None:
    u = tid_of(killed, "unmapper")
    ev = codes(killed, u)
    # Queued in down_write_killable (TASK_KILLABLE) before the signal.
    assert "down_write:queued" in ev
    q = ev.index("down_write:queued")
    assert ev[q + 1] == "rwsem_down_write_slowpath:eintr"
    assert ev[q + 2] == "mmap_write_lock_killable:eintr"
    eintr = next(r for r in evs(killed, u) if r["event"] == "mmap_write_lock_killable:eintr")
    assert "__vm_munmap returns -EINTR" in str(eintr["note"])
    # munmap changed nothing: no split, no detach, no tree store by the unmapper.
    assert not any(c.startswith(("__split_vma", "vma_iter_clear", "vma_mark_detached")) for c in ev)
    assert not any(c.startswith("do_vmi") for c in ev)
    # And its next op (mprotect) never ran: it died on the way back to user mode.
    assert "syscall:mprotect" not in ev
    assert ev[-2:] == ["do_exit", "exit"]


def test_first_waiter_leaving_wakes_the_next_waiters(killed: Engine) -> None:
    """rwsem_del_wake_waiter: the unmapper was first and the lock is reader-owned,
    so rwsem_mark_wake grants the queued fault's read request in the same step."""
    f = tid_of(killed, "faulter")
    out = next(r for r in evs(killed) if r["event"] == "rwsem_down_write_slowpath:eintr")
    assert f"granted=0:{f}" in str(out["note"])
    assert out["b"] == 0  # no HANDOFF (granting readers clears it anyway)
    granted = next(r for r in evs(killed, f) if r["event"] == "down_read:granted")
    assert granted["step"] > out["step"]


def test_uninterruptible_fault_sleeper_is_not_woken(killed: Engine) -> None:
    f = tid_of(killed, "faulter")
    sig = next(r for r in evs(killed) if r["event"] == "complete_signal")
    # Four threads marked, only the unmapper (down_write_killable) woken.
    assert (sig["a"], sig["b"]) == (4, 1)
    ev = codes(killed, f)
    # The fault waited in mmap_read_lock, got the lock, completed (page mapped).
    assert ev.index("down_read:queued") < ev.index("down_read:granted")
    assert "fault:done_mmap_lock" in ev
    assert "rwsem_down_read_slowpath:eintr" not in ev
    # Its second fault (a later op) never ran.
    assert ev.count("fault:entry") == 1
    assert ev[-2:] == ["do_exit", "exit"]
    assert "set_pte_at" in ev  # the page was mapped before the thread died


def test_every_thread_dies_and_the_last_runs_exit_mmap(killed: Engine) -> None:
    k = killed.k
    assert all(t.sigkill and t.done_ns >= 0 for t in k.threads)
    ev = codes(killed)
    assert ev.count("exit_mmap") == 1
    last = max(k.threads, key=lambda t: t.done_ns)
    runner = next(r for r in evs(killed) if r["event"] == "exit_mmap")["tid"]
    assert runner == last.tid == tid_of(killed, "monitor")
    # The killer's compute after the signal never ran.
    assert "compute" not in codes(killed, tid_of(killed, "killer"))
    assert k.mm.live_vmas() == []
    assert k.violations == []


# --- killable reader: /proc/pid/maps m_start's mmap_read_lock_killable ----------------

READER_KILL = """
name: r
description: d
kernel: {cpus: 4}
mm:
  vmas:
    - {name: a, pages: 8, anon_vma: true}
threads:
  - name: H
    ops:
      - hold_mmap_write: {ns: 100000}
  - name: M
    start_ns: 1000
    ops:
      - read_proc_maps: {}
  - name: K
    start_ns: 20000
    ops:
      - signal: {thread: M, sig: SIGKILL}
"""


def test_killable_reader_leaves_with_eintr() -> None:
    e = run_text(READER_KILL)
    m = tid_of(e, "M")
    ev = codes(e, m)
    q = ev.index("down_read:queued")
    assert ev[q + 1 : q + 3] == [
        "rwsem_down_read_slowpath:eintr",
        "mmap_read_lock_killable:eintr",
    ]
    assert "show_map_vma" not in ev and "down_read:granted" not in ev
    assert e.k.mm.mmap_lock.waiters == []
    assert e.k.violations == []


def test_handled_signal_wakes_no_killable_sleeper() -> None:
    """signal_wake_up(t, 0) for a handled signal: TASK_KILLABLE sleepers stay asleep."""
    e = run_text(READER_KILL.replace(", sig: SIGKILL", ""))
    ev = codes(e, tid_of(e, "M"))
    assert "rwsem_down_read_slowpath:eintr" not in ev
    assert ev.index("down_read:queued") < ev.index("down_read:granted")
    assert "show_map_vma" in ev


# --- rwsem_del_wake_waiter on the lock itself ------------------------------------


def test_handoff_stays_with_waiters_and_is_inherited() -> None:
    """rwsem_del_waiter clears HANDOFF only on an empty list; the next first writer
    inherits the bit in rwsem_try_write_lock ("First waiter inherits ...")."""
    s = RwSem("m")
    assert s.down_write_fast(0)
    s.queue_writer(1, 0)
    s.queue_writer(2, 10)
    # Waiter 1 times out while the lock is held: it sets HANDOFF.
    assert not s.writer_retry(1, RWSEM_WAIT_TIMEOUT_NS)
    assert s.handoff and s.waiters[0].handoff_set
    wakes = s.del_wake_waiter(1, RWSEM_WAIT_TIMEOUT_NS + 1)
    assert wakes == [Wake(2, WRITER, granted=False)]  # first left: mark_wake the writer
    assert s.handoff  # still set: the list is not empty
    assert not s.writer_retry(2, RWSEM_WAIT_TIMEOUT_NS + 2)
    assert s.waiters[0].handoff_set  # inherited
    s.up_write(0)
    assert s.writer_retry(2, RWSEM_WAIT_TIMEOUT_NS + 3)
    assert not s.handoff and s.writer == 2


def test_last_waiter_leaving_clears_handoff() -> None:
    s = RwSem("m")
    assert s.down_write_fast(0)
    s.queue_writer(1, 0)
    assert not s.writer_retry(1, RWSEM_WAIT_TIMEOUT_NS)
    assert s.handoff
    assert s.del_wake_waiter(1, RWSEM_WAIT_TIMEOUT_NS) == []
    assert not s.handoff and s.waiters == []
    assert s.writer == 0  # the holder keeps the lock


def test_non_first_waiter_leaving_wakes_nobody() -> None:
    s = RwSem("m")
    assert s.down_write_fast(0)
    s.queue_writer(1, 0)
    s.queue_reader(2, 0)
    assert s.del_wake_waiter(2, 5) == []
    assert [w.tid for w in s.waiters] == [1]


def test_first_waiter_leaving_a_write_held_lock_grants_no_reader() -> None:
    """rwsem_mark_wake backs out a reader grant while a writer holds the lock; a
    reader waiting past RWSEM_WAIT_TIMEOUT sets HANDOFF there."""
    s = RwSem("m")
    assert s.down_write_fast(0)
    s.queue_writer(1, 0)
    s.queue_reader(2, 0)
    assert s.del_wake_waiter(1, 10) == []
    assert not s.handoff and s.readers == 0
    s.queue_writer(3, 20)
    s.waiters.reverse()  # [3, 2]: make the writer first again, the reader (since 0) next
    assert s.del_wake_waiter(3, RWSEM_WAIT_TIMEOUT_NS) == []
    assert s.handoff and s.waiters[0].kind == READER and s.waiters[0].handoff_set
    # The writer's release grants the reader and clears the bit.
    assert s.up_write(0) == [Wake(2, READER, granted=True)]
    assert not s.handoff


# --- fault_signal_pending with a fatal signal ---------------------------------------

UFFD = """
name: s
description: d
kernel: {cpus: 2}
mm:
  vmas:
    - {name: armed, pages: 2, anon_vma: true, uffd: true}
threads:
  - name: T
    ops:
      - fault: {vma: armed, page: 0, access: write, user: USER}
      - fault: {vma: armed, page: 1, access: write}
  - name: S
    start_ns: 2000
    ops:
      - signal: {thread: T, sig: SIG}
"""


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("user", ["true", "false"])
def test_fatal_signal_quick_exit_for_user_and_kernel_faults(arch: str, user: str) -> None:
    """fault_signal_pending: VM_FAULT_RETRY and fatal_signal_pending, in any mode.
    The fault is not retried and the thread runs no later op."""
    e = run_text(UFFD.replace("USER", user).replace("SIG", "SIGKILL"), arch=arch)
    t = tid_of(e, "T")
    ev = codes(e, t)
    q = next(r for r in evs(e, t) if r["event"] == "fault:signal_pending_quick_exit")
    assert q["b"] == 1
    assert ("fixup_exception" in str(q["note"])) == (user == "false")
    assert ev.count("fault:entry") == 1
    assert "fault:retry_tried" not in ev
    # T is the last thread: its do_exit runs exit_mmap, and nothing else follows.
    assert ev.index("fault:signal_pending_quick_exit") < ev.index("exit_mmap")
    assert ev[-1] == "exit"
    assert e.k.violations == []


@pytest.mark.parametrize("arch", ARCHES)
def test_handled_signal_does_not_stop_a_kernel_mode_fault(arch: str) -> None:
    """(user_mode(regs) && signal_pending(current)): a handled signal does not count
    for a kernel-mode fault, which retries under mmap_lock."""
    e = run_text(UFFD.replace("USER", "false").replace("SIG", "SIGUSR1"), arch=arch)
    ev = codes(e, tid_of(e, "T"))
    first = ev[: ev.index("fault:done_mmap_lock") + 1]
    assert "fault:signal_pending_quick_exit" not in first
    assert "fault:retry_tried" in first
    # The signal stays pending; the second (user) fault's RETRY delivers it.
    assert ev.count("fault:signal_pending_quick_exit") == 1
    assert "exit_mmap" not in ev


# --- loader ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["SIGSTOP", "9", "sigkill", "true"])
def test_loader_rejects_a_bad_sig(bad: str) -> None:
    text = READER_KILL.replace("sig: SIGKILL", f"sig: {bad}")
    with pytest.raises(ScenarioErrors) as err:
        load_scenario_text(text, "s.yaml")
    msg = str(err.value)
    assert "sig" in msg and "s.yaml:" in msg


def test_loader_accepts_both_signals() -> None:
    for sig in ("SIGKILL", "SIGUSR1"):
        sc = load_scenario_text(READER_KILL.replace("SIGKILL", sig), "s.yaml")
        op = sc.threads[2].ops[0]
        assert op.args["sig"] == sig
