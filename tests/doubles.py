"""Scripted optimizers for engine tests, reachable from the CLI as fake:tests.doubles:NAME."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from opro import Caps, Progress, RunOptions, RunResult, build_spec, start
from opro.types import Request


def garbage(request: Request) -> str:
    """Never a parsable proposal."""
    return "I am not sure what to say here. [w, b] <trace> x </trace>"


def linreg_repeater(request: Request) -> str:
    """Proposes the first pair the meta-prompt shows: never a new one."""
    found = re.search(r"w=(-?\d+), b=(-?\d+)", request.prompt)
    return "[0, 0]" if found is None else f"[{found[1]}, {found[2]}]"


def linreg_far_off(request: Request) -> str:
    """Always one pair, far from any optimum: new once, never better than the start."""
    return "[1000, -1000]"


def linreg_walker(request: Request) -> str:
    """A deterministic pseudo-optimizer: a pair drawn from the request's seed and sample."""
    rng = random.Random(f"{request.seed}-{request.sample}-{len(request.prompt)}")
    time.sleep(0.02)  # slow enough for a kill to land mid-run
    return f"My proposal is [{rng.randint(0, 30)}, {rng.randint(0, 30)}]"


def tsp_shuffler(request: Request) -> str:
    """A random permutation of the points listed in the prompt."""
    n = request.prompt.count("): (")
    rng = random.Random(f"{request.seed}-{request.sample}")
    tour = list(range(n))
    rng.shuffle(tour)
    return "<trace> " + ",".join(map(str, tour)) + " </trace>"


WORDS = ("carefully", "step", "by", "check", "each", "operator", "first", "then", "answer")


def instruction_proposer(request: Request) -> str:
    """A pre-trained-style optimizer: a few words drawn from the request's seed and sample,
    in the ``Precision: NN <TEXT>...</TEXT>`` pattern (sometimes malformed, as a real one)."""
    rng = random.Random(f"{request.seed}-{request.sample}")
    if rng.random() < 0.15:
        return " 70 <TEXT>unterminated"
    words = rng.sample(WORDS, rng.randint(2, 5))
    return f" {rng.randint(40, 90)} <TEXT>{' '.join(words)}.</TEXT>"


def boolean_scorer(request: Request) -> str:
    """A scorer whose answers to boolean questions depend on the instruction and question:
    longer instructions answer more questions correctly (so the search has a gradient)."""
    prompt = request.prompt
    question = prompt.split("Q: ", 1)[-1].split("\n\nA:", 1)[0]
    instruction = prompt.split("\n\nA:", 1)[-1].strip()
    truth = _evaluate_boolean(question)
    rng = random.Random(f"{question}|{instruction}")
    if truth is None or rng.random() < 0.1:
        return ""
    right = rng.random() < min(0.95, 0.3 + 0.1 * len(instruction.split()))
    return f" The answer is {truth if right else not truth}."


def _evaluate_boolean(question: str) -> bool | None:
    expression = question.removesuffix(" is").strip()
    allowed = set("TrueFalsnotd() ")
    if not expression or not set(expression) <= allowed:
        return None
    try:
        return bool(eval(expression, {"__builtins__": {}}))  # only True/False/not/and/or
    except SyntaxError:
        return None


# -- runs of the engine's kinds, for tests ------------------------------------------------


def run_kind(
    spec_class: type[Any],
    out: Path,
    *,
    caps: Caps | None = None,
    cache: bool = False,
    progress: Progress | None = None,
    **settings: Any,
) -> RunResult:
    """``opro.start`` of ``spec_class`` with flat ``settings`` (as the CLI gives them) in
    ``out``, without the cache unless asked."""
    spec = build_spec(spec_class, settings)
    return start(spec, RunOptions(out=out, caps=caps, use_cache=cache, progress=progress))


def steps_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]


def summary_of(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / "summary.json").read_text())
    return data


def spec_of(run: Path) -> dict[str, Any]:
    """The run's spec as config.json holds it."""
    data: dict[str, Any] = json.loads((run / "config.json").read_text())["spec"]
    return data


def budget_teller(request: Request) -> str:
    """A pre-trained-style optimizer that proposes the token budget it was given."""
    return f" 50 <TEXT>Answer within {request.max_tokens} tokens, sample {request.sample}.</TEXT>"


def sentiment_scorer(request: Request) -> str:
    """A scorer of the toy sentiment task: right more often under a longer instruction (so the
    search has a gradient), seeded by the question and the instruction. The instruction is
    in the prompt, or in the system message (``--instruction-in system``)."""
    question = request.prompt.split("\n")[-1] if request.system else request.prompt
    instruction = request.system or request.prompt
    truth = "positive" if any(w in question for w in ("great", "love", "good")) else "negative"
    rng = random.Random(f"{question}|{instruction}|{len(instruction)}")
    right = rng.random() < min(0.95, 0.3 + 0.05 * len(instruction.split()))
    return f" It sounds {truth if right else ('negative' if truth == 'positive' else 'positive')}."


def judge_yes_if_same(request: Request) -> str:
    """An LLM judge double: yes when the graded answer names the reference answer."""
    reference = request.prompt.split("Reference answer:\n", 1)[1].split("\n", 1)[0]
    graded = request.prompt.split("Answer to grade:\n", 1)[1].split("\n\nDoes", 1)[0]
    return " yes" if reference.lower() in graded.lower() else " no"


def slow_instruction_proposer(request: Request) -> str:
    """``instruction_proposer``, slow enough for a kill to land mid-run."""
    time.sleep(0.05)
    return instruction_proposer(request)


def kill_after_lines(command: list[str], steps_file: Path, lines: int, env: dict[str, str]) -> int:
    """Start ``command``, SIGKILL it once ``steps_file`` holds ``lines`` lines (mid-run);
    returns its exit status (-9 when the kill landed, 0 if it finished first)."""
    proc = subprocess.Popen(
        command, cwd=Path(__file__).parents[1], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if steps_file.exists() and steps_file.read_bytes().count(b"\n") >= lines:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    return proc.wait(60)
