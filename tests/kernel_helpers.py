"""Helpers shared by the kernel-model and engine tests.

Scenarios are built from plain Python data (``make_scenario``) and loaded through
the real YAML loader, so every test exercises the same path a scenario file does.
Trace helpers turn the engine's columnar trace into row dicts and answer the
questions the tests ask ("which VMAs did this op write-lock", "which branch did
this lock_vma_under_rcu call take").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import yaml

from vmaviz.engine.engine import Engine, Trace
from vmaviz.scenario import Scenario, load_scenario_text
from vmaviz.scenario.schema import ARCHES, MADVISE_ADVICE, MAX_PAGES

PAGE = 4096


def make_scenario(
    vmas: list[dict[str, Any]],
    threads: list[dict[str, Any]],
    kernel: dict[str, Any] | None = None,
    costs: dict[str, int] | None = None,
    name: str = "test",
) -> Scenario:
    """A validated scenario from Python data (dumped to YAML and loaded)."""
    doc: dict[str, Any] = {
        "name": name,
        "description": "test scenario",
        "kernel": {"per_vma_lock": True, "cpus": 2, **(kernel or {})},
        "mm": {"vmas": vmas},
        "threads": threads,
    }
    if costs:
        doc["costs"] = costs
    return load_scenario_text(yaml.safe_dump(doc, sort_keys=False))


def run(sc: Scenario, mode: str | None = None, **kw: Any) -> Engine:
    """A finished engine run of ``sc``."""
    return Engine(sc, mode=mode, **kw).run()


def rows(e: Engine, start: int = 0) -> Iterator[dict[str, Any]]:
    """Every trace row from ``start`` on, as dicts (see ``Trace.row``)."""
    for i in range(start, len(e.trace)):
        yield e.trace.row(i)


def events(
    e: Engine, code: str | None = None, prefix: str | None = None, tid: int | None = None
) -> list[dict[str, Any]]:
    """Rows whose event equals ``code`` / starts with ``prefix``, optionally of one thread."""
    out = []
    for r in rows(e):
        ev = r["event"]
        if code is not None and ev != code:
            continue
        if prefix is not None and not ev.startswith(prefix):
            continue
        if tid is not None and r["tid"] != tid:
            continue
        out.append(r)
    return out


def codes(e: Engine, tid: int | None = None) -> list[str]:
    """The event codes of the run, in order (of one thread when ``tid`` is given)."""
    return [r["event"] for r in rows(e) if tid is None or r["tid"] == tid]


def vma_name(e: Engine, vid: int) -> str:
    return e.k.mm.vma_names()[vid]


def vid_of(e: Engine, name: str) -> int:
    """The id of the VMA that the scenario created under ``name`` (the first one, freed or not)."""
    names = e.k.mm.vma_names()
    for vid in sorted(names):
        if names[vid] == name:
            return vid
    raise KeyError(name)


def is_freed(k: Any, vid: int) -> bool:
    """Whether VMA ``vid`` has been freed: forgotten by the kernel, or kept with state ``freed``.

    A freed VMA is dropped from ``mm.vmas`` (its name stays in ``mm.freed_names``)
    unless a thread still refers to it or the run keeps freed VMAs.
    """
    v = k.mm.vmas.get(vid)
    return v.state == "freed" if v is not None else vid in k.mm.freed_names


def is_mmap_write_acquire(r: dict[str, Any]) -> bool:
    return r["event"].startswith("down_write:acquired") and r["a"] == 0


def write_sections(e: Engine, tid: int) -> list[dict[str, Any]]:
    """The mmap-write sections of thread ``tid``, in order.

    Each section: ``start``/``end`` step indexes (the acquisition of mmap_lock
    for write and the ``mmap_write_unlock`` / ``mmap_write_downgrade`` that ends
    it), ``how`` (``unlock`` or ``downgrade``), ``locked`` (the VMA ids whose
    ``vma_start_write:seq_set`` happened in between, in order) and ``events``
    (all codes of the thread in between).
    """
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for r in rows(e):
        if r["tid"] != tid:
            continue
        if cur is None:
            if is_mmap_write_acquire(r):
                cur = {"start": r["step"], "locked": [], "events": [], "seqs": []}
            continue
        cur["events"].append(r["event"])
        if r["event"] == "vma_start_write:seq_set":
            cur["locked"].append(r["a"])
            cur["seqs"].append(r["b"])
        if r["event"] in ("mmap_write_unlock", "mmap_write_downgrade"):
            cur["end"] = r["step"]
            cur["how"] = r["event"].split("_")[-1]
            out.append(cur)
            cur = None
    assert cur is None, f"T{tid}: mmap write section never ended"
    return out


def lvur_outcomes(e: Engine, tid: int | None = None) -> list[str]:
    """The outcome of every ``lock_vma_under_rcu`` call, in order.

    ``locked``, ``abort:<reason>``; MISS retries show up as ``miss`` entries
    before the outcome of the same call.
    """
    out = []
    for r in rows(e):
        if tid is not None and r["tid"] != tid:
            continue
        ev = r["event"]
        if ev == "lock_vma_under_rcu:locked":
            out.append("locked")
        elif ev.startswith("lock_vma_under_rcu:abort:"):
            out.append("abort:" + ev.rsplit(":", 1)[1])
        elif ev == "lock_vma_under_rcu:miss_retry":
            out.append("miss")
    return out


def nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


def assert_clean(e: Engine) -> None:
    """No invariant violation was recorded."""
    assert e.k.violations == [], e.k.violations


def at(code: str, tid: int | None = None) -> Callable[[Trace, int], bool]:
    """A ``run_until`` predicate: the row's event is ``code`` (of thread ``tid``)."""

    def pred(t: Trace, i: int) -> bool:
        r = t.row(i)
        return bool(r["event"] == code and (tid is None or r["tid"] == tid))

    return pred


