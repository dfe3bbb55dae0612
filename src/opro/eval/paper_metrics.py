"""Paper-mode scoring: the OPRO authors' answer scoring, reproduced exactly, mistakes included.

Owns the whole path from one raw scorer output to a correct/wrong verdict as the authors'
evaluation code takes it (google-deepmind/opro: ``evaluate_single_instruction`` in
``opro/evaluation/eval_utils.py``, ``get_normalized_prediction`` in
``opro/evaluation/metrics.py``, ``_get_accuracy`` in ``eval_utils.py``), with each dataset's
settings as their ``evaluate_instructions.py`` sets them:

1. ``settings_for``: which datasets are numbers, booleans, multiple choice, and which targets
   are bare letters (AQuA, MMLU);
2. ``parse_output``: a chat scorer's ``\\boxed{...}``, else ``normalize``; then the first line,
   cut at ``Q:`` (their second-round cut, applied after normalising on the first round);
3. ``is_correct``: their comparison (``_get_accuracy``).

Known faults are kept on purpose, because paper mode exists to compare with published numbers:
a target contained in the output counts ("valid" in "invalid"; for AQuA/MMLU any output that
contains the bare target letter), "true"/"1" count as "Yes", "-170" matches 170, "seventeen"
reads as "7teen", and more (docs/results/paper.md: strict vs paper). Not here: prompting
the scorer and its second pass (``opro.eval.scorer``), the correct scoring
(``opro.eval.answers``, strict mode).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from opro.data.loaders import BBH_KINDS
from opro.types import AnswerKind

# --- what each dataset is, for the authors -------------------------------------------------


@dataclass(frozen=True)
class PaperSettings:
    """The authors' per-dataset switches (names follow their evaluation script)."""

    number: bool
    """``prediction_treat_as_number``; the target is also never matched as a substring."""
    boolean: bool
    """``prediction_treat_as_bool``: the output is read as a Boolean word, 0 or 1."""
    choice: bool
    """``is_multiple_choice``: option texts are read from the scorer prompt."""
    bare_letter: bool
    """The target is a bare letter ("C", not "(C)"): their AQuA and MMLU files."""


def settings_for(dataset: str | None, kind: AnswerKind) -> PaperSettings:
    """The authors' settings for ``dataset`` (a spec such as ``bbh:snarks``, ``mmlu:anatomy``).

    Their evaluation script: GSM8K and MultiArith are numbers; AQuA and MMLU multiple choice with
    bare-letter targets; a BBH task is a number, a Boolean or multiple choice by three lists
    (object_counting and multistep_arithmetic_two; the six yes/no, true/false, valid/invalid
    tasks; the 17 lettered-option tasks), which are exactly our BBH answer kinds; dyck_languages
    and word_sorting are none of them. A dataset they never scored (a user's file, or none
    given) is set by the answer kind the same way, with the target used as written.
    """
    family, _, task = (dataset or "").partition(":")
    family = family.strip().lower()
    if family in ("gsm8k", "multiarith"):
        return PaperSettings(number=True, boolean=False, choice=False, bare_letter=False)
    if family in ("aqua", "mmlu"):
        return PaperSettings(number=False, boolean=False, choice=True, bare_letter=True)
    if family == "bbh" and task.strip() in BBH_KINDS:
        kind = BBH_KINDS[task.strip()]
    return PaperSettings(
        number=kind == "numeric",
        boolean=kind == "boolean",
        choice=kind == "choice",
        bare_letter=False,
    )


def paper_target(answer: str, settings: PaperSettings) -> str:
    """The target as the authors' files give it: our "(C)" is their "C" for AQuA and MMLU."""
    letter = re.fullmatch(r"\(([A-Za-z])\)", answer.strip())
    return letter.group(1) if settings.bare_letter and letter else answer


# --- normalising one output (their metrics.get_normalized_prediction) ----------------------

