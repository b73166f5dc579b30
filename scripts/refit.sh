#!/usr/bin/env bash
# Refit every learned part of the answer pipeline on the training data, end to end, and write the
# shipped files: index/answering/reader.pt (the reader, four stages) and
# index/answering/answer_model.json (ranker, rescoring and judge, fitted with that reader).
#
#     bash scripts/refit.sh [fit_answer options...]
#
# Environment: TRAIN (default ../shared/train: squad1-train, squad2-train-10, qed-train),
# WORK (default /tmp/quotebot-refit: the encoded caches and the intermediate readers, kept, so a
# stage can be rerun by hand), FIT_ARTICLES (default 14: the odd SQuAD 1.1 train articles kept
# for fit_answer's collection; the reader's last two stages take the odd ones after them).
# Each step prints how long it took; the total is printed last and written to $WORK/times.txt.
# On this project's 2-core machine without a GPU: about 1 h 57 min, projected from the rates measured
# step by step (README, Answer quality, Refit).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
TRAIN=${TRAIN:-../shared/train}
WORK=${WORK:-/tmp/quotebot-refit}
FIT_ARTICLES=${FIT_ARTICLES:-14}
mkdir -p "$WORK"
: > "$WORK/times.txt"
START=$(date +%s)

step() {
    local name=$1
    shift
    local t=$(date +%s)
    echo "== $name: $*"
    "$@"
    local took=$(($(date +%s) - t))
    echo "== $name took ${took} s"
    echo "$name $took" >> "$WORK/times.txt"
}

# MiniLM's token states and vectors of the training texts, computed once (the reader's inputs).
step cache-even python scripts/reader_cache.py "$TRAIN/squad1-train" "$WORK/sq1.npz" --every 2
step cache-qed python scripts/reader_cache.py "$TRAIN/qed-train" "$WORK/qed.npz" --every 2
step cache-odd python scripts/reader_cache.py "$TRAIN/squad1-train" "$WORK/sq1odd.npz" \
    --start 1 --every 2 --skip "$FIT_ARTICLES"
# The reader: many hard negatives first, then the word-rarity input and a higher rate, then
# articles it has not seen with synthetic near misses (scripts/near_misses.py) as negatives, then
# (reader 4) the same with QED's search queries, each question word marked where only the
# sentence's context (its article's title, the sentence before it) holds it.
step reader-1 python scripts/fit_reader.py "$WORK/sq1.npz" "$WORK/qed.npz" --negatives 5 --epochs 1.3 \
    --out "$WORK/reader1.pt"
step reader-2 python scripts/fit_reader.py "$WORK/sq1.npz" "$WORK/qed.npz" --negatives 2 --epochs 3 \
    --lr 1e-3 --rarity --init "$WORK/reader1.pt" --out "$WORK/reader2.pt"
step reader-3 python scripts/fit_reader.py "$WORK/sq1odd.npz" --near-misses 0.35 --negatives 3 --epochs 1.5 \
    --lr 5e-4 --rarity --init "$WORK/reader2.pt" --out "$WORK/reader3.pt"
step reader-4 python scripts/fit_reader.py "$WORK/sq1odd.npz" "$WORK/qed.npz" --near-misses 0.35 --negatives 3 \
    --epochs 0.4 --lr 5e-4 --rarity --context --init "$WORK/reader3.pt" --out index/answering/reader.pt
# Ranker, rescoring and judge, through the real pipeline with the new reader.
step answer-model python scripts/fit_answer.py --train "$TRAIN" --articles "$FIT_ARTICLES" "$@"
total=$(($(date +%s) - START))
echo "total $total" >> "$WORK/times.txt"
printf '== refit done in %d min %d s: index/answering/reader.pt, index/answering/answer_model.json\n' \
    $((total / 60)) $((total % 60))
