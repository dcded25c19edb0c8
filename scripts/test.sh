#!/usr/bin/env bash
# Install Chromium + chromedriver and redis-server (Debian) and the Python packages (.venv), then run
# lint, format check, type check and the whole test suite (browser tests included).
# Extra arguments are passed to pytest.
set -euo pipefail
# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

# redis-server: the cache tests run the app's cache on Redis as well as on files.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/redis-server ]; then
    apt_install chromium chromium-driver redis-server
fi

# requirements-dask.txt too: the dask executor test must run here, not skip.
ensure_venv requirements-dask.txt
cd "$REPO_ROOT"
export PATH="$PATH:/usr/bin" # selenium finds Debian's chromedriver on PATH

echo ">> ruff check ."
"$VENV/bin/ruff" check .
echo ">> ruff format --check ."
"$VENV/bin/ruff" format --check .
echo ">> mypy vmaviz"
"$VENV/bin/mypy" vmaviz
echo ">> pytest"
# pytest exits 5 when it collected no tests; with set -e any non-zero exit fails the run.
"$VENV/bin/pytest" "$@"
echo ">> all checks passed"
