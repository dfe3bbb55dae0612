"""The run surface: one spec per kind (defaults once, flat settings, errors naming them),
the kinds' registry (proved by a toy kind from outside the package), typed run records,
run dirs of the first release (format 1) resumed and reported, and the structure rules
(no module over 400 lines, no branching on a kind's name outside the registry)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opro
from opro import api, cli, plugins
from opro.data import loaders
from opro.errors import ConfigError
from opro.llm import registry as llm_registry
from opro.problems import registry
from opro.problems.records import RunSummary, StepRecord
from opro.problems.spec import build_spec, settings_of
from opro.report import write_report
from opro.runlog import RunDir
from opro.sweep import plan_from_dict
from tests.conftest import ROOT, SHARED_DATA
from tests.doubles import steps_of, summary_of

FORMAT1 = ROOT / "tests" / "data" / "format1"
SRC = ROOT / "src" / "opro"
TOY_PLUGIN = ROOT / "tests" / "plugins"


@pytest.fixture
def toy() -> Iterator[Any]:
    """The toy kind, registered by its one line: its (test) distribution put on the path."""
    sys.path.insert(0, str(TOY_PLUGIN))
    plugins.refresh()
    from tests import toy_kind

    try:
        yield toy_kind
    finally:
        sys.path.remove(str(TOY_PLUGIN))
        plugins.refresh()


# -- specs ---------------------------------------------------------------------------------


def test_defaults_live_once_in_each_kinds_spec() -> None:
    assert opro.TspSpec().engine.top_k == 10
    assert opro.TspSpec().engine.max_attempts_per_step == 24
    assert opro.LinregSpec().engine.steps == 500
    assert opro.LinregSpec().reps == 5
    spec = opro.InstructionsSpec(dataset="gsm8k")
    assert (spec.engine.steps, spec.engine.top_k) == (200, 20)
    # A partial engine keeps the kind's other defaults (the first release lost them).
    assert opro.TspSpec(engine={"steps": 3}).engine.top_k == 10
    assert build_spec(opro.TspSpec, {"steps": 3}).engine.top_k == 10


def test_flat_settings_map_onto_the_spec() -> None:
    names = settings_of(opro.InstructionsSpec)
    assert names["top_k"] == ("engine", "top_k")
    assert names["scorer"] == ("scorer", "spec")
    assert names["scorer_base_url"] == ("scorer", "base_url")
    assert names["optimizer_price"] == ("optimizer", "price")
    assert "scorer_style" not in names  # resolved, not a setting
    spec = build_spec(
        opro.InstructionsSpec,
        {"dataset": "bbh:navigate", "candidates-per-step": 4, "initial": "Go.", "seed": 3},
    )
    assert (spec.engine.samples_per_step, spec.engine.seed) == (4, 3)
    assert spec.initial == ("Go.",)
    with pytest.raises(ConfigError, match=r"^order must be 'ascending', 'descending' or 'random'"):
        build_spec(opro.InstructionsSpec, {"dataset": "gsm8k", "order": "up"})
    with pytest.raises(ConfigError, match=r"\(got 'aaa") as error:  # a long value is cut
        build_spec(opro.InstructionsSpec, {"dataset": "gsm8k", "order": "a" * 5000})
    assert len(str(error.value)) < 200


def test_an_explicit_max_tokens_is_kept_for_the_pretrained_style(tmp_path: Path) -> None:
    """The first release could not tell ``--max-tokens 256`` from the default, and used 64."""
    common = ["optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA)]
    common += ["--scorer", "fake:tests.doubles:boolean_scorer", "--optimizer"]
    common += ["fake:tests.doubles:budget_teller", "--steps", "1", "--max-train", "3"]
    common += ["--max-test", "3", "-q"]
    for given, expected in ((["--max-tokens", "256"], 256), ([], 64)):
        out = tmp_path / f"run-{expected}"
        assert cli.main([*common, *given, "--out", str(out)]) == 0
        spec = json.loads((out / "config.json").read_text())["spec"]
        assert (spec["style"], spec["engine"]["max_tokens"]) == ("pretrained", expected)
        proposed = [c["text"] for c in steps_of(out)[1]["candidates"]]
        assert proposed
        assert all(f"within {expected} tokens" in text for text in proposed)


def test_the_dataset_is_loaded_and_each_backend_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    builds: list[str] = []
    real_load, real_create = loaders.load_dataset, llm_registry.create_backend

    def load(spec: str, *args: Any, **kwargs: Any) -> Any:
        loads.append(spec)
        return real_load(spec, *args, **kwargs)

    def create(spec: str, *args: Any, **kwargs: Any) -> Any:
        builds.append(spec)
        return real_create(spec, *args, **kwargs)

    monkeypatch.setattr("opro.problems.instructions.task.load_dataset", load)
    monkeypatch.setattr("opro.roles.create_backend", create)
    spec = build_spec(
        opro.InstructionsSpec,
        {
            "dataset": "bbh:boolean_expressions",
            "data_dir": str(SHARED_DATA),
            "scorer": "fake:tests.doubles:boolean_scorer",
            "optimizer": "fake:tests.doubles:instruction_proposer",
            "steps": 2,
            "max_train": 4,
            "max_test": 4,
        },
    )
    opro.start(spec, opro.RunOptions(out=tmp_path / "run", use_cache=False))
    assert loads == ["bbh:boolean_expressions"]
    assert sorted(builds) == sorted(["fake:tests.doubles:boolean_scorer",
                                     "fake:tests.doubles:instruction_proposer"])  # fmt: skip


def test_opro_optimize_reaches_the_optimizer_through_the_runner_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLI -> runner -> optimizer/problem: the functions of our surface and engine modules
    that run up to the first scorer call, traced as they are called."""
    called: list[str] = []
    watched = ("opro.api", "opro.runner", "opro.optimizer", "opro.cli")
    first_call: list[list[str]] = []

    def profile(frame: Any, event: str, _arg: Any) -> None:
        module = frame.f_globals.get("__name__", "")
        if event == "call" and module.startswith(watched):
            called.append(module)
        if event == "call" and module == "tests.doubles" and not first_call:
            first_call.append(list(dict.fromkeys(called)))

    monkeypatch.setattr("sys.argv", ["opro"])
    args = ["optimize", "--dataset", "bbh:boolean_expressions", "--data-dir", str(SHARED_DATA),
            "--scorer", "fake:tests.doubles:boolean_scorer",
            "--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "1",
            "--max-train", "4", "--max-test", "4", "--no-cache", "-q", "--json",
            "--out", str(tmp_path / "run")]  # fmt: skip
    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        assert cli.main(args) == 0
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    assert first_call, "the scorer double was never called"
    path = [m.split(".")[1] for m in first_call[0]]
    assert list(dict.fromkeys(path)) == ["cli", "runner", "optimizer"], first_call[0]


