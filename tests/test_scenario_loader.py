"""Tests of the scenario loader (vmaviz.scenario): valid files, expansion, every error class.

Bad files live in tests/data/scenarios_bad/; each error is checked for its file, its
line (1-based) and its field path, not just its message.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vmaviz.scenario import (
    MAX_STEPS,
    KernelConfig,
    Op,
    Scenario,
    ScenarioError,
    ScenarioErrors,
    count_ops,
    load_scenario,
    load_scenario_text,
    schema,
    validate_main,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BAD = Path(__file__).resolve().parent / "data" / "scenarios_bad"

BUNDLED = sorted(p.name for p in SCENARIOS.glob("*.yaml"))

HEAD = "name: t\ndescription: test\n"


def bad_errors(name: str) -> list[ScenarioError]:
    """Load a file of tests/data/scenarios_bad; return its errors (it must fail)."""
    path = BAD / name
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(path)
    assert all(e.file == str(path) for e in info.value.errors)
    return info.value.errors


def text_errors(text: str, filename: str = "inline.yaml") -> list[ScenarioError]:
    """Load YAML text that must fail; return its errors."""
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, filename)
    assert all(e.file == filename for e in info.value.errors)
    return info.value.errors


def expect(errors: list[ScenarioError], line: int | None, field: str, text: str) -> None:
    """Assert one error has exactly this line and field, and ``text`` in its message."""
    hits = [e for e in errors if e.line == line and e.field == field and text in e.message]
    listing = "\n".join(map(str, errors))
    assert hits, f"no error at line {line}, field {field!r} containing {text!r} in:\n{listing}"


# --- valid files -------------------------------------------------------------------


def test_the_six_teaching_scenarios_are_bundled() -> None:
    assert set(BUNDLED) >= {
        "first-fault-anon-vma.yaml",
        "hold-write-other-vma.yaml",
        "fault-vs-munmap.yaml",
        "file-backed-fault.yaml",
        "swap-retry.yaml",
        "mprotect-vs-fault.yaml",
    }


#: The published workloads (calibration.md §3) and the seed's use cases.
BENCHMARKS = {
    "android-app-launch.yaml",
    "fibers-spawn-burst.yaml",
    "tcp-zerocopy.yaml",
    "spf-test.yaml",
    "fork-stress.yaml",
    "kernbench-neutral.yaml",
    "proc-maps-vs-mapper.yaml",
    "pft-single-vma.yaml",
    "pft-per-thread-vma.yaml",
    "page-fault1-threads.yaml",
}


@pytest.mark.parametrize("filename", BUNDLED)
def test_bundled_scenario_loads(filename: str) -> None:
    path = SCENARIOS / filename
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.description.strip()
    assert sc.question
    assert sc.look_at and all(isinstance(s, str) and s for s in sc.look_at)
    assert sc.threads and all(t.ops for t in sc.threads)
    assert sc.vmas
    assert sc.path == path
    assert sc.source_text == path.read_text(encoding="utf-8")
    # Mechanism scenarios are small enough to step through by hand; the
    # benchmark scenarios (the published workloads) are larger by design.
    if filename not in BENCHMARKS:
        assert sc.op_count() <= 100
    else:
        assert sc.op_count() <= 200_000


def test_bundled_scenarios_pass_validate_main(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(SCENARIOS / name) for name in BUNDLED]
    assert validate_main(paths) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(paths)
    assert all(line.startswith("OK ") and line.endswith(" ops") for line in out)


def test_first_fault_scenario_content() -> None:
    sc = load_scenario(SCENARIOS / "first-fault-anon-vma.yaml")
    (vma,) = sc.vmas
    assert vma.anon_vma is False and vma.file is None
    (thread,) = sc.threads
    assert [(op.kind, op.args["page"], op.args["access"]) for op in thread.ops] == [
        ("fault", 0, "write"),
        ("fault", 1, "write"),
    ]


def test_hold_write_scenario_content() -> None:
    sc = load_scenario(SCENARIOS / "hold-write-other-vma.yaml")
    assert sc.kernel.mode == "per_vma"
    assert [v.name for v in sc.vmas] == ["A", "B"] and all(v.anon_vma for v in sc.vmas)
    t0, t1, t2 = sc.threads
    assert t0.ops[0].kind == "hold_mmap_write"
    assert t0.ops[0].args == {"ns": 50000, "vmas": ["A"]}
    for t in (t1, t2):
        assert t.start_ns == 1000
        assert t.ops[0].args == {"vma": "B", "pages": (0, 15), "access": "write"}


def test_defaults_are_filled_in() -> None:
    sc = load_scenario_text(
        HEAD
        + """
mm:
  vmas:
    - {name: heap, pages: 16}
    - {name: lib, start: "0x7f0000000000", pages: 4, prot: rx, file: libc.so}
    - {name: stack, start: 0x7ffc00000000, pages: 8, growsdown: true}
threads:
  - name: T0
    ops:
      - fault: {vma: heap, page: 3}
      - touch: {vma: heap, pages: 2}
      - munmap: {vma: heap}
      - mmap: {name: m, pages: 2}
      - tcp_zerocopy_receive: {vma: heap}
      - hold_mmap_write: {ns: 10}
      - madvise: {vma: heap, pages: "1 - 3", advice: dontneed}
"""
    )
    assert sc.kernel == KernelConfig(True, "x86", 4, 1, 20000, {})
    assert sc.kernel.mode == "per_vma"
    assert sc.costs == {} and sc.question is None and sc.look_at == []
    heap, lib, stack = sc.vmas
    assert (heap.start, heap.prot, heap.file, heap.anon_vma, heap.line) == (
        None,
        "rw",
        None,
        False,
        6,
    )
    assert heap.end is None
    assert (lib.start, lib.prot, lib.file, lib.end) == (
        0x7F0000000000,
        "rx",
        "libc.so",
        0x7F0000004000,
    )
    assert stack.start == 0x7FFC00000000 and stack.growsdown
    ops = sc.threads[0].ops
    assert ops[0].args == {"vma": "heap", "page": 3, "access": "read", "user": True}
    assert ops[0].line == 12 and ops[0].body is None
    assert ops[1].args == {"vma": "heap", "pages": (2, 2), "access": "write"}
    assert ops[2].args == {"vma": "heap", "pages": None}
    assert ops[3].args == {
        "name": "m",
        "pages": 2,
        "prot": "rw",
        "file": None,
        "fixed": False,
        "at": None,
        "growsdown": False,
        "shared": False,
        "noreserve": False,
        "pgoff": 0,
    }
    assert ops[4].args == {"vma": "heap", "pages": 1}
    assert ops[5].args == {"ns": 10, "vmas": []}
    assert ops[6].args["pages"] == (1, 3)
    assert sc.path is None


def test_kernel_costs_and_text_fields() -> None:
    sc = load_scenario_text(
        """name: k.1_x-y
