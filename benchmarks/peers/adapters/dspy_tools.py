"""DSPy's instruction optimizers (3.x), as its docs set them up: ``dspy.LM("openai/...",
api_base=...)`` for the task model (the proxy's scorer port) and the prompt model (its
optimizer port), the program ``dspy.Predict("question -> answer")`` with the empty
instruction (DSPy holds its default text, "Given the fields `question`, produce the fields
`answer`.", for it: the scorer gets "" for that text), caches off.

* ``dspy-copro``: ``dspy.COPRO``, the DSPy optimizer closest to OPRO: ``breadth`` candidates
  a round (the original instruction among them), ``depth`` rounds, every candidate scored on
  the whole training fold; COPRO's own temperature (1.4) is sent and logged, the proxy's
  applies.
* ``dspy-mipro``: ``dspy.MIPROv2`` zero-shot (no demos), ``auto=None``: ``num_candidates``
  instructions proposed once (the grounded proposer, without the program and data
  summaries), ``num_trials`` full evaluations on the training fold (``valset`` = the
  training fold, ``minibatch=False``); its demo bootstrapping still runs the task model
  (counted at the proxy: over the budget, reported).
* ``dspy-gepa``: ``dspy.GEPA`` with ``max_metric_calls`` = the budget (GEPA checks it before
  each iteration: the last one can pass it), the training fold as both trainset and valset,
  DSPy's defaults otherwise (reflection minibatches of 3, Pareto candidate selection, merges
  on: with one predictor they have nothing to merge); ``num_threads`` 1, ``track_stats``,
  its log under the run's folder. The metric returns ``dspy.Prediction(score, feedback)``,
  the feedback of the same shape as the standalone GEPA row's ("correct" or the right
  answer). Its reflection goes through DSPy's own ``InstructionProposer`` with its
  ``JSONAdapter`` (a JSON object with ``new_instruction``), leniently parsed as above (GEPA
  would drop the proposal).

Two changes, the same as every peer's: the scorer call's messages are the instruction as the
system message and the question as the user turn, and its whole reply is the answer (a
``ChatAdapter`` whose ``format`` and ``parse`` do that for the ``question -> answer``
signature: DSPy's own would ask a 270M base model for ``[[ ## answer ## ]]`` fields), and
the metric is ``opro.score_answer``. The prompt model's calls keep DSPy's ``ChatAdapter``
format; a reply it cannot parse would abort the run (dspy#1640), so a lenient parse takes
the whole reply as the first field (the instruction) and counts it as a parse failure.
"""

from __future__ import annotations

import random
import time
from typing import Any

from adapters import MODEL, Found, Job, correct, proposals


