"""TextGrad (0.1.8) optimizing a system prompt, as its prompt-optimization recipe sets it up
(``evaluation/prompt_optimization.py`` in its repository; the README's "Minimal Prompt
Optimization Example"): the instruction is a ``tg.Variable`` (``requires_grad``, the
script's role description) that a ``tg.BlackboxLLM`` (the scorer) uses as its system
prompt; each step runs a minibatch of training questions through it, a programmatic loss
per answer (a ``StringBasedFunction``, as the recipe's for BBH object counting, here
``opro.score_answer``), ``tg.sum`` of the losses, ``backward()`` (the backward engine: one
feedback call per answer, one per answer for the system prompt) and a
``TextualGradientDescent`` step (one call); the script's ``--run_validation`` then scores
the new prompt on the validation set and reverts it if that got worse (ties keep the new
one). There is no validation fold here: it validates on the training fold (as GEPA's rows
do), and those calls count towards the budget.

* Start: ``""``. TextGrad takes an empty ``Variable`` ("We'll currently let empty
  variables slide"); its engines send the engine's own system prompt ("You are a helpful,
  creative, and smart assistant.") for an empty one, so the scorer engine is built with
  ``system_prompt=""``: the empty instruction reaches the scorer as an empty system
  message, any other as itself.
* Budget: the start's validation (n scorer calls), then per step a minibatch (3, the
  script's default ``--batch_size``) and a validation (n): ``steps = (budget - n) // (3 +
  n)`` (quick: 2 steps, 36 of 40; the benchmark: 7 steps, 421 of 450). A larger batch
  would fill the budget more closely, but TextGrad's update prompt carries every answer's
  whole conversation (the instruction, the question, the answer) and its feedback (up to
  256 tokens): at 3 it was 1.5-1.7k tokens with the empty instruction (the quick run),
  each instruction token adding 3 more, in the server's window of 2048 (its reply's
  included).
  Epochs of at most 4 steps (the script's ``if steps == 3: break``), reshuffled
  (TextGrad's ``DataLoader``, numpy seeded with the job's seed), full batches only.
* Engines: ``engine_experimental.openai.OpenAICompatibleEngine`` (a given ``openai.OpenAI``
  client; ``cache=False``, its default) on the proxy's two ports: the scorer's, and the
  optimizer's as the backward engine and (another instance, to tell its replies apart)
  TGD's. Its constructor replaces the client it is given with
  ``OpenAI(api_key=$OPENAI_API_KEY)`` (api.openai.com): the adapter's subclass sets it
  again. The legacy ``ChatExternalClient`` keeps the client, but caches every call on disk
  with no way to turn that off. TextGrad asks for temperature 0 and 2000 tokens: the
  proxy's settings apply (the scorer's pinned; the optimizer's 256 tokens, temperature 1.0).
* Parse failures: a TGD reply without ``<IMPROVED_VARIABLE>`` makes ``step()`` raise
  ``IndexError`` (it would end the run): the adapter keeps the prompt (as TextGrad leaves
  it) and validates as after any step. A reply with the opening tag but not the closing
  one (cut at 256 tokens) TextGrad takes as it is, from the tag on. Both count as parse
  failures (as the GEPA row counts replies without a ``` block that GEPA takes anyway).
  A TGD request the server refuses (its prompt over the context window: TextGrad's
  retries give up, ``RetryError``) is named in the notes and handled as the first kind.
* ``as_user`` changes nothing (no cache is TextGrad's own default for these engines), and a
  restart runs from the start (TextGrad has no saved state to continue from). TextGrad's
  log (every prompt and reply, JSON lines) goes to the run's folder: at import it opens
  ``./logs/`` in the working directory otherwise (``TEXTGRAD_LOG_DIR``).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from adapters import MODEL, Found, Job, correct

BATCH = 3
"""TextGrad's default minibatch (its prompt-optimization script's ``--batch_size``)."""
STEPS_PER_EPOCH = 4
"""The script's epoch: ``if steps == 3: break``."""
ROLE = (
    "structured system prompt to a somewhat capable language model that specifies the "
    "behavior and strategies for the QA task"
)
"""The script's role description of the system prompt it optimizes."""
PURPOSE = "The runtime of string-based function that checks if the prediction is correct."
"""The recipe's ``function_purpose`` of its programmatic loss."""
QUERY = "query to the language model"
ANSWER = "correct answer for the query"
"""The script's role descriptions of a question and its answer."""