description: |
  two
  lines
question: "why?"
look_at: ["a", "b"]
kernel: {per_vma_lock: false, arch: arm64, cpus: 256, seed: 0, rcu_grace_ns: 0,
         patches: {fix_fork_lock_parent: true, swap_retry: false}}
costs: {anon_page_alloc: 1100, op_jitter: 0}
threads:
  - {name: T0, ops: [exit]}
"""
    )
    assert sc.name == "k.1_x-y" and sc.description == "two\nlines\n"
    assert sc.question == "why?" and sc.look_at == ["a", "b"]
    patches = {"fix_fork_lock_parent": True, "swap_retry": False}
    assert sc.kernel == KernelConfig(False, "arm64", 256, 0, 0, patches)
    assert sc.kernel.mode == "mmap_lock"
    assert sc.costs == {"anon_page_alloc": 1100, "op_jitter": 0}
    assert sc.vmas == []


def test_bare_ops_and_empty_fields() -> None:
    sc = load_scenario_text(
        HEAD
        + """threads:
  - name: T0
    ops:
      - fork
      - fork: {}
      - fork:
      - mmu_notifier_register
      - read_proc_maps
      - read_proc_maps: {ns_per_vma: 500}
      - exit
"""
    )
    ops = sc.threads[0].ops
    assert [op.kind for op in ops] == [
        "fork",
        "fork",
        "fork",
        "mmu_notifier_register",
        "read_proc_maps",
        "read_proc_maps",
        "exit",
    ]
    assert [op.args for op in ops[:4]] == [{}, {}, {}, {}]
    assert ops[4].args == {"ns_per_vma": None} and ops[5].args == {"ns_per_vma": 500}


def test_count_expansion_substitutes_index() -> None:
    sc = load_scenario_text(
        HEAD
        + """mm:
  vmas:
    - {name: heap, pages: 8}
threads:
  - name: T${i}
    count: 3
    start_ns: "${i}000"
    ops:
      - mmap: {name: "buf${i}", pages: 4}
      - fault: {vma: heap, page: "${i}"}
      - touch: {vma: "buf${i}", pages: "${i}-3"}
      - barrier: {name: "b${i}"}
      - loop: {times: "${i}1", ops: [{fault: {vma: heap, page: 7}}]}
      - fault: {vma: heap, page: 7}
  - name: main
    ops:
      - fault: {vma: buf2, page: 3}
"""
    )
    names = [t.name for t in sc.threads]
    assert names == ["T0", "T1", "T2", "main"]
    assert [t.start_ns for t in sc.threads] == [0, 1000, 2000, 0]
    for i, t in enumerate(sc.threads[:3]):
        assert t.line == 7
        mmap, fault, touch, barrier, loop, _plain = t.ops
        assert mmap.args["name"] == f"buf{i}"
        assert fault.args["page"] == i
        assert touch.args == {"vma": f"buf{i}", "pages": (i, 3), "access": "write"}
        assert barrier.args == {"name": f"b{i}"}
        assert loop.args == {"times": int(f"{i}1")}
        assert count_ops(t.ops) == 5 + int(f"{i}1")
    # Ops without ${i} are shared between the copies, not copied.
    assert sc.threads[0].ops[5] is sc.threads[2].ops[5]
    assert sc.threads[0].ops[1] is not sc.threads[1].ops[1]


def test_count_without_template_variable_needs_unique_names() -> None:
    errors = text_errors(HEAD + "threads:\n  - name: W\n    count: 2\n    ops: [exit]\n")
    expect(errors, 4, "threads[0].name", "duplicate thread name 'W' (first on line 4)")
    expect(errors, 4, "threads[0].name", "add ${i}")


def test_loop_counting() -> None:
    sc = load_scenario_text(
        HEAD
        + """mm:
  vmas: [{name: heap, pages: 4}]
threads:
  - name: T0
    ops:
      - compute: {ns: 5}
      - loop:
          times: 1000
          ops:
            - fault: {vma: heap, page: 0}
            - loop:
                times: 1000
                ops: [{fault: {vma: heap, page: 1}}, {sleep: {ns: 1}}]
  - name: T${i}x
    count: 2
    ops:
      - loop: {times: 3, ops: [exit]}
"""
    )
    t0 = sc.threads[0]
    compute, loop = t0.ops
    assert compute.count() == 1
    assert loop.kind == "loop" and loop.args == {"times": 1000}
    assert loop.body is not None and len(loop.body) == 2
    inner = loop.body[1]
    assert inner.body is not None and inner.args == {"times": 1000}
    assert loop.count() == 1000 * (1 + 1000 * 2)
    assert count_ops(t0.ops) == 1 + 1000 * (1 + 2000)
    assert sc.op_count() == count_ops(t0.ops) + 2 * 3


def test_loop_depth_limit() -> None:
    def nested(depth: int) -> str:
        ops = "[exit]"
        for _ in range(depth):
            ops = "[{loop: {times: 2, ops: " + ops + "}}]"
        return HEAD + "threads:\n  - name: T0\n    ops: " + ops + "\n"

    sc = load_scenario_text(nested(schema.MAX_LOOP_DEPTH))
    assert sc.op_count() == 2**schema.MAX_LOOP_DEPTH
    errors = text_errors(nested(schema.MAX_LOOP_DEPTH + 1))
    assert len(errors) == 1
    assert errors[0].line == 5
    assert errors[0].field == "threads[0].ops" + "[0].loop.ops" * (schema.MAX_LOOP_DEPTH + 1)
    assert "MAX_LOOP_DEPTH" in errors[0].message


def test_vma_names_are_global_labels() -> None:
    sc = load_scenario_text(
        HEAD
        + """threads:
  - name: T0
    ops:
      - barrier: {name: mapped}
      - fault: {vma: shared, page: 1}
      - mremap: {vma: shared, new_pages: 8, move: true, name: moved}
      - fault: {vma: moved, page: 7}
  - name: T1
    ops:
      - mmap: {name: shared, pages: 2}
      - barrier: {name: mapped}
      - mremap: {vma: shared, new_pages: 4}
      - fault: {vma: shared, page: 3}
      - munmap: {vma: shared}
      - mmap: {name: shared, pages: 1, fixed: true, at: {vma: moved, page: 0}}
