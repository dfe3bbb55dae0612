"""``opro evaluate``: score instructions on a task's split, side by side, with a paired test
against the first; on a run's own task with ``--instructions-from RUN``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opro.cli.options import (
    add_cache_arguments,
    add_caps_arguments,
    add_spec_arguments,
    caps_from,
    given,
    spec_from,
)
from opro.cli.run_commands import display_of
from opro.errors import BudgetExceeded, ConfigError, RetriesExhausted
from opro.problems.instructions.spec import InstructionsSpec
from opro.progress_text import printable

if TYPE_CHECKING:  # the API loads when a command runs: `opro --help` stays fast
    from opro import api

EVALUATE_SETTINGS = {"dataset", "data_dir", "test_dataset", "question_field", "answer_field",
                     "train_ratio", "train_size", "position", "answer_mode", "scorer_max_tokens",
                     "extract_answer", "metric", "system_prompt", "instruction_in",
                     "seed"}  # fmt: skip
"""The instruction-task settings that ``opro evaluate`` shares with ``opro optimize``."""


def add_evaluate_command(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy of instructions on a dataset split",
        examples=[
            'opro evaluate --dataset bbh:navigate --max-examples 20 --instruction "" '
            '--instruction "Think step by step."',
            "opro evaluate --instructions-from runs/optimize-20261121-101500 --examples",
            "opro evaluate --dataset gsm8k --scorer openai:gpt-4o-mini --position Q_begin "
            '--instruction "Let\'s think step by step." --json',
        ],
    )

    def shared(name: str) -> bool:
        roles = ("scorer", "judge")
        return name in EVALUATE_SETTINGS or name in roles or name.startswith(("scorer_", "judge_"))

    add_spec_arguments(p, InstructionsSpec, only=shared, required=False)
    p.add_argument(
        "--instruction",
        action="append",
        metavar="TEXT",
        help="an instruction to score; repeat for several (the first is the baseline)",
    )
    p.add_argument(
        "--instructions-from",
        type=Path,
        metavar="RUN_DIR",
        help="score a run's initial instruction and its --top best by training accuracy, on "
        "the run's task: its data and folds, metric, scorer and how it was prompted (a flag "
        "given changes that setting; --dataset is then not needed)",
    )
    p.add_argument("--top", type=int, default=3, help="with --instructions-from (default 3)")
    p.add_argument(
        "--allow-overlap",
        action="store_true",
        help="with --instructions-from: score a test fold that holds some of the run's "
        "training questions (refused by default: their accuracy is not a held-out one)",
    )
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="with --instructions-from: let the run's task import the code its spec names (a "
        "module:function metric) from a run dir made elsewhere: only for run dirs you trust",
    )
    p.add_argument("--split", choices=["train", "test", "all"], default="test", help="default test")
    p.add_argument(
        "--concurrency",
        type=int,
        metavar="C",
        help="scorer calls in flight (= --scorer-concurrency)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="tokens per scorer answer (= --scorer-max-tokens; the optimizer's --max-tokens "
        "is `opro optimize`'s)",
    )
    p.add_argument("--max-examples", type=int, metavar="N", help="a seeded subsample of N examples")
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object on stdout: {"dataset": ..., "instructions": [...]}',
    )
    p.add_argument(
        "--examples",
        action="store_true",
        help=f"show {SHOWN_EXAMPLES} examples per instruction: question, output, target, right "
        "or wrong (with --json: every example)",
    )
    add_cache_arguments(p)
    add_caps_arguments(p)
    p.set_defaults(run=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from opro import api

    instructions = list(args.instruction or [])
    values = given(args, InstructionsSpec)
    if args.concurrency is not None:  # the short form of --scorer-concurrency
        values["scorer_concurrency"] = args.concurrency
    if args.max_tokens is not None:  # here the scorer's answer: no optimizer is run
        values["scorer_max_tokens"] = args.max_tokens
    trained = None
    if args.instructions_from is not None:
        from opro.evaluation import run_task

        instructions += api.instructions_from(args.instructions_from, args.top)
        trained, task = run_task(args.instructions_from, values, trust_code=args.trust_code)
    elif "dataset" not in values:
        raise ConfigError(
            "`dataset` is required: name the data to score on (or take a run's task with "
            "--instructions-from RUN_DIR)"
        )
    else:
        for flag in ("allow_overlap", "trust_code"):
            if getattr(args, flag):
                raise ConfigError(f"`{flag}` is for --instructions-from")
        task = spec_from(InstructionsSpec, values)
    evaluation = api.evaluate(
        task,
        list(dict.fromkeys(instructions)),
        split=args.split,
        max_examples=args.max_examples,
        seed=task.engine.seed,
        cache=args.cache,
        use_cache=not args.no_cache,
        caps=caps_from(args),
        progress=display_of(args),
        trained_on=trained,
        allow_overlap=args.allow_overlap,
    )
    if args.json:
        print(json.dumps(evaluation.to_json(examples=args.examples), ensure_ascii=False, indent=2))
    else:
        _print_evaluation(evaluation)
        if args.examples:
            _print_examples(evaluation)
    failed = sum(r.count("failed") for r in evaluation.results)
    # The first failure's cause (a long Retry-After, a timeout...) in the one line itself.
    cause = next(
        (e.error for r in evaluation.results for e in r.results if e.status == "failed"), None
    )
    because = f" ({' '.join(cause.split())})" if cause else ""
    failures = f"{failed} example(s) failed after retries{because}; " if failed else ""
    if evaluation.stopped:  # one notice: a stopped command's stderr stays one line
        asked = sum(r.n - r.count("stopped") for r in evaluation.results)
        total = sum(r.n for r in evaluation.results)
        display_of(args).notice(
            f"opro: evaluate stopped: {evaluation.stopped}; {asked} of {total} (instruction, "
            f"example) pairs asked, {failures}the accuracy is over those answered: rerun the "
            "same command with a higher cap to finish (answered calls come from the cache)"
        )
        return BudgetExceeded.exit_code
    if failed:
        display_of(args).notice(
            f"opro: {failures}they are left out of the accuracy; rerun the same command to "
            "retry them (answered calls come from the cache)"
        )
        return RetriesExhausted.exit_code
    return 0


def _print_evaluation(evaluation: api.Evaluation) -> None:
    stopped = evaluation.stopped is not None  # a column of the pairs not asked
    print(
        f"{evaluation.dataset} [{evaluation.split}] scorer {evaluation.scorer}, "
        f"position {evaluation.position}"
    )
    print(
        f"{'accuracy':>8} {'n':>5} {'correct':>7} {'empty':>5} {'failed':>6} "
        + (f"{'stopped':>7} " if stopped else "")
        + f"{'p vs 1st':>8}  instruction"
    )
    for result, paired in zip(evaluation.results, evaluation.paired, strict=True):
        acc = "-" if result.accuracy is None else f"{result.accuracy:.1f}"
        p = "" if paired is None else f"{paired.p_value:.3g}"
        text = printable(result.instruction) if result.instruction else EMPTY_INSTRUCTION
        print(
            f"{acc:>8} {result.n:>5} {result.count('correct'):>7} {result.count('empty'):>5} "
            f"{result.count('failed'):>6} "
            + (f"{result.count('stopped'):>7} " if stopped else "")
            + f"{p:>8}  {text}"
        )
    u = evaluation.usage
    print(
        f"elapsed {evaluation.elapsed_s:.1f} s; calls {u.calls}, cached {u.cached_calls}, "
        f"retries {u.retries}, tokens {u.prompt_tokens}+{u.completion_tokens}"
        + (f"; stopped: {evaluation.stopped}" if stopped else "")
    )


EMPTY_INSTRUCTION = '"" (the empty instruction)'
"""How the empty instruction reads in a table: what it is, not a literal text."""
SHOWN_EXAMPLES = 3
"""Examples per instruction that ``opro evaluate --examples`` prints (``--json``: all)."""
VERDICT = {"correct": "right", "wrong": "wrong", "empty": "no answer", "failed": "call failed"}


def _print_examples(evaluation: api.Evaluation) -> None:
    """A few examples per instruction, as a person checks them: the question, the scorer's
    output, the target, and whether the metric counted it right."""

    def cut(text: str, width: int = 100) -> str:
        text = " ".join(printable(text).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    for result in evaluation.results:
        text = printable(result.instruction) if result.instruction else EMPTY_INSTRUCTION
        print(f"\nexamples for {text}:")
        shown = [
            (r, x)
            for r, x in zip(result.results, evaluation.examples, strict=False)
            if r.status in VERDICT
        ][:SHOWN_EXAMPLES]
        for r, x in shown:
            print(f"  #{r.index} {VERDICT[r.status]}")
            print(f"    question: {cut(x.question)}")
            print(f"    output:   {cut(r.error or r.prediction) or '(nothing)'}")
            print(f"    target:   {cut(x.answer)}")
