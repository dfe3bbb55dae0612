"""The commands that run OPRO: one per registered kind (``opro linreg``, ``opro tsp``,
``opro optimize``...), ``opro resume`` and ``opro sweep``. Each turns its flags into a spec
and run options and calls the runner; a run's summary goes to stdout, a stopped run's
notice (with the command that continues it) to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from opro.cli.hints import resume_command, steps_done, stopped_notice
from opro.cli.options import (
    add_cache_arguments,
    add_caps_arguments,
    add_spec_arguments,
    caps_from,
    given,
    path_arg,
    spec_from,
    uri_arg,
    with_flags,
)
from opro.cli.outcome import flagged, headline, verdict_lines
from opro.errors import ConfigError, OproError
from opro.problems.registry import kind_of, kinds

if TYPE_CHECKING:
    from opro import sweep
    from opro.executors import Executor, TaskResult
    from opro.progress_display import Display
    from opro.run_values import RunResult

# The runner, the API, sweeps and executors load when a command runs (inside the commands
# below), not when the parser is built: `opro COMMAND --help` stays fast.


def add_run_commands(sub: Any) -> None:
    for kind in kinds():
        parser = sub.add_parser(kind.command, help=kind.cli.help, examples=kind.cli.examples)
        kind.cli.add_arguments(parser)
        add_spec_arguments(parser, kind.spec)
        parser.add_argument(
            "--out", type=path_arg, metavar="DIR", help="run directory (default runs/COMMAND-TIME)"
        )
        add_end_arguments(parser)
        add_cache_arguments(parser)
        add_caps_arguments(parser)
        parser.set_defaults(run=cmd_run, kind=kind.name)


def add_end_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object on stdout (a run's summary; `tsp baselines`: the baselines) "
        "instead of the human summary",
    )
    parser.add_argument(
        "--no-report", action="store_true", help="do not write report.html at the end"
    )
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        type=uri_arg,
        metavar="URI",
        help="log the run to MLflow at its end (default URI: $MLFLOW_TRACKING_URI, else "
        "./mlruns): settings, per-step scores, the best solution, the report",
    )


def cmd_run(args: argparse.Namespace) -> int:
    from opro import runner
    from opro.run_values import RunOptions
    from opro.runner import default_out

    kind = kind_of(args.kind)
    code = kind.cli.action(args)
    if code is not None:
        return code
    spec = spec_from(kind.spec, given(args, kind.spec) | kind.cli.settings_from(args))
    out = args.out or default_out(kind.command)
    options = RunOptions(
        out=out,
        caps=caps_from(args),
        cache=args.cache,
        use_cache=not args.no_cache,
        progress=flagged(display_of(args)),
        if_exists="refuse",  # a run there is continued by `opro resume`, as the error says
    )
    # The runner itself (no notebook here): CLI -> runner -> optimizer and problem.
    return finish(asyncio.run(runner.astart(spec, options)), args)


def add_resume_command(sub: Any) -> None:
    parser = sub.add_parser(
        "resume",
        help="continue a killed or stopped run from its last step",
        examples=[
            "opro resume runs/optimize-20261121-101500",
            "opro resume runs/optimize-20261121-101500 --budget-usd 10   # a raised cap",
            "opro resume runs/from-a-colleague --trust-code   # a run dir made elsewhere",
        ],
    )
    parser.add_argument("dir", type=path_arg, help="the run directory")
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="let the run import the Python code its spec names (fake:module:function models, "
        "a module:function metric): only for run dirs you trust",
    )
    parser.add_argument(
        "--base-url",
        action="append",
        default=[],
        type=_role_url,
        metavar="ROLE=URL",
        help="a role's base URL again, where the run dir keeps it without its secret "
        "(user:pass@, ?api-key=); repeat per role",
    )
    add_end_arguments(parser)
    add_caps_arguments(parser)
    parser.set_defaults(run=cmd_resume)


def _role_url(text: str) -> tuple[str, str]:
    role, sep, url = text.partition("=")
    if not sep or not role or not url:
        raise argparse.ArgumentTypeError(f"{text!r} is not ROLE=URL, e.g. scorer=http://...")
    return role, url


def cmd_resume(args: argparse.Namespace) -> int:
    from opro import runner
    from opro.run_values import RunOptions

    options = RunOptions(
        caps=caps_from(args),
        progress=flagged(display_of(args)),
        trust_code=args.trust_code,
        base_urls=dict(args.base_url),
    )
    result = asyncio.run(runner.aresume(args.dir, options))
    if result.already_finished:
        # A run interrupted while its report was written: the report, as the run would have.
        missing = not args.no_report and not os.path.lexists(result.run_dir / "report.html")
        then = "writing its missing report" if missing else "nothing to do"
        print(f"{args.dir} already finished ({result.stop_reason}); {then}")
        if missing and (report := _report(result.run_dir, display_of(args))) is not None:
            print(f"report: {report}")
        _track(result.run_dir, args)
        return 0
    return finish(result, args)


def display_of(args: argparse.Namespace) -> Display:
    """The display ``main`` opened for this command."""
    display: Display = args.display
    return display


def finish(result: RunResult, args: argparse.Namespace) -> int:
    """The summary on stdout — for people, or ``--json`` (per-example marks left out: they
    stay in summary.json) — and the report; a stopped run's notice on stderr. Exit 0 when
    finished or stopped by a cap, 4 when the LLM failed."""
    display = display_of(args)
    report = None if args.no_report else _report(result.run_dir, display)
    _track(result.run_dir, args)
    if args.json:
        print(json.dumps(brief(result.summary.to_json()), indent=2, ensure_ascii=False))
    else:
        for line in describe(result):
            print(line)
        print(f"run dir: {result.run_dir}")
        if report is not None:
            print(f"report: {report}")
    if result.status != "finished":
        display.notice(stopped_notice(result.run_dir, result.stop_reason, result.message))
    return 4 if result.stop_reason == "llm_error" else 0


def _track(run_dir: Path, args: argparse.Namespace) -> None:
    """``--mlflow``: log the run; a failure is one line (the run itself is saved)."""
    if args.mlflow is None:
        return
    from opro.tracking import log_run

    run_id = log_run(run_dir, args.mlflow or None)
    display_of(args).notice(f"opro: logged {run_dir} to MLflow (run {run_id})")


def describe(result: RunResult) -> list[str]:
    from opro.problems.jobs import JobSummary

    head = f"{result.status} ({result.stop_reason})"
    summary = result.summary
    if isinstance(summary, JobSummary):
        numbers = ", ".join(
            f"{name} {m.mean:.4g} ± {m.std:.2g}" for name, m in summary.means.items()
            if m.mean is not None and m.std  # the numbers that vary over the runs
        )  # fmt: skip
        reached = f"{summary.reps_reaching_optimum} of {summary.reps} reached the optimum"
        return [f"{head}: {summary.reps_finished} of {summary.reps} runs finished; {reached}",
                f"means over the runs: {numbers or '-'}", *verdict_lines(result)]  # fmt: skip
    return [
        f"{head} {steps_done(summary)}{headline(result)}",
        *verdict_lines(result),
        *kind_of(result.spec.kind).cli.describe(summary),
    ]


def _report(run_dir: Path, display: Display) -> Path | None:
    """The run's report.html; a report that cannot be drawn is a notice, not a failed run."""
    from opro import api

    try:
        return api.report([run_dir])
    except OproError as exc:
        display.notice(f"opro: no report: {exc}")
        return None