def test_two_roles_on_one_model_share_one_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[str] = []
    real = llm_registry.create_backend
    monkeypatch.setattr("opro.roles.create_backend", lambda s, *a: builds.append(s) or real(s, *a))
    same = "fake:tests.doubles:boolean_scorer"
    spec = opro.InstructionsSpec(
        dataset=f"jsonl:{FORMAT1 / 'bools.jsonl'}", scorer=same, optimizer=same, engine={"steps": 1}
    )
    opro.start(spec, opro.RunOptions(out=tmp_path / "run", use_cache=False))
    assert builds == [same]


# -- the registry, proved by a toy kind ---------------------------------------------------


def test_a_toy_kind_runs_resumes_reports_and_sweeps(
    toy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = toy.GuessSpec(optimizer="fake:tests.toy_kind:guesser", target=37)
    assert spec.engine.steps == 6  # its own paper defaults
    cut = opro.start(spec, opro.RunOptions(out=tmp_path / "cut", caps=opro.Caps(max_calls=8)))
    assert cut.status == "stopped"
    whole = opro.start(spec, opro.RunOptions(out=tmp_path / "whole"))
    resumed = opro.resume(
        tmp_path / "cut", opro.RunOptions(caps=opro.Caps(max_calls=1000), trust_code=True)
    )
    assert resumed.status == whole.status == "finished"
    assert [s["candidates"] for s in steps_of(tmp_path / "cut")] == [
        s["candidates"] for s in steps_of(tmp_path / "whole")
    ]
    assert resumed.summary.best_score == whole.summary.best_score  # type: ignore[union-attr]

    page = write_report([tmp_path / "whole", tmp_path / "cut"], out=tmp_path / "r.html")
    html = page.read_text()
    assert "number guessing" in html
    assert "Best guesses" in html
    assert "opro guess --optimizer fake:tests.toy_kind:guesser --target 37" in html

    # The CLI has a command for it, generated from its spec.
    out = tmp_path / "cli"
    code = cli.main(["-q", "guess", "--optimizer", "fake:tests.toy_kind:guesser", "--target",
                     "37", "--steps", "2", "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["status"] == "finished"
    with pytest.raises(SystemExit, match="2"):  # argparse: not an integer
        cli.main(["guess", "--target", "x"])

    # A sweep varies its settings.
    plan = plan_from_dict({"command": "guess", "seeds": [0, 1], "axes": {"target": [3, 4]}})
    runs = plan.runs(tmp_path / "sweep")
    assert [r.spec.target for r in runs] == [3, 3, 4, 4]  # type: ignore[attr-defined]


def test_a_kinds_direction_is_declared_once_on_its_problem() -> None:
    """A report reads a kind's direction without building its problem; the engine reads
    the problem's: both are the problem class's own (or the spec's, where it says)."""
    for kind in registry.kinds():
        assert "direction" not in vars(type(kind)), f"{kind.name}: declared on the kind too"
        spec = kind.spec.model_construct()  # the defaults: no run is built
        if "direction" in type(spec).model_fields:  # the user's objective: the spec says
            for way in ("max", "min"):
                assert kind.direction_of(spec.model_copy(update={"direction": way})) == way
        else:
            assert kind.direction_of(spec) == kind.problem.direction


def test_an_unknown_kind_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean tsp"):
        registry.kind_of("tps")
    run = tmp_path / "run"
    run.mkdir()
    config = {"format": 2, "spec": {"kind": "tps"}}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="unknown problem kind 'tps'"):
        api.resume(run)


# -- typed records ---------------------------------------------------------------------------


def test_records_are_written_and_read_by_the_same_types(tmp_path: Path) -> None:
    spec = opro.TspSpec(optimizer="fake:tests.doubles:tsp_shuffler", nodes=6, engine={"steps": 2})
    result = opro.start(spec, opro.RunOptions(out=tmp_path / "t"))
    run = RunDir.open(tmp_path / "t")
    steps = run.read_steps()
    assert all(isinstance(s, StepRecord) for s in steps)
    assert [StepRecord.from_json(s.to_json()) for s in steps] == steps
    summary = run.summary()
    assert summary == result.summary
    assert RunSummary.from_json(summary.to_json()) == summary  # type: ignore[union-attr]
    assert summary.details["n"] == 6  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"step": 7, "candidates": []}', "step 7 where step 2 was expected"),
        ('{"step": 1, "candidates": []}', "step 1 where step 2 was expected"),
        ('{"step": "2", "candidates": []}', "'step' is '2': input should be a valid integer"),
        ("[1, 2, 3]", "not a JSON object"),
        ('{"step": 2, "candidates": [{"text": "x"}]}', "'candidates.0.solution' is missing"),
    ],
)
def test_a_hand_edited_steps_file_is_refused_naming_the_line(
    tmp_path: Path, line: str, needle: str
) -> None:
    spec = opro.LinregSpec(
        optimizer="fake:tests.doubles:linreg_walker", reps=1, engine={"steps": 5}
    )
    opro.start(spec, opro.RunOptions(out=tmp_path / "r", caps=opro.Caps(max_calls=8)))
    assert len(steps_of(tmp_path / "r")) == 2  # stopped after step 1
    with (tmp_path / "r" / "steps.jsonl").open("a") as f:
        f.write(line + "\n")
    with pytest.raises(ConfigError) as error:
        api.resume(tmp_path / "r", opro.RunOptions(trust_code=True))
    message = str(error.value)
    assert f"{tmp_path / 'r' / 'steps.jsonl'} line 3" in message
    assert needle in message
    assert "\n" not in message


