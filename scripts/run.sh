#!/usr/bin/env bash
# Install (into .venv) and start vmaviz on http://127.0.0.1:8050 with the default scenario.
set -euo pipefail
# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv
cd "$REPO_ROOT"
echo ">> starting vmaviz on http://127.0.0.1:8050 (Ctrl-C to stop)"
exec "$VENV/bin/python" app.py "$@"
