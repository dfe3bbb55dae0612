"""The run-dir format's reference stays true: the committed JSON Schemas are what
scripts/run_dir_schema.py generates from the code's records, real run dirs of every kind (and a
job, and a stopped run) validate against them, broken records do not, and the reference page
names every field and shows examples that validate."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema  # the dev extra
import pytest

from opro import Caps, InstructionsSpec, LinregSpec, ObjectiveSpec, TspSpec
from opro.problems.base import Partial
from opro.problems.records import Candidate, RunSummary
from opro.problems.registry import kind_names
from opro.runlog import CONFIG, FORMAT, STEPS, SUMMARY
from tests.conftest import ROOT, SHARED_DATA, load_script
from tests.doubles import run_kind

SCHEMA_DIR = ROOT / "docs" / "reference" / "schema"
PAGE = ROOT / "docs" / "reference" / "run-dir-format.md"
FILES = {CONFIG: "config.schema.json", STEPS: "step.schema.json", SUMMARY: "summary.schema.json"}
KINDS = kind_names()
REVIEWS = [
    {"text": "A great film, I love it", "label": "positive"},
    {"text": "Dull and far too long", "label": "negative"},
    {"text": "Good acting, good story", "label": "positive"},
    {"text": "I walked out", "label": "negative"},
    {"text": "The best thing this year, great", "label": "positive"},
    {"text": "Boring from the first minute", "label": "negative"},
    {"text": "What a good surprise", "label": "positive"},
    {"text": "A waste of an evening", "label": "negative"},
]
Json = dict[str, Any]


def generator() -> ModuleType:
    return load_script("run_dir_schema")


def schema(name: str) -> Json:
    data: Json = json.loads((SCHEMA_DIR / FILES[name]).read_text(encoding="utf-8"))
    return data


def validator(name: str) -> Any:
    return jsonschema.Draft202012Validator(schema(name))


def errors(name: str, data: Any) -> list[str]:
    """Why ``data`` is not a valid ``name`` (config.json...): empty when it is. A record that
    fits none of a ``oneOf``'s branches (the kinds) gives each branch's reasons."""

    def leaves(error: Any) -> Iterator[str]:
        if not error.context:
            yield error.message
        for sub in error.context:
            yield from leaves(sub)

    return [m for error in validator(name).iter_errors(data) for m in leaves(error)]


def files_of(run: Path) -> Iterator[tuple[str, Any]]:
    """Every record of a run dir (or a job's, and its repetitions'): (file name, its JSON)."""
    for name in (CONFIG, SUMMARY):
        yield name, json.loads((run / name).read_text(encoding="utf-8"))
    if (run / STEPS).exists():
        for line in (run / STEPS).read_text(encoding="utf-8").splitlines():
            yield STEPS, json.loads(line)
    for rep in json.loads((run / CONFIG).read_text(encoding="utf-8")).get("runs", []):
        yield from files_of(run / rep)


# -- the committed files are the generated ones -------------------------------------------------


def test_the_committed_schemas_are_what_the_script_generates(tmp_path: Path) -> None:
    gen = generator()
    assert gen.stale() == [], "stale run-dir schemas: run scripts/run_dir_schema.py"
    assert gen.main(["--check"]) == 0
    # --check does catch a stale file: one field's meaning edited by hand, one file missing.
    for name, text in gen.generated().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert gen.stale(tmp_path) == []
    step = tmp_path / "step.schema.json"
    step.write_text(step.read_text().replace("outputs holding no solution", "edited"))
    (tmp_path / "config.schema.json").unlink()
    assert gen.stale(tmp_path) == ["config.schema.json", "step.schema.json"]


def test_the_schemas_are_draft_2020_12_and_at_this_format() -> None:
    for name in FILES:
        data = schema(name)
        assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(data)
        assert f"run-dir format {FORMAT}" in data["$comment"]
    written = schema(CONFIG)["properties"]["format"]
    assert (written["const"], written["description"]) == (
        FORMAT,
        "the run-dir format this file was written in",
    )


def test_every_property_says_what_it_means() -> None:
    """Each field of a record has a docstring, on one line in the schema and in Markdown: a
    property without a meaning would be a hole in the reference."""

    def holes(node: Any, where: str) -> Iterator[str]:
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            if key == "description" and ("\n" in value or "``" in value):
                yield f"{where}: not one line of Markdown: {value!r}"
            for name, prop in value.items() if key == "properties" else ():
                if "description" not in prop:
                    yield f"{where}.{name}: no meaning (give its field a docstring)"
            if isinstance(value, dict | list):
                yield from holes(
                    value, str(node.get("title", where)) if isinstance(node, dict) else where
                )

    assert [hole for name in FILES for hole in holes(schema(name), name)] == []


def test_every_kind_has_its_spec_its_solution_and_its_summary() -> None:
    """The parts that vary by kind are told apart, for every registered kind: a spec by its
    kind, a solution by its shape, a summary by its own required fields (a summary does not
    name its kind)."""
    spec = schema(CONFIG)["properties"]["spec"]
    assert set(spec["discriminator"]["mapping"]) == set(KINDS)
    assert len(spec["oneOf"]) == len(KINDS)
    solutions = schema(STEPS)["$defs"]["Candidate"]["properties"]["solution"]["anyOf"]
    assert [s["title"] for s in solutions] == [f"{kind} solution" for kind in KINDS]
    branches = [b["$ref"].rsplit("/", 1)[1] for b in schema(SUMMARY)["oneOf"]]
    assert branches == [f"{kind.title()}RunSummary" for kind in KINDS] + ["JobSummary"]
    for kind in KINDS:
        own = schema(SUMMARY)["$defs"][f"{kind.title()}RunSummary"]
        assert own["required"], f"{kind}: no field of its own tells its summary apart"
        assert own["unevaluatedProperties"] is False


# -- real run dirs validate ---------------------------------------------------------------------


RUNS = ("linreg", "tsp", "instructions", "stopped", "objective")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run dirs of every kind made by the scripted models of tests/doubles.py: a linear-
    regression job of 2 repetitions, a TSP run, an instructions run on a benchmark (with its
    final test evaluation), one on rows in memory, raced, stopped by a cap of calls, and a
    run on an objective of the user's (tests/test_objective.py) with feedback and solutions
    it could not score."""
    root = tmp_path_factory.mktemp("schema-runs")
    walker, shuffler = "fake:tests.doubles:linreg_walker", "fake:tests.doubles:tsp_shuffler"
    proposer = "fake:tests.doubles:instruction_proposer"
    run_kind(LinregSpec, root / "linreg", optimizer=walker, reps=2, steps=2)
    run_kind(TspSpec, root / "tsp", optimizer=shuffler, nodes=6, steps=2, max_attempts_per_step=8)
    run_kind(
        InstructionsSpec,
        root / "instructions",
        dataset="bbh:boolean_expressions",
        data_dir=str(SHARED_DATA),
        scorer="fake:tests.doubles:boolean_scorer",
        optimizer=proposer,
        max_train=8,
        max_test=8,
        steps=2,
        samples_per_step=3,
    )
    run_kind(
        InstructionsSpec,
        root / "stopped",
        caps=Caps(max_calls=40),
        dataset=REVIEWS,
        question_field="text",
        answer_field="label",
        train_size=6,
        metric="tests.own_metric:names_the_label",
        scorer="fake:tests.doubles:sentiment_scorer",
        scorer_api="chat",
        optimizer=proposer,
        evaluation="race",
        steps=5,
        samples_per_step=4,
    )
    run_kind(
        ObjectiveSpec,
        root / "objective",
        objective="tests.test_objective:troubled_async",  # feedback; raises, hangs on some
        task="Write a word.",
        initial=("ab", "abcd"),
        feedback=True,
        objective_timeout_s=0.3,
        optimizer="fake:tests.test_objective:propose_troubles",
        steps=1,
        samples_per_step=5,
    )
    return {name: root / name for name in RUNS}