# -- run dirs of the first release ----------------------------------------------------------


def _format1(name: str, tmp_path: Path) -> Path:
    """A committed format-1 run dir, copied; its data file re-pointed to this checkout."""
    run = Path(shutil.copytree(FORMAT1 / name, tmp_path / name))
    shutil.copy(FORMAT1 / "bools.jsonl", tmp_path / "bools.jsonl")
    config = run / "config.json"
    config.write_text(
        config.read_text().replace("/tmp/f1/bools.jsonl", str(tmp_path / "bools.jsonl"))
    )
    return run


def test_a_format1_instruction_run_resumes_to_its_final_evaluation(tmp_path: Path) -> None:
    run = _format1("instructions", tmp_path)
    before = summary_of(run)
    assert (before["status"], before["stop_reason"]) == ("stopped", "budget")
    assert "during the final evaluation" in before["message"]
    steps = steps_of(run)
    result = api.resume(run, opro.RunOptions(caps=opro.Caps(max_calls=1000), trust_code=True))
    assert result.status == "finished"
    assert steps_of(run) == steps  # it had reached the optimum: no step is added
    after = summary_of(run)
    assert after["best_test_score"] is not None
    assert after["first_optimal_step"] == before["first_optimal_step"]
    # Raising its cap saved config.json again, in this release's format, with the same spec.
    config = json.loads((run / "config.json").read_text())
    assert (config["format"], config["caps"]["max_calls"]) == (2, 1000)
    assert config["spec"]["extract_answer"] is False  # format 1's "extract", renamed


