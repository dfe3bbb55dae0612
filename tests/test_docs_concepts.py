"""The Concepts pages of the docs site (``docs/concepts/``) against the code.

The pages show exact prompts, defaults and worked examples. Each one is marked in the page
source by an HTML comment (invisible on the site) and regenerated here with the library's
own functions, so a page cannot drift from the code:

- ``<!-- prompt: NAME -->`` before a fenced ``text`` block: the block is the text NAME's
  generator below makes (a scorer prompt, a meta-prompt, an error message);
- ``<!-- table: KIND ... -->`` before a Markdown table: each row is checked (defaults, how
  scores are shown, answer scoring, when racing drops a proposal);
- ``<!-- question: DATASET -->`` before a fenced block: the question the answer table's
  multiple-choice rows are scored against.

A changed prompt fails here: update the page (the failure shows the new text) when the change
is meant. The loop diagram must be a well-formed SVG that the loop page shows.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opro import score_answer
from opro.cli.options import with_flags
from opro.data import Dataset, Example
from opro.errors import ConfigError
from opro.eval.racing import RaceRule
from opro.eval.scorer import Position, ScorerOptions, ScorerStyle, score_instructions
from opro.history import History, Scored
from opro.llm.fake import FakeLLM
from opro.meta_prompt import display_score, render_meta_prompt
from opro.problems.instructions.problem import InstructionOptimization
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.objective import ObjectiveProblem, ObjectiveSpec
from opro.problems.spec import EngineSpec, ScoreDisplay, canonical_name, default_at, settings_of
from opro.types import Request

ROOT = Path(__file__).resolve().parents[1]
CONCEPTS = ROOT / "docs" / "concepts"
PAGES = ("loop", "meta-prompts", "instruction-positions", "answer-modes", "racing", "objectives")

# A marker, then its fenced block: the body runs to the first line that is only ```.
FENCED = r"<!-- {tag}: (?P<name>[^\n]*?) -->\n```text\n(?P<body>.*?)\n```$"
PROMPT_BLOCK = re.compile(FENCED.format(tag="prompt"), re.DOTALL | re.MULTILINE)
QUESTION_BLOCK = re.compile(FENCED.format(tag="question"), re.DOTALL | re.MULTILINE)
# A marker, then a Markdown table: its header, the |---| line, and every row after it.
TABLE = re.compile(r"<!-- table: (?P<name>[^\n]*?) -->\n(?P<table>(?:\|[^\n]*\|\n?)+)")


def _page(name: str) -> str:
    return (CONCEPTS / f"{name}.md").read_text(encoding="utf-8")


def _all_pages() -> dict[str, str]:
    return {name: _page(name) for name in PAGES}


def _rows(table: str) -> tuple[list[str], list[list[str]]]:
    """A Markdown table's header cells and body rows, each cell stripped of spaces and of
    the backticks that mark code (no cell of ours holds a ``|``)."""
    lines = [line.strip() for line in table.strip().splitlines()]
    cells = [[c.strip().strip("`") for c in line.strip("|").split("|")] for line in lines]
    assert re.fullmatch(r"[|:\- ]+", lines[1]), f"no |---| line under the header: {lines[1]}"
    return cells[0], cells[2:]


def _tables(kind: str) -> list[tuple[str, str]]:
    """Every table marked ``<!-- table: KIND ARGS -->``: (ARGS, table) pairs."""
    found = []
    for text in _all_pages().values():
        for match in TABLE.finditer(text):
            head, _, args = match["name"].partition(" ")
            if head == kind:
                found.append((args, match["table"]))
    assert found, f"no table marked {kind!r} on the concepts pages"
    return found


# -- the worked examples the pages show --------------------------------------------------

QUESTION = "not ( True ) and ( True ) is"
INSTRUCTION = "Let's think step by step."
FIRST_ANSWER = " not ( True ) is False, so False and True is False."
"""A pre-trained scorer's first answer, for the second pass ("So the final answer is")."""

TRAIN = (
    Example(QUESTION, "False", "boolean", 0),
    Example("True and not not ( not False ) is", "True", "boolean", 1),
    Example("not True or ( False and True ) is", "False", "boolean", 2),
)
"""Three training questions in the style of bbh:boolean_expressions: with 3 exemplars asked
for, all three are shown, in this order, whatever the seed."""

HISTORY = (
    ("", 31.0),
    ("Let's think step by step.", 58.3),
    ("Answer True or False.", 12.5),
    ("Check each operator.", 47.9),
    ("Work from the innermost brackets out.", 58.3),
)
"""(instruction, training accuracy %), one per step from 0: the table on meta-prompts.md."""


def _requests(
    position: Position,
    style: ScorerStyle,
    instruction: str = INSTRUCTION,
    **options: Any,
) -> list[Request]:
    """What the scorer LLM receives for QUESTION, through the real scoring path."""
    llm = FakeLLM.from_function(lambda request: FIRST_ANSWER)
    scorer = ScorerOptions(position, style, **options)
    asyncio.run(score_instructions(llm, [instruction], TRAIN[:1], scorer))
    return llm.requests


