#!/usr/bin/env bash
# `make demo`: the main job on the embedded model, offline. OPRO searches for an instruction
# that raises gemma3-270m's accuracy on a BIG-Bench Hard task (gemma3-270m is also the
# optimizer), scores the best one and the start on held-out questions, says what was found
# and why it helps, and draws the report. A second run replays its calls from the cache.
set -euo pipefail
BIN=.venv/bin
OUT=${OPRO_DEMO_OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
TASK=bbh:sports_understanding   # shipped with the package: no data dir, no network
STEPS=${OPRO_DEMO_STEPS:-5}

cat <<EOF
== OPRO on $TASK, offline, gemma3-270m as scorer and optimizer (llama.cpp, in-process)
   Start: the empty instruction (the paper's BBH start), at the beginning of the answer.
   Each of $STEPS steps, the optimizer reads a meta-prompt of the best instructions so far
   with their training accuracy (best last) and proposes 8; each new one is scored on 25
   training questions. Then the best and the start are scored on 100 held-out questions.
   Run directory: $OUT

EOF
$BIN/opro -q optimize --dataset "$TASK" --steps "$STEPS" --samples-per-step 8 \
  --max-train 25 --max-test 100 --test-top 1 --scorer-max-tokens 16 --constrained \
  --initial "" --out "$OUT"
echo
$BIN/python scripts/demo_explain.py "$OUT"