def plan(budget: int, n: int, batch: int) -> int:
    """Steps for ``budget`` training scorer calls: the start's validation on the fold, then
    each step's minibatch and validation."""
    return max(1, (budget - n) // (batch + n))


def run(job: Job) -> Found:
    work = Path(job.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["TEXTGRAD_LOG_DIR"] = str(work / "textgrad")  # read when textgrad is imported

    import numpy as np
    import textgrad as tg  # type: ignore[import-not-found]
    from openai import OpenAI
    from tenacity import RetryError  # type: ignore[import-not-found]
    from textgrad.autograd import StringBasedFunction  # type: ignore[import-not-found]
    from textgrad.engine_experimental.openai import (  # type: ignore[import-not-found]
        OpenAICompatibleEngine,
    )
    from textgrad.tasks import DataLoader  # type: ignore[import-not-found]

    rows = job.rows()
    n = len(rows)
    by_question = {r["question"]: r for r in rows}
    random.seed(job.seed)
    np.random.seed(job.seed)

    class Engine(OpenAICompatibleEngine):  # type: ignore[misc]
        """TextGrad's engine on an OpenAI client: the client kept, its replies recorded."""

        def __init__(self, url: str, system_prompt: str) -> None:
            client = OpenAI(base_url=url, api_key="unused")
            super().__init__(
                client=client, model_string=MODEL, system_prompt=system_prompt, cache=False
            )
            self.client = client  # its constructor put OpenAI(api_key=...) there instead
            self.replies: list[str] = []

        def openai_call(self, *args: Any) -> Any:
            reply = super().openai_call(*args)
            self.replies.append(reply or "")
            return reply

    default = OpenAICompatibleEngine.DEFAULT_SYSTEM_PROMPT
    scorer = Engine(job.scorer_url, "")  # an empty instruction is sent as "", not the default
    tg.set_backward_engine(Engine(job.optimizer_url, default), override=True)
    updates = Engine(job.optimizer_url, default)  # the same port; TGD's replies on their own
    system_prompt = tg.Variable("", requires_grad=True, role_description=ROLE)
    model = tg.BlackboxLLM(scorer, system_prompt)
    tgd = tg.TextualGradientDescent(engine=updates, parameters=[system_prompt])

    def loss_fn(row: dict[str, Any]) -> Any:
        def equality(prediction: Any, ground_truth_answer: Any) -> int:
            return int(correct(str(prediction.value), row))

        return StringBasedFunction(equality, function_purpose=PURPOSE)

    def query(question: str) -> Any:
        return tg.Variable(question, requires_grad=False, role_description=QUERY)

    def validate() -> float:
        """The script's ``eval_dataset`` on its validation set: here the training fold."""
        return sum(correct(str(model(query(r["question"])).value), r) for r in rows) / n

    batch = min(BATCH, n)
    steps = plan(job.budget, n, batch)
    per_epoch = min(STEPS_PER_EPOCH, n // batch)
    loader = DataLoader([(r["question"], r["answer"]) for r in rows], batch_size=batch)
    failures = reverted = 0
    refused: list[str] = []
    started = time.perf_counter()
    history = [validate()]
    prompts = [system_prompt.value]
    step = 0
    while step < steps:
        for i, (xs, ys) in enumerate(loader):  # an epoch, reshuffled
            if i == per_epoch or step == steps:
                break
            tgd.zero_grad()
            losses = []
            for x, y in zip(xs, ys, strict=True):
                response = model(query(x))
                truth = tg.Variable(y, requires_grad=False, role_description=ANSWER)
                losses.append(
                    loss_fn(by_question[x])(
                        inputs={"prediction": response, "ground_truth_answer": truth}
                    )
                )
            tg.sum(losses).backward()
            try:
                tgd.step()
            except IndexError:  # no <IMPROVED_VARIABLE> in the reply: the prompt stays
                failures += 1
            except RetryError as exc:  # the update request refused (over the context)
                refused.append(str(exc.last_attempt.exception())[:300])
            accuracy = validate()  # the script's run_validation_revert
            if accuracy < history[-1]:
                system_prompt.set_value(prompts[-1])
                accuracy = history[-1]
                reverted += 1
            history.append(accuracy)
            prompts.append(system_prompt.value)
            step += 1
    elapsed = time.perf_counter() - started
    distinct = len(set(prompts))
    start, end = tgd.new_variable_tags
    unclosed = sum(start in r and end not in r for r in updates.replies)
    settings = {
        "batch_size": batch, "steps": steps, "steps_per_epoch": per_epoch,
        "validation": "the training fold after each step, revert if worse",
        "loss": "StringBasedFunction(opro.score_answer)", "role_description": ROLE,
        "engine": "engine_experimental OpenAICompatibleEngine, cache off",
        "requested": "temperature 0, max_tokens 2000 (TextGrad's; the proxy's apply)",
    }  # fmt: skip
    return Found(
        instruction=system_prompt.value,
        settings=settings,
        planned_scorer_calls=n + steps * (batch + n),
        optimize_s=round(elapsed, 3),
        train_accuracy=history[-1],
        parse_failures=failures + unclosed,
        notes=[
            f"{failures} of {steps} TGD replies without <IMPROVED_VARIABLE> (prompt kept), "
            f"{unclosed} without </IMPROVED_VARIABLE> (the rest of the reply taken by TextGrad)",
            f"{len(refused)} TGD requests refused by the server: {refused[:2]}",
            f"{reverted} updates reverted by validation; {distinct} distinct prompts kept",
            f"validation accuracy by step: {[round(a, 3) for a in history]}",
        ],
    )
