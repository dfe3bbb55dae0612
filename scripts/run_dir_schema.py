"""The JSON Schemas (draft 2020-12) of a run dir's three files at the current run-dir format,
generated from the code's typed records and committed under docs/reference/schema/:

    .venv/bin/python scripts/run_dir_schema.py           # (re)write them
    .venv/bin/python scripts/run_dir_schema.py --check   # exit 1 if a committed one is stale

What the code types is generated: each kind's spec and the caps (pydantic models, with their
field descriptions), the records (dataclasses: ``StepRecord``, ``RunSummary``, ``JobSummary``,
the instructions' ``Outcome``..., with their attribute docstrings) and each kind's solution
(the ``S`` of its ``Problem[S]``). What the code writes as a plain dict is written here by
hand, kept small and named: the totals of summary.json, each kind's own summary fields
(``Problem.summary``), a job's per-rep rows, and a meaning for each field that has no
docstring. tests/test_run_dir_schema.py fails when the committed files differ from these,
and validates real run dirs of every kind against them.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import itertools
import json
import sys
import textwrap
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from opro.eval.scorer import MARKS
from opro.eval.stats import PairedTest
from opro.llm.config import LLMConfig
from opro.llm.usage import Caps, RoleUsage
from opro.problems.base import Partial, Problem
from opro.problems.instructions.problem import Outcome, TestRow
from opro.problems.instructions.spec import InlineData
from opro.problems.jobs import JobSummary, MeanStd
from opro.problems.records import (
    BestSolution,
    Candidate,
    ProposalCounts,
    Refused,
    RunSummary,
    Status,
    StepRecord,
    Verdict,
)
from opro.problems.registry import Kind, kinds
from opro.runlog import FORMAT, CacheConfig, RunConfig

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "docs" / "reference" / "schema"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]

MARKS_PATTERN = "^[" + "".join(sorted(set(MARKS.values()) - {"-"})) + "-]*$"
"""A marks string: one character per example (``-`` last: a literal in a character class)."""

# -- meanings the code does not state ---------------------------------------------------------

NOTES: dict[str, str] = {
    "RunConfig.format": "the run-dir format this file was written in",
    "RunConfig.spec": "the run's spec: the problem kind, its parameters, the models, the "
    "loop's knobs and the seed; one of the kinds' specs, told apart by 'kind'",
    "RunConfig.caps": "what the run may spend at most (a cap of null: no cap)",
    "RunConfig.cache": "the LLM call cache the run uses",
    "RunConfig.versions": "the versions that wrote the run: python and the installed "
    "packages among opro, openai, llama-cpp-python, numpy, highspy",
    "CacheConfig.enabled": "whether LLM calls are cached and replayed",
    "CacheConfig.path": "the cache's SQLite file; null: the default ($OPRO_CACHE_DIR, else "
    "the user cache dir)",
    "Caps.max_tokens_total": "prompt and completion tokens, over all roles",
    "Caps.budget_usd": "US dollars, over all roles",
    "Caps.time_limit_s": "seconds of run time, over all sessions of the run",
    "RunSpec.kind": "the problem kind (linreg, tsp, instructions, objective): which spec this is",
    "RunSpec.engine": "the OPRO loop's knobs",
    "InlineData.rows": "the examples, as given (each an object of fields)",
    "InlineData.name": "the dataset's name in reports",
    "TspSpec.optimal_length": "the exact optimum's tour length (computed before the run)",
    "TspSpec.optimal_tour": "an optimal tour (computed before the run)",
    "TspSpec.proven_optimal": "whether the exact solver proved the optimum within its time limit",
    "InstructionsSpec.scorer_style": "how the scorer is prompted: base (Q/A text) or chat "
    "(default: from the scorer's prompt API)",
    "StepRecord.step": "the step's number: 0 (the starting solutions), 1, 2... in order",
    "StepRecord.temperature": "the optimizer's sampling temperature at this step (0 at "
    "step 0, where nothing is sampled)",
    "StepRecord.meta_prompt": "the meta-prompt the optimizer was given; null at step 0 (the "
    "starting solutions are not proposed)",
    "StepRecord.outputs": "every optimizer output of the step, as returned, in order (an "
    "embedded model stops an output once it cannot parse, when the problem has an answer "
    "shape: TSP)",
    "StepRecord.candidates": "the step's new solutions (parsed, not seen before), as scored",
    "StepRecord.parse_failures": "outputs holding no solution",
    "StepRecord.duplicates": "outputs whose solution was already seen",
    "StepRecord.step_seconds": "seconds the step took",
    "StepRecord.elapsed_s": "the run's seconds when the step was done, over all sessions",
    "StepRecord.usage": "per role (optimizer, scorer, judge): the run's usage so far",
    "Candidate.solution": "its JSON form: linreg a pair [w, b], tsp a tour (a permutation "
    "of the nodes 0..n-1), instructions the instruction, objective the solution's text",
    "Candidate.text": "the solution as shown in the meta-prompt",
    "Candidate.score": "its score: linreg the sum of squared residuals, tsp the tour's "
    "length (lower is better), instructions the training accuracy in percent, objective "
    "what the user's function returned",
    "Partial.scored": "examples scored",
    "Partial.of": "examples in the training fold",
    "RoleUsage.calls": "calls that reached a backend and succeeded",
    "RoleUsage.cached_calls": "calls answered from the cache (free)",
    "RoleUsage.retries": "retries of calls that failed (429, 5xx, timeouts)",
    "RoleUsage.failures": "calls that failed after their retries",
    "RoleUsage.prompt_tokens": "prompt tokens of the calls",
    "RoleUsage.completion_tokens": "completion tokens of the calls",
    "RoleUsage.cost_usd": "US dollars spent; null when the model's price is unknown",
    "RunSummary.status": "running (written after each step), finished or stopped",
    "RunSummary.stop_reason": "why it ended: max_steps, optimum or patience (finished); "
    "budget, llm_error, interrupted, user_code (the user's metric failed) or error "
    "(stopped); 'running' while it runs",
    "RunSummary.message": "why it stopped, in a sentence (empty when finished)",
    "RunSummary.steps_completed": "the last completed step's number (0 also when none is)",
    "RunSummary.best": "the best solution so far (null: nothing scored)",
    "RunSummary.first_optimal_step": "the step that found a known optimum (null: none)",
    "RunSummary.solutions_evaluated": "distinct solutions scored so far",
    "RunSummary.usage": "per role: the run's usage",
    "RunSummary.elapsed_s": "the run's seconds, over all sessions",
    "RunSummary.calls": "total of usage: calls",
    "RunSummary.cached_calls": "total of usage: cached calls",
    "RunSummary.retries": "total of usage: retries",
    "RunSummary.tokens": "total of usage: prompt + completion tokens",
    "RunSummary.cost_usd": "total of usage: US dollars (null if a role's is unknown)",
    "BestSolution.solution": "its JSON form, as in the step records",
    "BestSolution.text": "as shown in the meta-prompt",
    "BestSolution.score": "its score",
    "BestSolution.step": "the step that found it",
    "JobSummary.kind": "always 'job': a job of repetitions, not one run",
    "JobSummary.status": "finished when every repetition finished, else stopped",
    "JobSummary.stop_reason": "the first unfinished repetition's stop reason, else the last's",
    "JobSummary.message": "that repetition's message when one is unfinished, else empty",
    "JobSummary.reps": "repetitions (run dirs rep-0, rep-1...)",
    "JobSummary.reps_finished": "repetitions that finished",
    "JobSummary.reps_reaching_optimum": "finished repetitions that found a known optimum",
    "JobSummary.per_rep": "per repetition, in order: its dir, status and numbers",
    "PerRep.run": "the repetition's dir, under the job's",
    "PerRep.status": "its status ('not run': no summary yet)",
    "MeanStd.mean": "the mean over the finished repetitions that have the number",
    "MeanStd.std": "their population standard deviation",
    "MeanStd.n": "how many repetitions the mean is over",
    "Outcome.n_test": "examples in the test fold",
    "Outcome.best_test_score": "the best instruction's test accuracy (percent)",
    "Outcome.initial_instruction": "the first starting instruction (the baseline)",
    "Outcome.initial_train_score": "its training accuracy",
    "Outcome.initial_test_score": "its test accuracy",
    "Outcome.paired_test": "the best instruction against the baseline on the test fold",
    "Outcome.test_evaluation": "each instruction scored on the test fold: the baseline(s) "
    "and the top ones by training accuracy",
    "TestRow.instruction": "the instruction",
    "TestRow.train_score": "its training accuracy (percent)",
    "TestRow.test_score": "its test accuracy (percent; null when nothing was answered)",
    "TestRow.n": "test examples",
    "TestRow.correct": "examples answered correctly",
    "TestRow.wrong": "examples answered wrongly",
    "TestRow.empty": "examples with no answer found",
    "TestRow.failed": "examples whose scorer call failed",
    "TestRow.elapsed_s": "seconds its scoring took",
    "TestRow.p_value_vs_initial": "exact McNemar p-value against the baseline",
    "TestRow.marks": "per example: 1 correct, 0 wrong, e empty, x failed, - not asked",
    "PairedTest.method": "the test: mcnemar-exact",
    "PairedTest.n": "examples answered under both instructions",
    "PairedTest.only_baseline": "examples correct under the baseline only",
    "PairedTest.only_other": "examples correct under the best instruction only",
    "PairedTest.p_value": "the two-sided p-value",
}
"""``Class.field`` → its meaning, for fields without a description or docstring in the code
(a field of a subclass is looked up under each class of its MRO)."""

# -- what the code writes as plain dicts --------------------------------------------------------

Fields = dict[str, tuple[Any, str]]
"""Field name → (its Python type, its meaning)."""

KIND_FINAL: dict[str, type] = {"instructions": Outcome}
"""Each kind's ``Problem.finalize`` (a typed record): written once the loop has finished."""

