#!/usr/bin/env bash
# `make demo`: the main job on the embedded model, offline. OPRO searches for an instruction
# that raises gemma3-270m's accuracy on a BIG-Bench Hard task (gemma3-270m is also the
# optimizer), scores the best ones on the test fold, and draws the report. About 4 minutes
# on 2 cores; a second run replays its calls from the cache in seconds.
set -euo pipefail
BIN=.venv/bin
OUT=${OPRO_DEMO_OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
TASK=bbh:boolean_expressions

# The benchmark files: $OPRO_DATA_DIR, else a ../shared/data checkout beside this one, else
# the user cache dir (filled by `opro data fetch`, which needs the internet once).
if [ -z "${OPRO_DATA_DIR:-}" ] && [ -d ../shared/data/BIG-Bench-Hard-data ]; then
  export OPRO_DATA_DIR=../shared/data
fi
if ! $BIN/python -c "import opro.data as d; d.load_dataset('$TASK', None)" 2> /dev/null; then
  echo "== Fetching the BIG-Bench Hard files (once) =="
  $BIN/opro data fetch --only bbh
fi

cat <<EOF
== OPRO on $TASK, offline, gemma3-270m as scorer and optimizer (llama.cpp, in-process)
   Start: the empty instruction (the paper's BBH start). Each of 10 steps, the optimizer reads a
   meta-prompt of the best instructions so far with their training accuracy (best last) and
   proposes 8 (decoding constrained to the 'Precision: NN <TEXT>...</TEXT>' line); each new one
   is scored on 32 training questions. Then the top 3 and the start are scored on 100 test
   questions. Run directory: $OUT
EOF
$BIN/opro optimize --dataset "$TASK" --steps 10 --candidates-per-step 8 --max-train 32 \
  --max-test 100 --test-top 3 --scorer-max-tokens 16 --constrained --initial "" \
  --out "$OUT" > /dev/null

$BIN/python - "$OUT" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
p = (s.get("paired_test") or {}).get("p_value")
print(f"\n   best instruction: {s['best_instruction']!r} (found at step {s['best']['step']})")
print(f"   train accuracy {s['best_train_score']:.1f} % (start {s['initial_train_score']:.1f} %); "
      f"test accuracy {s['best_test_score']:.1f} % (start {s['initial_test_score']:.1f} %, "
      f"McNemar p = {p if p is None else round(p, 3)})")
print(f"   {s['solutions_evaluated']} instructions scored, {s['calls']} calls "
      f"({s['cached_calls']} from the cache), {s['elapsed_s']:.0f} s\n")
PY
echo "== Report (training accuracy of every candidate per step, best so far, test accuracy):"
$BIN/opro -q report "$OUT"
