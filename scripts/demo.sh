#!/usr/bin/env bash
# `make demo`: something real on the embedded model, offline.
set -euo pipefail
BIN=.venv/bin
$BIN/opro models
echo
echo "== One OPRO step on linear regression: 8 proposals from the embedded gemma3-270m at"
echo "== temperature 1, decoding constrained to the [w, b] form by a GBNF grammar:"
$BIN/opro complete --model local:gemma3-270m -n 8 --temperature 1 --seed 0 --max-tokens 16 \
  --grammar examples/pair.gbnf "$(cat examples/linreg_step.txt)"
echo
echo "== Run it again: every sample now comes from the call cache, for free:"
$BIN/opro complete --model local:gemma3-270m -n 8 --temperature 1 --seed 0 --max-tokens 16 \
  --grammar examples/pair.gbnf "$(cat examples/linreg_step.txt)" >/dev/null