# Where the model starts a new question: their delimiter list lower-cased ("Question: " of
# every language pair, then "Q:"); the output is cut at each in turn.
_NEXT_QUESTION = (
    "প্রশ্ন:", "frage:", "question:", "pregunta:", "question :", "問題：", "задача:",
    "swali:", "ప్రశ్న:", "โจทย์:", "问题：", "q:",
)  # fmt: skip
# Markers the answer follows: their step-by-step answer labels, GSM8K's "#### ", then
# "answer is " / "answer: " / "answer is: " if one of these occurs in the output as written
# (case-sensitive), else "is: " / "are: ". Each present marker in turn keeps the text after
# its last occurrence.
_STEP_ANSWER = (
    "ধাপে ধাপে উত্তর: ", "schritt-für-schritt-antwort: ", "step-by-step answer: ",
    "respuesta paso a paso: ", "réponse étape par étape : ", "ステップごとの答え：",
    "пошаговое решение: ", "jibu la hatua kwa hatua: ", "దశలవారీగా సమాధానం: ",
    "คำตอบทีละขั้นตอน: ", "逐步解答：", "#### ",
)  # fmt: skip
_PRIMARY = ("answer is ", "answer: ", "answer is: ")
_SECONDARY = ("is: ", "are: ")
# Markers the answer precedes: the text before the first occurrence is kept.
_AHEAD = (
    " is the correct answer", " is the right answer", " is the final answer", " is the answer",
)  # fmt: skip
# Number words in the order they replace substrings (so "seventeen" becomes "7teen").
_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_NUMBER_WORDS = tuple((w, str(n)) for n, w in enumerate(_WORDS)) + tuple(
    (w, str(10 * n)) for n, w in enumerate(_TENS, start=2)
)
_BOOLEAN_PAIRS = (("false", "true"), ("no", "yes"), ("invalid", "valid"))
_LETTERS = string.ascii_lowercase
_BRACKETED = frozenset(f"({letter})" for letter in _LETTERS)
_PAREN_GROUP = re.compile(r"\(.*?\)")
_LAST_DIGITS = re.compile(r"\d+(?!.*\d)")
_BOXED = re.compile(r"\\boxed{(.*?)}")


def _answer_part(prediction: str) -> tuple[str, bool]:
    """Lower-cased, cut at a new question, narrowed by answer markers; and whether a marker
    indicated the answer (numbers then take the first number instead of the last)."""
    text = prediction.lower().strip()
    for delimiter in _NEXT_QUESTION:
        text = text.split(delimiter)[0]
    # The primary markers are looked for in the output as written, so "Answer is 5" (capital
    # A) falls back to "is: "/"are: " even though the lower-cased text has "answer is ".
    behind = _STEP_ANSWER + (_PRIMARY if any(m in prediction for m in _PRIMARY) else _SECONDARY)
    indicated = False
    for marker in behind:
        if marker in text:
            text, indicated = text.split(marker)[-1], True
    for marker in _AHEAD:
        if marker in text:
            text, indicated = text.split(marker)[0], True
    # A rationale after the answer (one of their chain-of-thought ablations) is dropped.
    text = text.strip().split("this is the solution:")[0]
    return text.rstrip(".").rstrip("'"), indicated


def _one_bracketed_choice(text: str) -> str:
    """With exactly one of "(a)".."(z)" in the text, the first parenthesised group (sic: not
    necessarily that letter, "(2) (b)" gives "(2)")."""
    if sum(choice in text for choice in _BRACKETED) == 1:
        return str(_PAREN_GROUP.findall(text)[0])
    return text


def _as_float(text: str) -> float | None:
    try:
        return float(text)  # Python's float: also "nan", "inf", "1e3", "1_000", " 12 "
    except ValueError:
        return None


def _as_number(text: str, indicated: bool) -> str:
    """Their number reading (rounded to 0 decimals, as their scripts always ask)."""
    text = text.split("=")[-1]
    for symbol in "$,%€£":
        text = text.replace(symbol, "")
    text = text.split(":")[0].strip()
    for word, digits in _NUMBER_WORDS:  # plain substring swaps: "seventeen" -> "7teen"
        text = text.replace(word, digits)
    tokens = text.split(" ")
    if not indicated:  # no marker: the last token with a non-letter wins, else the first
        tokens.reverse()
    chosen = next((token for token in tokens if not token.isalpha()), tokens[0])
    while chosen and chosen[-1].isalpha():  # "156kgs" -> "156"
        chosen = chosen[:-1]
    if chosen.endswith("-"):  # "823-yard" -> "823-" -> "823"
        chosen = chosen[:-1]
    value = _as_float(chosen)
    if value is not None:
        return f"{round(value, 0):.0f}"
    found = _LAST_DIGITS.search(chosen)
    return found.group() if found else chosen


