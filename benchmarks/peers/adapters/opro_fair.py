"""opro as a client of the proxy, and natively.

``opro`` (the fair row): ``opro optimize`` with the scorer and the optimizer at the proxy's
ports, the scorer as a pre-trained model (completion API, the instruction at A_begin), the
optimizer as opro runs a pre-trained model by default, through the completion API with the
paper's meta-prompt for pre-trained optimizers (PaLM 2-L's: ``Precision: NN <TEXT>…</TEXT>``
lines, a proposal a line, opro's 64 tokens) and no grammar; the paper's settings otherwise
(top 20 best last, temperature 1, 3 exemplars). gemma3-270m is a base model, and every
peer's optimizer goes through the chat API only because the peers have no other way.

``opro-chat``: the same with the optimizer through the chat API and opro's meta-prompt for
instruction-tuned optimizers (``<INS>…</INS>``, 256 tokens), the way every peer's goes.

``opro-constrained``: the fair row with ``--constrained``: the grammar opro sends a
llama.cpp server holds each proposal to the expected line (the proxy forwards it).

``opro-pool``: the fair row started from the frozen pool EvoPromptGA and CAPO start from
(``adapters.POOL``: "", "Answer with the option letter.", "Let's think step by step.", "The
answer is"), so that a gain of theirs can be told apart: the pool's or the optimizer's.

``opro-redraw``: the fair row with ``--max-attempts-per-step`` 4 rounds, so that proposals
that did not parse are drawn again (the paper's, and opro's default, is one round).

``opro-native``: opro as it runs by default, outside the fairness comparison: both roles on
the embedded model in its own process (batched scoring, ``--constrained``, as ``make demo``
runs it); its calls never reach the proxy: its training scorer calls are counted from its
run directory.

The held-out evaluation is the harness's, the same for every tool: opro's own test pass is
cut to one question (``--max-test 1``, phase "test" at the proxy, not in the budget).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from adapters import MODEL, POOL, Found, Job, proposals


def run(job: Job) -> Found:
    n = len(job.rows())
    starts = POOL if job.tool == "opro-pool" else ("",)
    steps, per_step = proposals(job.budget, n, len(starts))
    out = Path(job.work) / "run"
    test = Path(job.train).with_name("test.jsonl")
    native = job.tool == "opro-native"
    chat = job.tool == "opro-chat"
    constrained = job.tool in ("opro-native", "opro-constrained")
    if native:  # embedded, in this process: batched
        models = []
    else:
        models = [
            "--scorer", f"openai:{MODEL}", "--scorer-base-url", job.scorer_url,
            "--scorer-api", "completion", "--scorer-price", "0,0",
            "--optimizer", f"openai:{MODEL}", "--optimizer-base-url", job.optimizer_url,
            "--optimizer-api", "chat" if chat else "completion", "--optimizer-price", "0,0",
        ]  # fmt: skip
    if constrained:
        models.append("--constrained")
    if chat:
        models += ["--max-tokens", "256"]
    command = [
        sys.executable, "-m", "opro.cli", "optimize",
        "--dataset", f"jsonl:{job.train}", "--test-dataset", f"jsonl:{test}", "--max-test", "1",
        *models, "--position", "A_begin", "--scorer-max-tokens", "16",
        "--steps", str(steps), "--samples-per-step", str(per_step),
        *(arg for start in starts for arg in ("--initial", start)),
        "--top-k", "20", "--temperature", "1.0",
        "--test-top", "1", "--seed", str(job.seed), "--no-report", "-q", "--out", str(out),
    ]  # fmt: skip
    if not job.as_user:  # the comparison: nothing served from a cache (a user's run keeps
        command.append("--no-cache")  # its call cache, which a resume replays)
    if job.tool == "opro-redraw":  # up to 4 rounds of draws for per_step valid proposals
        command += ["--max-attempts-per-step", str(4 * per_step)]
    if job.restart:  # as opro's docs say: `opro resume DIR` continues from the last step
        command = [sys.executable, "-m", "opro.cli", "resume", str(out), "--no-report", "-q"]
    env = {**os.environ, "OPENAI_API_KEY": "unused"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    (Path(job.work) / "opro.stderr").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"opro optimize exited {done.returncode}: {done.stderr[-800:]}")
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best"] or {}
    counts = summary.get("proposals") or {}
    unparsed = int(counts.get("parse_failures") or 0)
    return Found(
        instruction=best.get("solution", ""),
        settings={
            "max_attempts_per_step": 4 * per_step if job.tool == "opro-redraw" else per_step,
            "steps": steps,
            "samples_per_step": per_step,
            "top_k": 20,
            "temperature": 1.0,
            "optimizer_api": "embedded" if native else "chat" if chat else "completion",
            "meta_prompt": "instruct (<INS>)" if chat else "pretrained (Precision: NN <TEXT>)",
            "optimizer_max_tokens": 256 if chat else 64,
            "constrained": constrained,
            "scorer_api": "embedded" if native else "completion",
            "position": "A_begin",
        },
        planned_scorer_calls=n * (len(starts) + steps * per_step),
        optimize_s=round(elapsed, 3),
        train_accuracy=None if best.get("score") is None else best["score"] / 100,
        parse_failures=unparsed,
        own_scorer_calls=_train_calls(out) if native else None,
        notes=[f"proposals: {json.dumps(counts)}", f"verdict: {summary.get('verdict')}"],
    )


def _train_calls(run: Path) -> int:
    """Scorer calls on the training fold, from the run's step records (opro native's calls
    never reach the proxy): each scored solution, on every training question."""
    n = 0
    for line in (run / "steps.jsonl").read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        for candidate in record.get("candidates", []):
            n += len((candidate.get("details") or {}).get("marks", ""))
    return n