def _scorer_prompt(position: Position, style: ScorerStyle, instruction: str = INSTRUCTION) -> str:
    [request] = _requests(position, style, instruction)
    return request.prompt


def _in_system_message() -> Request:
    """A chat scorer's request with ``--instruction-in system`` and a system prompt."""
    [request] = _requests(
        "Q_begin", "chat", instruction_in="system", system="You solve logic puzzles."
    )
    return request


def _a_begin_chat_error() -> str:
    with pytest.raises(ConfigError) as caught:
        ScorerOptions("A_begin", "chat")
    return with_flags(str(caught.value))  # as the CLI shows it


def _meta_prompt(style: str, position: str, **engine: Any) -> str:
    dataset = Dataset("bbh:boolean_expressions", "boolean expressions", "boolean", TRAIN, TRAIN)
    # As the page says: a chat scorer at Q_begin, a pre-trained one at A_begin.
    scorer_style = "base" if position == "A_begin" else "chat"
    spec = InstructionsSpec.model_validate(
        {"dataset": dataset.name, "scorer_style": scorer_style, "position": position}
        | {"style": style}
    )
    problem = InstructionOptimization(spec, dataset, FakeLLM("echo"))
    history: History[str] = History("max")
    for step, (text, score) in enumerate(HISTORY):
        history.add(Scored(text, text, score, step))
    settings = EngineSpec(**({"top_k": 4} | engine))
    return render_meta_prompt(problem, history, settings, np.random.default_rng(0))


GUESS_TASK = "Find the secret integer: the closer your guess, the higher the score (0 is a hit)."
GUESS_FORMAT = "A solution is one integer."
GUESSES = (("10", -127.0, "too low"), ("500", -363.0, "too high"), ("100", -37.0, "too low"),
           ("5", -132.0, "too low"))  # fmt: skip
"""(solution, score, feedback) in the order runs of the tutorial's task scored them
(docs/tutorials/own-objective.md): objectives.md shows meta-prompts from their steps.jsonl."""


def _objective_prompt(
    style: str, shown: int, *, feedback: bool = False, show_history: bool = True
) -> str:
    """The meta-prompt of an objective run of the tutorial's task, after its first ``shown``
    solutions were scored."""
    spec = ObjectiveSpec(
        objective="my_objective:closeness", task=GUESS_TASK, solution_format=GUESS_FORMAT,
        style=style, feedback=feedback, show_history=show_history,
    )  # fmt: skip
    problem = ObjectiveProblem(spec, objective=None)  # type: ignore[arg-type]  # not called
    history: History[str] = History(spec.direction)
    for step, (text, score, note) in enumerate(GUESSES[:shown]):
        history.add(Scored(text, text, score, step, details={"feedback": note}))
    return render_meta_prompt(problem, history, spec.engine, np.random.default_rng(0))


PROMPTS: dict[str, Callable[[], str]] = {
    # instruction-positions.md: pre-trained (base) scorers, the Q/A pattern
    "base-Q_begin": lambda: _scorer_prompt("Q_begin", "base"),
    "base-Q_end": lambda: _scorer_prompt("Q_end", "base"),
    "base-A_begin": lambda: _scorer_prompt("A_begin", "base"),
    "base-before_Q": lambda: _scorer_prompt("before_Q", "base"),
    "base-empty": lambda: _scorer_prompt("A_begin", "base", ""),
    "base-extract": lambda: _requests("A_begin", "base", extract=True)[1].prompt,
    # chat scorers: one user turn
    "chat-Q_begin": lambda: _scorer_prompt("Q_begin", "chat"),
    "chat-Q_end": lambda: _scorer_prompt("Q_end", "chat"),
    "chat-before_Q": lambda: _scorer_prompt("before_Q", "chat"),
    "chat-A_begin-error": _a_begin_chat_error,
    "chat-system-message": lambda: str(_in_system_message().system),
    "chat-system-user-turn": lambda: _in_system_message().prompt,
    # meta-prompts.md
    "meta-instruct": lambda: _meta_prompt("instruct", "Q_begin"),
    "meta-pretrained": lambda: _meta_prompt("pretrained", "A_begin"),
    "meta-pretrained-no-scores": lambda: _meta_prompt(
        "pretrained", "A_begin", score_display="none"
    ),
    "meta-instruct-descending-top2": lambda: _meta_prompt(
        "instruct", "A_begin", top_k=2, order="descending"
    ),
    # objectives.md: runs of the tutorial's task, from their steps.jsonl
    "objective-pretrained": lambda: _objective_prompt("pretrained", 4),
    "objective-instruct-feedback": lambda: _objective_prompt("instruct", 2, feedback=True),
    "objective-pretrained-baseline": lambda: _objective_prompt("pretrained", 2, show_history=False),
    "objective-instruct-baseline": lambda: _objective_prompt("instruct", 2, show_history=False),
}


