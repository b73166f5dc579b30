#!/usr/bin/env bash
# Set up and run every check: ruff, mypy, and the whole pytest suite (slow and PostgreSQL tests too).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
. .venv/bin/activate
# PostgreSQL tests run where a server is reachable on 127.0.0.1:5432 (they skip elsewhere). Start a
# local cluster if one is installed but stopped; in CI a missing server is a failure, not a skip.
if command -v pg_ctlcluster >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if [ "${CI:-}" = "true" ]; then export QUOTEBOT_REQUIRE_POSTGRES=1; fi
ruff check .
ruff format --check .
mypy bot index
pytest -q -p no:cacheprovider "$@"
