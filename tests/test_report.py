"""`opro report`: figures and one self-contained HTML page for run dirs made by scripted
models (instructions, a linear-regression job, TSP, several overlaid), rendered in headless
Chromium where it can start, bad input refused in one line with nothing written."""

from __future__ import annotations

import inspect
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from opro import Caps, InstructionsSpec, LinregSpec, TspSpec, api, cli
from opro.problems.instructions.task import task_data
from opro.report import write_report
from opro.report.plots import mean_band
from tests import browser
from tests.browser import check_rendering, parse, parser_check, svg_size
from tests.conftest import SHARED_DATA
from tests.doubles import run_kind

SCRIPT = "<script>alert('x')</script> Think & check each operator."
FAKE_SCORER = "fake:tests.doubles:boolean_scorer"
FAKE_OPTIMIZER = "fake:tests.doubles:instruction_proposer"


# -- runs made once for the module, by scripted models, without the call cache -------------


def _optimize(out: Path, seed: int, caps: Caps | None = None) -> Path:
    run_kind(
        InstructionsSpec,
        out,
        caps=caps,
        dataset="bbh:boolean_expressions",
        scorer=FAKE_SCORER,
        optimizer=FAKE_OPTIMIZER,
        data_dir=str(SHARED_DATA),
        initial=[SCRIPT],
        max_train=8,
        max_test=8,
        steps=3,
        samples_per_step=3,
        seed=seed,
    )
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    walker, shuffler = "fake:tests.doubles:linreg_walker", "fake:tests.doubles:tsp_shuffler"
    run_kind(LinregSpec, root / "linreg", optimizer=walker, reps=2, steps=3)
    run_kind(TspSpec, root / "tsp", optimizer=shuffler, nodes=6, steps=3, max_attempts_per_step=8)
    return {
        "opt": _optimize(root / "opt-seed0", 0),
        "opt2": _optimize(root / "opt-seed1", 1),
        "linreg": root / "linreg",
        "tsp": root / "tsp",
    }


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


# -- checking what was written ----------------------------------------------------------


def assert_svgs(folder: Path, names: list[str]) -> None:
    """Each file exists and is a whole SVG drawing with a size > 0."""
    for name in names:
        path = folder / name
        assert path.is_file(), f"missing {name}; have {sorted(p.name for p in folder.iterdir())}"
        assert min(svg_size(path.read_bytes())) > 0


def test_instruction_run_report(runs: dict[str, Path], tmp_path: Path) -> None:
    out = write_report([runs["opt"]], out=tmp_path / "r.html")
    assert out == tmp_path / "r.html"
    assert_svgs(tmp_path, ["r-accuracy.svg"])
    parser_check(out, 1)
    html = out.read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Think &amp; check" in html
    for external in ("<link", "http://", "https://"):  # self-contained
        assert external not in html
    summary = json.loads((runs["opt"] / "summary.json").read_text())
    rows = {r[1]: r for r in parse(out).rows if r[0] == "initial" or r[0].startswith("top ")}
    assert len(rows) == len(summary["test_evaluation"])
    for entry in summary["test_evaluation"]:
        row = rows[entry["instruction"]]
        assert row[2] == f"{entry['train_score']:.1f}"
        assert row[3].startswith(f"{entry['test_score']:.1f} (")  # with its 95 % interval
        low, high = (float(x) for x in row[3].split("(")[1].rstrip(")").split("–"))
        assert low <= entry["test_score"] <= high
        assert row[4] == str(entry["n"])
        assert (row[5], row[6]) == (str(entry["empty"]), str(entry["failed"]))
        initial = entry["instruction"] == SCRIPT
        assert (row[0] == "initial") if initial else row[0].startswith("top ")
        assert row[7] == ("baseline" if initial else f"{entry['p_value_vs_initial']:.3g}")
    steps = [json.loads(line) for line in (runs["opt"] / "steps.jsonl").read_text().splitlines()]
    every = [r for r in parse(out).rows if len(r) == 6 and r[0].isdigit()]
    assert len(every) == sum(len(s["candidates"]) for s in steps)  # every candidate is listed
    trains = [float(r[2].split()[0]) for r in every]
    assert trains == sorted(trains, reverse=True)
    tested = {e["instruction"]: e for e in summary["test_evaluation"]}
    for row in every:
        test = tested.get(row[1])
        assert row[5] == ("—" if test is None else f"{test['test_score']:.1f}")
    assert "opro optimize --optimizer fake:tests.doubles:instruction_proposer" in html
    assert f"p = {summary['paired_test']['p_value']:.3g}" in html
    for role in ("scorer", "optimizer"):
        usage = summary["usage"][role]
        assert [role, str(usage["calls"])] == next(r[:2] for r in parse(out).rows if r[0] == role)