TOTALS: Fields = {
    "calls": (int, NOTES["RunSummary.calls"]),
    "cached_calls": (int, NOTES["RunSummary.cached_calls"]),
    "retries": (int, NOTES["RunSummary.retries"]),
    "tokens": (int, NOTES["RunSummary.tokens"]),
    "cost_usd": (float | None, NOTES["RunSummary.cost_usd"]),
}
"""The totals of ``usage`` that ``RunSummary.to_json`` adds for people."""

VERDICT: Fields = {
    "verdict": (Verdict, "what the proposals came to (written with them): improved (a new "
                "solution beat the best starting one), no_improvement, all_duplicates, "
                "no_valid_proposals (none parsed), all_invalid (no new one could be scored) or "
                "nothing_proposed (no step after 0 yet)"),
}  # fmt: skip
"""``proposals.verdict``, which ``RunSummary.to_json`` adds for people and tools."""

CANDIDATE_DETAILS: Fields = {
    "marks": (str, "instructions: per training example, 1 correct, 0 wrong, e empty, "
              "x failed, - not scored (racing)"),
    "feedback": (str, "objective: the text the user's function returned with the score"),
}  # fmt: skip
"""The known keys of a candidate's ``details`` (what scoring found besides the score)."""


# -- building -----------------------------------------------------------------------------------


