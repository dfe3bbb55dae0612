"""The paper's BBH experiment (§5.2, Figure 6) on the embedded model, end to end:

1. the sweep ``examples/sweeps/bbh_experiment.toml`` (OPRO from the empty instruction on each
   task; resumable: run this script again to continue it);
2. "Let's think step by step." scored on each task's test fold with the same scorer settings;
3. ``docs/bbh/``: the figure (per task, the found instruction's test accuracy minus the
   start's, beside the start's and step-by-step's), a Markdown table with 95 % intervals and
   exact McNemar p-values, and the numbers as JSON.

    .venv/bin/python scripts/bbh_experiment.py [--out runs/bbh-experiment] [--docs docs/bbh]
    .venv/bin/python scripts/bbh_experiment.py --redraw   # the figure again, from results.json

The benchmark files come from ``$OPRO_DATA_DIR`` (or ``opro data fetch``).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

import opro
from opro import plotting
from opro.eval.stats import mcnemar_exact, wilson_interval
from opro.llm.cache import CallCache, default_cache_path
from opro.problems.instructions.spec import InstructionsSpec
from opro.runlog import RunDir

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "examples" / "sweeps" / "bbh_experiment.toml"
STEP_BY_STEP = "Let's think step by step."


@dataclass(frozen=True)
class TaskResult:
    task: str
    n_train: int
    n_test: int
    found: str
    found_step: int
    train_start: float
    train_found: float
    test_start: float
    test_found: float
    test_step_by_step: float
    gain: float
    """Test accuracy of the found instruction minus the start's, in points."""
    gain_low: float
    gain_high: float
    p_found_vs_start: float
    p_step_by_step_vs_start: float
    calls: int
    elapsed_s: float


def paired_difference(start: str, other: str) -> tuple[float, float, float]:
    """Difference of accuracies (other - start, in points) over the examples both answered,
    with its 95 % interval (the normal approximation for paired proportions)."""
    pairs = [(a, b) for a, b in zip(start, other, strict=True) if "x" not in (a, b)]
    n = len(pairs)
    gained = sum(a != "1" and b == "1" for a, b in pairs)
    lost = sum(a == "1" and b != "1" for a, b in pairs)
    diff = (gained - lost) / n
    spread = math.sqrt(max(gained + lost - (gained - lost) ** 2 / n, 0.0)) / n
    return 100 * diff, 100 * (diff - 1.96 * spread), 100 * (diff + 1.96 * spread)


def run_sweep(out: Path) -> None:
    command = [sys.executable, "-m", "opro.cli", "sweep", str(SWEEP), "--out", str(out)]
    subprocess.run(command, check=True)


def task_result(run: Path) -> TaskResult:
    folder = RunDir.open(run)
    spec = folder.config().spec
    assert isinstance(spec, InstructionsSpec)
    summary = folder.summary()
    assert summary is not None, f"{run} has no summary"
    assert summary.status == "finished", f"{run} has not finished"
    details = summary.details
    rows = {r["instruction"]: r for r in details["test_evaluation"]}
    start, found = rows[details["initial_instruction"]], rows[details["best_instruction"]]
    scored = opro.evaluate(
        spec,
        [details["initial_instruction"], STEP_BY_STEP],
        split="test",
        cache=CallCache(default_cache_path()),  # the start's answers are the run's own
    )
    step_by_step = scored.results[1]
    assert scored.results[0].marks == start["marks"], "the start scored differently"
    gain, low, high = paired_difference(start["marks"], found["marks"])
    best = summary.best
    assert best is not None
    return TaskResult(
        task=spec.dataset.removeprefix("bbh:"),
        n_train=details["n_train"],
        n_test=details["n_test"],
        found=details["best_instruction"],
        found_step=best.step,
        train_start=details["initial_train_score"],
        train_found=details["best_train_score"],
        test_start=start["test_score"],
        test_found=found["test_score"],
        test_step_by_step=round(step_by_step.accuracy or 0.0, 6),  # percent
        gain=gain,
        gain_low=low,
        gain_high=high,
        p_found_vs_start=mcnemar_exact(start["marks"], found["marks"]).p_value,
        p_step_by_step_vs_start=mcnemar_exact(start["marks"], step_by_step.marks).p_value,
        calls=summary.total.calls + summary.total.cached_calls,
        elapsed_s=summary.elapsed_s,
    )


