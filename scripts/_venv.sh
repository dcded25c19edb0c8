# shellcheck shell=bash
# Shared by scripts/run.sh and scripts/test.sh (sourced, not executed).
# Creates .venv at the repository root when missing and installs requirements.txt
# into it, skipping the install while requirements.txt is unchanged since the
# last successful install (a stamp file inside .venv records its hash). test.sh also
# installs requirements-dask.txt the same way (its own stamp).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
STAMP="$VENV/.requirements.sha256"

# Run a command as root: directly when we are root, else through sudo if present.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: '$*' needs root and sudo is not available" >&2
        return 1
    fi
}

# apt-get install the given Debian packages (apt-get update first).
apt_install() {
    echo ">> apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@"
}

find_python() {
    local py
    # Debian's own python3.11 first: it is the platform the README targets, and its
    # optimised build runs the engine 10-15% faster than a default source build
    # (pyenv's, without PGO/LTO) that may come first on PATH.
    for py in /usr/bin/python3.11 python3.11 python3 python; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    echo "error: Python >= 3.11 not found on PATH" >&2
    return 1
}

# ensure_venv [EXTRA_REQUIREMENTS_FILE...]: the venv with requirements.txt installed,
# plus any extra requirements files given (paths relative to the repository root).
# Each file has its own stamp, so run.sh (no extras) and test.sh (with extras) do not
# undo each other's skip.
ensure_venv() {
    local py req req_hash stamp
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        py="$(find_python)"
        rm -rf "$VENV"
        echo ">> creating $VENV with $py"
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            # Debian's python3 ships venv/ensurepip separately.
            rm -rf "$VENV"
            apt_install python3-venv
            "$py" -m venv "$VENV"
        fi
    fi
    for req in requirements.txt "$@"; do
        req_hash="$(sha256sum "$REPO_ROOT/$req" | cut -d' ' -f1)"
        stamp="$STAMP"
        [ "$req" = requirements.txt ] || stamp="$VENV/.$(basename "$req" .txt).sha256"
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ]; then
            echo ">> $req unchanged; skipping pip install"
        else
            echo ">> installing $req into $VENV"
            rm -f "$stamp"
            "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
            "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REPO_ROOT/$req"
            echo "$req_hash" >"$stamp"
        fi
    done
    export PATH="$VENV/bin:$PATH"
    export VIRTUAL_ENV="$VENV"
}