def _blocks() -> dict[str, str]:
    """Every marked prompt block of the pages, by name (each name once)."""
    found: dict[str, str] = {}
    for page, text in _all_pages().items():
        markers = text.count("<!-- prompt: ")
        matches = list(PROMPT_BLOCK.finditer(text))
        # A marker whose block is not a ```text fence right under it would go unchecked.
        assert len(matches) == markers, f"{page}.md: a prompt marker without a ```text block"
        for match in matches:
            assert match["name"] not in found, f"prompt {match['name']!r} shown twice"
            found[match["name"]] = match["body"]
    return found


def test_every_marked_prompt_has_a_generator_and_every_generator_is_shown() -> None:
    assert set(_blocks()) == set(PROMPTS)


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_a_prompt_on_the_pages_is_what_the_code_makes(name: str) -> None:
    shown = _blocks().get(name)
    assert shown is not None, f"prompt {name!r} is not on any concepts page"
    made = PROMPTS[name]()
    assert made, "an empty text cannot be shown in a block"
    assert shown == made, f"the page shows another text for {name!r}; the code makes:\n{made}"


# -- tables -----------------------------------------------------------------------------


def test_defaults_tables_match_the_specs_defaults() -> None:
    settings = settings_of(InstructionsSpec)
    for _, table in _tables("defaults"):
        header, rows = _rows(table)
        assert header[1:] == ["flag", "default"], header
        for _, flag, default in rows:
            path = settings[canonical_name(InstructionsSpec, flag.removeprefix("--"))]
            assert str(default_at(InstructionsSpec, path)) == default, flag


def test_the_score_display_table_matches_display_score() -> None:
    [(_, table)] = _tables("score-display")
    header, rows = _rows(table)
    scores = [float(cell) for cell in header[1:]]
    for mode, *shown in rows:
        display: ScoreDisplay = mode  # type: ignore[assignment]
        for score, cell in zip(scores, shown, strict=True):
            expected = display_score(score, display)
            assert (cell if cell != "not shown" else None) == expected, (mode, score)


def test_the_answer_examples_are_scored_as_the_page_says() -> None:
    text = _page("answer-modes")
    questions = {m["name"]: m["body"] for m in QUESTION_BLOCK.finditer(text)}
    [(_, table)] = _tables("answers")
    header, rows = _rows(table)
    assert header == ["output", "target", "kind", "dataset", "strict", "paper"], header
    verdicts = {"right": True, "wrong": False}
    for output, target, kind, dataset, strict, paper in rows:
        # The choice rows' options come from their question; the others need none.
        question = questions.get(dataset, "")
        for mode, said in (("strict", strict), ("paper", paper)):
            got = score_answer(
                output,
                target,
                kind=kind,  # type: ignore[arg-type]
                question=question,
                mode=mode,  # type: ignore[arg-type]
                dataset=dataset,
            )
            assert got == verdicts[said], (output, target, mode)
    kinds = {row[2] for row in rows}
    assert kinds == {"numeric", "boolean", "choice", "text"}, "an example for every kind"


def test_the_race_table_matches_the_rule() -> None:
    rule = RaceRule()  # the defaults: delta 0.05, 10 rounds
    for args, table in _tables("race-drops"):
        size, _, exact = args.partition(" ")
        n_total, binary = int(size), exact == "exact"
        header, rows = _rows(table)
        bars = [int(re.sub(r"\D", "", cell)) / 100 for cell in header[1:]]
        looks = rule.ends(n_total)[:-1]  # after every round but the last
        assert [int(row[0]) for row in rows] == looks
        for first, *cells in rows:
            n = int(first)
            for bar, cell in zip(bars, cells, strict=True):
                dropped = [k for k in range(n + 1) if rule.hopeless(k, n, n_total, bar, binary)]
                expected = str(max(dropped)) if dropped else "never"
                assert cell == expected, (n_total, n, bar)


# -- the diagram and the links -----------------------------------------------------------


def test_the_loop_diagram_is_a_well_formed_svg_shown_by_the_loop_page() -> None:
    root = ET.parse(CONCEPTS / "loop.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox")
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    # Each box names the module that does its part.
    for module in ("meta_prompt.py", "optimizer.py", "history.py", "eval/scorer.py"):
        assert module in texts, module
    assert re.search(r"!\[[^\]]+\]\(loop\.svg\)", _page("loop"))


def test_links_are_relative_and_lead_to_pages_of_the_site() -> None:
    config = ROOT / "mkdocs.yml"
    if not config.is_file():
        pytest.skip("no mkdocs.yml: no site to link into")
    nav = config.read_text(encoding="utf-8")
    for page, text in _all_pages().items():
        assert "```mermaid" not in text  # the site renders offline: no diagram scripts
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "#")) or target == "loop.svg":
                continue
            path = target.partition("#")[0]
            resolved = (Path("concepts") / path).as_posix()
            parts: list[str] = []
            for part in resolved.split("/"):  # concepts/../reference/cli.md → reference/cli.md
                if part == "..":
                    parts.pop()
                else:
                    parts.append(part)
            assert "/".join(parts) in nav, f"{page}.md links to {target}, not a page of the site"