def test_the_report_shows_sample_predictions_of_the_top_instructions(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """Test questions with their target and, per instruction scored on the test fold, whether
    its answer was right (the marks summary.json keeps), and where to read the model's words."""
    out = write_report([runs["opt"]], out=tmp_path / "r.html")
    summary = json.loads((runs["opt"] / "summary.json").read_text())
    evaluated = summary["test_evaluation"]
    spec = InstructionsSpec.model_validate(
        json.loads((runs["opt"] / "config.json").read_text())["spec"]
    )
    test = task_data(spec).test
    page = parse(out).rows
    header = next(r for r in page if r[:2] == ["question", "target"])
    assert header[2:] == ["initial"] + [f"top {i}" for i in range(1, len(evaluated))]
    words = {"1": "right", "0": "wrong", "e": "no answer", "x": "call failed"}
    samples = [r for r in page if len(r) == len(header) and r[0] in {e.question for e in test}]
    assert 0 < len(samples) <= 8
    for row in samples:
        i = next(i for i, e in enumerate(test) if e.question == row[0])
        assert row[1] == test[i].answer
        assert row[2:] == [words[e["marks"][i]] for e in evaluated]
    html = out.read_text(encoding="utf-8")
    assert f"opro evaluate --instructions-from {runs['opt']} --examples --json" in html


def test_a_run_on_data_given_in_python_is_rerun_from_its_script(tmp_path: Path) -> None:
    """No command line holds rows given in memory: the report says so instead of printing
    an ``opro optimize`` line that cannot run."""
    pairs = [("True and False is", "False"), ("not False is", "True"),
             ("True or False is", "True"), ("not True is", "False")]  # fmt: skip
    rows = [{"question": q, "answer": a} for q, a in pairs]
    run = tmp_path / "inline"
    run_kind(InstructionsSpec, run, dataset=rows, scorer=FAKE_SCORER, optimizer=FAKE_OPTIMIZER,
             train_size=2, steps=1, samples_per_step=2)  # fmt: skip
    html = write_report([run], out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert "this run&#39;s data (dataset) was given in Python: rerun it from your script" in html
    assert "opro optimize" not in html
    assert "Sample predictions on the test fold" in html
    assert "not False is" in html or "True or False is" in html  # questions read from config


def test_linreg_job_report(runs: dict[str, Path], tmp_path: Path) -> None:
    out = write_report([runs["linreg"]], out=tmp_path / "r.html", title="Linear <regression>")
    assert_svgs(tmp_path, ["r-objective.svg", "r-steps-to-optimum.svg"])
    parser_check(out, 2)
    html = out.read_text(encoding="utf-8")
    assert "<title>Linear &lt;regression&gt;</title>" in html
    reps = {r[0]: r for r in parse(out).rows if r[0].startswith("rep-")}
    for name in ("rep-0", "rep-1"):
        summary = json.loads((runs["linreg"] / name / "summary.json").read_text())
        assert reps[name][1] == summary["status"]
        assert reps[name][4] == str(summary["unique_pairs_explored"])
        assert reps[name][5] == summary["best"]["text"]


def test_tsp_report(runs: dict[str, Path], tmp_path: Path) -> None:
    out = write_report([runs["tsp"]], out=tmp_path / "r.html")
    assert_svgs(tmp_path, ["r-tour-length.svg", "r-tours.svg"])
    parser_check(out, 2)
    summary = json.loads((runs["tsp"] / "summary.json").read_text())
    html = out.read_text(encoding="utf-8")
    assert f"{summary['optimal_length']:.2f}" in html
    assert f"({summary['nearest_neighbor_gap_percent']:.1f} %)" in html


def test_several_dirs_overlaid_with_a_shared_label(runs: dict[str, Path], tmp_path: Path) -> None:
    dirs = [runs["opt"], runs["opt2"], runs["linreg"], runs["tsp"]]
    out = write_report(dirs, out=tmp_path / "all.html", labels=["k20", "k20", "lin", "tsp"])
    assert_svgs(
        tmp_path,
        [
            "all-1-k20-accuracy.svg",
            "all-2-k20-accuracy.svg",
            "all-3-lin-objective.svg",
            "all-3-lin-steps-to-optimum.svg",
            "all-4-tsp-tour-length.svg",
            "all-4-tsp-tours.svg",
            "all-overlay-instructions.svg",
        ],
    )
    parser_check(out, 7)
    assert "OPRO report: 4 runs" in out.read_text(encoding="utf-8")


def test_default_labels_and_out(runs: dict[str, Path], tmp_path: Path) -> None:
    first = _copy(runs["opt"], tmp_path)
    out = api.report([first, runs["opt2"]])
    assert out == first / "report.html"
    assert_svgs(first, ["report-overlay-instructions.svg", "report-1-opt-seed0-accuracy.svg"])
    overview = [r for r in parse(out).rows if r[:1] in (["opt-seed0"], ["opt-seed1"])]
    assert len(overview) == 2


def test_api_report_has_the_signature_of_write_report() -> None:
    ours, theirs = inspect.signature(api.report), inspect.signature(write_report)
    assert list(ours.parameters.values()) == list(theirs.parameters.values())
    assert ours.return_annotation == theirs.return_annotation


def test_mean_band_holds_runs_that_stopped_at_the_optimum() -> None:
    xs, mean, low, high = mean_band(
        [([(0, 10.0), (1, 4.0)], True), ([(0, 6.0), (1, 6.0), (2, 2.0)], False)]
    )
    assert xs == [0, 1, 2]
    assert mean == [8.0, 5.0, 3.0]  # the first run's 4.0 holds at step 2
    assert (low[0], high[0]) == (6.0, 10.0)


# -- unfinished runs report what they have ------------------------------------------------


def test_stopped_and_summaryless_runs_report_their_steps(tmp_path: Path) -> None:
    stopped = _optimize(tmp_path / "stopped", 0, caps=Caps(max_calls=40))
    assert json.loads((stopped / "summary.json").read_text())["status"] == "stopped"
    bare = _copy(stopped, tmp_path / "bare")
    (bare / "summary.json").unlink()
    out = write_report([stopped, bare], out=tmp_path / "r.html")
    parser_check(out, 3)
    html = out.read_text(encoding="utf-8")
    assert "Not evaluated on the test fold yet" in html
    assert "stopped" in html
    assert "unfinished" in html
    assert "budget: the cap of 40 calls is reached" in html
    assert f"not finished (still running, or killed): `opro resume {bare}` continues it" in html


# -- a browser renders the page ----------------------------------------------------------


@pytest.mark.browser
def test_report_renders_in_headless_chromium(
    runs: dict[str, Path], tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    dirs = [runs["opt"], runs["opt2"], runs["linreg"], runs["tsp"]]
    out = write_report(dirs, out=tmp_path / "report.html")
    check_rendering(out, 7, record_property)


def test_without_chromium_the_check_says_so_and_still_asserts(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    out = write_report([runs["tsp"]], out=tmp_path / "r.html")
    recorded: dict[str, object] = {}
    with pytest.warns(UserWarning, match="chromium unavailable: no executable .*no-chromium"):
        check_rendering(out, 2, recorded.__setitem__)
    assert str(recorded["browser"]).startswith("html.parser")
    with pytest.raises(AssertionError):
        check_rendering(out, 3, recorded.__setitem__)  # a wrong count still fails


def test_the_parser_check_fails_on_a_broken_image(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text('<img src="data:image/svg+xml;base64,aGVsbG8="><img src="missing.svg">')
    with pytest.raises(AssertionError, match="not an SVG"):
        parser_check(page, 2)
    with pytest.raises(AssertionError):
        parser_check(page, 1)


# -- bad input: one line, non-zero exit, nothing written ---------------------------------


def _corrupt_steps(run: Path, tmp: Path) -> list[str]:
    """Cut line 2 of 4 in half (a cut *last* line is a killed write, and is skipped)."""
    lines = (run / "steps.jsonl").read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    (run / "steps.jsonl").write_text("\n".join(lines) + "\n")
    return [str(run)]


BAD: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {
    "missing": (lambda run, tmp: [str(tmp / "nope")], "does not exist"),
    "a file": (lambda run, tmp: [str(run / "config.json")], "is not a directory"),
    "empty dir": (lambda run, tmp: [str((tmp / "empty").resolve())], "not an opro run directory"),
    "corrupt steps": (_corrupt_steps, "corrupt at line 2"),
    "labels": (lambda run, tmp: [str(run), "--label", "a", "--label", "b"], "give one per run dir"),
    "out dir missing": (
        lambda run, tmp: [str(run), "--out", str(tmp / "no" / "r.html")],
        "does not exist",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(
    case: str, runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(runs["opt"], tmp_path)
    (tmp_path / "empty").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    make_args, needle = BAD[case]
    code = cli.main(["report", *make_args(run, tmp_path)])
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("opro: error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before  # no report, no figure, no temp file


def test_cli_prints_the_report_path_last(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert cli.main(["report", str(runs["tsp"]), "--out", str(out), "--title", "T"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    assert out.is_file()


def test_cli_report_of_several_runs_leaves_their_own_reports(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    first, second = _copy(runs["opt"], tmp_path), _copy(runs["opt2"], tmp_path)
    own = api.report([first]).read_bytes()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", str(first), str(second)]) == 0
    assert (first / "report.html").read_bytes() == own  # #24 point 9: A's report stays A's
    assert capsys.readouterr().out.strip() == "report-compare.html"
    assert "OPRO report: 2 runs" in (tmp_path / "report-compare.html").read_text("utf-8")
