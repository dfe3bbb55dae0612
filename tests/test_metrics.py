"""Answer extraction and scoring: tables per answer kind, each row checked in both modes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opro.errors import ConfigError
from opro.eval.answers import MODES, Mode, normalize_prediction, score_answer
from opro.types import ANSWER_KINDS, AnswerKind

DATE_Q = (
    "Today is Christmas Eve of 1937. What is the date tomorrow in MM/DD/YYYY?\nOptions:\n"
    "(A) 12/11/1937\n(B) 12/25/1937\n(C) 01/04/1938\n(D) 12/04/1937\n(E) 12/25/2006\n"
    "(F) 07/25/1937"
)
AQUA_Q = (
    "A car is driven towards the base of a vertical tower. After how much more time will "
    "this car reach the base of the tower?\n"
    "Answer Choices: A)5(√3 + 1) B)6(√3 + √2) C)7(√3 – 1) D)8(√3 – 2) E)None of these"
)

# (prediction, target, question, strict_expected, paper_expected). The paper column is the
# verdict of the authors' own code on the row (settings by answer kind, the question as the
# prompt; their code crashes on the AQUA_Q rows, which have no "(A)" to read options from:
# counted wrong), so it records their mistakes too: "2.5" is not 2.5 but 2, "-3" matches 3.
NUMERIC = [
    ("**18**", "18", "", True, True),
    ("$1,234.00", "1234", "", True, True),
    ("The answer is eighteen.", "18", "", True, False),
    ("The answer is 18. Q: next question 7", "18", "", True, True),
    ("The answer is 18.\n\nQ: What is 2+2?\nA: The answer is 4.", "4", "", False, False),
    ("18\nQ: What is 3 + 4?", "18", "", True, True),
    ("first 3 then 5 finally 7", "7", "", True, True),
    ("first 3 then 5 finally 7", "3", "", False, False),
    ("The answer is 12 apples, not 13", "12", "", True, True),
    ("The answer is 12 apples, not 13", "13", "", False, False),
    ("The temperature fell to -3 degrees.", "-3", "", True, True),
    ("The temperature fell to -3 degrees.", "3", "", False, True),
    ("So the answer is 2.5.", "2.5", "", True, False),
    ("So the answer is 2.5.", "2", "", False, True),
    ("The answer is 18.00", "18", "", True, True),
    ("Answer: 18", "18.0", "", True, False),
    ("It costs 1,234 dollars in total", "1,234", "", True, True),
    ("It is twenty-one.", "21", "", True, False),
    ("The answer is: one hundred and five", "105", "", True, False),
    ("It rose by 45%.", "45", "", True, True),
    ("Let’s compute: €3 + €4 = €7", "7", "", True, True),
    ("The answer is 17", "18", "", False, False),
    ("I cannot tell.", "0", "", False, False),
]

BOOLEAN = [
    ("invalid", "valid", "", False, True),
    ("invalid", "invalid", "", True, True),
    ("valid", "invalid", "", False, False),
    ("Yes.", "Yes", "", True, True),
    ("no", "No", "", True, True),
    ("**True**", "True", "", True, True),
    ("TRUE", "True", "", True, True),
    ("The answer is False.", "True", "", False, False),
    ("So the answer is: No", "No", "", True, True),
    ("Let’s think step by step. It is plausible. So the answer is yes", "yes", "", True, True),
    ("The premises look invalid, but the answer is valid.", "valid", "", True, True),
    ("The premises look invalid, but the answer is valid.", "invalid", "", False, False),
    ("Yes, Elanor tells the truth. The answer is no", "Yes", "", False, False),
    ("Nothing can be said", "No", "", False, True),
    ("Yes and no", "No", "", False, True),
    ("valid\nQ: Is this one invalid?", "invalid", "", False, False),
]

CHOICE = [
    ("(B)", "(B)", DATE_Q, True, True),
    ("B", "(B)", DATE_Q, True, True),
    ("b", "(B)", DATE_Q, True, True),
    ("The answer is (B).", "(B)", DATE_Q, True, True),
    ("**The answer is (B)**", "B", DATE_Q, True, True),
    ("B) 12/25/1937", "(B)", DATE_Q, True, True),
    ("12/25/1937", "(B)", DATE_Q, True, True),
    ("The answer is 12/25/1937.", "(B)", DATE_Q, True, True),
    ("(C)", "(B)", DATE_Q, False, False),
    ("Bob agrees", "(B)", DATE_Q, False, False),
    ("(A) is wrong. The answer is (B).", "(B)", DATE_Q, True, True),
    ("(A) is wrong. The answer is (B).", "(A)", DATE_Q, False, False),
    ("(A) is wrong, so (B)", "(B)", DATE_Q, False, True),
    ("I think it is 12/25/1937 since Christmas", "(B)", DATE_Q, False, True),
    ("A", "A", AQUA_Q, True, False),
    ("The answer is A)5(√3 + 1)", "A", AQUA_Q, True, False),
    ("5(√3 + 1)", "A", AQUA_Q, True, False),
    ("None of these", "E", AQUA_Q, True, False),
    ("Let’s see… answer: (d)", "D", AQUA_Q, True, False),
    ("C", "A", AQUA_Q, False, False),
    ("The answer is (b).", "(B)", "", True, True),
]

TEXT = [
    ("syndrome therefrom", "syndrome therefrom", "", True, True),
    ("The answer is: syndrome therefrom.", "syndrome therefrom", "", True, True),
    ("Syndrome   Therefrom", "syndrome therefrom", "", True, False),
    ("**syndrome therefrom**", "syndrome therefrom", "", True, True),
    ("List: syndrome therefrom", "syndrome therefrom", "", False, True),
    ("therefrom syndrome", "syndrome therefrom", "", False, False),
    ("The answer is syndrome therefrom\nas sorted", "syndrome therefrom", "", True, True),
    ("syndrome therefrom\nQ: Sort the following words", "syndrome therefrom", "", True, True),
    ("] ]", "] ]", "", True, True),
    ("The answer is ] ]", "] ]", "", True, True),
    ("`] ] )`", "] ] )", "", True, True),
    ("]]", "] ]", "", False, True),
    ("The answer is ] ] ]", "] ]", "", False, True),
]


def _check_row(kind: AnswerKind, row: tuple[str, str, str, bool, bool]) -> None:
    prediction, target, question, strict, paper = row
    got_strict = score_answer(prediction, target, kind=kind, question=question)
    got_paper = score_answer(prediction, target, kind=kind, question=question, mode="paper")
    assert (got_strict, got_paper) == (strict, paper), row


@pytest.mark.parametrize("row", NUMERIC)
def test_numeric(row: tuple[str, str, str, bool, bool]) -> None:
    _check_row("numeric", row)


@pytest.mark.parametrize("row", BOOLEAN)
def test_boolean(row: tuple[str, str, str, bool, bool]) -> None:
    _check_row("boolean", row)


# A scorer that echoes the options has not answered (bbh:navigate on gemma3-270m wrote
# ")\n- Yes\n- No\n\nA: ..." to most questions; read as "Yes", it looked like a 43-point gain).
BOOLEAN_LISTINGS = [
    (")\n- Yes\n- No\n\nA: Sound the letters", "Yes", False),
    (")\n- Yes\n- No\n\nA: Sound the letters", "No", False),
    ("Yes or No?", "Yes", False),
    ("True/False", "True", False),
    ("- valid - invalid", "valid", False),
    ("Yes. No one would doubt it.", "Yes", True),
    ("Yes, no doubt", "Yes", True),
    ("No, it is not.", "No", True),
    ("Yes or no? The answer is no.", "No", True),
]


@pytest.mark.parametrize(("prediction", "target", "correct"), BOOLEAN_LISTINGS)
def test_strict_boolean_reads_a_listing_of_both_labels_as_no_answer(
    prediction: str, target: str, correct: bool
) -> None:
    assert score_answer(prediction, target, kind="boolean") is correct
    if not correct:
        assert normalize_prediction(prediction, kind="boolean") == ""


@pytest.mark.parametrize("row", CHOICE)
def test_choice(row: tuple[str, str, str, bool, bool]) -> None:
    _check_row("choice", row)


@pytest.mark.parametrize("row", TEXT)
def test_text(row: tuple[str, str, str, bool, bool]) -> None:
    _check_row("text", row)


@pytest.mark.parametrize(
    ("prediction", "kind", "question", "mode", "expected"),
    [
        ("**18**", "numeric", "", "strict", "18"),
        ("$1,234.00", "numeric", "", "paper", "1234"),
        ("The answer is -2.50 metres", "numeric", "", "strict", "-2.5"),
        ("no number", "numeric", "", "strict", ""),
        ("Yes. Well, no.", "boolean", "", "strict", "yes"),
        ("The answer is Invalid.", "boolean", "", "paper", "invalid"),
        ("The answer is 12/25/1937.", "choice", DATE_Q, "strict", "(B)"),
        ("nothing like an option", "choice", DATE_Q, "strict", ""),
        ("The answer is: Syndrome  Therefrom.", "text", "", "strict", "syndrome therefrom"),
    ],
)
def test_normalize_prediction(
    prediction: str, kind: AnswerKind, question: str, mode: Mode, expected: str
) -> None:
    got = normalize_prediction(prediction, kind=kind, question=question, mode=mode)
    assert got == expected


@pytest.mark.parametrize("kind", ANSWER_KINDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prediction", ["", "   \n\t"])
def test_empty_prediction_is_false(kind: str, mode: str, prediction: str) -> None:
    target = {"numeric": "0", "boolean": "No", "choice": "(A)", "text": "abc"}[kind]
    assert score_answer(prediction, target, kind=kind, mode=mode, question=DATE_Q) is False  # type: ignore[arg-type]
    assert normalize_prediction(prediction, kind=kind, mode=mode) == ""  # type: ignore[arg-type]


def test_empty_prediction_in_paper_mode_is_the_authors_verdict() -> None:
    # Their punctuation-blind comparison makes "" equal to ") ]": an empty output is right.
    assert score_answer("", ") ]", kind="text", dataset="bbh:dyck_languages", mode="paper")
    assert not score_answer("", ") ]", kind="text", dataset="bbh:dyck_languages")


def test_unknown_kind_or_mode_is_config_error() -> None:
    with pytest.raises(ConfigError, match="numeric, boolean, choice, text"):
        score_answer("18", "18", kind="integer")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="strict, paper"):
        score_answer("18", "18", kind="numeric", mode="lenient")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="numeric"):
        normalize_prediction("18", kind="number")  # type: ignore[arg-type]


@given(st.integers())
def test_any_integer_with_thousands_commas_scores(n: int) -> None:
    # The authors read numbers through a float: past 2**53 paper mode loses digits, as theirs.
    for mode in MODES if abs(n) <= 2**53 else ("strict",):
        assert score_answer(f"The answer is {n:,}.", str(n), kind="numeric", mode=mode)  # type: ignore[arg-type]


@given(st.integers(), st.integers())
def test_a_different_integer_never_scores(n: int, m: int) -> None:
    answer = f"Let’s see: {m + 1} and {m} items. The answer is {n:,}."
    assert score_answer(answer, str(m), kind="numeric") is (n == m)
