# shellcheck shell=bash
# Shared by scripts/run.sh and scripts/test.sh (sourced, not executed).
# Creates .venv at the repository root when missing and installs requirements.txt
# into it, skipping the install while requirements.txt is unchanged since the
# last successful install (a stamp file inside .venv records its hash).

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
    for py in python3.11 python3 python; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    echo "error: Python >= 3.11 not found on PATH" >&2
    return 1
}

ensure_venv() {
    local py req_hash
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
    req_hash="$(sha256sum "$REPO_ROOT/requirements.txt" | cut -d' ' -f1)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$req_hash" ]; then
        echo ">> requirements unchanged; skipping pip install"
    else
        echo ">> installing requirements into $VENV"
        rm -f "$STAMP"
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REPO_ROOT/requirements.txt"
        echo "$req_hash" >"$STAMP"
    fi
    export PATH="$VENV/bin:$PATH"
    export VIRTUAL_ENV="$VENV"
}