def at_prefix(prefix: str, tid: int | None = None) -> Callable[[Trace, int], bool]:
    """A ``run_until`` predicate: the row's event starts with ``prefix``."""

    def pred(t: Trace, i: int) -> bool:
        r = t.row(i)
        return bool(r["event"].startswith(prefix) and (tid is None or r["tid"] == tid))

    return pred


# ---------------------------------------------------------------------------
# Random valid scenarios (the property tests and ad-hoc fuzzing share one generator)
# ---------------------------------------------------------------------------


class Picker(Protocol):
    """The source of choices of :func:`random_scenario_doc`.

    A hypothesis ``draw`` (see ``tests/test_engine_properties.py``) or a seeded
    :class:`random.Random` (:class:`RandomPicker`) for a quick fuzz of thousands
    of scenarios outside pytest.
    """

    def int(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[Any]) -> Any: ...


class RandomPicker:
    """A :class:`Picker` over :class:`random.Random`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.rng.randrange(len(options))]


#: Fixed addresses of the stack layout: an optional guard VMA, the range the stack
#: grows into (named so that faults can address it once it is unmapped), the stack.
STACK_AT = 0x7FFF_F000_4000
BELOW_AT = 0x7FFF_F000_0000
GUARD_AT = 0x7FFF_EFFF_C000

#: Every op of the schema, with how often the generator picks it.
OP_WEIGHTS = {
    "fault": 6,
    "touch": 3,
    "mmap": 4,
    "munmap": 3,
    "mprotect": 3,
    "mremap": 3,
    "madvise": 3,
    "brk": 1,
    "fork": 1,
    "swap_out": 1,
    "uffd_register": 1,
    "set_anon_name": 1,
    "khugepaged_collapse": 1,
    "signal": 1,
    "mmu_notifier_register": 1,
    "tcp_zerocopy_receive": 1,
    "read_proc_maps": 1,
    "hold_mmap_write": 1,
    "compute": 2,
    "sleep": 1,
    "loop": 1,
}
_KINDS = [k for k, w in OP_WEIGHTS.items() for _ in range(w)]


class _Gen:
    """One random scenario: VMAs, then per thread a skeleton of ops (what each op
    declares), then the ops with references to names that the loader accepts."""

    def __init__(self, p: Picker) -> None:
        self.p = p
        self.bounds: dict[str, int] = {}
        self.initial: list[str] = []
        self.fresh = 0

    def vmas(self) -> list[dict[str, Any]]:
        p = self.p
        out: list[dict[str, Any]] = []
        for i in range(p.int(1, 4)):
            spec: dict[str, Any] = {
                "name": f"V{i}",
                "pages": p.int(1, 8),
                "prot": p.choice(["rw", "rw", "r", "rwx", "none"]),
                "anon_vma": p.choice([False, True]),
            }
            extra = p.int(0, 9)
            if extra == 0:
                spec["file"] = "lib.so"
            elif extra == 1:
                spec["file"] = "tcp"
            elif extra == 2:
                spec["shared"] = True
            elif extra == 3:
                spec["uffd"] = True
            out.append(spec)
        if p.int(0, 2) == 0:
            # A stack with the range below it named, as scenarios/stack-growth.yaml.
            if p.choice([False, True]):
                out.append({"name": "G", "start": hex(GUARD_AT), "pages": 4, "anon_vma": True})
            out.append({"name": "U", "start": hex(BELOW_AT), "pages": 4, "anon_vma": True})
            out.append(
                {
                    "name": "S",
                    "start": hex(STACK_AT),
                    "pages": 8,
                    "anon_vma": p.choice([False, True]),
                    "growsdown": True,
                }
            )
        for v in out:
            self.bounds[v["name"]] = v["pages"]
            self.initial.append(v["name"])
        return out

    # ---- phase 1: what each thread declares, in order
    def skeleton(self, t: int, depth: int = 0, size: int | None = None) -> list[dict[str, Any]]:
        p = self.p
        n = size if size is not None else p.int(1, 6)
        out: list[dict[str, Any]] = []
        for _ in range(n):
            kind = p.choice(_KINDS)
            if kind == "loop" and depth >= 2:
                kind = "compute"
            node: dict[str, Any] = {"kind": kind, "decl": None}
            if kind == "mmap":
                self.fresh += 1
                node["decl"] = (f"M{t}_{self.fresh}", self.big(p.int(1, 6)))
            elif kind == "mremap" and p.int(0, 1):
                self.fresh += 1
                node["decl"] = (f"R{t}_{self.fresh}", self.big(p.int(1, 8)))
            elif kind == "loop":
                node["body"] = self.skeleton(t, depth + 1, p.int(1, 3))
            out.append(node)
        return out

    def declared(self, skel: list[dict[str, Any]]) -> list[str]:
        names = []
        for node in skel:
            if node["decl"]:
                names.append(node["decl"][0])
            names += self.declared(node.get("body", []))
        return names

    def note_bounds(self, skel: list[dict[str, Any]]) -> None:
        for node in skel:
            if node["decl"]:
                name, pages = node["decl"]
                self.bounds[name] = max(self.bounds.get(name, 0), pages)
            self.note_bounds(node.get("body", []))

    # ---- phase 2: the ops
    def page(self, name: str) -> int:
        n = self.bounds[name]
        if n > 64 and self.p.int(0, 1):
            return self.p.int(n - 8, n - 1)  # near the end of a huge bound
        return self.p.int(0, min(n, 64) - 1)

    def page_range(self, name: str) -> str:
        # At most 8 pages: a huge VMA must not make a touch run for ever.
        lo = self.page(name)
        return f"{lo}-{self.p.int(lo, min(self.bounds[name] - 1, lo + 7))}"

    def big(self, small: int) -> int:
        """Mostly ``small``; now and then more pages than the address space holds."""
        return MAX_PAGES if self.p.int(0, 19) == 0 else small

    def ops(self, skel: list[dict[str, Any]], names: list[str]) -> list[Any]:
        out = []
        for node in skel:
            out.append(self.op(node, names))
            if node["decl"]:
                names.append(node["decl"][0])
        return out

    def op(self, node: dict[str, Any], names: list[str]) -> Any:
        p = self.p
        kind = node["kind"]
        v = p.choice(names)
        if kind == "fault" and "U" in names and p.int(0, 2) == 0:
            v = "U"  # below the stack: stack growth
        if kind == "fault":
            return {
                "fault": {
                    "vma": v,
                    "page": self.page(v),
                    "access": p.choice(["read", "write", "write", "exec"]),
                    "user": p.choice([True, True, True, False]),
                }
            }
        if kind == "touch":
            return {
                "touch": {
                    "vma": v,
                    "pages": self.page_range(v),
                    "access": p.choice(["read", "write"]),
                }
            }
        if kind == "mmap":
            name, pages = node["decl"]
            args: dict[str, Any] = {
                "name": name,
                "pages": pages,
                "prot": p.choice(["rw", "rw", "r", "rx", "none"]),
            }
            how = p.int(0, 9)
            if how <= 1:
                args["at"] = {"vma": v, "page": self.page(v)}
                args["fixed"] = how == 0
            elif how == 2:
                args["file"] = p.choice(["lib.so", "tcp"])
            elif how == 3:
                args["shared"] = True
            elif how == 4:
                args["growsdown"] = True
            return {"mmap": args}
        if kind in ("munmap", "swap_out"):
            if p.choice([False, True]):
                return {kind: {"vma": v}}
            return {kind: {"vma": v, "pages": self.page_range(v)}}
        if kind == "mprotect":
            args = {"vma": v, "prot": p.choice(["none", "r", "rw", "rx", "rwx"])}
            if p.choice([False, True]):
                args["pages"] = self.page_range(v)
            return {"mprotect": args}
        if kind == "mremap":
            args = {
                "vma": v,
                "new_pages": self.big(p.int(1, 8)),
                "move": p.choice([False, False, True]),
                # MREMAP_MAYMOVE / MREMAP_DONTUNMAP (a dontunmap with a new size
                # or without a move flag is the syscall's -EINVAL).
                "maymove": p.choice([False, True]),
                "dontunmap": p.choice([False, False, False, True]),
            }
            if node["decl"]:
                # The loader accepts a new name only for a move.
                args["name"], args["new_pages"] = node["decl"]
                args["move"] = True
            return {"mremap": args}
        if kind == "madvise":
            args = {"vma": v, "advice": p.choice(MADVISE_ADVICE)}
            if p.choice([False, True]):
                args["pages"] = self.page_range(v)
            return {"madvise": args}
        if kind == "brk":
            return {"brk": {"pages": p.choice([-1, 1]) * self.big(p.int(0, 6))}}
        if kind in ("fork", "mmu_notifier_register"):
            return kind
        if kind == "uffd_register":
            # A second userfaultfd context now and then: -EBUSY on VMAs the first owns.
            return {kind: {"vma": v, "uffd": p.choice([1, 1, 2])}}
        if kind == "khugepaged_collapse":
            return {kind: {"vma": v}}
        if kind == "set_anon_name":
            args = {"vma": v}
            if p.choice([False, True]):
                args["pages"] = self.page_range(v)
            name = p.choice(["heap", "heap", "jit", None])
            if name is not None:
                args["name"] = name
            return {kind: args}
        if kind == "signal":
            # every generated scenario has a T0; SIGKILL ends the whole process.
            return {kind: {"thread": "T0", "sig": p.choice(["SIGUSR1", "SIGUSR1", "SIGKILL"])}}
        if kind == "tcp_zerocopy_receive":
            return {kind: {"vma": v, "pages": p.int(1, min(self.bounds[v], 40))}}
        if kind == "read_proc_maps":
            return {kind: {"ns_per_vma": p.int(0, 300)}} if p.choice([False, True]) else kind
        if kind == "hold_mmap_write":
            held = sorted({p.choice(names) for _ in range(p.int(0, 2))})
            return {kind: {"ns": p.int(1, 20_000), "vmas": held}}
        if kind == "compute":
            return {"compute": {"ns": p.int(1, 10_000)}}
        if kind == "sleep":
            return {"sleep": {"ns": p.int(1, 30_000)}}
        assert kind == "loop", kind
        return {"loop": {"times": p.int(1, 3), "ops": self.ops(node["body"], names)}}


def random_scenario_doc(
    p: Picker,
    arch: str | None = None,
    patches: dict[str, bool] | None = None,
    threads: int = 5,
    ops: int = 6,
) -> tuple[dict[str, Any], str]:
    """A random scenario that the loader accepts, as data, and the mode to run it in.

    It uses every op of the schema (loops, nested), VMAs named before or after another
    thread maps them (so a name may have no address yet), the new names of mremaps
    that may fail, a stack (``S``, growsdown) with the range below it (``U``) and
    an optional guard VMA, barriers every thread meets in the same order, and
    ``exit`` only as a thread's last op (so that no barrier waits for an exited
    thread).  Patches are ``{all: true}`` unless given; ``threads`` and ``ops``
    bound the number of threads and of top-level ops per thread.
    """
    g = _Gen(p)
    vmas = g.vmas()
    nthreads = p.int(1, threads)
    skels = [g.skeleton(t, size=p.int(1, ops)) for t in range(nthreads)]
    for skel in skels:
        g.note_bounds(skel)
    decls = [g.declared(skel) for skel in skels]
    out = []
    barriers = [f"b{i}" for i in range(p.int(0, 2))]
    for t, skel in enumerate(skels):
        # Names this thread may use: the initial ones, any another thread maps (the
        # threads run concurrently), and its own once mapped (ops() adds those).
        names = g.initial + [n for u, d in enumerate(decls) if u != t for n in d]
        thread_ops = g.ops(skel, names)
        for b in barriers:
            if p.int(0, 2):
                thread_ops.insert(p.int(0, len(thread_ops)), {"barrier": {"name": b}})
        # Barriers in the order b0, b1, ... in every thread: no barrier deadlock.
        order = iter(sorted(op["barrier"]["name"] for op in thread_ops if _is_barrier(op)))
        thread_ops = [
            {"barrier": {"name": next(order)}} if _is_barrier(op) else op for op in thread_ops
        ]
        if "U" in g.initial and p.int(0, 3) == 0:
            thread_ops.insert(0, {"munmap": {"vma": "U"}})  # open the gap the stack grows into
        if p.int(0, 5) == 0:
            thread_ops.append("exit")
        out.append({"name": f"T{t}", "start_ns": p.int(0, 5000), "ops": thread_ops})
    kernel = {
        "cpus": p.int(1, 4),
        "seed": p.int(0, 2**32),
        "arch": arch or p.choice(list(ARCHES)),
        "patches": {"all": True} if patches is None else patches,
    }
    mode = p.choice(["per_vma", "mmap_lock"])
    kernel["per_vma_lock"] = mode == "per_vma"
    doc = {
        "name": "random",
        "description": "random valid scenario",
        "kernel": kernel,
        "mm": {"vmas": vmas},
        "threads": out,
    }
    return doc, mode


def _is_barrier(op: Any) -> bool:
    return isinstance(op, dict) and "barrier" in op


def scenario_from_doc(doc: dict[str, Any]) -> Scenario:
    """Load a generated scenario document through the real loader."""
    return load_scenario_text(yaml.safe_dump(doc, sort_keys=False))