class Document:
    """One schema file: its definitions gathered from every generated part."""

    def __init__(self) -> None:
        self.defs: dict[str, Schema] = {}

    def of(self, tp: Any) -> Schema:
        """``tp``'s schema as pydantic writes it to JSON; its definitions are shared."""
        schema = TypeAdapter(tp).json_schema(mode="serialization")
        for name, definition in schema.pop("$defs", {}).items():
            if self.defs.setdefault(name, definition) != definition:
                raise SystemExit(f"two different types are called {name}")
        return schema

    def define(self, name: str, schema: Schema) -> Schema:
        self.defs[name] = schema
        return {"$ref": f"#/$defs/{name}"}

    def fields(self, fields: Fields) -> Schema:
        return {name: {**self.of(tp), "description": text} for name, (tp, text) in fields.items()}

    def finish(self, description: str, body: Schema) -> Schema:
        """The file: ``body`` (titled) with the draft, this file's description, and every
        definition, each property given its meaning."""
        document: Schema = {
            "$schema": DRAFT,
            "$comment": f"run-dir format {FORMAT}; generated by scripts/run_dir_schema.py from "
            "the code's records: do not edit",
            "title": body["title"],
            "description": description,
            **{k: v for k, v in body.items() if k not in ("title", "description")},
            "$defs": dict(sorted(self.defs.items())),
        }
        _describe(document)
        return document


