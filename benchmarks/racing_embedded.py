"""Racing vs full evaluation for real: `opro optimize` on BBH tasks with the embedded model.

    .venv/bin/python benchmarks/racing_embedded.py [--tasks hyperbaton,boolean_expressions]
        [--steps 6] [--seed 0] [--out runs/racing_embedded] [--data-dir DIR]

For each task, two runs that differ only in ``--evaluation`` (full, race): gemma3-270m as
scorer and optimizer (llama.cpp, in-process, 2 threads), start "", A_begin, the paper's
top-K 20 and 8 proposals a step, the demo's short scorer answers (``--scorer-max-tokens
16``) and constrained optimizer, the same seed, no call cache (each run pays for every
call). The order alternates between tasks (full first, then race first), so that a drift
in the machine's speed does not favour one mode.

Printed per run: scorer calls, the run's own time (``elapsed_s``), the instruction found
and its accuracy on the task's held-out test fold; per task, the paired test (exact
McNemar) of the two found instructions on the same test questions. Racing can only drop a
proposal once 20 instructions are shown, so in runs of a few steps most proposals are
scored in full: the saving grows with the run's length (``benchmarks/racing.py`` measures
that on a simulated scorer over many seeds). This benchmark checks the real loop: the calls
saved, the time, and that the instruction found is not worse. A run dir already finished
under ``--out`` is read, not run again (an interrupted invocation goes on where it stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from opro.eval.stats import mcnemar_exact

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Run:
    calls: int
    """Scorer calls (none cached)."""
    wall: float
    """The run's own seconds (``elapsed_s`` in its summary: process start-up left out)."""
    instruction: str
    train: float
    test: float
    marks: str
    """The found instruction's marks on the test fold."""


def run(task: str, mode: str, args: argparse.Namespace) -> Run:
    out = args.out / f"{task}-{mode}"
    command = [
        sys.executable, "-m", "opro.cli", "-q", "optimize", "--dataset", f"bbh:{task}",
        "--scorer", "local:gemma3-270m", "--optimizer", "local:gemma3-270m",
        "--steps", str(args.steps), "--samples-per-step", "8", "--initial", "",
        "--position", "A_begin", "--scorer-max-tokens", "16", "--constrained",
        "--test-top", "1", "--evaluation", mode, "--seed", str(args.seed),
        "--no-cache", "--no-report", "--out", str(out),
    ]  # fmt: skip
    summary_file = out / "summary.json"
    finished = (
        summary_file.is_file() and json.loads(summary_file.read_text())["status"] == "finished"
    )
    if not finished:  # a finished run (an earlier invocation's) is read, not run again
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=os.environ | {"OPRO_DATA_DIR": str(args.data_dir)},
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{task} {mode}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    summary = json.loads(summary_file.read_text())
    best = next(
        row
        for row in summary["test_evaluation"]
        if row["instruction"] == summary["best_instruction"]
    )
    return Run(
        calls=int(summary["usage"]["scorer"]["calls"]),
        wall=float(summary["elapsed_s"]),
        instruction=str(summary["best_instruction"]),
        train=float(summary["best_train_score"]),
        test=float(summary["best_test_score"]),
        marks=str(best["marks"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="hyperbaton,boolean_expressions")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/racing_embedded"))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    print(f"{args.steps} steps, seed {args.seed}, no cache; per run:", flush=True)
    print(f"{'task':<22} {'mode':<5} {'calls':>6} {'wall s':>7} {'train':>6} {'test':>6}  found")
    for number, task in enumerate(tasks):
        modes = ["full", "race"] if number % 2 == 0 else ["race", "full"]
        got = {mode: run(task, mode, args) for mode in modes}
        for mode in ("full", "race"):
            r = got[mode]
            print(
                f"{task:<22} {mode:<5} {r.calls:>6} {r.wall:>7.0f} {r.train:>6.1f} "
                f"{r.test:>6.1f}  {r.instruction[:60]!r}",
                flush=True,
            )
        full, race = got["full"], got["race"]
        test = mcnemar_exact(full.marks, race.marks)
        same = "the same instruction" if full.instruction == race.instruction else "differ"
        print(
            f"{task}: calls full/race {full.calls}/{race.calls} = "
            f"{full.calls / race.calls:.2f}x, wall {full.wall / race.wall:.2f}x; found: {same}; "
            f"test {full.test} vs {race.test} % on n = {test.n}: only full right "
            f"{test.only_baseline}, only race right {test.only_other}, exact McNemar "
            f"p = {test.p_value:.3g}",
            flush=True,
        )


if __name__ == "__main__":
    main()
