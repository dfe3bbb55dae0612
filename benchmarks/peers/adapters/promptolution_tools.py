"""promptolution's optimizers (2.x), as its docs set them up: an ``APILLM`` meta-LLM at the
proxy's optimizer port (chat; no temperature sent: the proxy's), a ``ClassificationTask``
scored on the whole training fold (``eval_strategy="full"``, not the
``promptolution.optimize`` helper's 30-row block).

* ``promptolution-opro``: ``OPRO``, the start "" and up to 8 proposals a step (the budget's
  steps and proposals, as opro's), top 20 shown, 3 exemplars.
* ``promptolution-evoga``: ``EvoPromptGA`` (roulette-wheel selection), which needs a
  population: the frozen pool "", "Answer with the option letter.", "Let's think step by
  step.", "The answer is" (the first ``pop`` of them), each child scored on the whole fold.
* ``promptolution-capo``: ``CAPO`` (instruction + few-shot examples, racing on blocks of the
  fold), from the same frozen pool (crossover needs two parents), CAPO's defaults otherwise
  (4 crossovers a step, at most 5 shots, paired t-test at alpha 0.2, length penalty 0.05;
  10 % of the fold popped as its few-shot pool), except the block (a fifth of the rest, at
  least 2 rows: its default 30 would be one block of the fold, no racing) and the shots'
  "reasoning" (off: it would be the scorer's 16-token answer, kept only when it equals the
  lower-cased target, which a raw answer never does, so its calls would be spent for
  nothing; an example is the question and its target). The budget is a callback of CAPO's
  own kind (its ``TokenCountCallback``, on scorer calls instead of tokens) with a cut of the
  race: a step starts, and a race goes on to its next block, only if that leaves the count
  of scorer calls nearer the budget than stopping (a race cut short ranks on the blocks it
  has). The scorer's system message, and so the instruction returned, is CAPO's whole
  prompt: the instruction, then its examples ("Input:\\nQUESTION\\nOutput:\\nANSWER"), ending
  "Input:".

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

from adapters import MODEL, POOL, Found, Job, correct, proposals


def run(job: Job) -> Found:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]
    from promptolution.llms import APILLM  # type: ignore[import-not-found]
    from promptolution.optimizers import (  # type: ignore[import-not-found]
        CAPO,
        OPRO,
        EvoPromptGA,
    )
    from promptolution.predictors.base_predictor import (  # type: ignore[import-not-found]
        BasePredictor,
    )
    from promptolution.tasks import ClassificationTask  # type: ignore[import-not-found]
    from promptolution.utils.callbacks import BaseCallback  # type: ignore[import-not-found]

    rows = job.rows()
    by_question = {row["question"]: row for row in rows}
    n = len(rows)
    random.seed(job.seed)
    np.random.seed(job.seed)

    spent = [0]  # the scorer calls made (CAPO's budget)

    class RawPredictor(BasePredictor):  # type: ignore[misc]
        """The scorer's raw answer as the prediction; the instruction as the system
        message, the question as the user turn."""

        def predict(self, prompts: Any, xs: Any, system_prompts: Any = None) -> Any:
            if isinstance(prompts, str):
                prompts = [prompts]
            spent[0] += len(xs)
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
    capo = job.tool == "promptolution-capo"
    shots_pool = int(n * 0.1)  # CAPO pops 10 % of the task's rows as its few-shot pool
    block = max(2, (n - shots_pool) // 5)
    task = Task(
        df, task_description=None, eval_strategy="sequential_block" if capo else "full",
        n_subsamples=block, seed=job.seed,
    )  # fmt: skip
    predictor = RawPredictor(scorer)
    settings: dict[str, Any] = {
        "eval_strategy": "sequential_block" if capo else "full",
        "meta_llm": "APILLM (chat, max_tokens 4096, no temperature sent)",
    }
    extra: list[str] = []
    if capo:
        pop = max(2, min(len(POOL), job.budget // (n - shots_pool) // 2))
        crossovers = 4  # CAPO's default
        blocks = (n - shots_pool) // block
        cuts: list[int] = []

        class BudgetCAPO(CAPO):  # type: ignore[misc]
            """CAPO whose race stops before a block that would end further from the
            budget than stopping there."""

            def _do_racing(self, candidates: Any, k: int) -> Any:
                self.max_n_blocks_eval = min(blocks, self.task.n_blocks)  # after a cut
                self.raced = 0
                return super()._do_racing(candidates, k)

            def filter_survivors(self, candidates: Any, scores: Any, mask: Any) -> Any:
                kept, kept_scores = CAPO.filter_survivors(candidates, scores, mask)
                self.raced += 1
                if self.raced >= self.max_n_blocks_eval:
                    return kept, kept_scores
                following = (self.task.block_idx + 1) % self.task.n_blocks
                xs, ys = self.task.subsample(block_idx=[following])
                cost = sum(
                    (str(p), x, str(y)) not in self.task.eval_cache
                    for p in kept for x, y in zip(xs, ys, strict=True)
                )  # fmt: skip
                if len(kept) > self.population_size and not nearer(cost):
                    self.max_n_blocks_eval = 0  # the race ends after this block
                    cuts.append(spent[0])
                return kept, kept_scores

        def nearer(cost: int) -> bool:
            """Whether spending ``cost`` more scorer calls leaves the count nearer the budget
            than stopping now."""
            return spent[0] + cost / 2 < job.budget

        class CallBudget(BaseCallback):  # type: ignore[misc]
            """TokenCountCallback's kind, on scorer calls: a step starts only if its first
            block (the new candidates'; the survivors' are cached) leaves the count nearer
            the budget."""

            def on_step_end(self, optimizer: Any) -> bool:
                return nearer(crossovers * block)

        shots = min(5, shots_pool)  # CAPO's default 5, at most the pool
        optimizer: Any = BudgetCAPO(
            predictor=predictor, task=task, meta_llm=meta, initial_prompts=list(POOL[:pop]),
            crossovers_per_iter=crossovers, upper_shots=shots, max_n_blocks_eval=blocks,
            create_fs_reasoning=False, callbacks=[CallBudget()],
        )  # fmt: skip
        steps = job.budget // (crossovers * block) + 1  # a cap: the callback stops it
        settings.update(
            n_steps_cap=steps, population=list(POOL[:pop]), crossovers_per_iter=crossovers,
            block_size=block, max_n_blocks_eval=blocks, upper_shots=shots,
            few_shot_pool=shots_pool, create_fs_reasoning=False, test_statistic="paired_t_test",
            alpha=0.2, length_penalty=0.05,
            budget="a step, and a race's next block, only if it ends nearer the budget",
        )  # fmt: skip
        planned = job.budget
    elif job.tool == "promptolution-evoga":
        evaluations = max(2, job.budget // n)  # the pool's and each child's, whole fold
        pop = max(2, min(len(POOL), evaluations // 2))
        steps = max(1, evaluations // pop - 1)
        optimizer = EvoPromptGA(
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
    if capo:  # the scorer's system text: the instruction and the examples after it
        scores = dict(zip([p.construct_prompt() for p in prompts], optimizer.scores, strict=False))
        best = prompts[0].construct_prompt()
        extra = [
            f"best: instruction {prompts[0].instruction!r} + {len(prompts[0].few_shots)} "
            "examples; train_accuracy: its mean on the blocks it was raced on",
            f"{len(cuts)} races cut by the budget (at scorer calls {cuts})",
            f"{spent[0]} scorer calls made (the adapter's count)",
        ]
    else:
        scores = dict(zip([p.instruction for p in optimizer.prompts], optimizer.scores,
                          strict=False))  # fmt: skip
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
            *extra,
            *[f"logged error: {e}" for e in errors[:5]],
        ],
    )
