#!/usr/bin/env bash
# Quick start: set up, ingest the sample article, ask three questions. No Discord token needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
quotebot --data quotebot-data ingest examples/*.txt
echo
echo '$ quotebot ask "How many missiles did North Korea fire?"      # a quote, the answer phrase in **bold**'
quotebot --data quotebot-data ask "How many missiles did North Korea fire?"
echo
echo '$ quotebot ask "Who is the National Security Council spokesman?"   # a quote, **John Kirby** in bold'
quotebot --data quotebot-data ask "Who is the National Security Council spokesman?"
echo
echo '$ quotebot ask "What is the boiling point of water?"   # not in the article: declined'
quotebot --data quotebot-data ask "What is the boiling point of water?"