def _as_boolean(text: str, indicated: bool) -> str:
    """A Boolean word stays; otherwise 0/1 (as text, or as a number) become false/true;
    punctuation is dropped either way."""
    first_sentence = text.split(".")[0]
    if any(first_sentence in pair for pair in _BOOLEAN_PAIRS):
        text = first_sentence
    else:
        if _as_number(text, indicated) in ("0", "1"):
            text = str(_as_number(text, indicated) == "1").lower()
        if first_sentence in ("0", "1"):
            text = str(first_sentence == "1").lower()
    return _drop_punctuation(text).strip()


def normalize(prediction: str, *, number: bool, boolean: bool) -> str:
    """One raw output as the authors normalise it (``get_normalized_prediction``)."""
    text, indicated = _answer_part(prediction)
    text = _one_bracketed_choice(text)
    if boolean:
        return _as_boolean(text, indicated)
    if number:
        return _as_number(text, indicated)
    return text.split(".")[0]  # a text answer ends at its first period


def first_line(text: str) -> str:
    """Their cut of an answer to parse: strip ":" and blanks, first line, text before "Q:"."""
    return text.strip(":").strip().split("\n")[0].split("Q:")[0]


def parse_output(
    raw: str, settings: PaperSettings, *, chat: bool = False, second_round: bool = False
) -> str | None:
    """The answer the authors compare with the target; None where their code crashes.

    ``chat``: their ``is_gpt_model``, which they set for their chat scorers (GPT-3.5/4) when
    scoring the test fold: the first ``\\boxed{...}`` is the answer, not normalised. Ours is
    set for every chat scorer (a ``\\boxed`` without braces crashed theirs: None).
    ``second_round``: ``raw`` is the completion of the second "So the final answer is" pass,
    cut to its first line before normalising (on the first round the cut comes after).
    """
    if second_round:
        raw = first_line(raw)
    if chat and "\\boxed" in raw:
        boxed = _BOXED.findall(raw)
        if not boxed:
            return None
        answer = boxed[0]
    else:
        answer = normalize(raw, number=settings.number, boolean=settings.boolean)
    return answer if second_round else first_line(answer)


# --- comparing with the target (their eval_utils._get_accuracy) ----------------------------


def _drop_punctuation(text: str) -> str:
    return text.translate(str.maketrans("", "", string.punctuation))


def _filename_safe(text: str) -> str:
    """Their filename cleaner, which they (mistakenly) also use to compare option texts:
    punctuation dropped except ! ? . which become <EXCLAMATION> <QUESTION> <PERIOD>."""
    kept = string.punctuation.replace("!", "").replace("?", "").replace(".", "")
    text = text.translate(str.maketrans("", "", kept))
    return text.replace("!", "<EXCLAMATION>").replace("?", "<QUESTION>").replace(".", "<PERIOD>")


_OPTION_SPLIT = re.compile("|".join(rf"\({c}\)" for c in string.ascii_uppercase) + "|A:")


def _option_texts(prompt: str) -> list[str]:
    """Lower-cased texts after each "(A)".."(Z)" (and after any "A:") in the prompt, each up to
    its line end: their list, indexed by letter position, so a stray "(B)" or "A:" in the
    instruction or question shifts it."""
    pieces = [piece.strip().lower() for piece in _OPTION_SPLIT.split(prompt)][1:]
    return [piece.split("\n")[0] for piece in pieces]


def _letter_index(symbol: str) -> int:
    symbol = symbol.lower()
    if symbol in _BRACKETED:
        symbol = symbol[1]
    return ord(symbol) - ord("a")


def _option_text(prompt: str, symbol: str) -> str | None:
    """The option text of ``symbol``; None where the prompt has too few (their code crashes)."""
    texts, index = _option_texts(prompt), _letter_index(symbol)
    return texts[index] if index < len(texts) else None


