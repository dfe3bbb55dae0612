"""Ablation sweeps: the plan a sweep file gives, its checks, and `opro sweep` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opro.cli import main
from opro.errors import ConfigError
from opro.problems.instructions.spec import InstructionsSpec
from opro.sweep import load_sweep, plan_from_dict

WALKER = "fake:tests.doubles:linreg_walker"


def test_one_at_a_time_varies_each_axis_alone_over_the_seeds(tmp_path: Path) -> None:
    plan = plan_from_dict(
        {
            "command": "optimize",
            "seeds": [0, 1],
            "base": {"dataset": "bbh:navigate", "steps": 3, "constrained": True, "order": "random"},
            "axes": {"order": ["ascending", "descending"], "exemplars": [0, 3, 10]},
        }
    )
    runs = plan.runs(tmp_path)
    assert len(runs) == (2 + 3) * 2
    assert [s.label for s in plan.settings()] == [
        "order='ascending'",
        "order='descending'",
        "exemplars=0",
        "exemplars=3",
        "exemplars=10",
    ]
    first = runs[0]
    assert first.directory == tmp_path / "order" / "0-ascending" / "seed-0"
    assert isinstance(first.spec, InstructionsSpec)
    assert first.spec.engine.order == "ascending"  # the axis overrides the base
    assert first.spec.engine.constrained
    assert first.spec.engine.steps == 3
    assert [r.spec.engine.seed for r in runs[:2]] == [0, 1]
    exemplars = [r for r in runs if r.setting.group == "exemplars"]
    assert [r.spec.exemplars for r in exemplars] == [0, 0, 3, 3, 10, 10]  # type: ignore[attr-defined]
    for run in exemplars:  # the base's order holds where the order axis is not varied
        assert run.spec.engine.order == "random"
    assert len({r.directory for r in runs}) == len(runs)


def test_grid_takes_every_combination_and_lists_expand_to_repeated_flags(tmp_path: Path) -> None:
    plan = plan_from_dict(
        {
            "command": "optimize",
            "mode": "grid",
            "base": {"dataset": "bbh:navigate", "initial": ["", "Let's think step by step."]},
            "axes": {"candidates-per-step": [1, 2], "score-display": ["int", "none"]},
        }
    )
    settings = plan.settings()
    assert [s.group for s in settings] == ["grid"] * 4
    assert settings[1].label == "candidates-per-step=1, score-display='none'"
    (run, *_) = plan.runs(tmp_path)
    assert run.spec.initial == ("", "Let's think step by step.")  # type: ignore[attr-defined]
    assert run.spec.engine.samples_per_step == 1  # candidates-per-step: its alias
    assert run.spec.engine.seed == 0  # the default seeds: [0]


@pytest.mark.parametrize(
    ("data", "fix"),
    [
        ({"command": "train", "axes": {"order": ["random"]}}, "command must be one of"),
        ({"command": "linreg"}, "[axes] is empty"),
        ({"command": "linreg", "axes": {"order": []}}, "non-empty list"),
        ({"command": "linreg", "axes": {"order": ["random", "random"]}}, "repeats a value"),
        ({"command": "linreg", "axes": {"seed": [1, 2]}}, "set by the sweep"),
        ({"command": "linreg", "base": {"out": "x"}, "axes": {"steps": [1]}}, "set by the sweep"),
        ({"command": "linreg", "axes": {"--steps": [1]}}, "without dashes"),
        ({"command": "linreg", "seeds": [0, 0], "axes": {"steps": [1]}}, "distinct integers"),
        ({"command": "linreg", "seeds": 3, "axes": {"steps": [1]}}, "distinct integers"),
        ({"command": "linreg", "mode": "all", "axes": {"steps": [1]}}, "one-at-a-time or grid"),
        ({"command": "linreg", "axes": {"steps": [{"a": 1}]}}, "not a string"),
        ({"command": "linreg", "axis": {"steps": [1]}}, "unknown key"),
    ],
)
def test_a_bad_sweep_file_is_refused_with_the_fix(data: dict[str, object], fix: str) -> None:
    with pytest.raises(ConfigError, match=r"^sweep: ") as error:
        plan_from_dict(data)
    assert fix in str(error.value)


def test_unreadable_sweep_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_sweep(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("command = 'linreg\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sweep(broken)


def write_sweep(path: Path, axes: str, seeds: str = "[0, 1]") -> Path:
    path.write_text(
        f'command = "linreg"\nseeds = {seeds}\n\n[base]\noptimizer = "{WALKER}"\n'
        f"reps = 1\nsteps = 3\nno-cache = true\n\n[axes]\n{axes}\n"
    )
    return path


def candidates_of(steps: str) -> list[object]:
    return [json.loads(line)["candidates"] for line in steps.splitlines()]


def candidates(path: Path) -> list[object]:
    return candidates_of(path.read_text())


def test_sweep_runs_every_setting_reports_them_and_continues_where_it_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = write_sweep(tmp_path / "sweep.toml", 'samples-per-step = [1, 4]\norder = ["random"]')
    out = tmp_path / "out"
    assert main(["-q", "sweep", str(sweep), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    runs = sorted(p.parent for p in out.glob("*/*/seed-*/summary.json"))
    assert len(runs) == 3 * 2
    for run in runs:
        assert json.loads((run / "summary.json").read_text())["status"] == "finished"
        config = json.loads((run / "config.json").read_text())
        assert config["spec"]["engine"]["seed"] == int(run.name.removeprefix("seed-"))
    wide = json.loads((out / "samples-per-step" / "1-4" / "seed-1" / "config.json").read_text())
    assert wide["spec"]["engine"]["samples_per_step"] == 4

    table = json.loads((out / "sweep.json").read_text())
    assert [row["setting"] for row in table["settings"]] == [
        "samples-per-step=1",
        "samples-per-step=4",
        "order='random'",
    ]
    assert all(len(row["runs"]) == 2 for row in table["settings"])
    for row in table["settings"]:  # each mean is its seeds' mean, in the file and printed
        scores = [r["best_score"] for r in row["runs"]]
        assert row["mean_best_score"] == pytest.approx(sum(scores) / len(scores))
        printed = next(line for line in stdout if line.startswith(row["setting"] + " "))
        assert f"{row['mean_best_score']:.2f}" in printed.split()
    reports = [out / "samples-per-step" / "report.html", out / "order" / "report.html"]
    labels = [["samples-per-step=1", "samples-per-step=4"], ["order=&#39;random&#39;"]]
    for report, expected in zip(reports, labels, strict=True):
        page = report.read_text()
        for label in expected:  # each setting is in its axis's report, and only there
            assert label in page
        assert "order=" not in page if "samples" in expected[0] else "samples-per-step=" not in page
    assert stdout[-1] == str(reports[-1])  # the last line: a report's path

    # Cut one run back to its first step, as a kill would leave it: the sweep redoes only that.
    cut = out / "order" / "0-random" / "seed-0"
    finished = (cut / "steps.jsonl").read_text()
    (cut / "steps.jsonl").write_text(finished.splitlines(keepends=True)[0])
    (cut / "summary.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed-*/steps.jsonl")}
    assert main(["-q", "sweep", str(sweep), "--out", str(out)]) == 0
    assert candidates(cut / "steps.jsonl") == candidates_of(finished)
    after = {p: p.stat().st_mtime_ns for p in out.glob("*/*/seed-*/steps.jsonl")}
    assert [p for p in before if before[p] != after[p]] == [cut / "steps.jsonl"]


def test_a_setting_the_command_refuses_stops_the_sweep_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = write_sweep(tmp_path / "sweep.toml", 'order = ["ascending", "sideways"]')
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("opro: error: ")
    assert "order='sideways'" in err[0]
    assert "order must be 'ascending', 'descending' or 'random'" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("name", ["paper_ablations.toml", "quick.toml"])
def test_the_example_sweeps_parse_and_every_run_is_a_valid_spec(name: str, tmp_path: Path) -> None:
    plan = load_sweep(Path(__file__).resolve().parents[1] / "examples" / "sweeps" / name)
    runs = plan.runs(tmp_path)  # every spec built, so checked
    assert runs
    assert len({r.directory for r in runs}) == len(runs)
    for run in runs:
        assert run.spec.engine.seed == run.seed


def test_long_values_keep_settings_apart_in_labels_and_directories(tmp_path: Path) -> None:
    long_a = "Let's think step by step about every operator, then answer alpha."
    long_b = "Let's think step by step about every operator, then answer beta."
    for mode in ("one-at-a-time", "grid"):
        plan = plan_from_dict(
            {
                "command": "optimize",
                "mode": mode,
                "base": {"dataset": "bbh:navigate"},
                "axes": {"initial": [long_a, long_b, "-x"]},
            }
        )
        runs = plan.runs(tmp_path)
        assert len({r.setting.label for r in runs}) == 3
        assert len({r.directory for r in runs}) == 3
        assert runs[2].spec.initial == ("-x",)  # type: ignore[attr-defined]


def test_sweep_refuses_an_out_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = write_sweep(tmp_path / "sweep.toml", 'order = ["random"]')
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out in (a_file, a_file / "sub"):
        assert main(["sweep", str(sweep), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert err[0].startswith("opro: error: ")
        assert "--out" in err[0]
    assert a_file.read_text() == "x"


def test_a_run_stopped_by_its_budget_stops_the_sweep_with_a_way_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        f'command = "linreg"\n[base]\noptimizer = "{WALKER}"\nreps = 1\nsteps = 5\n'
        'no-cache = true\nmax-calls = 10\n[axes]\norder = ["random", "ascending"]\n'
    )
    out = tmp_path / "out"
    assert main(["-q", "sweep", str(sweep), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    stopped = out / "order" / "0-random" / "seed-0"
    assert f"raise its cap with `opro resume {stopped} --max-calls 30`, then" in err  # yours
    assert not (out / "order" / "1-ascending").exists()
    assert main(["-q", "resume", str(stopped), "--max-calls", "1000"]) == 0
    capsys.readouterr()
    # The raised cap is kept with the run; the sweep goes on past it (the next run has the
    # base's cap, so it stops the sweep in the same way).
    assert main(["-q", "sweep", str(sweep), "--out", str(out)]) == 3
    assert sweep_status(stopped) == "finished"
    assert "1-ascending" in capsys.readouterr().err


def sweep_status(run: Path) -> str:
    return str(json.loads((run / "summary.json").read_text())["status"])