@pytest.mark.parametrize("kind", RUNS)
def test_real_run_dirs_validate(runs: dict[str, Path], kind: str) -> None:
    seen: dict[str, int] = {}
    for name, data in files_of(runs[kind]):
        assert errors(name, data) == [], f"{kind}: {name}: {data}"
        seen[name] = seen.get(name, 0) + 1
    assert seen[CONFIG] == seen[SUMMARY] >= 1
    assert seen[STEPS] >= 2


def test_the_runs_cover_what_varies(runs: dict[str, Path]) -> None:
    """The runs above hold each kind's summary, a job's, a finished run's final evaluation
    and a stopped run without one: what the schemas tell apart is all exercised."""
    summaries = {name: json.loads((path / SUMMARY).read_text()) for name, path in runs.items()}
    assert summaries["linreg"]["kind"] == "job"
    assert "gap_percent" in summaries["tsp"]
    assert summaries["instructions"]["status"] == "finished"
    assert "test_evaluation" in summaries["instructions"]
    assert summaries["stopped"]["status"] == "stopped"
    assert "test_evaluation" not in summaries["stopped"]
    stopped_config = json.loads((runs["stopped"] / CONFIG).read_text())
    assert stopped_config["spec"]["dataset"]["rows"][0] == REVIEWS[0]  # the InlineData branch
    assert summaries["objective"]["invalid_solutions"] == 2
    step = [d for f, d in files_of(runs["objective"]) if f == STEPS][-1]
    assert [r["reason"] for r in step["invalid"]][1] == "timed out after 0.3 s"
    assert step["candidates"][0]["details"] == {"feedback": "3 letters"}


