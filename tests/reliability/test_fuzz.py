"""No input reaches an internal error (issue #17, item 7): a property-based fuzz test.

For every command of ``opro.cli.build_parser()`` hypothesis draws an argument vector: any
subset of the command's flags, each with a hostile value for its kind (negative, zero, huge,
NaN, infinite, empty, control characters, a wrong type) or a hostile file (datasets, TSP
instances, sweep files, grammars, caches, run dirs: corrupt, truncated, binary, endless,
nested too deeply, naming untrusted code) — and the models are ``fake:`` doubles or the
loopback stub server answering with injected faults and malformed replies. Each vector runs
in this process (``opro.cli.main``: no interpreter start), and must end with a documented
exit code (0, 2, 3, 4, 5), stderr one line when it is not 0, no traceback, no run dir left
"running", and nothing half-written (no temp or partial file).

Bounded in time: every command that calls a model gets ``--time-limit 2`` appended (a run,
two steps and one repetition unless the vector sets them), and the
number of examples per command is small and the vectors are the same each time; for a long
hunt, ``OPRO_FUZZ_EXAMPLES=500 OPRO_FUZZ_RANDOM=1``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opro.cli import build_parser
from opro.testing.stub_server import MALFORMED, StubServer, random_plan
from tests.conftest import SHARED_DATA, Ran

EXAMPLES = int(os.environ.get("OPRO_FUZZ_EXAMPLES", "25"))
EXIT_CODES = {0, 2, 3, 4, 5}
CALLS_MODELS = {"complete", "linreg", "tsp", "optimize", "evaluate", "resume"}
SUBPARSERS = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
COMMANDS: dict[str, argparse.ArgumentParser] = dict(SUBPARSERS.choices)
SKIPPED = {"help", "verbose", "quiet", "log_json", "time_limit_s"}
"""-v would re-raise an internal error (its purpose); --log-json changes stderr's format;
the time limit is appended to bound each run."""

INTS = ["-1", "0", "1", "2", "3", "99999999999999999999", "abc", "", "1.5"]
SMALL_INTS = ["-1", "0", "1", "2", "3", "abc", ""]
"""For numbers that size real work (points, a model's context): never huge."""
FLOATS = ["-1", "0", "0.5", "1", "2", "nan", "inf", "-inf", "1e300", "x", ""]
TEXTS = ["", " ", "x", "\x1b[31mred\x1b[0m", "a\nb", "é🙂", "../../etc/passwd", "x" * 5000, "%s{}",
         "bad\udcff"]  # fmt: skip
"""The last: the bytes b"bad\\xff" in argv (invalid UTF-8) as Python hands them over."""
BIG = "9" * 5000
"""An integer over Python's 4,300 digits of int(str)."""
PRICES = ["1,1", "0,0", "nan,inf", "-1,2", "1", "a,b", "1e300,1e300", ""]
MODELS = ["fake:echo", "fake:tests.doubles:garbage", "fake:nope:x", "nope:x", "openai",
          "local:gemma-9b", "local:/etc/passwd", "@openai", "@openai", ""]  # fmt: skip


# -- hostile files -------------------------------------------------------------------------

NESTED = "[" * 100_000 + "]" * 100_000
DATASETS = {
    "good.jsonl": '{"question": "True and False is", "answer": "False"}\n' * 12,
    "empty.jsonl": "",
    "binary.jsonl": "\x00\xff\xfe\x00garbage",
    "badline.jsonl": '{"question": "q", "answer": 1}\n{"question": \n',
    "array.jsonl": "[1, 2, 3]\n",
    "types.jsonl": '{"question": 5, "answer": [1]}\n',
    "nested.jsonl": NESTED + "\n",
    "one.jsonl": '{"question": "q", "answer": "a"}\n',
    "good.csv": "question,answer\n" + "1 + 1,2\n" * 12,
    "ragged.csv": 'question,answer\n"x,1,2,3\n',
    "nul.csv": "question,answer\n\x00,\x00\n",
    "hugefield.csv": "question,answer\n" + "x" * 200_000 + ",1\n",
    "bigint.jsonl": '{"question": "q", "answer": ' + BIG + "}\n",
    "surrogate.jsonl": '{"question": "q \\ud800", "answer": "a"}\n',
}
INSTANCES = {
    "good.json": '{"points": [[0, 0], [3, 4], [6, 0], [3, -4]]}',
    "latin1.json": '{"points": [[0, 0]]} \xe9',
    "nested.json": NESTED,
    "dict.json": '{"points": {"a": 1}}',
    "huge.json": '{"points": [[1e400, 0], [1, 1], [2, 2]]}',
    "bigint.json": '{"points": [[' + "9" * 400 + ", 0], [1, 1], [2, 2]]}",
    "bools.json": '{"points": [[true, false], [1, 1], [2, 2]]}',
    "dup.json": '{"points": [[0, 0], [0, 0], [1, 1]]}',
}
SWEEPS = {
    "good.toml": 'command = "linreg"\nseeds = [0]\n[base]\noptimizer = "fake:echo"\n'
    'steps = 1\nreps = 1\nno-cache = true\ntime-limit = 3\n[axes]\norder = ["random"]\n',
    "bad.toml": "command = [",
    "unknown.toml": 'command = "nope"\n',
    "seeds.toml": 'command = "linreg"\nseeds = [-1, 1e300]\n[base]\noptimizer = "fake:echo"\n',
    "setting.toml": 'command = "linreg"\nseeds = [0]\n[base]\nwat = 1\n',
    "noaxes.toml": 'command = "tsp"\nseeds = [0]\n[base]\nnodes = 99999999999\n[axes]\n',
}
GRAMMARS = {"bad.gbnf": "root ::= (", "good.gbnf": 'root ::= "yes" | "no"\n'}


class World:
    """Hostile files made once, and a fresh folder per example for what a command may
    change (run dirs are copied there before they are resumed or reported)."""

    def __init__(self, root: Path, opro: Callable[..., Ran], server: StubServer) -> None:
        self.root, self.server = root, server
        self.count = itertools.count()
        self.here = root
        files = root / "files"
        files.mkdir()
        for name, text in {**DATASETS, **INSTANCES, **SWEEPS, **GRAMMARS}.items():
            (files / name).write_text(text, encoding="latin-1" if "latin1" in name else "utf-8")
        (files / "cache-corrupt.sqlite").write_bytes(os.urandom(4096))
        (files / "a-dir").mkdir()
        self.files = files
        self.runs = root / "runs"
        self._make_runs(opro)

    def _make_runs(self, opro: Callable[..., Ran]) -> None:
        base = ["-q", "linreg", "--reps", "1", "--steps", "4", "--max-calls", "8",
                "--no-cache", "--no-report"]  # fmt: skip
        for name, model in (("echo", "fake:echo"), ("code", "fake:tests.doubles:garbage")):
            made = opro(*base, "--optimizer", model, "--out", str(self.runs / name))
            assert made.returncode == 0, made.stderr
        made = opro("-q", "optimize", "--dataset", f"jsonl:{self.files / 'good.jsonl'}",
                    "--scorer", "fake:tests.doubles:boolean_scorer", "--optimizer",
                    "fake:tests.doubles:instruction_proposer", "--steps", "1", "--no-cache",
                    "--no-report", "--out", str(self.runs / "instructions"))  # fmt: skip
        assert made.returncode == 0, made.stderr
        echo = self.runs / "echo"
        big = BIG.encode()
        corrupt = {
            "truncated": ("steps.jsonl", lambda b: b[:-30]),
            "step99": ("steps.jsonl", lambda b: b + b'{"step": 99, "candidates": []}\n'),
            "summary": ("summary.json", lambda b: b"\x00[1,"),
            "format": ("config.json", lambda b: b.replace(b'"format": 2', b'"format": 9')),
            "config": ("config.json", lambda b: NESTED.encode()),
            "bigstep": ("steps.jsonl", lambda b: b.replace(b'"step": 0', b'"step": ' + big, 1)),
            "bigsummary": ("summary.json", lambda b: b.replace(b"{", b'{"x": ' + big + b",", 1)),
            "bigconfig": ("config.json", lambda b: b.replace(b"{", b'{"x": ' + big + b",", 1)),
        }
        for name, (file, change) in corrupt.items():
            shutil.copytree(echo, self.runs / name)
            path = self.runs / name / file
            path.write_bytes(change(path.read_bytes()))
        (self.runs / "empty").mkdir()

    def fresh(self) -> Path:
        self.here = self.root / f"ex-{next(self.count)}"
        self.here.mkdir()
        return self.here

    def materialise(self, arg: str) -> str:
        """``--flag=@kind:name`` → the flag with a path (a copy, for what a command may
        change) or a URL; ``role=@url:name`` likewise; anything else as it is."""
        head, at, token = arg.rpartition("@")
        if not at or not (head == "" or head.endswith(("=", ":"))):  # jsonl:@file:x
            return arg
        return head + self._made(token)

    def _made(self, token: str) -> str:
        kind, _, name = token.partition(":")
        if kind == "openai":
            return "openai:stub"
        if kind == "url":
            return {"stub": self.server.url, "dead": "http://127.0.0.1:9/v1",
                    "secret": self.server.url.replace("//", "//u:SECRET@") + "?api-key=S3CRET",
                    "ftp": "ftp://x"}[name]  # fmt: skip
        if kind == "file":
            return str(self.files / name)
        if kind == "run":
            target = self.here / f"run-{name}-{next(self.count)}"
            shutil.copytree(self.runs / name, target)
            return str(target)
        if kind == "out":
            target = self.here / f"out-{next(self.count)}"
            if name == "file":
                target.write_text("not a dir")
            elif name == "stray":
                target.mkdir()
                (target / "steps.jsonl").write_text("{}\n")
            elif name == "run":
                shutil.copytree(self.runs / "echo", target)
            return str(target)
        if kind == "cache":
            return str(self.here / "calls.sqlite") if name == "fresh" else str(self.files / name)
        raise AssertionError(token)


# -- argument vectors ----------------------------------------------------------------------

PATHS: dict[str, list[str]] = {
    "dataset": ["bbh:boolean_expressions", "gsm9k", "bbh:", "mmlu:nope", "jsonl:/dev/zero",
                "csv:", *(f"{p}:@file:{n}" for n in DATASETS for p in ("jsonl", "csv"))],
    "data_dir": [str(SHARED_DATA), "@out:missing", "@file:a-dir", "@file:good.jsonl", ""],
    "instance": ["/dev/zero", "@out:missing", "", *(f"@file:{n}" for n in INSTANCES)],
    "out": ["@out:fresh", "@out:fresh", "@out:file", "@out:stray", "@out:run", ""],
    "cache": ["@cache:fresh", "@cache:cache-corrupt.sqlite", "@file:a-dir", ""],
    "grammar": ["@file:bad.gbnf", "@file:good.gbnf", "@out:missing", "/dev/zero"],
    "instructions_from": ["@run:instructions", "@run:echo", "@run:empty", "@out:missing"],
    "dir": [f"@run:{n}" for n in ("echo", "code", "truncated", "step99", "summary", "format",
                                  "config", "empty", "instructions", "bigstep", "bigsummary",
                                  "bigconfig")] + ["@out:missing", ""],
    "run_dirs": ["@run:echo", "@run:instructions", "@run:summary", "@run:empty", "@out:missing",
                 "@run:bigstep", "@run:bigsummary", "@run:bigconfig"],
    "file": [*(f"@file:{n}" for n in SWEEPS), "@out:missing", "/dev/zero"],
    "source": ["http://127.0.0.1:9", "file:///nonexistent", "not a url", "", "@url:stub"],
    "api_key_env": ["OPENAI_API_KEY", "NOPE_KEY", "bad name", "", "CRLF_KEY", "CONTROL_KEY"],
    "base_url": ["@url:stub", "@url:dead", "@url:secret", "@url:ftp", "", "scorer=@url:stub",
                 "optimizer=@url:secret", "nope=@url:stub"],
    "price": PRICES,
    "max_nodes": [*SMALL_INTS, "50"],
    "nodes": [*SMALL_INTS, "5", "10000", "99999999999999999999"],
    "n_ctx": SMALL_INTS,
    "concurrency": [*SMALL_INTS, "99999999999999999999"],
}  # fmt: skip


def values_for(action: argparse.Action) -> st.SearchStrategy[list[str]]:
    """The argument list for one flag (or positional), empty to leave it out."""
    dest = action.dest
    key = next((k for k in PATHS if dest == k or dest.endswith("_" + k)), None)
    if dest in ("scorer", "optimizer", "model"):
        pool = MODELS
    elif key is not None:
        pool = PATHS[key]
    elif action.choices is not None:
        pool = [*map(str, action.choices), "bogus"]
    elif action.type is int:
        pool = INTS
    elif action.type is float:
        pool = FLOATS
    else:
        pool = TEXTS
    if not action.option_strings:  # a positional
        if action.nargs == "?":
            return st.one_of(st.just([]), st.sampled_from(pool).map(lambda v: [v]))
        return st.lists(st.sampled_from(pool), min_size=1, max_size=2 if action.nargs else 1)
    flag = action.option_strings[-1]
    if action.nargs == 0:  # a switch (store_true, or --x / --no-x)
        return st.sampled_from([[flag], [action.option_strings[0]]])
    return st.sampled_from(pool).map(lambda v: [f"{flag}={v}"])  # "=": a value may be "-1"


def argv_for(command: str) -> st.SearchStrategy[list[str]]:
    """Every positional, and a few of the flags (a vector with many hostile flags stops at
    the first: few flags reach deeper)."""
    actions = [a for a in COMMANDS[command]._actions if a.dest not in SKIPPED]
    positionals = [a for a in actions if not a.option_strings]
    optionals = [a for a in actions if a.option_strings]

    @st.composite
    def vector(draw: st.DrawFn) -> list[str]:
        chosen = draw(st.lists(st.sampled_from(optionals), max_size=4, unique_by=id))
        parts = [draw(values_for(a)) for a in [*positionals, *chosen]]
        return [part for values in parts for part in values]

    return vector() if optionals else st.just([])


def safe(command: str, argv: list[str]) -> list[str]:
    """Hold a drawn vector to what one test can afford: models that load no weights, no
    network, bounded time."""
    argv = list(argv)
    extra: list[str] = []
    given = {a.split("=", 1)[0] for a in argv}
    if command in ("optimize", "evaluate") and "--scorer" not in given:
        extra += ["--scorer", "fake:tests.doubles:boolean_scorer"]
    if command in ("optimize", "linreg", "tsp") and "--optimizer" not in given:
        extra += ["--optimizer", "fake:echo"]
    if command == "complete" and "--model" not in given:
        extra += ["--model", "fake:echo"]
    if command in ("optimize", "evaluate") and "--dataset" not in given:
        extra += ["--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
    given = {a.split("=", 1)[0] for a in argv}
    if command == "evaluate" and not given & {"--instruction", "--instructions-from"}:
        extra += ["--instruction", "Think."]
    if command == "tsp" and not given & {"--nodes", "--instance"}:
        extra += ["--nodes", "5"]
    if command == "data" and "--source" not in given:
        extra += ["--source", "http://127.0.0.1:9"]  # never the network
    for i, arg in enumerate(argv):  # a retry bound, not minutes of backoff
        flag, _, value = arg.partition("=")
        if flag.endswith("max-retries") and value not in ("-1", "abc", ""):
            argv[i] = f"{flag}=1"
    if command in ("linreg", "tsp", "optimize"):  # short runs, unless the vector says
        extra += [] if "--steps" in given else ["--steps", "2"]
        extra += [] if "--reps" in given else ["--reps", "1"]
    if command in CALLS_MODELS:
        extra += ["--time-limit", "2"]
    return [*argv, *extra]


# -- the property -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[StubServer]:
    kinds = ("500", "429", "drop", "absurd_usage", *MALFORMED)
    with StubServer(plan=random_plan(0.2, seed=3, kinds=kinds), retry_after="0") as stub:
        yield stub


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, server: StubServer) -> Iterator[World]:
    from opro.cli import main

    def quiet(*args: str) -> Ran:
        return Ran(main(list(args)), "", "")

    return World(tmp_path_factory.mktemp("fuzz"), quiet, server)


def leftovers(root: Path) -> list[Path]:
    """Temp and partial files, and run dirs that say they are running: half-written."""
    found = [p for p in root.rglob("*") if p.name.endswith((".tmp", ".part"))]
    for summary in root.rglob("summary.json"):
        try:
            data: Any = json.loads(summary.read_text())
        except (ValueError, UnicodeDecodeError):
            continue  # a hostile file of the world, not one a command wrote
        if isinstance(data, dict) and data.get("status") == "running":
            found.append(summary)
    return found


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_argument_vector_reaches_an_internal_error(
    command: str,
    world: World,
    opro: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fuzz-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", world.server.url)  # openai:stub: never the network
    monkeypatch.setenv("OPRO_DATA_DIR", str(world.root / "no-data-dir"))
    monkeypatch.setenv("CRLF_KEY", "sk-fuzz-crlf\r")  # a key read from a CRLF file
    monkeypatch.setenv("CONTROL_KEY", "sk-fuzz\x01\x1b[31m")

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize="OPRO_FUZZ_RANDOM" not in os.environ,  # make test: the same vectors
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(argv=argv_for(command))
    def run(argv: list[str]) -> None:
        here = world.fresh()
        monkeypatch.chdir(here)
        monkeypatch.setenv("OPRO_CACHE_DIR", str(here / "cache"))
        args = ["-q", command, *(world.materialise(a) for a in safe(command, argv))]
        result = opro(*args)
        shown = f"opro {' '.join(args)}\n--- stderr:\n{result.stderr[-2000:]}"
        if os.environ.get("OPRO_FUZZ_LOG"):  # what the vectors reach: exit codes, messages
            with open(os.environ["OPRO_FUZZ_LOG"], "a") as log:
                print(command, result.returncode, result.stderr.strip()[:150], file=log)
        assert result.returncode in EXIT_CODES, shown
        assert "Traceback" not in result.stderr, shown
        assert "internal error" not in result.stderr, shown
        if result.returncode != 0:
            # A run's own notices (a step's proposals all failed to parse...) may come first;
            # the error itself is one line.
            lines = [line for line in result.stderr.strip().splitlines()
                     if not line.startswith("opro: step ")]  # fmt: skip
            assert len(lines) == 1, shown
            assert lines[0].startswith("opro: "), shown
        assert leftovers(here) == [], shown

    run()
