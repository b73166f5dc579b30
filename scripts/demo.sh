#!/usr/bin/env bash
# Quick start: set up, ingest the sample article, answer two questions. No Discord token needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
quotebot --data quotebot-data ingest examples/*.txt
echo
echo '$ quotebot ask "Who is the National Security Council spokesman?"'
quotebot --data quotebot-data ask "Who is the National Security Council spokesman?"
echo
echo '$ quotebot ask "What is the boiling point of water?"'
quotebot --data quotebot-data ask "What is the boiling point of water?"