def config_schema() -> Schema:
    doc = Document()
    specs = tuple(kind.spec for kind in kinds())
    union: Any = Annotated[Union[specs], Field(discriminator="kind")]  # noqa: UP007
    spec = doc.of(union)
    for cls in specs:  # the reader picks the spec by its kind: never left to a default
        doc.defs[cls.__name__]["required"] = ["kind", *doc.defs[cls.__name__].get("required", [])]
    body: Schema = {
        "type": "object",
        "title": "RunConfig",
        "properties": {
            "format": {"const": FORMAT},
            "versions": {"type": "object", "additionalProperties": {"type": "string"}},
            "spec": spec,
            "caps": doc.define("Caps", doc.of(Caps)),
            "cache": doc.define("CacheConfig", _closed(doc.of(CacheConfig))),
            "runs": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["format", "versions", "spec", "caps", "cache"],
        "additionalProperties": False,
    }
    return doc.finish(
        "A run's config.json: its spec and what else a resume needs; a job of repetitions "
        "also names its runs' dirs ('runs').",
        body,
    )


def step_schema() -> Schema:
    doc = Document()
    record = _closed(doc.of(StepRecord))
    candidate = _closed(doc.defs["Candidate"])
    candidate["properties"]["solution"] = {
        "anyOf": [
            {**doc.of(solution), "title": f"{kind.name} solution"}
            for kind, solution in _solutions().items()
        ]
    }
    candidate["properties"]["details"] = {
        "type": "object",
        "properties": doc.fields(CANDIDATE_DETAILS),
        "description": "what scoring found besides the score (written only when there is "
        "something): the known keys are listed",
    }
    candidate["properties"]["details"]["properties"]["marks"]["pattern"] = MARKS_PATTERN
    _closed(doc.defs["Partial"])
    _closed(doc.defs["RoleUsage"])
    _closed(doc.defs["Refused"])
    return doc.finish(
        "One line of a run's steps.jsonl: one completed step, the starting solutions being step 0.",
        record,
    )


def summary_schema() -> Schema:
    doc = Document()
    common = doc.of(RunSummary)
    del common["properties"]["details"]  # each kind's fields sit at the top level instead
    common["properties"] |= doc.fields(TOTALS) | doc.fields(VERDICT)
    common["required"] = [*common["required"], *TOTALS]
    _closed(doc.defs["BestSolution"])
    _closed(doc.defs["ProposalCounts"])
    _closed(doc.defs["RoleUsage"])
    doc.define("RunSummary", common)
    branches = [
        doc.define(f"{kind.name.title()}RunSummary", _kind_summary(doc, kind)) for kind in kinds()
    ]
    branches.append(doc.define("JobSummary", _job_summary(doc)))
    return doc.finish(
        "A run's summary.json (where it stands: rewritten after every step and at its end), "
        "or a job's (its repetitions' numbers as mean and standard deviation).",
        {"title": "RunSummary or JobSummary", "oneOf": branches},
    )


def _kind_summary(doc: Document, kind: Kind[Any]) -> Schema:
    """The common fields and the kind's own (its problem's ``summary_model``): those written
    after every step are required (they tell the kinds apart; one with a default was added
    later, and older summaries lack it), those of its final evaluation come all or none."""
    model = doc.of(kind.problem.summary_model)
    own = model.pop("properties", {})
    schema: Schema = {
        "title": f"{kind.name} run summary",
        "$ref": "#/$defs/RunSummary",
        "properties": own,
        "required": model.get("required", []),
    }
    final = KIND_FINAL.get(kind.name)
    if final is not None:
        outcome = doc.of(final)
        _describe(outcome)  # its meanings are the record's, then merged into the kind's
        written = set(own)  # after every step: required, as described
        schema["properties"] |= {k: v for k, v in outcome["properties"].items() if k not in written}
        keys = [k for k in outcome["required"] if k not in written]
        schema["dependentRequired"] = {key: [k for k in keys if k != key] for key in keys}
        for name in ("TestRow", "PairedTest"):
            _closed(doc.defs[name])
        doc.defs["TestRow"]["properties"]["marks"]["pattern"] = MARKS_PATTERN
    schema["unevaluatedProperties"] = False
    return schema


def _job_summary(doc: Document) -> Schema:
    job = doc.of(JobSummary)
    properties = job["properties"]
    del properties["means"]  # each mean sits at the top level, under its number's name
    properties["kind"] = {"const": "job"}
    properties["status"] = {"enum": ["finished", "stopped"]}  # never "running"
    properties["per_rep"] = {
        "type": "array",
        "items": {
            "title": "PerRep",
            "type": "object",
            "properties": {
                "run": {"type": "string"},
                "status": {"enum": [*typing.get_args(Status), "not run"]},
            },
            "required": ["run", "status"],
            "additionalProperties": {
                "type": ["number", "null"],
                "description": "best_score and each numeric field of its summary",
            },
        },
    }
    job["required"] = ["kind", *(r for r in job["required"] if r != "means")]
    job["additionalProperties"] = {
        **doc.define("MeanStd", _closed(doc.of(MeanStd))),
        "description": "each number of the finished repetitions (best_score and the kind's "
        "numeric fields): its mean and standard deviation",
    }
    return job


# -- where the meanings come from -----------------------------------------------------------------


def _solutions() -> dict[Kind[Any], Any]:
    """Each kind's solution type: the ``S`` of the ``Problem[S]`` its ``build`` returns (a
    solution is written as its JSON form, ``Problem.to_json``: a tuple as an array)."""
    found: dict[Kind[Any], Any] = {}
    for kind in kinds():
        problem = typing.get_type_hints(type(kind).build)["return"]
        for base in getattr(problem, "__orig_bases__", ()):
            if typing.get_origin(base) is Problem:
                found[kind] = typing.get_args(base)[0]
        if kind not in found:
            raise SystemExit(f"{kind.name}: its build() names no Problem[S]")
    return found


@functools.cache
def _classes() -> dict[str, list[type]]:
    """Schema title (pydantic titles a record's schema by its class) → that class and its
    bases, where its fields' meanings are looked up."""
    named: list[type] = [
        RunConfig, CacheConfig, Caps, LLMConfig, InlineData, StepRecord, Candidate, Partial,
        RoleUsage, RunSummary, BestSolution, JobSummary, MeanStd, Outcome, TestRow, PairedTest,
        ProposalCounts, Refused,
    ]  # fmt: skip
    for kind in kinds():
        named += [kind.spec, kind.spec.model_fields["engine"].annotation]
    return {cls.__name__: list(cls.__mro__) for cls in named}


def _describe(node: Any) -> None:
    """Give every property of every object its meaning: its description in the code (a
    pydantic field's), else its attribute docstring, else ``NOTES``; drop the titles pydantic
    gives properties (their names, capitalised). A field left without a meaning stops the
    script: every field of the format is documented."""
    if isinstance(node, list):
        for item in node:
            _describe(item)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("description"), str):  # the code's reST literals as Markdown's
        node["description"] = node["description"].replace("``", "`")
    title = str(node.get("title", "(untitled)"))
    properties = node.get("properties")
    if isinstance(properties, dict):
        mro = _classes().get(title, [])
        for name, prop in properties.items():
            prop.pop("title", None)
            if "description" not in prop:
                meaning = _meaning(title, mro, name)
                if meaning is None:
                    raise SystemExit(f"{title}.{name} has no meaning: add one to NOTES")
                prop["description"] = meaning
    for value in node.values():
        _describe(value)


