"""promptolution's optimizers (2.x), as its docs set them up: an ``APILLM`` meta-LLM at the
proxy's optimizer port (chat; no temperature sent: the proxy's), a ``ClassificationTask``
scored on the whole training fold (``eval_strategy="full"``, not the
``promptolution.optimize`` helper's 30-row block).

* ``promptolution-opro``: ``OPRO``, the start "" and up to 8 proposals a step (the budget's
  steps and proposals, as opro's), top 20 shown, 3 exemplars.
* ``promptolution-evoga``: ``EvoPromptGA`` (roulette-wheel selection), which needs a
  population: the frozen pool "", "Answer with the option letter.", "Let's think step by
  step.", "The answer is" (the first ``pop`` of them), each child scored on the whole fold.

Two changes, so that scoring is the same as every other tool's and nothing else differs:
the predictor sends the instruction as the system message and the question alone as the
user turn (promptolution's own sends ``instruction + "\\n" + question`` under "You are a
helpful assistant."; the proxy renders either into opro's scorer prompt, and this form says
unambiguously which is which), and the task's metric is ``opro.score_answer`` on the raw
answer (promptolution lower-cases the targets and matches extracted class labels).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from adapters import MODEL, Found, Job, correct, proposals

POOL = ("", "Answer with the option letter.", "Let's think step by step.", "The answer is")
"""The frozen starting population of the tools that need one (EvoPromptGA)."""


def run(job: Job) -> Found:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]
    from promptolution.llms import APILLM  # type: ignore[import-not-found]
    from promptolution.optimizers import OPRO, EvoPromptGA  # type: ignore[import-not-found]
    from promptolution.predictors.base_predictor import (  # type: ignore[import-not-found]
        BasePredictor,
    )
    from promptolution.tasks import ClassificationTask  # type: ignore[import-not-found]

    rows = job.rows()
    by_question = {row["question"]: row for row in rows}
    n = len(rows)
    random.seed(job.seed)
    np.random.seed(job.seed)

    class RawPredictor(BasePredictor):  # type: ignore[misc]
        """The scorer's raw answer as the prediction; the instruction as the system
        message, the question as the user turn."""

        def predict(self, prompts: Any, xs: Any, system_prompts: Any = None) -> Any:
            if isinstance(prompts, str):
                prompts = [prompts]
            outputs = self.llm.get_response(list(xs), system_prompts=list(prompts))
            return outputs, [f"{x}\n{out}" for x, out in zip(xs, outputs, strict=True)]

        def _extract_preds(self, preds: Any) -> Any:
            return preds

    class Task(ClassificationTask):  # type: ignore[misc]
        def _evaluate(self, xs: Any, ys: Any, preds: Any) -> Any:
            return np.asarray(
                [float(correct(p, by_question[x])) for x, p in zip(xs, preds, strict=True)]
            )

    replies: list[str] = []

    class MetaLLM(APILLM):  # type: ignore[misc]
        def _get_response(self, prompts: Any, system_prompts: Any) -> Any:
            out = super()._get_response(prompts, system_prompts)
            replies.extend(out)
            return out

    errors: list[str] = []

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage()[:300])

    logging.getLogger("promptolution").addHandler(Errors(level=logging.ERROR))
    scorer = APILLM(
        api_url=job.scorer_url, model_id=MODEL, api_key="unused", max_tokens=16,
        max_concurrent_calls=4, call_kwargs={"temperature": 0.0},
    )  # fmt: skip
    meta = MetaLLM(api_url=job.optimizer_url, model_id=MODEL, api_key="unused")
    df = pd.DataFrame({"x": [r["question"] for r in rows], "y": [r["answer"] for r in rows]})
    task = Task(df, task_description=None, eval_strategy="full", seed=job.seed)
    predictor = RawPredictor(scorer)
    settings: dict[str, Any] = {
        "eval_strategy": "full",
        "meta_llm": "APILLM (chat, max_tokens 4096, no temperature sent)",
    }
    if job.tool == "promptolution-evoga":
        evaluations = max(2, job.budget // n)  # the pool's and each child's, whole fold
        pop = max(2, min(len(POOL), evaluations // 2))
        steps = max(1, evaluations // pop - 1)
        optimizer: Any = EvoPromptGA(
            predictor=predictor, task=task, meta_llm=meta, initial_prompts=list(POOL[:pop]),
            selection_mode="wheel",
        )  # fmt: skip
        settings.update(n_steps=steps, population=list(POOL[:pop]), selection_mode="wheel")
        planned = n * pop * (1 + steps)
    else:
        steps, per_step = proposals(job.budget, n)
        optimizer = OPRO(
            predictor=predictor, task=task, meta_llm=meta, initial_prompts=[""],
            max_num_instructions=20, num_instructions_per_step=per_step, num_few_shots=3,
        )  # fmt: skip
        settings.update(n_steps=steps, num_instructions_per_step=per_step,
                        max_num_instructions=20, num_few_shots=3)  # fmt: skip
        planned = n * (1 + steps * per_step)
    started = time.perf_counter()
    prompts = optimizer.optimize(n_steps=steps)
    elapsed = time.perf_counter() - started
    scores = dict(zip([p.instruction for p in optimizer.prompts], optimizer.scores, strict=False))
    best = prompts[0].instruction
    untagged = sum("<prompt>" not in r for r in replies)
    return Found(
        instruction=best,
        settings=settings,
        planned_scorer_calls=planned,
        optimize_s=round(elapsed, 3),
        train_accuracy=None if scores.get(best) is None else float(scores[best]),
        parse_failures=untagged,
        notes=[
            f"{untagged} of {len(replies)} meta replies without <prompt> tags, used whole",
            *[f"logged error: {e}" for e in errors[:5]],
        ],
    )
