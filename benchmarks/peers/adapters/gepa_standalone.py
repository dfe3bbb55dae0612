"""GEPA on its own (``gepa.optimize``, without DSPy), as its README sets it up for a
system prompt: the seed candidate ``{"system_prompt": ""}``, the training fold as both
train and validation set (no split of its own), ``max_metric_calls`` = the budget,
reflection minibatches of 3, no merges, no evaluation cache; ``task_lm`` and
``reflection_lm`` are plain callables on the proxy's two ports (OpenAI's client, chat).

GEPA's ``DefaultAdapter`` already sends the candidate as the system message and the question
as the user turn; its default evaluator (a substring match) is replaced by
``opro.score_answer``, with feedback of the same shape as its own ("correct" or the right
answer). A reflection reply without a ``` block is counted as a parse failure (GEPA then
takes what it finds: gepa#390). A killed run continues as GEPA's docs say: ``gepa.optimize``
again with the same ``run_dir`` reads the state saved there.
"""

from __future__ import annotations

import random
import time
from typing import Any

from adapters import MODEL, Found, Job, correct


def run(job: Job) -> Found:
    import gepa  # type: ignore[import-not-found]
    from gepa.adapters.default_adapter.default_adapter import (  # type: ignore[import-not-found]
        EvaluationResult,
    )
    from openai import OpenAI

    rows = job.rows()
    random.seed(job.seed)
    scorer = OpenAI(base_url=job.scorer_url, api_key="unused")
    optimizer = OpenAI(base_url=job.optimizer_url, api_key="unused")
    replies: list[str] = []

    def task_lm(messages: Any) -> str:
        reply = scorer.chat.completions.create(
            model=MODEL, messages=list(messages), temperature=0.0, max_tokens=16
        )
        return reply.choices[0].message.content or ""

    def reflection_lm(prompt: Any) -> str:
        messages: Any = (
            prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        )
        reply = optimizer.chat.completions.create(
            model=MODEL, messages=messages, temperature=1.0, max_tokens=256
        )
        text = reply.choices[0].message.content or ""
        replies.append(text)
        return text

    by_question = {r["question"]: r for r in rows}

    def evaluator(data: Any, response: str) -> Any:
        ok = correct(response, by_question[data["input"]])
        feedback = "correct" if ok else f"wrong; the answer is {data['answer']}"
        return EvaluationResult(score=float(ok), feedback=feedback)

    dataset = [{"input": r["question"], "additional_context": {}, "answer": r["answer"]}
               for r in rows]  # fmt: skip
    started = time.perf_counter()
    result = gepa.optimize(
        seed_candidate={"system_prompt": ""}, trainset=dataset, valset=dataset,
        task_lm=task_lm, evaluator=evaluator, reflection_lm=reflection_lm,
        max_metric_calls=job.budget, reflection_minibatch_size=3, use_merge=False,
        cache_evaluation=False, seed=job.seed, run_dir=f"{job.work}/gepa",
        display_progress_bar=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    unfenced = sum("```" not in r for r in replies)
    best = result.best_candidate["system_prompt"]
    return Found(
        instruction=best,
        settings={
            "max_metric_calls": job.budget,
            "reflection_minibatch_size": 3,
            "use_merge": False,
            "valset": "the training fold",
            "reflection temperature": 1.0,
        },
        planned_scorer_calls=job.budget,
        optimize_s=round(elapsed, 3),
        train_accuracy=float(result.val_aggregate_scores[result.best_idx]),
        parse_failures=unfenced,
        notes=[
            f"total_metric_calls {result.total_metric_calls} (GEPA's count)",
            f"{unfenced} of {len(replies)} reflection replies without a ``` block",
        ],
    )