def test_format_1_steps_and_run_summaries_have_format_2s_shape() -> None:
    """As the page says: a format-1 run dir differs in its config.json and a job's summary
    only (both converted or read as they are), not in its steps or a run's summary."""
    runs = [p.parent for p in sorted((ROOT / "tests" / "data" / "format1").rglob(STEPS))]
    assert len(runs) >= 3
    for run in runs:
        assert json.loads((run / CONFIG).read_text())["format"] == 1
        for line in (run / STEPS).read_text().splitlines():
            assert errors(STEPS, json.loads(line)) == [], run
        assert errors(SUMMARY, json.loads((run / SUMMARY).read_text())) == [], run


# -- broken records do not ----------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Any], None]:
    """A change of the record at ``path`` (``a.0.b``); ``value`` ``...``: remove it."""

    def change(data: Any) -> None:
        *parents, last = path.split(".")
        for part in parents:
            data = data[int(part)] if isinstance(data, list) else data[part]
        key: Any = int(last) if isinstance(data, list) else last
        if value is ...:
            del data[key]
        else:
            data[key] = value

    return change


BROKEN: dict[str, tuple[str, str, Callable[[Any], None], str]] = {
    # case: (run, file, change, part of the reason it fails)
    "a step number as text": ("tsp", STEPS, _set("step", "0"), "'0' is not of type 'integer'"),
    "a step without its candidates": (
        "tsp",
        STEPS,
        _set("candidates", ...),
        "'candidates' is a required property",
    ),
    "a step with a key of its own": ("tsp", STEPS, _set("note", "x"), "('note' was unexpected)"),
    "a candidate without a score": (
        "tsp",
        STEPS,
        _set("candidates.0.score", ...),
        "'score' is a required property",
    ),
    "a solution that is an object": (
        "tsp",
        STEPS,
        _set("candidates.0.solution", {"w": 1}),
        "is not of type 'array'",
    ),
    "a partial score without its total": (
        "tsp",
        STEPS,
        _set("candidates.0.partial", {"scored": 3}),
        "'of' is a required property",
    ),
    "a usage count as text": (
        "tsp",
        STEPS,
        _set("usage.optimizer.calls", "8"),
        "'8' is not of type 'integer'",
    ),
    "marks with an unknown mark": (
        "instructions",
        STEPS,
        _set("candidates.0.details.marks", "01?"),
        "'01?' does not match",
    ),
    "an unknown status": ("tsp", SUMMARY, _set("status", "done"), "'done' is not one of"),
    "a tsp summary with a linreg field": (
        "tsp",
        SUMMARY,
        _set("w_true", 15),
        "('w_true' was unexpected)",
    ),
    "a tsp summary without its gap": (
        "tsp",
        SUMMARY,
        _set("gap_percent", ...),
        "'gap_percent' is a required property",
    ),
    "a summary without a total": (
        "tsp",
        SUMMARY,
        _set("tokens", ...),
        "'tokens' is a required property",
    ),
    "half a final evaluation": (
        "instructions",
        SUMMARY,
        _set("paired_test", ...),
        "'paired_test' is a dependency of",
    ),
    "a running job": ("linreg", SUMMARY, _set("status", "running"), "'running' is not one of"),
    "an unknown stop reason": (
        "tsp",
        SUMMARY,
        _set("stop_reason", "exploded"),
        "'exploded' is not one of",
    ),
    "a job's mean as a number": (
        "linreg",
        SUMMARY,
        _set("best_score", 1.0),
        "1.0 is not of type 'object'",
    ),
    "another format": ("tsp", CONFIG, _set("format", FORMAT + 1), f"{FORMAT} was expected"),
    "an unknown kind": ("tsp", CONFIG, _set("spec.kind", "knapsack"), "'tsp' was expected"),
    "a spec without its kind": (
        "tsp",
        CONFIG,
        _set("spec.kind", ...),
        "'kind' is a required property",
    ),
    "an unknown setting": (
        "tsp",
        CONFIG,
        _set("spec.engine.topk", 3),
        "('topk' was unexpected)",
    ),
    "a setting out of range": (
        "tsp",
        CONFIG,
        _set("spec.engine.temperature", 3.0),
        "3.0 is greater than the maximum of 2",
    ),
    "a cap of zero calls": ("tsp", CONFIG, _set("caps.max_calls", 0), "less than the minimum"),
    "an invalid solution without its reason": (
        "objective",
        STEPS,
        _set("invalid.0.reason", ...),
        "'reason' is a required property",
    ),
    "an objective spec with an unknown direction": (
        "objective",
        CONFIG,
        _set("spec.direction", "up"),
        "'up' is not one of",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_record_fails_validation(runs: dict[str, Path], case: str) -> None:
    kind, name, change, reason = BROKEN[case]
    records = [data for file, data in files_of(runs[kind]) if file == name]
    # The dir's own config and summary (a job's, not its repetitions'); a step that has
    # candidates.
    with_candidates = [r for r in records if name != STEPS or r["candidates"]]
    record = copy.deepcopy(with_candidates[0 if name != STEPS else -1])
    assert errors(name, record) == []  # valid before the change: the change is what fails
    change(record)
    found = errors(name, record)
    assert any(reason in message for message in found), f"{case}: {found}"


def test_what_the_writers_write_beyond_these_runs_validates(runs: dict[str, Path]) -> None:
    """A raced candidate (partial), an optimum, a summary while the run runs: written by the
    records' own ``to_json`` into a real run's step and summary."""
    step = next(d for f, d in files_of(runs["instructions"]) if f == STEPS and d["candidates"])
    raced = Candidate("Think.", "Think.", 50.0, {"marks": "10--"}, partial=Partial(2, 4))
    found = Candidate("Check.", "Check.", 100.0, None, optimal=True)
    step["candidates"] = [raced.to_json(), found.to_json()]
    assert errors(STEPS, step) == []
    summary = RunSummary.from_json(json.loads((runs["tsp"] / SUMMARY).read_text()))
    running = replace(summary, status="running", stop_reason="running").to_json()
    assert errors(SUMMARY, running) == []
    # the reader holds the same line as the schema: a stop reason it does not know is refused
    with pytest.raises(ValueError, match="'stop_reason' is 'exploded', not one of running"):
        RunSummary.from_json({**running, "stop_reason": "exploded"})


# -- the page -----------------------------------------------------------------------------------


def _property_names(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_property_names(item) for item in node))
    if not isinstance(node, dict):
        return set()
    found = set(node["properties"]) if isinstance(node.get("properties"), dict) else set()
    for value in node.values():
        found |= _property_names(value)
    return found


def test_the_page_names_every_field_of_the_schemas() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for name in FILES:
        missing = sorted(f for f in _property_names(schema(name)) if f"`{f}`" not in page)
        assert missing == [], f"{PAGE.name} does not name these fields of {name}: {missing}"


def test_the_pages_examples_validate_and_its_links_resolve() -> None:
    """Each example sits under a ``<!-- example: FILE -->`` comment; a steps.jsonl example
    is one record per line."""
    page = PAGE.read_text(encoding="utf-8")
    examples = re.findall(r"<!-- example: (\S+) -->\s*```json\n(.*?)```", page, re.DOTALL)
    assert {name for name, _ in examples} == set(FILES)
    for name, text in examples:
        records = (
            [json.loads(line) for line in text.splitlines()]
            if name == STEPS
            else [json.loads(text)]
        )
        for record in records:
            assert errors(name, record) == [], f"the page's example of {name}"
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page)
    local = [link for link in links if "://" not in link]
    assert {f"schema/{file}" for file in FILES.values()} <= set(local)
    for link in local:
        assert (PAGE.parent / link).is_file(), f"a broken link: {link}"
