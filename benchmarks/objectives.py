"""OPRO against random sampling on three objectives with known optima (`opro solve`, #29).

    .venv/bin/python benchmarks/objectives.py [--quick] [--seeds 0,1,2] [--steps 8]
        [--samples 4] [--max-tokens 40] [--optimizer local:gemma3-270m] [--out DIR]
    .venv/bin/python benchmarks/objectives.py --from-json   # rebuild the page only

The examples are ``examples/objectives/``: ``regex`` (a regular expression for 16 labelled
strings, optimum 100 %), ``knapsack`` (12 items, optimum by dynamic programming) and
``feedback`` (a hidden six-letter word, optimum 6, whose feedback text names the letters in
place). Each runs, per seed, as OPRO and as the random-sampling baseline
(``--no-show-history``: the same request with no earlier solutions), and ``feedback`` also
as OPRO without its feedback text; every arm with the same steps × samples, seed, initial
solution and ``--target`` (the known optimum), through the CLI (``opro solve ... -q``), each
run with a call cache of its own (nothing is answered from an earlier run). The runs go seed
by seed, the arms' order rotating, so that a drift in the shared machine's speed spreads
over the arms.

An *evaluation* is a call of the scoring function: a solution scored or found invalid
(step 0's starting one included); a parse failure or a duplicate is no evaluation. From
each run's ``steps.jsonl`` the best score after each evaluation is read (within a step, in
the order of the optimizer's outputs); a run stopped at the known optimum keeps it for any
number of evaluations after. Two arms are compared at the number of evaluations both
reached. Writes ``docs/results/objectives.json`` (every run) and ``docs/results/objectives.md``
(built from the JSON alone; ``--from-json`` rebuilds it). A finished run dir under ``--out``
is read, not run again, so an interrupted invocation goes on where it stopped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
EXAMPLES = ("regex", "knapsack", "feedback")
ARMS: dict[str, dict[str, tuple[str, ...]]] = {
    "regex": {"OPRO": (), "baseline": ("--no-show-history",)},
    "knapsack": {"OPRO": (), "baseline": ("--no-show-history",)},
    "feedback": {
        "OPRO + feedback": ("--feedback",),
        "OPRO, scores only": (),
        "baseline": ("--no-show-history",),
    },
}
HOSTED = "openai:gpt-4o-mini"
READING = {
    "regex": " An expression that matches none of the 16 strings scores 50 (the 8 negatives "
    "right), whatever it is.",
}


def module(name: str) -> Any:
    return importlib.import_module(f"examples.objectives.{name}")


def solve_args(name: str, arm: str, args: argparse.Namespace, seed: int) -> list[str]:
    """``opro solve``'s arguments for one run (the task and format as the module says)."""
    m = module(name)
    return [
        "solve", "--objective", f"examples.objectives.{name}:score", "--task", m.TASK,
        "--solution-format", m.SOLUTION_FORMAT, "--initial", m.INITIAL,
        "--target", f"{m.OPTIMUM:g}", "--optimizer", args.optimizer,
        "--steps", str(args.steps), "--samples-per-step", str(args.samples),
        "--max-tokens", str(args.max_tokens), "--seed", str(seed),
        *ARMS[name][arm],
    ]  # fmt: skip


def shown(name: str, arm: str, args: argparse.Namespace, seed: int | str) -> str:
    """The command as a user types it: the task and format from the module (as in its
    docstring: T=... F=...)."""
    m = module(name)
    words = ["opro", *solve_args(name, arm, args, 0)]
    words[words.index(m.TASK)] = '"$T"'
    words[words.index(m.SOLUTION_FORMAT)] = '"$F"'
    words[words.index("--seed") + 1] = str(seed)
    return " ".join(w if w.startswith('"$') else shlex.quote(w) for w in words)