def brief(summary: dict[str, JsonValue]) -> dict[str, JsonValue]:
    rows = summary.get("test_evaluation")
    if not isinstance(rows, list) or not rows:
        return summary
    short: list[JsonValue] = [
        {k: v for k, v in r.items() if k != "marks"} if isinstance(r, dict) else r for r in rows
    ]
    return summary | {"test_evaluation": short}


def add_sweep_command(sub: Any) -> None:
    parser = sub.add_parser(
        "sweep",
        help="ablations: one command over several settings and seeds, from a TOML file, "
        "then their reports",
        examples=[
            "opro sweep examples/sweeps/quick.toml --out runs/quick",
            "opro -q sweep examples/sweeps/paper_ablations.toml --parallel 4 --keep-going",
            "opro sweep examples/sweeps/paper_ablations.toml --executor ray --address auto",
        ],
    )
    parser.add_argument(
        "file", type=Path, metavar="SWEEP.toml", help="the sweep file (docs/how-to/sweeps.md)"
    )
    parser.add_argument(
        "--out",
        type=path_arg,
        metavar="DIR",
        help="where the runs go (default runs/sweep-DATE); run again to continue a sweep",
    )
    group = parser.add_argument_group("executor (where the runs run; the results are the same)")
    group.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: this machine (default); ray: a Ray cluster, each run a task "
        "(pip install 'opro[ray]'; --out on a filesystem every node sees)",
    )
    group.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="local: runs at once, each in its own process (default 1: one after another)",
    )
    group.add_argument(
        "--keep-going",
        action="store_true",
        help="when a run stops or fails, still start the others (default: start no more)",
    )
    group.add_argument(
        "--address",
        metavar="ADDR",
        help="ray: the cluster, e.g. auto or HOST:6379 (default $RAY_ADDRESS, else a Ray "
        "started on this machine for the sweep)",
    )
    group.add_argument(
        "--task-cpus",
        type=float,
        metavar="X",
        help="ray: CPUs per run (default 1; less for runs that mostly wait on model servers)",
    )
    group.add_argument("--task-gpus", type=float, metavar="X", help="ray: GPUs per run (default 0)")
    group.add_argument(
        "--task-resource",
        action="append",
        type=_resource,
        metavar="NAME=X",
        help="ray: a custom resource per run, e.g. scorer=1 to bound the runs sharing a "
        "scorer; repeat",
    )
    group.add_argument(
        "--task-retries",
        type=int,
        metavar="N",
        help="ray: times a run whose worker died starts again, resuming (default 3)",
    )
    parser.set_defaults(run=cmd_sweep)


