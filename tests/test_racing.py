"""Racing evaluation (``--evaluation race``): the sequential rule's error rate and power,
the racing scorer (same order for every candidate, dropped ones partial), and racing runs
end to end: partial candidates recorded, never shown or chosen, fewer scorer calls, and a
resumed run equal to an uninterrupted one."""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opro import api
from opro.data import Example
from opro.eval.racing import RaceRule, hypergeometric_upper, race_order
from opro.eval.scorer import ScorerOptions, race_instructions
from opro.llm.fake import FakeLLM
from opro.llm.usage import Caps
from opro.problems.instructions.spec import InstructionsSpec
from opro.runner import RunOptions, RunResult
from opro.types import Request
from tests.conftest import ROOT, SHARED_DATA, run_cli
from tests.doubles import kill_after_lines, run_kind, steps_of, summary_of


def test_rounds_end_at_sizes_fixed_by_the_fold_alone() -> None:
    assert RaceRule(rounds=10).ends(50) == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert RaceRule(rounds=10).ends(7) == [1, 2, 3, 4, 5, 6, 7]
    assert RaceRule(rounds=4).ends(10) == [3, 5, 8, 10]
    with pytest.raises(ValueError, match="delta"):
        RaceRule(delta=0)
    with pytest.raises(ValueError, match="rounds"):
        RaceRule(rounds=1)


