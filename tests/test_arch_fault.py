"""The arch fault handlers (reference §3): access checks per arch and the common skeleton."""

from __future__ import annotations

import pytest
from kernel_helpers import (
    assert_clean,
    codes,
    events,
    lvur_outcomes,
    make_scenario,
    nonzero,
    run,
    vid_of,
)

from vmaviz.model import mm as M
from vmaviz.model.kernel import ARCH_HANDLER, ARCHES, access_error
from vmaviz.model.mm import Vma

ZERO = {"success": 0, "abort": 0, "retry": 0, "miss": 0}
PROTS = ("none", "r", "rw", "rx", "rwx")

# Allowed accesses per arch and VMA protection (reference §3.2), for a fault on a
# page that is not present yet (x86: no X86_PF_PROT; s390: a DAT exception).
#   x86: write needs VM_WRITE; read (and instruction fetch, which x86's
#        access_error treats as a read) needs vma_is_accessible().
#   arm64: exec needs VM_EXEC, write VM_WRITE, read VM_READ|VM_WRITE (EPAN).
#   powerpc (Book3S-64, NOEXECUTE): exec needs VM_EXEC, write VM_WRITE, read accessible.
#   s390: write needs VM_WRITE; otherwise any of VM_ACCESS_FLAGS.
ALLOWED = {
    "x86": {
        "read": {"r", "rw", "rx", "rwx"},
        "write": {"rw", "rwx"},
        "exec": {"r", "rw", "rx", "rwx"},
    },
    "arm64": {
        "read": {"r", "rw", "rx", "rwx"},
        "write": {"rw", "rwx"},
        "exec": {"rx", "rwx"},
    },
    "powerpc": {
        "read": {"r", "rw", "rx", "rwx"},
        "write": {"rw", "rwx"},
        "exec": {"rx", "rwx"},
    },
    "s390": {
        "read": {"r", "rw", "rx", "rwx"},
        "write": {"rw", "rwx"},
        "exec": {"r", "rw", "rx", "rwx"},
    },
}


def vma_with(prot: str) -> Vma:
    flags = M.PROT_FLAGS[prot] | M.VM_MAYREAD | M.VM_MAYWRITE | M.VM_MAYEXEC
    return Vma(1, "v", 0x10000, 0x11000, flags, None)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("access", ["read", "write", "exec"])
@pytest.mark.parametrize("prot", PROTS)
def test_access_error_table(arch: str, access: str, prot: str) -> None:
    expected_error = prot not in ALLOWED[arch][access]
    assert access_error(arch, vma_with(prot), access) is expected_error


def test_arches_and_handlers() -> None:
    assert set(ARCHES) == {"x86", "arm64", "powerpc", "s390"}
    assert ARCH_HANDLER == {
        "x86": "do_user_addr_fault",
        "arm64": "do_page_fault",
        "powerpc": "___do_page_fault",
        "s390": "do_exception",
    }


# ------------------------------------------------------------- in the engine


def one_fault(arch: str, vma: dict, access: str = "read", user: bool = True, page: int = 0):
    return make_scenario(
        vmas=[vma],
        threads=[
            {
                "name": "T",
                "ops": [
                    {"fault": {"vma": vma["name"], "page": page, "access": access, "user": user}}
                ],
            }
        ],
        kernel={"arch": arch},
    )


def mmap_lock_held(r) -> bool:
    """The row where the fault's thread got mmap_lock for read (any of the three ways)."""
    return r["event"] in ("fault:mmap_read_trylock_ok", "down_read:granted") or (
        r["event"] == "down_read:acquired" and r["a"] == 0
    )


def mmap_lock_acquisitions(e, tid: int = 0) -> list[int]:
    """Indexes into ``codes(e, tid)`` at which the thread took mmap_lock for read."""
    return [i for i, r in enumerate(events(e, tid=tid)) if mmap_lock_held(r)]


def assert_one_vma_lock_attempt_per_fault(e, tid: int = 0) -> None:
    """reference §3.1 step 8: the VMA-lock attempt is made at most once per fault."""
    per_fault: list[int] = []
    for c in codes(e, tid):
        if c == "fault:entry":
            per_fault.append(0)
        elif c == "lock_vma_under_rcu:rcu_read_lock":
            per_fault[-1] += 1
    assert per_fault, "no fault ran"
    assert all(n <= 1 for n in per_fault), per_fault


@pytest.mark.parametrize("arch", ARCHES)
def test_handler_name_on_the_stack(arch: str) -> None:
    e = run(one_fault(arch, {"name": "A", "pages": 2, "anon_vma": True}, "write"))
    entry = events(e, "fault:entry")
    assert len(entry) == 1
    assert entry[0]["stack"][-1] == ARCH_HANDLER[arch]
    assert e.k.vma_lock == {**ZERO, "success": 1}
    assert_clean(e)