def _options_in_prompt(prompt: str) -> list[str]:
    """The symbols "(A)", "(B)", ... for as long as their run in the prompt lasts."""
    present = set(re.findall(r"\([A-Z]\)", prompt))
    symbols = []
    for letter in string.ascii_uppercase:
        if f"({letter})" not in present:
            break
        symbols.append(f"({letter})")
    return symbols


def _excludes_others(pred: str, answer_text: str, other_texts: list[str]) -> bool:
    """The right option's text is in the output and no other option's text is; where the
    right text is not inside another option's, it is removed before looking for the others."""
    if answer_text not in pred:
        return False
    if all(answer_text not in other for other in other_texts):
        pred = pred.replace(answer_text, "")
    return all(other not in pred for other in other_texts)


def _boolean_match(target: str, pred: str) -> bool:
    """Target "yes"/"valid"/"true" means true, "no"/"invalid"/"false" false; the output must
    say "true"/"false" or "1"/"0" (so "true" is right for "Yes", but "yes" only by text)."""
    pair = next((p for p in _BOOLEAN_PAIRS if target in p), None)
    if pair is None:
        return False
    meaning = str(pair.index(target) == 1).lower()
    if pred in ("0", "1"):
        pred = str(pred == "1").lower()
    return pred == meaning or pred.strip() == meaning


def is_correct(target: str, pred: str, *, prompt: str = "", include: bool = False) -> bool:
    """Their verdict on one parsed answer (``_get_accuracy``).

    ``prompt``: the whole scorer prompt for multiple-choice questions ("" otherwise), where the
    option texts are read. ``include``: the target anywhere in the output also counts (their
    ``treat_include_as_correct``, on for every dataset that is not numbers).
    """
    target, pred = target.lower(), pred.lower()
    contained = target in pred
    answer_text, other_texts = "", []
    if prompt:
        # Sic: "in" on a string, so "" and runs like "bc" count as letters here.
        if target in _LETTERS:
            target = f"({target})"
        if pred in _LETTERS:
            pred = f"({pred})"
        if target not in _BRACKETED:
            return False  # a multiple-choice target that is not a letter is never right
        found = _option_text(prompt, target)
        if found is None:
            return False  # their code crashes here; we count it wrong
        answer_text = found.lower()
        # Every "(X)" of the run has a text (the split made at least that many pieces).
        other_texts = [
            _option_texts(prompt)[_letter_index(symbol)]
            for symbol in _options_in_prompt(prompt)
            if _letter_index(symbol) != _letter_index(target)
        ]
    if target in _BRACKETED:
        target = target[1]
    if pred in _BRACKETED:
        pred = pred[1]
    exact = pred == target or _drop_punctuation(pred).strip() == _drop_punctuation(target).strip()
    text_exact = pred == answer_text or _filename_safe(pred).strip() == answer_text
    verdict = (
        exact
        or (bool(prompt) and (text_exact or _excludes_others(pred, answer_text, other_texts)))
        or _boolean_match(target, pred)
    )
    return verdict or (include and contained)


# --- the whole pipeline --------------------------------------------------------------------


def paper_parse(
    raw: str,
    *,
    kind: AnswerKind,
    dataset: str | None = None,
    chat: bool = False,
    second_round: bool = False,
) -> str | None:
    """The answer the authors would compare for one raw output (None: their code crashes)."""
    return parse_output(raw, settings_for(dataset, kind), chat=chat, second_round=second_round)


def paper_correct(
    raw: str,
    target: str,
    *,
    kind: AnswerKind,
    dataset: str | None = None,
    prompt: str = "",
    chat: bool = False,
    second_round: bool = False,
) -> bool:
    """Whether the authors' evaluation code counts ``raw`` as answering ``target``.

    ``target`` is our ground truth (``Example.answer``); ``prompt`` the scorer prompt the
    output answers (options are read from it for multiple-choice datasets; the question alone
    is the prompt of a chat scorer given no instruction). An output their code crashes on is
    counted wrong.
    """
    settings = settings_for(dataset, kind)
    answer = parse_output(raw, settings, chat=chat, second_round=second_round)
    if answer is None:
        return False
    return is_correct(
        paper_target(target, settings),
        answer,
        prompt=prompt if settings.choice else "",
        include=not settings.number,
    )
