"""Answer extraction and scoring: does a scorer LLM's raw output answer a benchmark target?

Owns pulling the answer out of free-form model output and comparing it with the target, for
four answer kinds (``numeric``, ``boolean``, ``choice``, ``text``) in two modes:

- ``strict`` (default): the extracted answer must *be* the target — a number equal in value,
  the same boolean word, the same option letter (or its option's exact text), the same text.
- ``paper``: the OPRO authors' own scoring, exactly, with each dataset's settings and their
  mistakes (a target contained in the output counts, "true" counts for "Yes", ...), for
  parity with published numbers: ``opro.eval.paper_metrics``; it needs the dataset's name.

Strict extraction: drop markdown (``**``, ``__``, backticks, leading ``#``); cut where the
scorer starts a new question (``Q:`` after whitespace); keep the text after the LAST answer
marker ("the answer is", "answer:", "final answer:" ...); strip surrounding quotes and
punctuation. Prompting the scorer, running it and aggregating accuracies live elsewhere in
``opro.eval``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from opro.errors import ConfigError
from opro.eval.paper_metrics import paper_correct, paper_parse
from opro.types import ANSWER_KINDS, AnswerKind

Mode = Literal["strict", "paper"]
MODES: tuple[str, ...] = ("strict", "paper")

_EDGE = " \t\r\n\"'“”‘’.,;:!?"
_MARKDOWN = re.compile(r"\*\*|__|`")
_HEADING = re.compile(r"^[ \t]*#+[ \t]*", re.MULTILINE)
_NEXT_QUESTION = re.compile(r"(?<=\s)Q:")
_MARKER = re.compile(r"\banswer\s*(?:is\b|:)", re.IGNORECASE)

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
)
_TEN_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_UNITS = {word: value for value, word in enumerate(_UNIT_WORDS.split())}
_TENS = {word: 10 * value for value, word in enumerate(_TEN_WORDS.split(), start=2)}
_SCALES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9}
_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
_NUMBER_WORDS = re.compile(
    rf"\b(?:{_WORD})(?:(?:[\s-]+|(?<=hundred)\s+and\s+|(?<=thousand)\s+and\s+)(?:{_WORD}))*\b",
    re.IGNORECASE,
)
_CURRENCY = re.compile(r"[$€£¥]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")

_BOOLEAN = re.compile(r"\b(true|false|yes|no|valid|invalid)\b", re.IGNORECASE)

_OPTION_LABEL = re.compile(r"(?:^|(?<=[\s:]))\(?([A-Z])\)")
_PRED_LETTER = re.compile(r"\(([A-Za-z])\)|(?<![\w(])([A-Za-z])\)")
_BARE_LETTER = re.compile(r"([A-Za-z])(?:\.(?=\s)|$)")
_TARGET_LETTER = re.compile(r"\(?([A-Za-z])\)?")


def _check(kind: str, mode: str) -> None:
    if kind not in ANSWER_KINDS:
        raise ConfigError(f"unknown answer kind {kind!r}; use one of: {', '.join(ANSWER_KINDS)}")
    if mode not in MODES:
        raise ConfigError(f"unknown scoring mode {mode!r}; use one of: {', '.join(MODES)}")


def _extract(prediction: str) -> tuple[str, bool]:
    """The answer part of a raw output, and whether an answer marker introduced it."""
    text = _HEADING.sub("", _MARKDOWN.sub("", prediction))
    cut = _NEXT_QUESTION.search(text)
    if cut:
        text = text[: cut.start()]
    markers = list(_MARKER.finditer(text))
    if markers:
        return text[markers[-1].end() :].strip(_EDGE), True
    return text.strip(_EDGE), False


def _norm_text(text: str) -> str:
    """Case-folded, whitespace collapsed, surrounding quotes/punctuation stripped."""
    return " ".join(text.casefold().split()).strip(_EDGE)


# --- numeric ---------------------------------------------------------------------------


def _words_to_int(run: str) -> int:
    """A run of English number words ("twenty-one", "one hundred and five") as an int."""
    total = current = 0
    for word in re.split(r"[\s-]+", run.lower()):
        if word == "and":
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        else:
            total += (current or 1) * _SCALES[word]
            current = 0
    return total + current


def _numbers(text: str) -> list[Decimal]:
    text = _CURRENCY.sub("", text.replace("−", "-"))
    text = _NUMBER_WORDS.sub(lambda m: str(_words_to_int(m.group())), text)
    text = _THOUSANDS.sub("", text)
    return [Decimal(found) for found in _NUMBER.findall(text)]


def _numeric_answer(prediction: str) -> Decimal | None:
    """After a marker the first number, otherwise the last number in the text."""
    segment, marked = _extract(prediction)
    found = _numbers(segment)
    if not found:
        return None
    return found[0] if marked else found[-1]


def _canonical(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# --- choice ----------------------------------------------------------------------------


def _options(question: str) -> dict[str, str]:
    """Option letter -> normalised option text, from "(A) x" lines or "A)x B)y" runs.

    Labels must run A, B, C... in order; a new "A" restarts the list, so letters quoted in
    the question's body before the real options are dropped.
    """
    labels: list[re.Match[str]] = []
    for match in _OPTION_LABEL.finditer(question):
        letter = match.group(1)
        if letter == "A":
            labels = [match]
        elif labels and ord(letter) == ord(labels[-1].group(1)) + 1:
            labels.append(match)
    options = {}
    for i, match in enumerate(labels):
        stop = labels[i + 1].start() if i + 1 < len(labels) else len(question)
        options[match.group(1)] = _norm_text(question[match.end() : stop].split("\n", 1)[0])
    return options


def _choice_letter(segment: str, options: dict[str, str]) -> str | None:
    """The first option letter the segment names (a leading bare "B"/"B.", or "(B)"/"B)"
    anywhere), else the option whose text the whole segment is. Letters outside the
    question's options are skipped.
    """
    bare = _BARE_LETTER.match(segment)
    candidates = [bare.group(1).upper()] if bare else []
    candidates += [(m.group(1) or m.group(2)).upper() for m in _PRED_LETTER.finditer(segment)]
    for letter in candidates:
        if not options or letter in options:
            return letter
    text = _norm_text(segment)
    for letter, option in options.items():
        if option and text == option:
            return letter
    return None


def _score_choice(segment: str, target: str, question: str) -> bool:
    wanted = _TARGET_LETTER.fullmatch(target.strip().strip("."))
    if wanted is None:  # a target that is not a letter is compared as text
        return _score_text(segment, target)
    return _choice_letter(segment, _options(question)) == wanted.group(1).upper()


# --- boolean and text ------------------------------------------------------------------


_OPPOSITE = {
    "true": "false",
    "false": "true",
    "yes": "no",
    "no": "yes",
    "valid": "invalid",
    "invalid": "valid",
}
# Both labels in a row, as in an echoed option list ("- Yes\n- No", "Yes or No?", "True/False"):
# only separators between them, and nothing but punctuation after the second on its line.
_LISTING = {
    word: re.compile(
        rf"[\s\-*/,;:|.()]*(?:or[\s\-*/,;:|.()]+)?{other}(?=[ \t.,;:!?)\]\"']*(?:\n|$))",
        re.IGNORECASE,
    )
    for word, other in _OPPOSITE.items()
}


def _first_boolean(segment: str) -> str:
    """The first boolean word, or "" when it only starts a listing of both labels: a scorer
    that echoes the options ("- Yes - No") has not answered, it is not saying "yes"."""
    found = _BOOLEAN.search(segment)
    if not found:
        return ""
    word = found.group(1).lower()
    return "" if _LISTING[word].match(segment, found.end()) else word


def _score_text(segment: str, target: str) -> bool:
    lines = [line for line in segment.splitlines() if line.strip()]
    return bool(lines) and _norm_text(lines[0]) == _norm_text(target)


# --- public ----------------------------------------------------------------------------


def normalize_prediction(
    prediction: str,
    *,
    kind: AnswerKind,
    question: str = "",
    mode: Mode = "strict",
    dataset: str | None = None,
    chat: bool = False,
) -> str:
    """The answer extracted from a scorer's raw output, normalised (what gets compared); "" if none.

    Strict: numeric, the number in canonical form ("1234", "-3.5"); boolean, the first boolean
    word, lower-cased; choice, "(B)"; text, the first line of the answer, case-folded. Paper:
    the authors' parsed answer for ``dataset`` (see ``score_answer``).
    """
    _check(kind, mode)
    if not prediction.strip():
        return ""
    if mode == "paper":
        return paper_parse(prediction, kind=kind, dataset=dataset, chat=chat) or ""
    segment, _ = _extract(prediction)
    if kind == "numeric":
        value = _numeric_answer(prediction)
        return "" if value is None else _canonical(value)
    if kind == "boolean":
        return _first_boolean(segment)
    if kind == "choice":
        letter = _choice_letter(segment, _options(question))
        return f"({letter})" if letter else ""
    lines = [line for line in segment.splitlines() if line.strip()]
    return _norm_text(lines[0]) if lines else ""


def score_answer(
    prediction: str,
    target: str,
    *,
    kind: AnswerKind,
    question: str = "",
    mode: Mode = "strict",
    dataset: str | None = None,
    prompt: str | None = None,
    chat: bool = False,
    second_round: bool = False,
) -> bool:
    """Whether a scorer LLM's raw output answers ``target`` (see the module docstring).

    ``question`` is needed for ``choice`` only: its option lines map option texts to letters.
    An empty output is never correct in strict mode; in paper mode it is what the authors'
    code says (right for a punctuation-only target, as dyck_languages' ones).

    Paper mode only: ``dataset`` (a spec, e.g. ``aqua``, ``bbh:snarks``; None or a user file:
    settings by ``kind``) picks the authors' settings; ``prompt`` is the whole scorer prompt
    (default: the question), where the authors read option texts; ``chat``: a chat scorer,
    whose ``\\boxed{}`` answer the authors read; ``second_round``: ``prediction`` is the
    completion of the "So the final answer is" pass.
    """
    _check(kind, mode)
    if mode == "paper":  # exactly theirs, even for an empty output (")" matches "")
        return paper_correct(
            prediction,
            target,
            kind=kind,
            dataset=dataset,
            prompt=question if prompt is None else prompt,
            chat=chat,
            second_round=second_round,
        )
    if not prediction.strip():
        return False
    segment, _ = _extract(prediction)
    if kind == "numeric":
        value = _numeric_answer(prediction)
        wanted = _numbers(target)
        return value is not None and bool(wanted) and value == wanted[0]
    if kind == "boolean":
        return _first_boolean(segment) == target.strip().lower()
    if kind == "choice":
        return _score_choice(segment, target, question)
    return _score_text(segment, target)