def _resource(text: str) -> tuple[str, float]:
    name, sep, amount = text.partition("=")
    try:
        value = float(amount)
    except ValueError:
        value = -1.0
    if not sep or not name or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=AMOUNT, e.g. scorer=1")
    return name, value


RAY_FLAGS = {"address": "--address", "task_cpus": "--task-cpus", "task_gpus": "--task-gpus",
             "task_resource": "--task-resource", "task_retries": "--task-retries"}  # fmt: skip


def executor_from(args: argparse.Namespace) -> Executor:
    """The executor the flags name; a flag of the other executor is refused."""
    from opro.executors import LocalExecutor

    if args.executor == "local":
        for name, flag in RAY_FLAGS.items():
            if getattr(args, name) is not None:
                raise ConfigError(f"{flag} is for --executor ray")
        return LocalExecutor(1 if args.parallel is None else args.parallel)
    if args.parallel is not None:
        raise ConfigError(
            "--parallel is for --executor local: on Ray the cluster bounds the runs in flight "
            "(--task-cpus, --task-resource)"
        )
    from opro.executors.ray_cluster import RayExecutor

    return RayExecutor(
        address=args.address,
        cpus=1.0 if args.task_cpus is None else args.task_cpus,
        gpus=args.task_gpus or 0.0,
        resources=dict(args.task_resource or []),
        retries=3 if args.task_retries is None else args.task_retries,
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    from opro import api, sweep, sweep_results
    from opro.executors import RunTask, run_sweep
    from opro.runner import default_out

    plan = sweep.load_sweep(args.file)
    out: Path = args.out or default_out("sweep")
    runs = plan.runs(out, str(args.file))  # every setting checked before the first run
    executor = executor_from(args)
    sweep.claim(out, plan)
    display = display_of(args)
    tasks = [
        RunTask(i, f"{run.setting.label}, seed {run.seed}", run.directory, run.spec, run.caps,
                None if run.cache is None else str(run.cache), run.use_cache)
        for i, run in enumerate(runs)
    ]  # fmt: skip
    done = [sweep.finished(run.directory) for run in runs]
    outcome = run_sweep(tasks, executor, display, keep_going=args.keep_going, done=done)
    if not outcome.finished:
        for run, result in zip(runs, outcome.results, strict=True):
            if result is not None and result.status != "finished":
                display.notice(
                    f"opro: sweep stopped at {run.directory} ({result.status}: "
                    f"{with_flags(result.reason, False)}): " + _how(result, run)
                )
        return outcome.exit_code
    summaries = [sweep.read_summary(run.directory) for run in runs]
    result_table = sweep_results.write_results(out, plan, runs, summaries)
    reports = [
        api.report(
            [run.directory for run in members],
            out=out / group / "report.html",
            labels=[run.setting.label for run in members],
            title=f"opro sweep: {group}",
        )
        for group, members in sweep_results.groups(runs).items()
    ]
    print(sweep_results.table(result_table))
    print(f"results: {out / 'sweep.json'}")
    for path in reports:
        print(path)
    return 0


def _how(result: TaskResult, run: sweep.PlannedRun) -> str:
    """How to continue a sweep that ``result`` stopped."""
    if result.reason.startswith("budget"):
        command = resume_command(run.directory, "budget", result.reason)
        return f"raise its cap with `{command}`, then run the same `opro sweep` again"
    if result.status == "failed" and result.exit_code == 2:
        return "fix that, then run the same `opro sweep` again"
    return "run the same `opro sweep` command again to continue"