def run(job: Job) -> Found:
    import dspy  # type: ignore[import-not-found]
    import numpy as np
    from dspy.utils.exceptions import AdapterParseError  # type: ignore[import-not-found]

    rows = job.rows()
    kind = rows[0]["kind"]
    n = len(rows)
    random.seed(job.seed)
    np.random.seed(job.seed)
    failures: list[str] = []
    DEFAULT = "Given the fields `question`, produce the fields `answer`."

    def taken_whole(signature: Any, completion: str) -> dict[str, str]:
        """A reply not in DSPy's format as its first output field (counted as a failure)."""
        failures.append(completion[:200])
        first, *rest = signature.output_fields
        return {first: completion.strip(), **dict.fromkeys(rest, "")}

    class LenientJSON(dspy.JSONAdapter):  # type: ignore[misc]
        """DSPy's JSONAdapter (GEPA's reflection), its reply taken whole when not JSON."""

        def parse(self, signature: Any, completion: str) -> Any:
            try:
                return super().parse(signature, completion)
            except AdapterParseError:
                return taken_whole(signature, completion)

    class Harness(dspy.ChatAdapter):  # type: ignore[misc]
        """The scorer call as [system: instruction, user: question], its reply the answer;
        DSPy's own format for every other signature, leniently parsed."""

        @staticmethod
        def is_scorer(signature: Any) -> bool:
            return list(signature.input_fields) == ["question"] and list(
                signature.output_fields
            ) == ["answer"]

        def format(self, signature: Any, demos: Any, inputs: Any) -> Any:
            if self.is_scorer(signature):
                system = start_as_empty(signature.instructions)
                head = [{"role": "system", "content": system}] if system else []
                return [*head, {"role": "user", "content": inputs["question"]}]
            return super().format(signature, demos, inputs)

        def parse(self, signature: Any, completion: str) -> Any:
            if self.is_scorer(signature):
                return {"answer": completion}
            try:
                return super().parse(signature, completion)
            except AdapterParseError:
                return taken_whole(signature, completion)

    def start_as_empty(instructions: str | None) -> str:
        """DSPy's start, the empty instruction: ``Signature("question -> answer", "")`` (and
        ``with_instructions("")``) hold DSPy's default text instead, which COPRO shows its
        prompt model as the basic instruction; the scorer gets "" for it."""
        return "" if instructions is None or instructions == DEFAULT else instructions

    def lm(url: str, **kwargs: Any) -> Any:
        return dspy.LM(
            f"openai/{MODEL}", api_base=url, api_key="unused", model_type="chat", cache=False,
            num_retries=3, **kwargs,
        )  # fmt: skip

    task_lm = lm(job.scorer_url, temperature=0.0, max_tokens=16)
    prompt_lm = lm(job.optimizer_url, max_tokens=256)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    dspy.configure(  # an empty answer is an error to DSPy: scored 0, never a halt
        lm=task_lm, adapter=Harness(use_json_adapter_fallback=False), max_errors=10**9
    )

    def metric(gold: Any, pred: Any, trace: Any = None) -> float:
        row = {"question": gold.question, "answer": gold.answer, "kind": kind}
        return float(correct(pred.answer or "", row))

    train = [
        dspy.Example(question=r["question"], answer=r["answer"]).with_inputs("question")
        for r in rows
    ]
    extra: list[str] = []
    student = dspy.Predict(dspy.Signature("question -> answer", ""))
    assert student.signature.instructions == DEFAULT, student.signature.instructions
    started = time.perf_counter()
    if job.tool == "dspy-mipro":
        trials = max(1, job.budget // n - 1)  # the default program's evaluation, then trials
        candidates = min(8, trials) + 1  # the first is the original instruction
        optimizer: Any = dspy.MIPROv2(
            metric=metric, prompt_model=prompt_lm, task_model=task_lm, auto=None,
            num_candidates=candidates, max_bootstrapped_demos=0, max_labeled_demos=0,
            num_threads=1, seed=job.seed, verbose=False,
        )  # fmt: skip
        best = optimizer.compile(
            student, trainset=train, valset=train, num_trials=trials, minibatch=False,
            program_aware_proposer=False, data_aware_proposer=False,
        )  # fmt: skip
        settings: dict[str, Any] = {
            "num_candidates": candidates, "num_trials": trials, "minibatch": False,
            "demos": 0, "program_aware_proposer": False, "data_aware_proposer": False,
        }  # fmt: skip
        planned = n * (1 + trials)
        score = getattr(best, "score", None)
        score = None if score is None else float(score) / 100
    elif job.tool == "dspy-gepa":
        from dspy.teleprompt.gepa import InstructionProposer  # type: ignore[import-not-found]

        def feedback_metric(
            gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None
        ) -> Any:
            ok = metric(gold, pred) == 1.0
            feedback = "correct" if ok else f"wrong; the answer is {gold.answer}"
            return dspy.Prediction(score=float(ok), feedback=feedback)

        reflection_lm = lm(job.optimizer_url, temperature=1.0, max_tokens=256)
        optimizer = dspy.GEPA(
            metric=feedback_metric, max_metric_calls=job.budget, reflection_lm=reflection_lm,
            reflection_minibatch_size=3, instruction_proposer=InstructionProposer(
                adapter=LenientJSON()), num_threads=1, track_stats=True,
            log_dir=f"{job.work}/gepa", seed=job.seed,
        )  # fmt: skip
        best = optimizer.compile(student, trainset=train, valset=train)
        settings = {
            "max_metric_calls": job.budget, "reflection_minibatch_size": 3,
            "candidate_selection_strategy": "pareto", "use_merge": True,
            "skip_perfect_score": True, "valset": "the training fold", "num_threads": 1,
            "reflection temperature": 1.0,
            "proposer": "InstructionProposer (JSONAdapter, lenient)",
        }  # fmt: skip
        planned = job.budget
        details = best.detailed_results
        score = float(details.val_aggregate_scores[details.best_idx])
        extra = [
            f"total_metric_calls {details.total_metric_calls} (GEPA's count), "
            f"{len(details.candidates)} candidates, {details.num_full_val_evals} full evaluations"
        ]
    else:
        steps, per_step = proposals(job.budget, n)
        breadth, depth = per_step + 1, steps
        optimizer = dspy.COPRO(prompt_model=prompt_lm, metric=metric, breadth=breadth, depth=depth)
        best = optimizer.compile(
            student, trainset=train, eval_kwargs={"num_threads": 1, "display_progress": False}
        )
        settings = {"breadth": breadth, "depth": depth, "init_temperature": 1.4,
                    "eval": "whole training fold, num_threads 1"}  # fmt: skip
        planned = n * breadth * depth
        ranked = getattr(best, "candidate_programs", [])
        score = ranked[0]["score"] / 100 if ranked else None
    elapsed = time.perf_counter() - started
    instruction = start_as_empty(best.predictors()[0].signature.instructions)
    return Found(
        instruction=instruction,
        settings={**settings, "adapter": "ChatAdapter; scorer as [system, user]; lenient"},
        planned_scorer_calls=planned,
        optimize_s=round(elapsed, 3),
        train_accuracy=score,
        parse_failures=len(failures),
        notes=[f"{len(failures)} prompt-model replies not in DSPy's format, taken whole", *extra],
    )