def run_one(name: str, arm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    slug = arm.lower().replace(" + ", "-").replace(", ", "-").replace(" ", "-")
    out = args.out / f"{name}-{slug}-seed{seed}"
    summary_file = out / "summary.json"
    finished = (
        summary_file.is_file() and json.loads(summary_file.read_text())["status"] == "finished"
    )
    wall_file = args.out / f"{out.name}.wall_s"  # the process's wall time, beside the run dir
    if not finished:  # an unfinished one (an interrupted invocation's) starts over
        shutil.rmtree(out, ignore_errors=True)
        cache = Path(tempfile.mkdtemp(prefix="opro-objectives-cache-"))
        command = [sys.executable, "-m", "opro.cli", "-q", *solve_args(name, arm, args, seed)]
        start = time.perf_counter()
        done = subprocess.run(
            [*command, "--no-report", "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=os.environ | {"OPRO_CACHE_DIR": str(cache)},
            check=False,
        )
        shutil.rmtree(cache, ignore_errors=True)
        if done.returncode != 0:
            raise SystemExit(f"{name} {arm} seed {seed}: exit {done.returncode}: {done.stderr}")
        wall_file.write_text(f"{time.perf_counter() - start:.1f}\n")
    wall = float(wall_file.read_text()) if wall_file.is_file() else None
    return read_run(out, name, arm, seed, wall)


def order_in_step(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The step's evaluations (scored, then invalid) in the order of the outputs that
    proposed them (each matched to the first unused output containing its text)."""
    items = [*step.get("candidates", []), *step.get("invalid", [])]
    outputs = list(step.get("outputs", []))
    used: set[int] = set()

    def position(item: dict[str, Any]) -> int:
        for i, text in enumerate(outputs):
            if i not in used and item["solution"] in text:
                used.add(i)
                return i
        return len(outputs)

    ranked = [(position(item), n, item) for n, item in enumerate(items)]
    return [item for _, _, item in sorted(ranked, key=lambda t: (t[0], t[1]))]


def read_run(out: Path, name: str, arm: str, seed: int, wall: float | None) -> dict[str, Any]:
    optimum = float(module(name).OPTIMUM)  # every example maximizes
    summary = json.loads((out / "summary.json").read_text())
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines() if line]
    curve: list[float | None] = []  # the best score after each evaluation (None: none yet)
    best: float | None = None
    for step in steps:
        for item in order_in_step(step):
            score = item.get("score")
            if score is not None and (best is None or score > best):
                best = float(score)
            curve.append(best)
    proposals = summary.get("proposals") or {}
    found = summary.get("best") or {}
    reached = best is not None and best >= optimum
    return {
        "example": name,
        "arm": arm,
        "seed": seed,
        "steps": summary["steps_completed"],
        "stop_reason": summary["stop_reason"],
        "evaluations": len(curve),
        "best_score": best,
        "best_solution": found.get("text"),
        "reached_optimum": reached,
        "evaluations_to_best": next(i + 1 for i, v in enumerate(curve) if v == best)
        if best is not None
        else None,
        "drawn": proposals.get("drawn", 0),
        "parse_failures": proposals.get("parse_failures", 0),
        "duplicates": proposals.get("duplicates", 0),
        "scored": sum(len(s.get("candidates", [])) for s in steps),
        "invalid": sum(len(s.get("invalid", [])) for s in steps),
        "optimizer_calls": summary.get("calls", 0),
        "completion_tokens": sum(
            u.get("completion_tokens", 0) for u in (summary.get("usage") or {}).values()
        ),
        "elapsed_s": summary.get("elapsed_s"),
        "wall_s": wall,
        "curve": curve,
        "run_dir": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
        # What the optimizer read and wrote: the first and the last step that asked it.
        "first_prompt": steps[1]["meta_prompt"] if len(steps) > 1 else None,
        "first_outputs": steps[1]["outputs"] if len(steps) > 1 else [],
        "last_prompt": steps[-1]["meta_prompt"] if len(steps) > 1 else None,
        "last_outputs": steps[-1]["outputs"] if len(steps) > 1 else [],
    }


# -- reading the runs -----------------------------------------------------------------------


def reach(run: dict[str, Any]) -> float:
    """Evaluations this run can be compared at: all of them, any number once at the optimum."""
    return math.inf if run["reached_optimum"] else float(run["evaluations"])


def best_at(run: dict[str, Any], n: float) -> float | None:
    """The best score after ``n`` evaluations (the last one's after the run stopped at the
    optimum)."""
    curve: list[float | None] = run["curve"]
    if not curve or n < 1:
        return None
    return curve[len(curve) - 1 if math.isinf(n) else min(int(n), len(curve)) - 1]


def mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} ± {sd:.2g}"


def num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties left out)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)
    return min(1.0, 2 * tail)


def pairs(
    runs: list[dict[str, Any]], arm: str, other: str, at_end: bool = False
) -> list[dict[str, Any]]:
    """Per seed, ``arm`` against ``other`` at the evaluations both reached (``at_end``: each
    at its own end, after the same optimizer samples)."""
    by = {(r["arm"], r["seed"]): r for r in runs}
    rows = []
    for seed in sorted({r["seed"] for r in runs}):
        a, b = by.get((arm, seed)), by.get((other, seed))
        if a is None or b is None:
            continue
        n = math.inf if at_end else min(reach(a), reach(b))
        mine, theirs = best_at(a, n), best_at(b, n)
        both = a["reached_optimum"] and b["reached_optimum"]
        if at_end:
            at = f"the ends ({a['evaluations']} and {b['evaluations']} evaluations)"
        else:
            at = "both optimal" if math.isinf(n) else plural(int(n), "evaluation")
        if both:  # both reached the optimum: in fewer evaluations is better
            key_a, key_b = -a["evaluations_to_best"], -b["evaluations_to_best"]
        else:
            key_a, key_b = mine, theirs
        if key_a is None or key_b is None or key_a == key_b:
            outcome = "tie"
        else:
            outcome = "win" if key_a > key_b else "loss"
        rows.append({"seed": seed, "at": at, "arm": mine, "other": theirs, "outcome": outcome})
    return rows


def paired(runs: list[dict[str, Any]], arm: str, other: str, at_end: bool) -> str:
    rows = pairs(runs, arm, other, at_end)
    wins = sum(p["outcome"] == "win" for p in rows)
    losses = sum(p["outcome"] == "loss" for p in rows)
    detail = "; ".join(
        f"seed {p['seed']} at {p['at']}: {num(p['arm'])} vs {num(p['other'])}" for p in rows
    )
    return (
        f"{wins} better, {len(rows) - wins - losses} tied, {losses} worse ({detail}); "
        f"two-sided sign test p = {sign_test_p(wins, losses):.2g}"
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def shown_text(text: str | None, limit: int = 160) -> str:
    line = repr(text or "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- the page -------------------------------------------------------------------------------


def page(data: dict[str, Any]) -> str:
    setup = data["setup"]
    runs = data["runs"]
    # The runs' own wall times: an interrupted invocation's finished runs count (it resumes).
    spent = sum(r["wall_s"] if r["wall_s"] is not None else r["elapsed_s"] or 0 for r in runs)
    seeds = sorted({r["seed"] for r in runs})
    lines = [
        "# Your own objective: three examples against random sampling",
        "",
        "*Built by `benchmarks/objectives.py` from `docs/results/objectives.json`; "
        "`--from-json` rebuilds this page.*",
        "",
        "`opro solve` runs OPRO on a scoring function of your own (#29). Three small examples "
        "in `examples/objectives/`, each with a known optimum, were run with the embedded "
        f"model (`{setup['optimizer']}`, a 270M-parameter pre-trained model: the "
        "`pretrained` meta-prompt style, a pattern to continue) as OPRO and as the "
        "random-sampling baseline (`--no-show-history`: the same request with no earlier "
        "solutions shown), the hidden-word example also as OPRO without its feedback text. "
        f"Every arm: {setup['steps']} steps × {setup['samples']} samples, "
        f"`--max-tokens {setup['max_tokens']}`, the module's one starting solution, "
        f"`--target` at the optimum, seeds {', '.join(map(str, seeds))}; each run with a "
        "call cache of its own.",
        "",
        "An **evaluation** is one call of the scoring function: a solution scored, or found "
        "invalid (the function raised), step 0's starting solution included. Parse failures "
        "and duplicates call nothing. The best after N evaluations counts them in the order "
        "of the optimizer's outputs within a step; a run that reached the optimum stops "
        "there and keeps it for any N. The arms of one seed do not make the same number of "
        "evaluations (an output that does not parse calls nothing), so the tables give both "
        "the best at the end of each run (the same optimizer samples: steps × samples) and "
        "the best after the evaluations every run of the example made.",
        "",
        f"Machine: {setup['machine']}; the runs took {spent / 60:.0f} min together (2 cores "
        "shared with other work: wall times are noisy)"
        + (f"; the code of commit `{setup['commit'][:10]}`." if setup.get("commit") else "."),
        *(["", f"**The code that ran.** {setup['code']}"] if setup.get("code") else []),
        "",
    ]
    for name in EXAMPLES:
        mine = [r for r in runs if r["example"] == name]
        if not mine:
            continue
        info = data["examples"][name]
        arms = list(ARMS[name])
        common = min(reach(r) for r in mine)
        lines += [f"## {name}: {info['title']}", "", info["about"] + READING.get(name, ""), ""]
        common_label = (
            "all optimal"
            if math.isinf(common)
            else f"best after {plural(int(common), 'evaluation')}"
        )
        gap = name == "knapsack"
        lines += [
            f"| arm | best at the end, mean ± sd | per seed | evaluations per seed | "
            f"{common_label} (every run made that many), mean ± sd | per seed | "
            f"reached the optimum |" + (" gap to the optimum at the end, % |" if gap else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if gap else ""),
        ]
        for arm in arms:
            rs = sorted((r for r in mine if r["arm"] == arm), key=lambda r: r["seed"])
            ends = [r["best_score"] for r in rs if r["best_score"] is not None]
            at_common = [best_at(r, common) for r in rs]
            at_values = [v for v in at_common if v is not None]
            row = (
                f"| {arm} | {mean_sd(ends)} | {', '.join(num(v) for v in ends)} | "
                f"{', '.join(str(r['evaluations']) for r in rs)} | {mean_sd(at_values)} | "
                f"{', '.join(num(v) for v in at_common)} | "
                f"{sum(r['reached_optimum'] for r in rs)} of {len(rs)} |"
            )
            if gap:
                gaps = [(info["optimum"] - v) / info["optimum"] * 100 for v in ends]
                row += f" {mean_sd(gaps)} |"
            lines.append(row)
        lines += ["", "What the runs proposed (sums over the seeds):", ""]
        lines += [
            "| arm | proposals drawn | parse failures | duplicates | scored | invalid | "
            "optimizer tokens out | wall s per run |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for arm in arms:
            rs = [r for r in mine if r["arm"] == arm]
            walls = [r["wall_s"] if r["wall_s"] is not None else r["elapsed_s"] for r in rs]
            lines.append(
                f"| {arm} | {sum(r['drawn'] for r in rs)} | "
                f"{sum(r['parse_failures'] for r in rs)} | {sum(r['duplicates'] for r in rs)} | "
                f"{sum(r['scored'] for r in rs)} | {sum(r['invalid'] for r in rs)} | "
                f"{sum(r['completion_tokens'] for r in rs)} | "
                f"{', '.join(f'{w:.0f}' for w in walls if w is not None)} |"
            )
        lines += ["", "Best solution of each run:", ""]
        lines += ["| arm | seed | best | solution | found at evaluation |", "|---|---|---|---|---|"]
        for arm in arms:
            for r in sorted((r for r in mine if r["arm"] == arm), key=lambda r: r["seed"]):
                text = " ".join(str(r["best_solution"]).split()).replace("|", "\\|")
                lines.append(
                    f"| {arm} | {r['seed']} | {num(r['best_score'])} | `{text}` | "
                    f"{r['evaluations_to_best']} of {r['evaluations']} |"
                )
        lines += ["", "Paired by seed (better: a higher best; when both reached the optimum, in "
                  "fewer evaluations):", ""]  # fmt: skip
        for arm in arms:
            if arm == "baseline":
                continue
            others = ["baseline"] + (["OPRO, scores only"] if arm == "OPRO + feedback" else [])
            for other in others:
                lines += [
                    f"- **{arm} vs {other}**, at the evaluations both reached: "
                    f"{paired(mine, arm, other, at_end=False)}.",
                    f"- **{arm} vs {other}**, after the same optimizer samples (each run's "
                    f"end): {paired(mine, arm, other, at_end=True)}.",
                ]
        lines += ["", *seen(mine, arms), ""]
    lines += [
        *notes(runs),
        "## What this can and cannot show",
        "",
        f"{len(seeds)} seeds per arm. With {len(seeds)} pairs the smallest two-sided "
        f"sign-test p is {sign_test_p(len(seeds), 0):.2g} (every seed in one direction), so "
        "these runs cannot show a significant difference between OPRO and the baseline, "
        "whichever way they point: they show that the examples run end to end offline, what "
        "a 270M pre-trained model makes of them, and how the arms compare on these seeds. "
        "A hosted instruction-tuned optimizer is the real test (below).",
        "",
        "## Commands",
        "",
        "The whole benchmark (its runs under `--out`, default `runs/objectives`):",
        "",
        "```bash",
        data["command"],
        "```",
        "",
        "Each run, with `T` and `F` the module's task and solution format, `S` the seed, "
        "a fresh `OPRO_CACHE_DIR`, and `-q --no-report --out DIR` (the arms in the order of "
        "the tables):",
        "",
        "```bash",
    ]
    for name, commands in data["commands"].items():
        lines += [
            f"T=$(python -c 'import examples.objectives.{name} as m; print(m.TASK)')",
            f"F=$(python -c 'import examples.objectives.{name} as m; print(m.SOLUTION_FORMAT)')",
            *commands,
        ]
    lines += [
        "```",
        "",
        f"With a hosted model (**not run here**), e.g. `{HOSTED}` (`OPENAI_API_KEY` set; a "
        "chat model gets the `instruct` meta-prompt; the paper's 8 samples a step and the "
        "default `--max-tokens`), one run, and the baseline with `--no-show-history`:",
        "",
        "```bash",
        "T=$(python -c 'import examples.objectives.regex as m; print(m.TASK)')",
        "F=$(python -c 'import examples.objectives.regex as m; print(m.SOLUTION_FORMAT)')",
        'opro solve --objective examples.objectives.regex:score --task "$T" --solution-format '
        f"\"$F\" --initial '[a-z]+' --target 100 --optimizer {HOSTED} --steps 8 "
        "--samples-per-step 8 --seed 0 --budget-usd 1",
        "```",
        "",
        "or the whole benchmark, written beside this page's files rather than over them:",
        "",
        "```bash",
        f".venv/bin/python benchmarks/objectives.py --optimizer {HOSTED} --samples 8 "
        "--max-tokens 256 --out runs/objectives-hosted --json docs/results/objectives-hosted.json",
        "```",
        "",
    ]
    return "\n".join(lines)


def notes(runs: list[dict[str, Any]]) -> list[str]:
    """What the runs show across the examples, computed from them."""

    def share(rs: list[dict[str, Any]]) -> str:
        drawn = sum(r["drawn"] for r in rs)
        failed = sum(r["parse_failures"] for r in rs)
        return f"{failed} of {drawn} ({100 * failed / max(drawn, 1):.0f} %)"

    def improved(rs: list[dict[str, Any]]) -> str:
        better = sum(
            r["best_score"] is not None and r["curve"] and r["best_score"] > (r["curve"][0] or 0)
            for r in rs
        )
        return f"{better} of {len(rs)}"

    opro = [r for r in runs if r["arm"] != "baseline"]
    base = [r for r in runs if r["arm"] == "baseline"]
    optimal = sum(r["reached_optimum"] for r in runs)
    lines = [
        "## Across the examples",
        "",
        f"- Runs that reached the known optimum: {optimal} of {len(runs)}. Runs that found "
        f"anything better than the starting solution: OPRO {improved(opro)}, the baseline "
        f"{improved(base)}.",
        f"- Outputs that did not parse: OPRO {share(opro)}, the baseline {share(base)}. The "
        "baseline's meta-prompt ends at an open `<solution>` with no example before it, and "
        "the pre-trained model mostly writes prose or markup and seldom closes the tag within "
        "`--max-tokens`; OPRO's ends at `Score:` after a list of scored solutions, a pattern "
        "the model continues (a guessed score, then a solution).",
    ]
    nested = sorted(
        {
            r["example"]
            for r in opro
            if re.search(r"<solution>[^\n]*<solution>", r["last_prompt"] or "")
        }
    )
    if nested:
        lines.append(
            "- Some scored solutions hold a second `<solution>` tag (seed 0's meta-prompts "
            f"above: {', '.join(nested)}): an output such as `50 <solution>a<solution>highest` "
            "is parsed from its first `<solution>` to the closing tag, scored (as a regular "
            "expression it is one), shown, and then copied by the model in later steps."
        )
    return [*lines, ""]


def seen(runs: list[dict[str, Any]], arms: list[str]) -> list[str]:
    """What the optimizer read and wrote in the first seed's runs: OPRO's last meta-prompt,
    the baseline's (every step's is the same), and a few outputs of each."""
    seed = min(r["seed"] for r in runs)
    by = {r["arm"]: r for r in runs if r["seed"] == seed}
    lines = [f"What the optimizer read and wrote (seed {seed}):", ""]
    for arm in (arms[0], "baseline"):
        r = by.get(arm)
        if r is None or not r["last_prompt"]:
            continue
        last = "last " if arm != "baseline" else ""
        lines += [
            f"- {arm}, the {last}meta-prompt (step {r['steps']}):",
            "",
            "    ````text",
            *(f"    {line}".rstrip() for line in r["last_prompt"].splitlines()),
            "    ````",
            "",
            "    and the optimizer's outputs to it (Python reprs, cut at 160 characters):",
            "",
            "    ````text",
            *(f"    {shown_text(o)}" for o in r["last_outputs"]),
            "    ````",
            "",
        ]
    return lines


def examples_info() -> dict[str, Any]:
    regex, knapsack, feedback = (module(n) for n in EXAMPLES)
    value, items = knapsack.optimum()
    return {
        "regex": {
            "title": "a regular expression for 16 labelled strings",
            "optimum": regex.OPTIMUM,
            "about": f"Score: the percentage of the {len(regex.POSITIVES)} ZIP codes and "
            f"{len(regex.NEGATIVES)} near misses classified right (`re.fullmatch`); optimum "
            f"100, e.g. `{regex.KNOWN_BEST}`. Start: `{regex.INITIAL}` "
            f"({regex.score(regex.INITIAL):g}). An expression that does not compile is "
            "invalid.",
        },
        "knapsack": {
            "title": f"a 0/1 knapsack of {len(knapsack.WEIGHTS)} items",
            "optimum": value,
            "about": f"Score: the total value of the chosen items, capacity "
            f"{knapsack.CAPACITY}; optimum {value} (items {', '.join(map(str, items))}, by "
            f"dynamic programming, checked by brute force in the tests). Start: "
            f"`{knapsack.INITIAL}` ({knapsack.score(knapsack.INITIAL)}). A set over the "
            "capacity is invalid (the function raises), not scored 0.",
        },
        "feedback": {
            "title": "a hidden word, with and without feedback",
            "optimum": feedback.OPTIMUM,
            "about": f"Score: the letters in place in a guess of the hidden "
            f"{len(feedback.SECRET)}-letter word (optimum {feedback.OPTIMUM}); the "
            f"feedback text names them and the letters in the word elsewhere, e.g. for the "
            f"start `{feedback.INITIAL}`: *{feedback.score(feedback.INITIAL)[1]}*. OPRO + "
            "feedback shows that text beside each score (`--feedback`); OPRO, scores only, "
            "does not.",
        },
    }


def git_head() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 steps × 4 samples")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--optimizer", default="local:gemma3-270m")
    parser.add_argument("--examples", default=",".join(EXAMPLES))
    parser.add_argument("--out", type=Path, default=None, help="runs/objectives[-quick]")
    parser.add_argument("--json", type=Path, default=None, help="where the results go")
    parser.add_argument("--page", type=Path, default=None, help="where the page goes")
    parser.add_argument("--from-json", action="store_true", help="rebuild the page only")
    parser.add_argument(
        "--commit", default=None, help="the commit of the code that ran (default: git's HEAD)"
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.samples = "0", 2, 4
    folder = ROOT / "runs" / ("objectives-quick" if args.quick else "objectives")
    args.out = (args.out or folder).resolve()
    json_path = args.json or (
        args.out / "objectives.json" if args.quick else RESULTS / "objectives.json"
    )
    page_path = args.page or json_path.with_suffix(".md")
    if args.from_json:
        page_path.write_text(page(json.loads(json_path.read_text())))
        print(f"wrote {page_path}")
        return
    sys.path.insert(0, str(ROOT))
    seeds = [int(s) for s in args.seeds.split(",") if s]
    names = [n for n in args.examples.split(",") if n]
    started = time.perf_counter()
    runs = []
    print(
        f"{'example':<9} {'arm':<18} {'seed':>4} {'evals':>5} {'best':>7} {'wall s':>6}  solution"
    )
    turn = 0
    for seed in seeds:
        for name in names:
            arms = list(ARMS[name])
            turn += 1
            for arm in arms[turn % len(arms) :] + arms[: turn % len(arms)]:
                r = run_one(name, arm, seed, args)
                runs.append(r)
                wall = r["wall_s"] if r["wall_s"] is not None else r["elapsed_s"]
                print(
                    f"{name:<9} {arm:<18} {seed:>4} {r['evaluations']:>5} "
                    f"{num(r['best_score']):>7} {wall:>6.0f}  {str(r['best_solution'])[:40]!r}",
                    flush=True,
                )
    argv = ["benchmarks/objectives.py", *sys.argv[1:]]
    data: dict[str, Any] = {
        "setup": {
            "optimizer": args.optimizer,
            "steps": args.steps,
            "samples": args.samples,
            "max_tokens": args.max_tokens,
            "seeds": seeds,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
            "total_wall_s": round(time.perf_counter() - started, 1),
            "commit": args.commit or git_head(),
        },
        "command": ".venv/bin/python " + " ".join(map(shlex.quote, argv)),
        "commands": {n: [shown(n, arm, args, "S") for arm in ARMS[n]] for n in names},
        "examples": examples_info(),
        "runs": runs,
    }  # fmt: skip
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    page_path.write_text(page(data))
    print(f"wrote {json_path} and {page_path} ({data['setup']['total_wall_s'] / 60:.1f} min)")
    for name in names:
        mine = [r for r in runs if r["example"] == name]
        for arm in ARMS[name]:
            if arm == "baseline":
                continue
            rows = pairs(mine, arm, "baseline")
            print(f"{name} {arm} vs baseline, per seed: " + ", ".join(
                f"{p['outcome']} ({num(p['arm'])} vs {num(p['other'])} at {p['at']})"
                for p in rows))  # fmt: skip


if __name__ == "__main__":
    main()
