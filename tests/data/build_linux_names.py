"""Build ``linux-6.4-names.txt``: where Linux 6.4.0 defines each kernel name vmaviz shows.

Usage (from the repository root, with the 6.4.0 mirror fetched)::

    python tests/data/build_linux_names.py NAME [NAME ...] > /tmp/names.txt

For each name it searches the pristine 6.4.0 tree (commit ``6e5f9d87e``) for a
definition: a line that starts (unindented) with a declaration ending in
``name(``, a ``SYSCALL_DEFINEn(name`` line or a ``#define name(`` macro, in the
directories the model covers.  It prints ``name<TAB>file [file ...]`` (every
file that defines it) and writes the names it could not find to stderr; those
must be renamed or listed as model events in tests/test_kernel_names.py.
"""

from __future__ import annotations

import re
import subprocess
import sys

GITDIR = "/work/.mirror/julianw1010+WASP-linux-6.4.0/repo"
COMMIT = "6e5f9d87e"
PATHS = (
    "mm",
    "kernel",
    "arch/x86/mm",
    "arch/arm64/mm",
    "arch/powerpc/mm",
    "arch/s390/mm",
    "include",
    "lib",
    "fs/proc",
    "arch/x86/include",
    "arch/x86/kernel/sys_x86_64.c",
    "fs/userfaultfd.c",
    "fs/open.c",
    "net/ipv4",
)


def definition(name: str) -> list[str]:
    """The files that define ``name`` in 6.4.0 (empty when none does)."""
    n = re.escape(name)
    # The name starts a line (return type on the line above) or follows the type on
    # its line; "static inline" helpers in headers count, "extern" prototypes and
    # one-line prototypes (ending in ";") do not.
    pattern = (
        rf"^((?!extern)([A-Za-z_][^;(]*[ *])?{n}\([^;]*$"
        rf"|SYSCALL_DEFINE[0-9]\({n}[,)]|#define {n}\()"
    )
    out = subprocess.run(
        ["git", "-C", GITDIR, "grep", "-l", "-P", pattern, COMMIT, "--", *PATHS],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sorted(line.split(":", 1)[1] for line in out.splitlines() if ":" in line)


def main(names: list[str]) -> int:
    missing = []
    for name in sorted(set(names)):
        files = definition(name)
        if files:
            print(f"{name}\t{' '.join(files)}")
        else:
            missing.append(name)
    for name in missing:
        print(f"not in 6.4.0: {name}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