def finished(run: Path) -> bool:
    summary = RunDir.open(run).summary()
    return summary is not None and summary.status == "finished"


def figure(results: list[TaskResult]) -> Figure:
    # Sized for the docs' text column (about 690 px): drawn at that width, not scaled down,
    # so its 10-point text reads at about 13 px.
    fig = Figure(figsize=(5.2, 0.5 * len(results) + 2.0))
    ax = fig.add_subplot()
    ys = list(range(len(results)))[::-1]
    for y, r in zip(ys, results, strict=True):
        significant = r.p_found_vs_start < 0.05
        ax.barh(y, r.gain, color=plotting.color(2 if significant else 0), alpha=0.85)
        ax.plot([r.gain_low, r.gain_high], [y, y], color="black", lw=1)
        ax.plot(r.test_step_by_step - r.test_start, y, "D", color=plotting.color(3), ms=5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(ys, [f"{r.task} ({r.test_start:.0f} %)" for r in results])
    ax.set_xlabel("test accuracy minus the empty start's (points);\nstart's accuracy in brackets")
    ax.set_title(
        'OPRO on BBH, gemma3-270m scorer and optimizer\n(A_begin, start ""): bars = found '
        "instruction\n(green: McNemar p < 0.05; line: 95 % CI),\ndiamonds = "
        '"Let\'s think step by step."',
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    return fig


def table(results: list[TaskResult]) -> str:
    lines = [
        '| task | train n / test n | start ("") test % | found test % [95 % CI] | gain (points) '
        "[95 % CI] | McNemar p | step by step test % (p vs start) | found instruction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        low, high = wilson_interval(round(r.test_found * r.n_test / 100), r.n_test) or (0, 0)
        lines.append(
            f"| {r.task} | {r.n_train} / {r.n_test} | {r.test_start:.1f} | {r.test_found:.1f} "
            f"[{100 * low:.1f}, {100 * high:.1f}] | {r.gain:+.1f} [{r.gain_low:+.1f}, "
            f"{r.gain_high:+.1f}] | {r.p_found_vs_start:.2g} | {r.test_step_by_step:.1f} "
            f"({r.p_step_by_step_vs_start:.2g}) | `{r.found or '(empty)'}` |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bbh-experiment"))
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "bbh")
    parser.add_argument("--skip-sweep", action="store_true", help="use the runs as they are")
    parser.add_argument(
        "--redraw", action="store_true", help="draw the figure again from --docs' results.json"
    )
    args = parser.parse_args()
    if args.redraw:
        saved = json.loads((args.docs / "results.json").read_text(encoding="utf-8"))
        drawn = figure([TaskResult(**r) for r in saved])
        (args.docs / "figure.svg").write_bytes(plotting.to_svg(drawn))
        return 0
    if not args.skip_sweep:
        run_sweep(args.out)
    runs = sorted(p.parent for p in args.out.glob("grid/*/seed-*/summary.json"))
    results = [task_result(run) for run in runs if finished(run)]
    done = {f"bbh:{r.task}" for r in results}
    planned = tomllib.loads(SWEEP.read_text(encoding="utf-8"))["axes"]["dataset"]
    missing = [task.removeprefix("bbh:") for task in planned if task not in done]
    args.docs.mkdir(parents=True, exist_ok=True)
    (args.docs / "figure.svg").write_bytes(plotting.to_svg(figure(results)))
    note = f"\nNot finished (run the command again to continue): {', '.join(missing)}.\n"
    (args.docs / "table.md").write_text(table(results) + (note if missing else ""), "utf-8")
    data: list[dict[str, Any]] = [asdict(r) for r in results]
    (args.docs / "results.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(table(results) + (note if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