def test_a_format1_job_resumes_as_a_fresh_run_of_this_release(tmp_path: Path) -> None:
    run = _format1("linreg", tmp_path)
    result = api.resume(run, opro.RunOptions(caps=opro.Caps(max_calls=1000), trust_code=True))
    assert result.status == "finished"
    fresh = opro.LinregSpec(
        optimizer="fake:tests.doubles:linreg_walker", reps=2, engine={"steps": 3}
    )
    opro.start(fresh, opro.RunOptions(out=tmp_path / "fresh"))
    for rep in ("rep-0", "rep-1"):
        resumed = [s["candidates"] for s in steps_of(run / rep)]
        again = [s["candidates"] for s in steps_of(tmp_path / "fresh" / rep)]
        assert [[(c["solution"], c["text"]) for c in step] for step in resumed] == [
            [(c["solution"], c["text"]) for c in step] for step in again
        ]
        # The format-1 steps keep the scores they were written with, on another machine: a
        # sum of squares may differ there in its last digit (the BLAS kernel of the CPU).
        assert [[c["score"] for c in step] for step in resumed] == [
            pytest.approx([c["score"] for c in step], rel=1e-12) for step in again
        ]
    assert summary_of(run)["reps_finished"] == 2


def test_format1_run_dirs_report(tmp_path: Path) -> None:
    dirs = [_format1(name, tmp_path) for name in ("instructions", "linreg", "tsp")]
    page = write_report(dirs, out=tmp_path / "r.html")
    html = page.read_text()
    for title in ("instruction optimization", "linear regression", "travelling salesman"):
        assert title in html
    assert html.count("<img") == 1 + 2 + 2


# -- structure -------------------------------------------------------------------------------


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}  # fmt: skip
    assert long == {}


def test_no_branching_on_a_kinds_name_outside_the_registry() -> None:
    # Problem kinds (an answer's kind, "numeric"..., is data).
    names = "|".join(registry.kind_names())
    pattern = re.compile(rf"""[!=]=\s*["']({names})["']|["']({names})["']\s*[!=]=""")
    found = [
        f"{p.relative_to(SRC)}:{i}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