"""
    )
    assert [op.kind for op in sc.threads[1].ops][-1] == "mmap"


def test_yaml_anchors_and_merge_keys() -> None:
    sc = load_scenario_text(
        HEAD
        + """mm:
  vmas:
    - &base {name: a, pages: 4, prot: r}
    - {<<: *base, name: b}
threads:
  - name: T0
    ops: &ops
      - fault: {vma: a, page: 0}
  - name: T1
    ops: *ops
"""
    )
    assert [(v.name, v.pages, v.prot) for v in sc.vmas] == [("a", 4, "r"), ("b", 4, "r")]
    assert sc.threads[1].ops[0].args["vma"] == "a"


def test_bytes_and_bom_are_accepted() -> None:
    text = HEAD + "threads: [{name: T0, ops: [exit]}]\n"
    sc = load_scenario_text(("\ufeff" + text).encode("utf-8"))
    assert sc.threads[0].name == "T0"


# --- canonical form and overrides ----------------------------------------------------


def test_canonical_is_stable_json() -> None:
    path = SCENARIOS / "mprotect-vs-fault.yaml"
    a, b = load_scenario(path), load_scenario(path)
    assert a.canonical() == b.canonical()
    data = json.loads(a.canonical())
    assert data["name"] == "mprotect-vs-fault"
    assert data["kernel"]["mode"] == "per_vma"
    assert data["threads"][0]["ops"][0]["kind"] == "loop"
    assert data["threads"][0]["ops"][0]["body"][1]["args"]["prot"] == "rx"
    assert "source_text" not in data and "path" not in data
    # Same content from text (no path) gives the same key.
    assert load_scenario_text(path.read_text()).canonical() == a.canonical()


def test_canonical_changes_with_content_and_overrides() -> None:
    text = HEAD + "threads: [{name: T0, ops: [exit]}]\n"
    base = load_scenario_text(text)
    assert load_scenario_text(text.replace("T0", "T1")).canonical() != base.canonical()
    assert base.with_overrides(seed=2).canonical() != base.canonical()


def test_with_overrides() -> None:
    sc = load_scenario(SCENARIOS / "hold-write-other-vma.yaml")
    other = sc.with_overrides(mode="mmap_lock", arch="s390", cpus=8, seed=7)
    assert other.kernel.mode == "mmap_lock" and other.kernel.per_vma_lock is False
    assert (other.kernel.arch, other.kernel.cpus, other.kernel.seed) == ("s390", 8, 7)
    assert other.overrides == {"mode": "mmap_lock", "arch": "s390", "cpus": 8, "seed": 7}
    assert other.threads is sc.threads and other.source_text == sc.source_text
    assert sc.kernel.mode == "per_vma" and sc.overrides == {}  # the original is unchanged
    assert other.with_overrides(per_vma_lock=True).kernel.mode == "per_vma"
    patched = sc.with_overrides(rcu_grace_ns=5, patches={"swap_retry": False})
    assert patched.kernel.patches == {"swap_retry": False}


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"mode": "fast"}, "mode must be one of"),
        ({"arch": "mips"}, "arch must be one of"),
        ({"cpus": 0}, "cpus must be an integer in 1..256"),
        ({"cpus": True}, "cpus must be an integer"),
        ({"seed": -1}, "seed must be an integer"),
        ({"per_vma_lock": 1}, "per_vma_lock must be a bool"),
        ({"patches": {"x": 1}}, "patches must map"),
        ({"colour": "red"}, "unknown kernel setting 'colour'"),
    ],
)
def test_with_overrides_rejects_bad_values(fields: dict[str, object], text: str) -> None:
    sc = load_scenario_text(HEAD + "threads: [{name: T0, ops: [exit]}]\n")
    with pytest.raises(ValueError, match=text):
        sc.with_overrides(**fields)


def test_limits_are_exported() -> None:
    assert MAX_STEPS == 50_000_000
    assert schema.MAX_FILE_BYTES == 1 << 20
    assert schema.MAX_THREADS == 1024
    assert schema.MAX_TOTAL_OPS == 5_000_000
    assert schema.MAX_OP_ENTRIES == 100_000
    assert schema.MAX_VMAS == 10_000
    assert isinstance(load_scenario(SCENARIOS / BUNDLED[0]), Scenario)
    assert Op("exit", {}, 1).count() == 1


# --- error reporting ------------------------------------------------------------------


def test_error_strings() -> None:
    e = ScenarioError("scenarios/x.yaml", 12, "threads[0].ops[3].fault.page", "too big")
    assert str(e) == "scenarios/x.yaml:12: threads[0].ops[3].fault.page: too big"
    assert str(ScenarioError("x.yaml", None, "", "empty")) == "x.yaml: empty"
    assert str(ScenarioError("x.yaml", 3, "", "bad")) == "x.yaml:3: bad"
    many = ScenarioErrors([e, ScenarioError("x.yaml", None, "", "empty")])
    assert str(many) == str(e) + "\nx.yaml: empty"
    assert len(many) == 2 and isinstance(many, ValueError)


def test_bad_page_message_format() -> None:
    errors = bad_errors("bad_page.yaml")
    page = next(e for e in errors if e.line == 10)
    assert str(page) == (
        f"{BAD / 'bad_page.yaml'}:10: threads[0].ops[1].fault.page:"
        " page 20 is beyond vma 'heap' (16 pages)"
    )


def test_malformed_yaml() -> None:
    errors = bad_errors("malformed.yaml")
    assert len(errors) == 1
    expect(errors, 6, "", "invalid YAML")
    assert "Traceback" not in str(errors[0]) and "<unicode string>" not in str(errors[0])


def test_malformed_yaml_inline() -> None:
    errors = text_errors("name: x\ndescription: [unclosed\nthreads: []\n")
    assert len(errors) == 1 and errors[0].line is not None and errors[0].line >= 2
    assert errors[0].message.startswith("invalid YAML:")
    errors = text_errors("name: x\n\tdescription: tab\n")
    assert len(errors) == 1 and errors[0].line == 2
    errors = text_errors("a: \x01\n")
    assert len(errors) == 1 and errors[0].line == 1 and "control characters" in errors[0].message


def test_unquoted_template_in_flow_mapping_gets_a_hint() -> None:
    errors = text_errors(HEAD + "threads:\n  - {name: T${i}, count: 2, ops: [exit]}\n")
    assert len(errors) == 1
    expect(errors, 4, "", 'quote text with ${i}: "T${i}"')


def test_multiple_documents() -> None:
    errors = text_errors(HEAD + "threads: []\n---\nname: other\n")
    assert len(errors) == 1
    expect(errors, 4, "", "expected a single document")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(text: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(path)
    (error,) = info.value.errors
    assert (error.file, error.line, error.field) == (str(path), None, "")
    assert "empty scenario file" in error.message


@pytest.mark.parametrize(
    ("text", "got"),
    [("- a\n- b\n", "a list"), ("just text\n", "string 'just text'"), ("42\n", "integer 42")],
)
def test_top_level_must_be_a_mapping(text: str, got: str) -> None:
    errors = text_errors(text)
    assert len(errors) == 1
    expect(
        errors,
        1,
        "",
        f"expected a mapping at the top level (name, description, mm, threads, ...), got {got}",
    )


def test_unknown_op() -> None:
    errors = bad_errors("unknown_op.yaml")
    assert len(errors) == 1
    expect(errors, 10, "threads[0].ops[1]", "unknown op 'faultt' (did you mean 'fault'?)")


def test_unknown_fields_at_every_level() -> None:
    errors = bad_errors("unknown_field.yaml")
    assert len(errors) == 5
    expect(errors, 3, "colour", "unknown key 'colour'")
    expect(errors, 6, "kernel.smp", "unknown key 'smp'")
    expect(errors, 9, "mm.vmas[0].writable", "unknown key 'writable'")
    expect(
        errors, 12, "threads[0].arch", "unknown key 'arch' (allowed: name, count, start_ns, ops)"
    )
    expect(errors, 14, "threads[0].ops[0].fault.count", "unknown key 'count'")


def test_bad_pages_and_ranges() -> None:
    errors = bad_errors("bad_page.yaml")
    assert len(errors) == 7  # page 15 on line 9 is fine
    expect(errors, 10, "threads[0].ops[1].fault.page", "page 20 is beyond vma 'heap' (16 pages)")
    expect(
        errors, 11, "threads[0].ops[2].touch.pages", "pages 8-16 go beyond vma 'heap' (16 pages)"
    )
    expect(errors, 12, "threads[0].ops[3].munmap.pages", "range '3-1' is reversed")
    expect(errors, 13, "threads[0].ops[4].mmap.at.page", "page 99 is beyond vma 'heap'")
    expect(errors, 14, "threads[0].ops[5].fault.page", "page 4 is beyond vma 'buf' (4 pages)")
    expect(errors, 15, "threads[0].ops[6].touch.pages", "expected a page range like '0-15'")
    expect(errors, 16, "threads[0].ops[7].tcp_zerocopy_receive.pages", "5 pages is more than")


def test_bad_addresses_and_overlaps() -> None:
    errors = bad_errors("overlap.yaml")
    assert len(errors) == 5
    expect(errors, 6, "mm.vmas[1].start", "vma 'b' [0x1000f000, 0x10011000) overlaps vma 'a'")
    expect(errors, 6, "mm.vmas[1].start", "(line 5)")
    expect(errors, 8, "mm.vmas[3].start", "not page-aligned")
    expect(errors, 9, "mm.vmas[4].start", "below mmap_min_addr 0x10000")
    expect(errors, 10, "mm.vmas[5].start", "beyond the user address space")
    expect(
        errors, 11, "mm.vmas[6].start", "ends beyond the user address space limit 0x7ffffffff000"
    )


def test_overlap_with_a_wide_earlier_vma() -> None:
    # c overlaps a, though b (between them by start) does not reach c.
    errors = text_errors(
        HEAD
        + """mm:
  vmas:
    - {name: a, start: 0x100000, pages: 100}
    - {name: b, start: 0x101000, pages: 1}
    - {name: c, start: 0x110000, pages: 1}