def test_the_bound_is_the_mean_at_the_end_and_never_above_the_certain_bound() -> None:
    rule = RaceRule()
    assert rule.upper_bound(30, 50, 50) == pytest.approx(0.6)
    for n in range(1, 50):
        for total in (0, n // 2, n):
            bound = rule.upper_bound(total, n, 50)
            assert total / n <= bound + 1e-12 or bound == (total + 50 - n) / 50
            assert bound <= (total + 50 - n) / 50 + 1e-12
    # It tightens as more of the fold is scored.
    assert rule.upper_bound(0, 10, 50) > rule.upper_bound(0, 20, 50) > rule.upper_bound(0, 40, 50)


def _drop_rate(
    population: np.ndarray, bar: float, rule: RaceRule, trials: int, binary: bool = False
) -> tuple[float, float]:
    """Over ``trials`` random orders: how often a candidate with these per-example scores is
    dropped, and the mean share of the fold it is scored on."""
    rng = np.random.default_rng(1)
    n_total = len(population)
    ends = rule.ends(n_total)
    dropped, scored = 0, 0
    for _ in range(trials):
        sums = np.cumsum(population[rng.permutation(n_total)])
        for end in ends:
            if rule.hopeless(float(sums[end - 1]), end, n_total, bar, binary):
                dropped += 1
                break
        scored += end
    return dropped / trials, scored / (trials * n_total)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("share", [0.1, 0.5])
@pytest.mark.parametrize("delta", [0.05, 0.3])
@pytest.mark.parametrize("n_total", [20, 50, 261])
def test_a_candidate_that_reaches_the_bar_is_dropped_at_most_delta_of_the_time(
    delta: float, n_total: int, share: float, binary: bool
) -> None:
    rule = RaceRule(delta=delta)
    right = max(1, round(n_total * share))  # its full-fold accuracy is exactly the bar
    population = np.array([1.0] * right + [0.0] * (n_total - right))
    rate, _ = _drop_rate(population, right / n_total, rule, 3000, binary)
    assert rate <= delta


def test_the_exact_bound_for_0_1_scores_is_the_hypergeometric_quantile() -> None:
    def at_most(k: int, n: int, ones: int, n_total: int) -> float:  # exact, in integers
        ways = sum(math.comb(ones, i) * math.comb(n_total - ones, n - i) for i in range(k + 1))
        return ways / math.comb(n_total, n)

    for n_total in (7, 20, 50):
        for n in range(1, n_total):
            for k in range(n + 1):
                for alpha in (0.0049, 0.049, 0.29):  # (no exact ties with a probability)
                    bound = hypergeometric_upper(k, n, n_total, alpha)
                    possible = range(k, n_total - (n - k) + 1)
                    expected = max(
                        m for m in possible if m == k or at_most(k, n, m, n_total) > alpha
                    )
                    assert bound == expected, (k, n, n_total, alpha)


def test_the_exact_bound_drops_a_weak_candidate_sooner_than_hoeffding() -> None:
    rule = RaceRule()
    population = np.array([1.0] * 2 + [0.0] * 48)  # 4 % against a bar of 20 % (BBH's 50)
    _, share = _drop_rate(population, 0.2, rule, 500)
    exact_rate, exact_share = _drop_rate(population, 0.2, rule, 500, binary=True)
    assert exact_rate == 1.0
    assert exact_share < share - 0.2


def test_a_clearly_worse_candidate_is_dropped_early() -> None:
    rule = RaceRule()
    population = np.array([1.0] * 26 + [0.0] * 235)  # 10 % against a bar of 50 %
    rate, share = _drop_rate(population, 0.5, rule, 500)
    assert rate == 1.0
    assert share <= 0.3
    # Not even a candidate 10 points under the bar is scored in full every time.
    population = np.array([1.0] * 104 + [0.0] * 157)  # 40 %
    rate, share = _drop_rate(population, 0.5, rule, 500)
    assert rate > 0.5
    assert share < 0.9


def test_the_order_is_seeded_by_the_run_seed_and_the_step() -> None:
    assert race_order(30, 0, 3) == race_order(30, 0, 3)
    assert sorted(race_order(30, 0, 3)) == list(range(30))
    assert race_order(30, 0, 3) != race_order(30, 0, 4)
    assert race_order(30, 0, 3) != race_order(30, 1, 3)


def _examples(n: int) -> list[Example]:
    return [Example(f"question {i}", "True" if i % 2 else "False", "boolean", i) for i in range(n)]


def _scorer(requests: list[Request]) -> FakeLLM:
    """Right on every question under "Good.", wrong on every one under "Bad.", right on
    two in three under "Fair."."""

    def answer(request: Request) -> str:
        requests.append(request)
        i = int(re.search(r"question (\d+)", request.prompt).group(1))  # type: ignore[union-attr]
        truth = bool(i % 2)
        right = "Good." in request.prompt or ("Fair." in request.prompt and i % 3 != 0)
        return f" {truth if right else not truth}"

    return FakeLLM.from_function(answer)


def test_race_scores_every_candidate_on_the_same_order_and_drops_the_hopeless() -> None:
    requests: list[Request] = []
    examples = _examples(40)
    order = race_order(40, 0, 1)
    results = asyncio.run(
        race_instructions(
            _scorer(requests),
            ["Good.", "Bad.", "Fair."],
            examples,
            ScorerOptions(max_tokens=4),
            bar=50.0,
            order=order,
            rule=RaceRule(),
        )
    )
    good, bad, fair = results
    assert not good.partial
    assert good.accuracy == 100.0
    assert bad.partial
    assert 0 < bad.scored < 40
    assert bad.accuracy == 0.0
    assert not fair.partial  # about 67 %: never confidently under 50 %
    # The dropped one was scored on the first examples of the order, in the race's rounds.
    scored = [j for j, mark in enumerate(bad.marks) if mark != "-"]
    assert sorted(scored) == sorted(order[: bad.scored])
    assert bad.scored in RaceRule().ends(40)
    assert bad.marks.count("-") == 40 - bad.scored
    assert len(requests) == 40 + 40 + bad.scored
    assert bad.to_json()["scored"] == bad.scored
    assert "scored" not in good.to_json()


def _race(out: Path, *, caps: Caps | None = None, **settings: Any) -> RunResult:
    values: dict[str, Any] = {
        "dataset": "bbh:boolean_expressions",
        "scorer": "fake:tests.doubles:boolean_scorer",
        "optimizer": "fake:tests.doubles:instruction_proposer",
        "data_dir": str(SHARED_DATA),
        "initial": ["", "Let's solve the problem.", "Check."],
        "steps": 5,
        "samples_per_step": 6,
        "top_k": 3,
        "evaluation": "race",
    } | settings
    return run_kind(InstructionsSpec, out, caps=caps, **values)


def test_a_racing_run_records_partial_candidates_and_never_shows_or_chooses_them(
    tmp_path: Path,
) -> None:
    raced = _race(tmp_path / "race")
    full = _race(tmp_path / "full", evaluation="full")
    steps = steps_of(tmp_path / "race")
    partial = [(s["step"], c) for s in steps for c in s["candidates"] if "partial" in c]
    assert partial, "racing dropped nothing: the test would show nothing"
    assert all(step > 0 for step, _ in partial)  # the starting instructions are scored in full
    for _, c in partial:
        marks = c["details"]["marks"]
        assert c["partial"] == {"scored": 50 - marks.count("-"), "of": 50}
        assert 0 < c["partial"]["scored"] < 50
        scored = [m for m in marks if m != "-"]
        assert c["score"] == pytest.approx(100 * scored.count("1") / len(scored))
    later_prompts = [s["meta_prompt"] for s in steps if s["meta_prompt"]]
    for step, c in partial:
        shown = f"<TEXT>{c['text']}</TEXT>"
        assert not any(shown in p for p in later_prompts[step:]), c["text"]
    summary = raced.summary.to_json()
    texts = {c["text"] for _, c in partial}
    assert summary["best_instruction"] not in texts
    assert not texts & {r["instruction"] for r in summary["test_evaluation"]}
    complete = [c for s in steps for c in s["candidates"] if "partial" not in c]
    assert summary["best_train_score"] == max(c["score"] for c in complete)
    assert raced.summary.usage["scorer"].calls < full.summary.usage["scorer"].calls
    report = raced.report().read_text()
    assert "partial" in report
    assert "Racing stopped scoring" in report


def test_a_racing_run_stopped_by_a_budget_resumes_to_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    whole = _race(tmp_path / "whole")
    cut = _race(tmp_path / "cut", caps=Caps(max_calls=400))
    assert cut.stop_reason == "budget"
    resumed = api.resume(tmp_path / "cut", RunOptions(caps=Caps(max_calls=10**6), trust_code=True))
    assert resumed.summary.status == "finished"

    def history(run: Path) -> list[Any]:
        return [(s["step"], s["outputs"], s["candidates"]) for s in steps_of(run)]

    assert history(tmp_path / "cut") == history(tmp_path / "whole")
    for key in ("best_instruction", "best_train_score", "best_test_score", "paired_test"):
        assert resumed.summary.details[key] == whole.summary.details[key], key


@pytest.mark.slow
def test_a_racing_run_killed_at_random_steps_resumes_to_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    seed = random.randrange(10**6)
    print(f"kill-moment seed: {seed}")
    args = [
        "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA),
        "--scorer", "fake:tests.doubles:boolean_scorer",
        "--optimizer", "fake:tests.doubles:instruction_proposer",
        "--initial", "", "--initial", "Let's solve the problem.", "--initial", "Check.",
        "--steps", "12", "--samples-per-step", "6", "--top-k", "3", "--evaluation", "race",
        "--no-cache",
    ]  # fmt: skip
    cli = [sys.executable, "-m", "opro.cli"]
    reference = run_cli(*args, "--out", str(tmp_path / "ref"), timeout=300)
    assert reference.returncode == 0, reference.stderr
    partial = [c for s in steps_of(tmp_path / "ref") for c in s["candidates"] if "partial" in c]
    assert partial, "the reference run must drop some candidates, or racing is not tested"

    out = tmp_path / "killed"
    kill_points = sorted(random.Random(seed).sample(range(1, 12), 3))
    statuses = [
        kill_after_lines(
            [*cli, *args, "--out", str(out)]
            if i == 0
            else [*cli, "resume", str(out), "--trust-code"],
            out / "steps.jsonl",
            k,
            dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        for i, k in enumerate(kill_points)
    ]
    assert statuses == [-signal.SIGKILL] * 3, f"seed {seed}: kills at {kill_points}: {statuses}"
    done = run_cli("resume", str(out), "--trust-code", timeout=300)
    assert done.returncode == 0, done.stderr

    def history(run: Path) -> list[Any]:
        return [(s["step"], s["outputs"], s["candidates"]) for s in steps_of(run)]

    assert [s[0] for s in history(out)] == list(range(13)), f"seed {seed}"
    assert history(out) == history(tmp_path / "ref"), f"seed {seed}"
    ref, got = summary_of(tmp_path / "ref"), summary_of(out)
    for key in ("best_instruction", "best_train_score", "best_test_score"):
        assert got[key] == ref[key], (seed, key)