def _meaning(title: str, mro: list[type], name: str) -> str | None:
    for cls in mro:
        note = NOTES.get(f"{cls.__name__}.{name}")
        if note is not None:
            return note
        doc = _attribute_docs(cls).get(name)
        if doc is not None:
            return doc
    return NOTES.get(f"{title}.{name}")


@functools.cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings under a class's annotated attributes (``x: int`` then ``\"\"\"...\"\"\"``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for field, after in itertools.pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = " ".join(after.value.value.split())
    return docs


def _closed(schema: Schema) -> Schema:
    """A record's object: the code writes exactly its fields (a drift fails validation)."""
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
    return schema


# -- the files ------------------------------------------------------------------------------------

SCHEMAS: dict[str, Callable[[], Schema]] = {
    "config.schema.json": config_schema,
    "step.schema.json": step_schema,
    "summary.schema.json": summary_schema,
}


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """Each schema file's name → its text, as this code generates it now."""
    return {name: render(build()) for name, build in SCHEMAS.items()}


def stale(folder: Path = SCHEMA_DIR) -> list[str]:
    """The schema files under ``folder`` that are missing or differ from ``generated``."""
    return [
        name
        for name, text in generated().items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a committed file is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"{SCHEMA_DIR / name} is stale: run scripts/run_dir_schema.py", file=sys.stderr)
        return 1 if names else 0
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in generated().items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