threads: [{name: T0, ops: [exit]}]
"""
    )
    assert len(errors) == 2
    expect(errors, 6, "mm.vmas[1].start", "overlaps vma 'a'")
    expect(errors, 7, "mm.vmas[2].start", "vma 'c' [0x110000, 0x111000) overlaps vma 'a'")


def test_absurd_sizes() -> None:
    errors = bad_errors("absurd_sizes.yaml")
    expect(errors, 4, "kernel.cpus", "100000 is above the limit 256 (MAX_CPUS)")
    expect(errors, 5, "kernel.rcu_grace_ns", "above the limit 10000000000 (MAX_RCU_GRACE_NS")
    expect(errors, 8, "mm.vmas[0].pages", "1099511627776 is above the limit 68719476736 (MAX_PAGES")
    expect(errors, 12, "threads[0].count", "5000 is above the limit 1024 (MAX_THREADS)")
    expect(
        errors, 14, "threads[0].ops[0].loop.times", "is above the limit 1000000 (MAX_LOOP_TIMES)"
    )
    expect(errors, 15, "threads[0].ops[1].compute.ns", "0 is below the minimum 1")
    assert len(errors) == 6


def test_total_ops_limit() -> None:
    errors = bad_errors("ops_limit.yaml")
    assert len(errors) == 1
    expect(errors, 7, "threads", "8000000 ops after expanding loops and counts")
    expect(errors, 7, "threads", "above the limit 5000000 (MAX_TOTAL_OPS")


def test_total_ops_limit_counts_nested_loops_without_unrolling() -> None:
    # 10**6 ** 3 ops would never fit in memory: the count must be arithmetic.
    loop = "{loop: {times: 1000000, ops: [exit]}}"
    for _ in range(2):
        loop = "{loop: {times: 1000000, ops: [" + loop + "]}}"
    errors = text_errors(HEAD + "threads:\n  - name: T0\n    ops: [" + loop + "]\n")
    assert len(errors) == 1
    expect(errors, 4, "threads", f"{10**18} ops after expanding")


def test_thread_limit() -> None:
    errors = text_errors(
        HEAD
        + "threads:\n  - {name: 'T${i}', count: 1024, ops: [exit]}\n  - {name: main, ops: [exit]}\n"
    )
    assert len(errors) == 1
    expect(
        errors,
        4,
        "threads",
        "1025 threads after count expansion, above the limit 1024 (MAX_THREADS)",
    )


def test_op_entries_limit() -> None:
    ops = ",".join(["exit"] * (schema.MAX_OP_ENTRIES + 1))
    errors = text_errors(HEAD + "threads:\n  - name: T0\n    ops: [" + ops + "]\n")
    assert len(errors) == 1
    expect(errors, 5, f"threads[0].ops[{schema.MAX_OP_ENTRIES}]", "MAX_OP_ENTRIES")


def test_expanded_op_entries_limit() -> None:
    ops = "\n".join("      - exit" for _ in range(200))
    errors = text_errors(
        HEAD + "threads:\n  - name: T${i}\n    count: 1024\n    ops:\n" + ops + "\n"
    )
    assert len(errors) == 1
    expect(errors, 4, "threads", "204800 op entries after count expansion")
    assert "MAX_EXPANDED_OP_ENTRIES" in errors[0].message


def test_vma_count_limit() -> None:
    vmas = ",".join(f"{{name: v{i}, pages: 1}}" for i in range(schema.MAX_VMAS + 1))
    errors = text_errors(HEAD + "mm:\n  vmas: [" + vmas + "]\nthreads: [{name: T0, ops: [exit]}]\n")
    assert len(errors) == 1
    expect(errors, 4, "mm.vmas", "10001 VMAs, above the limit 10000 (MAX_VMAS)")


def test_file_size_limit(tmp_path: Path) -> None:
    big = HEAD + "threads: [{name: T0, ops: [exit]}]\n" + "# padding\n" * (2 * 1024 * 1024 // 10)
    assert len(big) > 2 * 1024 * 1024 - 100
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(path)
    (error,) = info.value.errors
    assert (error.file, error.line, error.field) == (str(path), None, "")
    assert f"file is {len(big)} bytes, above the limit 1048576 (MAX_FILE_BYTES" in error.message
    errors = text_errors(big, "<upload>")
    assert len(errors) == 1 and "MAX_FILE_BYTES" in errors[0].message
    errors = text_errors("é" * (schema.MAX_FILE_BYTES // 2 + 1))  # 2 bytes per character
    assert len(errors) == 1 and "MAX_FILE_BYTES" in errors[0].message


def test_duplicate_keys() -> None:
    errors = bad_errors("duplicate_keys.yaml")
    assert len(errors) == 3
    expect(errors, 7, "mm.vmas[0].pages", "duplicate key 'pages' (first given on line 6)")
    expect(errors, 11, "threads[0].ops[0].fault.page", "duplicate key 'page'")
    expect(errors, 12, "name", "duplicate key 'name' (first given on line 1)")


def test_missing_required_fields() -> None:
    errors = bad_errors("missing_required.yaml")
    expect(errors, 1, "name", "missing required field 'name'")
    expect(errors, 4, "mm.vmas[0].name", "missing required field 'name'")
    expect(errors, 5, "mm.vmas[1].pages", "missing required field 'pages'")
    expect(errors, 9, "threads[0].ops[0].fault.page", "missing required field 'page'")
    expect(errors, 10, "threads[0].ops[1].mprotect.prot", "missing required field 'prot'")
    expect(errors, 11, "threads[0].ops[2].fault.vma", "missing required field 'vma'")
    expect(errors, 12, "threads[1].name", "missing required field 'name'")
    # 'heap' is declared (with an error), so the faults on it are not also "unknown".
    assert not any("unknown vma" in e.message for e in errors)
    assert len(errors) == 8


def test_missing_description_and_threads() -> None:
    errors = text_errors("name: x\n")
    assert len(errors) == 2
    expect(errors, 1, "description", "missing required field 'description'")
    expect(errors, 1, "threads", "missing required field 'threads'")
    errors = text_errors(HEAD + "threads: []\n")
    expect(errors, 3, "threads", "needs at least one thread")
    errors = text_errors(HEAD + "threads: [{name: T0}]\n")
    expect(errors, 3, "threads[0].ops", "missing required field 'ops'")


def test_wrong_types() -> None:
    errors = bad_errors("wrong_types.yaml")
    expect(errors, 3, "look_at", "expected a list of strings, got string 'not a list'")
    expect(errors, 5, "kernel.per_vma_lock", "expected true or false, got string 'yes please'")
    expect(errors, 6, "kernel.cpus", "expected an integer, got string '4'")
    expect(errors, 7, "kernel.seed", "-1 is below the minimum 0")
    # Names outside the model's tables are refused before their values are looked at
    # (test_unknown_cost_and_patch_names checks the values of known names).
    expect(errors, 8, "kernel.patches.fast_path", "unknown patch 'fast_path'")
    expect(errors, 10, "costs.fault_handle_anon", "unknown cost 'fault_handle_anon'")
    expect(errors, 13, "mm.vmas[0].pages", "expected an integer, got string 'sixteen'")
    expect(errors, 13, "mm.vmas[0].prot", "got 'rwz' (did you mean 'rw'?)")
    expect(errors, 13, "mm.vmas[0].shared", "expected true or false, got integer 1")
    expect(errors, 14, "mm.vmas[1].name", "'9lives' is not a valid name")
    expect(errors, 17, "threads[0].start_ns", "expected an integer, got string 'soon'")
    expect(errors, 19, "threads[0].ops[0].fault.page", "expected an integer, got string '0'")
    expect(errors, 19, "threads[0].ops[0].fault.access", "expected one of read, write, exec")
    expect(errors, 19, "threads[0].ops[0].fault.user", "expected true or false")
    expect(errors, 20, "threads[0].ops[1].compute.ns", "expected an integer, got a list")
    expect(errors, 21, "threads[0].ops[2].loop.ops", "expected a list of ops, got a mapping")
    expect(errors, 22, "threads[0].ops[3].fault", "the fields of 'fault' must be a mapping")
    expect(errors, 23, "threads[0].ops[4]", "expected an op (a name or a one-key mapping)")
    assert len(errors) == 18


def test_bool_is_not_an_int() -> None:
    errors = text_errors(HEAD + "kernel: {cpus: true}\nthreads: [{name: T0, ops: [exit]}]\n")
    expect(errors, 3, "kernel.cpus", "expected an integer, got boolean true")


def test_unknown_vma_names() -> None:
    errors = bad_errors("unknown_vma.yaml")
    assert len(errors) == 3
    expect(errors, 9, "threads[0].ops[0].fault.vma", "unknown vma 'haep' (did you mean 'heap'?)")
    expect(errors, 10, "threads[0].ops[1].hold_mmap_write.vmas[1]", "unknown vma 'stack'")
    expect(
        errors, 11, "threads[0].ops[2].fault.vma", "used before the mmap that declares it (line 12)"
    )


def test_template_errors() -> None:
    errors = bad_errors("templates.yaml")
    assert len(errors) == 5
    expect(
        errors,
        10,
        "threads[0].ops[0].fault.page",
        "page 4 is beyond vma 'heap' (4 pages) (in thread T4)",
    )
    expect(
        errors,
        10,
        "threads[0].ops[0].fault.page",
        "page 5 is beyond vma 'heap' (4 pages) (in thread T5)",
    )
    expect(errors, 11, "threads[0].ops[1].fault.vma", "the only template variable is ${i}")
    expect(errors, 14, "threads[1].ops[0].fault.vma", "only expanded in threads with a count")
    expect(errors, 15, "threads[2].name", "duplicate thread name 'W'")


def test_template_value_that_does_not_parse() -> None:
    errors = text_errors(
        HEAD
        + "mm: {vmas: [{name: heap, pages: 4}]}\n"
        + "threads:\n  - name: T${i}\n    count: 2\n    ops:\n"
        + '      - fault: {vma: heap, page: "x${i}"}\n'
        + '      - touch: {vma: heap, pages: "${i}-0"}\n'
    )
    expect(
        errors,
        8,
        "threads[0].ops[0].fault.page",
        "expected an integer, got string 'x0' (in thread T0)",
    )
    expect(errors, 9, "threads[0].ops[1].touch.pages", "range '1-0' is reversed")
    assert not any("range '0-0'" in e.message for e in errors)


def test_template_variable_outside_threads() -> None:
    errors = text_errors(
        HEAD + "mm: {vmas: [{name: 'v${i}', pages: 1}]}\nthreads: [{name: T0, ops: [exit]}]\n"
    )
    expect(errors, 3, "mm.vmas[0].name", "only expanded in threads with a count")


def test_op_shape_errors() -> None:
    errors = text_errors(
        HEAD
        + """mm: {vmas: [{name: heap, pages: 4}]}
