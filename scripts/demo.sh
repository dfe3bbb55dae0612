#!/usr/bin/env bash
# `make demo`: OPRO on the embedded model (gemma3-270m), offline, on this machine.
set -euo pipefail
BIN=.venv/bin
OUT=${OPRO_DEMO_OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
$BIN/opro models
echo
echo "== Linear regression (paper §2): find (w, b) = (15, 14) from scores alone; 10 steps of"
echo "== 8 proposals from gemma3-270m, decoding constrained to the [w, b] form (GBNF)."
$BIN/opro linreg --optimizer local:gemma3-270m --constrained --max-tokens 16 --reps 1 \
  --steps 10 --out "$OUT/linreg" > /dev/null
$BIN/python - "$OUT/linreg/rep-0" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
print(f"   best {s['best']['text']} (objective {s['best']['score']:.0f}) after {s['steps_completed']} steps; "
      f"optimum reached at step {s['steps_to_optimum']}; {s['unique_pairs_explored']} unique pairs; "
      f"{s['calls']} calls in {s['elapsed_s']:.0f} s")
PY
echo
echo "== Travelling salesman (paper §3): 6 seeded points, 3 steps, against the exact optimum."
$BIN/opro tsp --nodes 6 --optimizer local:gemma3-270m --constrained --max-tokens 40 --steps 3 \
  --max-attempts-per-step 8 --out "$OUT/tsp" > /dev/null
$BIN/python - "$OUT/tsp" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
print(f"   best length {s['best_length']:.1f}, optimum {s['optimal_length']:.1f}: gap {s['gap_percent']:.1f} % "
      f"(nearest neighbour {s['nearest_neighbor_gap_percent']:.1f} %, farthest insertion "
      f"{s['farthest_insertion_gap_percent']:.1f} %)")
PY
echo
echo "Run directories (config.json, steps.jsonl with every meta-prompt and raw output, summary.json):"
echo "  $OUT/linreg/rep-0"
echo "  $OUT/tsp"