@pytest.mark.parametrize(
    ("arch", "prot", "access"),
    [(arch, "r", "write") for arch in ARCHES]
    + [("arm64", "rw", "exec"), ("powerpc", "rw", "exec"), ("x86", "none", "read")],
)
def test_access_failure_after_lock_counts_nothing_and_segfaults_via_mmap_lock(
    arch: str, prot: str, access: str
) -> None:
    # An anonymous VMA with an anon_vma is locked whatever its protection: the arch
    # access check only comes after lock_vma_under_rcu.
    e = run(one_fault(arch, {"name": "A", "pages": 2, "prot": prot, "anon_vma": True}, access))
    a = vid_of(e, "A")
    c = codes(e, 0)
    assert lvur_outcomes(e, 0) == ["locked"]
    # The arch check fails on the locked VMA: vma_end_read, then the mmap path.
    i_err = c.index("fault:vma_access_error")
    i_unlock = c.index("vma_end_read:up_read")
    i_mmap = mmap_lock_acquisitions(e)[0]
    assert c.index("lock_vma_under_rcu:locked") < i_err < i_unlock < i_mmap
    assert "handle_mm_fault" not in {s for r in events(e, tid=0) for s in r["stack"]}
    # The mmap path repeats the check and delivers SIGSEGV.
    assert i_mmap < c.index("fault:bad_area_access_error") < c.index("fault:bad_area_sigsegv")
    assert e.k.vma_lock == ZERO
    assert nonzero(e.k.abort_reasons) == {}
    assert e.k.fault_stats["sigsegv"] == 1
    assert e.k.fault_stats["via_vma_lock"] == 0
    assert e.k.mm.vmas[a].vm_lock.is_free
    assert not e.k.mm.vmas[a].pages  # nothing was mapped
    assert_clean(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_allowed_access_on_every_arch_succeeds_under_the_vma_lock(arch: str) -> None:
    e = run(one_fault(arch, {"name": "A", "pages": 2, "prot": "rx", "anon_vma": True}, "read"))
    assert e.k.vma_lock == {**ZERO, "success": 1}
    assert e.k.fault_stats["sigsegv"] == 0
    assert e.k.mm.mmap_lock.stats["read_acquired"] == 0
    assert_clean(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_kernel_mode_fault_counts_nothing_and_uses_mmap_lock(arch: str) -> None:
    e = run(one_fault(arch, {"name": "A", "pages": 2, "anon_vma": True}, "write", user=False))
    c = codes(e, 0)
    assert not any(x.startswith("lock_vma_under_rcu") for x in c)
    assert e.k.vma_lock == ZERO
    assert e.k.fault_stats["kernel_mode"] == 1
    assert e.k.fault_stats["via_mmap_lock"] == 1
    assert e.k.mm.mmap_lock.stats["read_acquired"] == 1
    assert events(e, "fault:entry")[0]["b"] == 0  # user flag
    assert "set_pte_at" in c
    assert_clean(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_swap_entry_counts_retry_then_falls_back(arch: str) -> None:
    sc = make_scenario(
        vmas=[{"name": "A", "pages": 2, "anon_vma": True}],
        threads=[
            {
                "name": "T",
                "ops": [
                    {"fault": {"vma": "A", "page": 0, "access": "write"}},
                    {"swap_out": {"vma": "A", "pages": "0"}},
                    {"fault": {"vma": "A", "page": 0, "access": "read"}},
                ],
            }
        ],
        kernel={"arch": arch},
    )
    e = run(sc)
    a = vid_of(e, "A")
    assert e.k.vma_lock == {**ZERO, "success": 1, "retry": 1}
    c = codes(e, 0)
    first = c.index("try_to_unmap:swap_entry")
    second = c[first:]
    # handle_mm_fault under the VMA lock returns RETRY; the arch code drops the VMA
    # lock itself (6.4), counts RETRY, then redoes the fault under mmap_lock.
    i_retry = second.index("do_swap_page:retry_vma_lock")
    i_unlock = second.index("vma_end_read:up_read")
    i_count = second.index("fault:vma_lock_retry")
    (i_mmap,) = [i - first for i in mmap_lock_acquisitions(e)]
    i_swapin = second.index("do_swap_page:swap_in")
    assert i_retry < i_unlock < i_count < i_mmap < i_swapin
    assert second.count("lock_vma_under_rcu:rcu_read_lock") == 1
    assert e.k.fault_stats["via_mmap_lock"] == 1
    assert e.k.fault_stats["via_vma_lock"] == 1
    assert e.k.mm.vmas[a].pages[0] == M.PTE_PRESENT
    assert e.k.mm.vmas[a].vm_lock.is_free
    assert_one_vma_lock_attempt_per_fault(e)
    assert_clean(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_sigsegv_on_an_unmapped_address(arch: str) -> None:
    sc = make_scenario(
        vmas=[{"name": "A", "pages": 2, "anon_vma": True}, {"name": "B", "pages": 2}],
        threads=[
            {
                "name": "T",
                "ops": [
                    {"munmap": {"vma": "A"}},
                    {"fault": {"vma": "A", "page": 1, "access": "read"}},
                ],
            }
        ],
        kernel={"arch": arch},
    )
    e = run(sc)
    assert lvur_outcomes(e, 0) == ["abort:no_vma"]
    assert e.k.vma_lock == {**ZERO, "abort": 1}
    assert e.k.fault_stats["sigsegv"] == 1
    c = codes(e, 0)
    assert c.index("lock_vma_under_rcu:abort:no_vma") < c.index("fault:bad_area_sigsegv")
    assert_clean(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_mmap_lock_retry_loop_never_retries_the_vma_lock(arch: str) -> None:
    # A userfault under mmap_lock returns RETRY (mmap_lock dropped); the handler
    # retries under mmap_lock with FAULT_FLAG_TRIED, not with the VMA lock again.
    sc = make_scenario(
        vmas=[{"name": "U", "pages": 2, "anon_vma": True, "uffd": True}],
        threads=[{"name": "T", "ops": [{"fault": {"vma": "U", "page": 0}}]}],
        kernel={"arch": arch},
    )
    e = run(sc)
    c = codes(e, 0)
    assert "fault:retry_tried" in c
    assert c.count("lock_vma_under_rcu:rcu_read_lock") == 1
    assert len(mmap_lock_acquisitions(e)) == 2
    assert e.k.vma_lock == {**ZERO, "abort": 1}
    assert nonzero(e.k.abort_reasons) == {"uffd_armed": 1}
    assert_one_vma_lock_attempt_per_fault(e)
    assert_clean(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_mmap_lock_mode_never_tries_the_vma_lock(arch: str) -> None:
    sc = one_fault(arch, {"name": "A", "pages": 2, "anon_vma": True}, "write")
    e = run(sc, mode="mmap_lock")
    assert not any(c.startswith(("lock_vma_under_rcu", "vma_start_read")) for c in codes(e))
    assert e.k.vma_lock == ZERO
    assert e.k.fault_stats["via_mmap_lock"] == 1
    assert_clean(e)


def test_touch_counts_one_outcome_per_fault() -> None:
    # reference §2.9 / invariant 11: per fault attempt exactly one of ABORT, SUCCESS,
    # RETRY or nothing (access error), plus MISSes.
    sc = make_scenario(
        vmas=[
            {"name": "A", "pages": 4, "anon_vma": False},
            {"name": "R", "pages": 2, "prot": "r", "anon_vma": True},
        ],
        threads=[
            {
                "name": "T",
                "ops": [
                    {"touch": {"vma": "A", "pages": "0-3"}},
                    {"swap_out": {"vma": "A", "pages": "1-2"}},
                    {"touch": {"vma": "A", "pages": "0-3", "access": "read"}},
                    {"fault": {"vma": "R", "page": 0, "access": "write"}},
                ],
            }
        ],
    )
    e = run(sc)
    vl = e.k.vma_lock
    # 4 + 4 faults on A, one on R (locked, access error: counts nothing).
    assert e.k.fault_stats["total"] == 9
    assert vl["abort"] + vl["success"] + vl["retry"] == 8
    assert vl == {"success": 5, "abort": 1, "retry": 2, "miss": 0}
    assert nonzero(e.k.abort_reasons) == {"no_anon_vma": 1}
    assert_one_vma_lock_attempt_per_fault(e)
    assert_clean(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_mmap_path_looks_up_the_vma_only_under_mmap_lock(arch: str) -> None:
    # reference §3.1 step 8 / §3.4: take mmap_lock for read, then find_vma.
    e = run(one_fault(arch, {"name": "A", "pages": 2, "anon_vma": True}, "write", user=False))
    lock = mmap_lock_acquisitions(e)[0]
    find = codes(e, 0).index("find_vma")
    assert lock < find


@pytest.mark.parametrize("arch", ARCHES)
def test_kernel_mode_fault_racing_munmap_gets_sigsegv(arch: str) -> None:
    # T0 unmaps A; T1's kernel-mode access to A arrives while T0 holds mmap_lock for
    # write.  The fault must wait for mmap_lock before looking A up, so it finds
    # nothing and fails; it must never install a PTE in the unmapped VMA.
    sc = make_scenario(
        vmas=[{"name": "A", "pages": 4, "anon_vma": True}, {"name": "B", "pages": 4}],
        threads=[
            {"name": "W", "ops": [{"munmap": {"vma": "A"}}]},
            {
                "name": "F",
                "start_ns": 100,
                "ops": [{"fault": {"vma": "A", "page": 0, "access": "write", "user": False}}],
            },
        ],
        kernel={"arch": arch},
    )
    e = run(sc, keep_freed=True)  # to look at A's pages after it is freed
    assert e.k.violations == []
    assert e.k.fault_stats["sigsegv"] == 1
    assert not e.k.mm.vmas[vid_of(e, "A")].pages