threads:
  - name: T0
    ops:
      - fault:
        vma: heap
      - mremap: {vma: heap, new_pages: 2, name: moved}
      - mmap: {name: m, pages: 1, fixed: true}
      - madvise: {vma: heap, advice: hugepages}
"""
    )
    assert len(errors) == 4
    expect(errors, 7, "threads[0].ops[0]", "got keys fault, vma (indent the fields under 'fault:')")
    expect(errors, 9, "threads[0].ops[1].mremap.name", "only makes sense with move: true")
    expect(errors, 10, "threads[0].ops[2].mmap.at", "fixed: true needs 'at'")
    expect(errors, 11, "threads[0].ops[3].madvise.advice", "(did you mean 'hugepage'?)")


def test_bad_names() -> None:
    errors = text_errors(
        "name: Has Spaces\ndescription: x\nmm: {vmas: [{name: '[heap]', pages: 1}]}\n"
        "threads: [{name: 'my thread', ops: [exit]}]\n"
    )
    assert len(errors) == 3
    expect(errors, 1, "name", "'Has Spaces' is not a valid scenario name")
    expect(errors, 3, "mm.vmas[0].name", "'[heap]' is not a valid name")
    expect(errors, 4, "threads[0].name", "'my thread' is not a valid name")


def test_recursive_alias_and_unsupported_tags() -> None:
    errors = text_errors(
        HEAD + "threads:\n  - name: T0\n    ops: &x [{loop: {times: 1, ops: *x}}]\n"
    )
    expect(errors, 5, "threads[0].ops[0].loop.ops", "recursive YAML alias")
    errors = text_errors(HEAD + "question: !!python/object/apply:os.system ['true']\nthreads: []\n")
    assert errors[0].line == 3 and "unsupported YAML tag" in errors[0].message
    errors = text_errors(HEAD + "question: !!binary aGk=\nthreads: [{name: T0, ops: [exit]}]\n")
    expect(errors, 3, "question", "unsupported YAML value")


def test_alias_bomb_is_refused_quickly() -> None:
    # Each level multiplies by 10: 10**7 op entries if expanded naively.
    exits = ", ".join(["exit"] * 10)
    lines = [f"      - &a0 {{loop: {{times: 1, ops: [{exits}]}}}}"]
    for n in range(1, 7):
        refs = ", ".join([f"*a{n - 1}"] * 10)
        lines.append(f"      - &a{n} {{loop: {{times: 1, ops: [{refs}]}}}}")
    errors = text_errors(HEAD + "threads:\n  - name: T0\n    ops:\n" + "\n".join(lines) + "\n")
    assert len(errors) == 1 and "MAX_OP_ENTRIES" in errors[0].message


def test_not_utf8() -> None:
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(b"name: x\ndescription: \xff\n", "up.yaml")
    (error,) = info.value.errors
    assert (error.line, error.field) == (2, "") and "not UTF-8" in error.message


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(missing)
    (error,) = info.value.errors
    assert (error.file, error.line) == (str(missing), None) and "cannot read" in error.message
    with pytest.raises(ScenarioErrors, match="cannot read"):
        load_scenario(tmp_path)


def test_errors_are_sorted_and_capped() -> None:
    ops = "\n".join(f"      - nop{i}" for i in range(150))
    errors = text_errors(HEAD + "threads:\n  - name: T0\n    ops:\n" + ops + "\nbogus: 1\n")
    assert len(errors) == schema.MAX_ERRORS + 1
    lines = [e.line for e in errors[:-1]]
    assert lines == sorted(lines) and lines[0] == 6
    assert errors[-1].line is None and "more errors" in errors[-1].message


def test_all_errors_are_collected_in_one_pass() -> None:
    errors = text_errors(
        "name: BAD\ndescription: ''\nkernel: {cpus: 0}\nmm: {vmas: [{name: a, pages: 0}]}\n"
        "threads: [{name: T0, ops: [{fault: {vma: b, page: 0}}]}]\n"
    )
    assert [(e.line, e.field) for e in errors] == [
        (1, "name"),
        (2, "description"),
        (3, "kernel.cpus"),
        (4, "mm.vmas[0].pages"),
        (5, "threads[0].ops[0].fault.vma"),
    ]


def test_validate_main_reports_errors(capsys: pytest.CaptureFixture[str]) -> None:
    good = str(SCENARIOS / "swap-retry.yaml")
    bad = str(BAD / "unknown_op.yaml")
    assert validate_main([good, bad]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"OK {good}: 2 threads, 7 ops\n"
    assert (
        captured.err
        == f"{bad}:10: threads[0].ops[1]: unknown op 'faultt' (did you mean 'fault'?)\n"
    )
    assert validate_main([]) == 1


# --- hostile input (issue 11): crashes found by fuzzing, each a schema error now ---------

VMA4 = HEAD + "mm: {vmas: [{name: heap, pages: 4}]}\n"
EXIT = "threads: [{name: T0, ops: [exit]}]\n"


def one_error(text: str) -> ScenarioError:
    """Load ``text``; it must fail with exactly one error, which is returned."""
    errors = text_errors(text)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def op_file(op: str, thread: str = "name: T0") -> str:
    """A file with VMA ``heap`` (4 pages) and one thread doing ``op``."""
    return VMA4 + f"threads: [{{{thread}, ops: [{op}]}}]\n"


def test_empty_op_mapping_is_an_error_not_an_index_error() -> None:
    error = one_error(op_file("{}"))
    assert (error.line, error.field) == (4, "threads[0].ops[0]")
    assert "got an empty mapping" in error.message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("!!int abc", "'abc' is not a valid !!int value"),
        ("!!int ''", "'' is not a valid !!int value"),
        ("!!bool maybe", "'maybe' is not a valid !!bool value"),
        ("!!bool ''", "'' is not a valid !!bool value"),
        ("!!float x", "'x' is not a valid !!float value"),
        ("!!null x", "unsupported YAML value 'x'"),
    ],
)
def test_invalid_explicit_tags(value: str, text: str) -> None:
    error = one_error(HEAD + f"kernel: {{per_vma_lock: {value}}}\n" + EXIT)
    assert (error.line, error.field) == (3, "kernel.per_vma_lock") and text in error.message


def test_values_bad_while_parsing_are_never_used_as_valid() -> None:
    # Each was reported while the YAML was converted, then used anyway: a TypeError
    # in the overlap sort, VmaSpec.end, the size sum or the sorting of names.
    pages = "mm: {vmas: [{name: a, start: 0x100000, pages: !!int abc},"
    pages += " {name: b, start: 0x100000, pages: 1}]}\n"
    error = one_error(HEAD + pages + EXIT)
    assert (error.line, error.field) == (3, "mm.vmas[0].pages")
    start = one_error(HEAD + "mm: {vmas: [{name: a, start: !!int x, pages: 1}]}\n" + EXIT)
    assert start.field == "mm.vmas[0].start"
    names = HEAD + "mm: {vmas: [{name: !!int x, pages: 1}, {name: b, pages: 1}]}\n"
    errors = text_errors(names + "threads: [{name: T0, ops: [{fault: {vma: c, page: 0}}]}]\n")
    assert [e.field for e in errors] == ["mm.vmas[0].name", "threads[0].ops[0].fault.vma"]
    patches = HEAD + "kernel: {patches: {swap_retry: !!bool maybe}}\n" + EXIT
    assert one_error(patches).field == "kernel.patches.swap_retry"
    page = one_error(op_file("{fault: {vma: heap, page: !!int x}}"))
    assert page.field == "threads[0].ops[0].fault.page"


def test_numbers_past_python_digit_limit_get_our_message() -> None:
    digits = "1" * 5000
    rng = one_error(op_file(f"{{touch: {{vma: heap, pages: '0-{digits}'}}}}"))
    assert rng.field == "threads[0].ops[0].touch.pages"
    limit = f"above the limit {2**36 - 1} (MAX_PAGES - 1)"
    assert rng.message == f"page number of 5000 digits is {limit}"
    for literal in (digits, "0x" + "f" * 5000, "-" + digits):
        error = one_error(op_file(f"{{fault: {{vma: heap, page: {literal}}}}}"))
        assert error.field == "threads[0].ops[0].fault.page"
        assert f"integer literal of {len(literal)} characters" in error.message
        assert "limit 64 (MAX_INT_CHARS)" in error.message
    start = f"mm: {{vmas: [{{name: a, start: '0x{'f' * 5000}', pages: 1}}]}}\n"
    addr = one_error(HEAD + start + EXIT)
    assert addr.field == "mm.vmas[0].start" and "MAX_INT_CHARS" in addr.message


def test_long_names_and_template_values_are_limited() -> None:
    long = "a" * (schema.MAX_NAME_CHARS + 1)
    error = one_error(HEAD + f"mm: {{vmas: [{{name: {long}, pages: 1}}]}}\n" + EXIT)
    assert error.field == "mm.vmas[0].name"
    assert "129 characters, longer than the limit 128 (MAX_NAME_CHARS)" in error.message
    assert len(error.message) < 200  # the name itself is shortened
    page = "'${i}" + " " * schema.MAX_NAME_CHARS + "'"
    op = f"{{fault: {{vma: heap, page: {page}}}}}"
    error = one_error(op_file(op, "name: 'T${i}', count: 2"))
    assert error.field == "threads[0].ops[0].fault.page" and "MAX_NAME_CHARS" in error.message


def test_lone_surrogate_and_bad_paths() -> None:
    error = one_error(HEAD + "question: a\ud800b\n" + EXIT)
    assert error.line == 3 and "lone surrogate" in error.message
    with pytest.raises(ScenarioErrors, match="cannot read the file"):
        load_scenario("bad\0name.yaml")


def test_merge_keys_and_name_lists_count_towards_limits() -> None:
    keys = ", ".join(f"k{j}: 1" for j in range(1000))
    merges = ", ".join(["{<<: *m}"] * (schema.MAX_MERGE_ENTRIES // 1000 + 1))
    errors = text_errors(HEAD + f"look_at: [&m {{{keys}}}, {merges}]\n" + EXIT)
    merge = [e for e in errors if "MAX_MERGE_ENTRIES" in e.message]
    assert merge and "copy more than 100000 entries" in merge[0].message
    names = ", ".join(f"n{j}" for j in range(schema.MAX_OP_ENTRIES))
    error = one_error(op_file(f"{{hold_mmap_write: {{ns: 1, vmas: [{names}]}}}}"))
    assert "MAX_OP_ENTRIES" in error.message
    last = schema.MAX_OP_ENTRIES - 1  # the op itself is the first entry
    assert error.field == f"threads[0].ops[0].hold_mmap_write.vmas[{last}]"
    # Expanded copies of a name list count too.
    names = ", ".join(f"n{j}" for j in range(200))
    op = f"{{hold_mmap_write: {{ns: 1, vmas: [{names}]}}}}"
    error = one_error(op_file(op, "name: 'T${i}', count: 1000"))
    assert "201000 op entries after count expansion" in error.message


def test_overlap_paths_count_dropped_entries() -> None:
    # mm.vmas[0] is invalid and dropped; the overlap is still reported at index 2.
    vmas = "mm:\n  vmas:\n    - {name: bad, pages: 0}\n    - {name: a, start: 0x100000, pages: 4}\n"
    vmas += "    - {name: b, start: 0x101000, pages: 1}\n"
    errors = text_errors(HEAD + vmas + EXIT)
    assert [(e.line, e.field) for e in errors] == [(5, "mm.vmas[0].pages"), (7, "mm.vmas[2].start")]


def test_validate_cli_reports_fuzzed_crashes_as_schema_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vmaviz.__main__ import main

    overlap = "mm: {vmas: [{name: a, start: 0x100000, pages: !!int abc},"
    overlap += " {name: b, start: 0x100000, pages: 1}]}\n"
    crashes = {
        "empty-op.yaml": op_file("{}"),
        "bad-int.yaml": HEAD + overlap + EXIT,
        "bad-bool.yaml": HEAD + "kernel: {per_vma_lock: !!bool maybe}\n" + EXIT,
        "digits.yaml": op_file(f"{{touch: {{vma: heap, pages: '{'7' * 5000}'}}}}"),
    }
    paths = []
    for name, text in crashes.items():
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    assert main(["validate", *paths]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == len(crashes)
    for path, line in zip(paths, lines, strict=True):
        assert re.match(re.escape(path) + r":\d+: [\w.\[\]]+: ", line), line
    assert "internal error" not in captured.err and "Traceback" not in captured.err


# --- cost and patch names (issue 11 item 3) and costs that stop time (item 4) ----------


def test_unknown_cost_and_patch_names() -> None:
    kernel = "kernel:\n  patches: {fix_fork_lock_parnt: true, all: true, swap_retry: 1}\n"
    costs = "costs:\n  spin_pol: 5\n  anon_page_alloc: 1.5\n  zap_page: 7\n"
    errors = text_errors(HEAD + kernel + costs + EXIT)
    assert [(e.line, e.field) for e in errors] == [
        (4, "kernel.patches.fix_fork_lock_parnt"),
        (4, "kernel.patches.swap_retry"),
        (6, "costs.spin_pol"),
        (7, "costs.anon_page_alloc"),
    ]
    assert "unknown patch 'fix_fork_lock_parnt'" in errors[0].message
    assert "(did you mean 'fix_fork_lock_parent'?)" in errors[0].message
    assert "expected true or false, got integer 1" in errors[1].message
    assert "unknown cost 'spin_pol' (did you mean 'spin_poll'?)" in errors[2].message
    assert "expected an integer, got number 1.5" in errors[3].message


def test_cost_and_patch_names_come_from_the_model_tables() -> None:
    from vmaviz.engine.costs import DEFAULT_COSTS
    from vmaviz.model.kernel import PATCHES

    patches = dict.fromkeys(PATCHES, True)
    costs = dict.fromkeys(DEFAULT_COSTS, 1)
    kernel = f"kernel: {{patches: {json.dumps(patches)}}}\ncosts: {json.dumps(costs)}\n"
    sc = load_scenario_text(HEAD + kernel + EXIT)
    assert sc.kernel.patches == patches and sc.costs == costs
    sc = load_scenario_text(HEAD + EXIT)
    with pytest.raises(ValueError, match="unknown patch 'fast'"):
        sc.with_overrides(patches={"fast": True})
    assert sc.with_overrides(patches={"all": True}).kernel.patches == {"all": True}


def test_loop_costs_must_be_at_least_one_ns() -> None:
    from vmaviz.engine.costs import DEFAULT_COSTS

    assert set(schema.LOOP_COSTS) <= set(DEFAULT_COSTS)
    zeros = "\n".join(f"  {name}: 0" for name in DEFAULT_COSTS)
    errors = text_errors(HEAD + f"costs:\n{zeros}\n" + EXIT)
    assert sorted(e.field for e in errors) == sorted(f"costs.{n}" for n in schema.LOOP_COSTS)
    assert all("must be at least 1 ns" in e.message and "LOOP_COSTS" in e.message for e in errors)
    # Every other cost may be 0, and the loop costs may be 1.
    costs = {n: 0 for n in DEFAULT_COSTS if n not in schema.LOOP_COSTS}
    costs.update(dict.fromkeys(schema.LOOP_COSTS, 1))
    sc = load_scenario_text(HEAD + f"costs: {json.dumps(costs)}\n" + EXIT)
    assert sc.costs["spin_poll"] == 1 and sc.costs["op_jitter"] == 0


def test_every_limit_is_listed_with_its_value() -> None:
    for name, (value, what) in schema.LIMITS.items():
        assert getattr(schema, name) == value and what
    assert {"MAX_VMAS", "MAX_THREADS", "MAX_TOTAL_OPS", "MAX_ERRORS"} <= set(schema.LIMITS)


def test_cost_limit_error_names_the_limit() -> None:
    error = one_error(HEAD + "costs: {zap_page: 10000000000}\n" + EXIT)
    assert error.message == "10000000000 is above the limit 9999999999 (COST_LIMIT_NS - 1)"


def test_deep_yaml_nesting_is_refused_at_the_limit() -> None:
    limit = schema.MAX_YAML_DEPTH
    deep = "[" * (limit + 5) + "]" * (limit + 5)
    error = one_error(HEAD + EXIT + f"look_at:\n  - a\n  - {deep}\n")
    assert error.line == 6 and error.message.endswith(f"limit of {limit} levels (MAX_YAML_DEPTH)")
    # Brackets in text are not nesting: a file whose bracket count looks deep loads.
    sc = load_scenario_text(HEAD.replace("test", "'" + "[" * (2 * limit) + "'") + EXIT)
    assert sc.description == "[" * (2 * limit)


def test_mmap_pgoff_needs_a_file_and_a_valid_value() -> None:
    # do_mmap (mm/mmap.c) uses the offset only for file mappings; anonymous memory
    # gets addr >> PAGE_SHIFT (or 0 when shared), so a pgoff there is an error.
    errors = text_errors(
        HEAD
        + """mm: {vmas: [{name: heap, pages: 4}]}
threads:
  - name: T0
    ops:
      - mmap: {name: a, pages: 1, pgoff: 3}
      - mmap: {name: b, pages: 1, file: data, pgoff: -1}
      - mmap: {name: c, pages: 1, file: data, pgoff: 4}
"""
    )
    assert len(errors) == 2
    expect(errors, 7, "threads[0].ops[0].mmap.pgoff", "pgoff needs 'file'")
    expect(errors, 8, "threads[0].ops[1].mmap.pgoff", "")
