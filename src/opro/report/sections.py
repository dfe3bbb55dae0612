"""What each section of a report shows, as plain values for the template: facts (name,
value), tables of strings, images. Numbers are formatted here; escaping is the template's.
Stored values (summary.json) are preferred; an unfinished run shows what its steps hold.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opro.budget import RoleUsage
from opro.report.runs import Job, Run, TspFacts, steps_to_optimum

KIND_NAMES = {
    "instructions": "instruction optimization",
    "linreg": "linear regression",
    "tsp": "travelling salesman",
}
DASH = "—"
UNFINISHED = "not finished (still running, or killed): `opro resume {path}` continues it"


@dataclass(frozen=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    css: str = ""
    note: str = ""

    @property
    def numeric(self) -> tuple[bool, ...]:
        """Per column: whether every filled cell is a number (drawn right-aligned)."""
        return tuple(
            all(_is_number(row[i]) for row in self.rows if row[i] != DASH)
            for i in range(len(self.headers))
        )


@dataclass(frozen=True)
class Image:
    file: str
    caption: str
    src: str
    """A ``data:image/png;base64,…`` URI."""


@dataclass(frozen=True)
class Section:
    anchor: str
    label: str
    path: str
    kind: str
    status: str
    stop_reason: str
    message: str
    facts: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    images: tuple[Image, ...]


def section(job: Job, index: int, images: tuple[Image, ...], tsp: TspFacts | None) -> Section:
    tables: list[Table] = []
    if job.kind == "instructions":
        tables.append(instruction_table(job.runs[0]))
    elif job.kind == "linreg":
        tables.append(linreg_table(job))
    tables.append(usage_table(job.usage()))
    return Section(
        anchor=f"run-{index}",
        label=job.label,
        path=str(job.path),
        kind=KIND_NAMES[job.kind],
        status=job.status,
        stop_reason=job.stop_reason or DASH,
        message=job.message
        or (UNFINISHED.format(path=job.path) if job.status in ("running", "unfinished") else ""),
        facts=tuple(common_facts(job) + kind_facts(job, tsp)),
        tables=tuple(tables),
        images=images,
    )


def common_facts(job: Job) -> list[tuple[str, str]]:
    run = job.runs[0]
    config, engine = run.config, run.config.get("engine") or {}
    facts = [("optimizer", _spec(config.get("optimizer")))]
    if "scorer" in config:
        facts.append(("scorer", _spec(config.get("scorer"))))
    done = ", ".join(str(r.steps[-1].number if r.steps else 0) for r in job.runs)
    facts += [
        ("steps done / configured", f"{done} / {_text(run.configured_steps)}"),
        ("samples per step", _text(engine.get("samples_per_step"))),
        ("temperature", _temperature(engine)),
        ("top-k shown", _text((engine.get("meta") or {}).get("top_k"))),
        ("seed", ", ".join(_text((r.config.get("engine") or {}).get("seed")) for r in job.runs)),
        ("elapsed", _duration(job.elapsed_s)),
    ]
    return facts


def kind_facts(job: Job, tsp: TspFacts | None) -> list[tuple[str, str]]:
    if job.kind == "instructions":
        return instruction_facts(job.runs[0])
    if job.kind == "linreg":
        return linreg_facts(job)
    assert tsp is not None
    return tsp_facts_rows(job.runs[0], tsp)


def instruction_facts(run: Run) -> list[tuple[str, str]]:
    """What summary.json says; for a run without its final evaluation, what the steps say."""
    summary, problem = run.summary or {}, run.config.get("problem") or {}
    best = run.best()
    initial = (problem.get("initial") or [None])[0]
    initial_train = summary.get("initial_train_score")
    if initial_train is None and run.steps:
        found = [c.score for c in run.steps[0].candidates if c.solution == initial]
        initial_train = found[0] if found else None
    best_train = summary.get("best_train_score", None if best is None else best.score)
    return [
        ("dataset", _text(summary.get("dataset") or problem.get("dataset"))),
        ("instruction position", _text(problem.get("position"))),
        ("meta-prompt style", _text(problem.get("style"))),
        (
            "train / test examples",
            f"{_text(summary.get('n_train'))} / {_text(summary.get('n_test'))}",
        ),
        ("best instruction", _instruction(None if best is None else best.solution)),
        (
            "best: train / test accuracy",
            f"{_pct(best_train)} / {_pct(summary.get('best_test_score'))}",
        ),
        ("initial instruction", _instruction(initial)),
        (
            "initial: train / test accuracy",
            f"{_pct(initial_train)} / {_pct(summary.get('initial_test_score'))}",
        ),
        ("best vs initial on test (exact McNemar)", _paired(summary.get("paired_test"))),
    ]


def linreg_facts(job: Job) -> list[tuple[str, str]]:
    """The stored aggregate of a finished job, else the same measures over what is there."""
    summary, problem = job.summary or {}, job.runs[0].config.get("problem") or {}
    reached = [s for s in (steps_to_optimum(r) for r in job.runs) if s is not None]
    pairs = [sum(len(s.candidates) for s in r.steps) for r in job.runs]
    stored = isinstance(summary.get("steps_to_optimum"), dict)
    return [
        ("true (w, b)", f"({_text(problem.get('w_true'))}, {_text(problem.get('b_true'))})"),
        ("repetitions (reaching the optimum)", f"{len(job.runs)} ({len(reached)})"),
        (
            "steps to optimum (mean ± sd)",
            _mean_std(summary["steps_to_optimum"] if stored else _spread(reached)),
        ),
        (
            "unique pairs explored (mean ± sd)",
            _mean_std(summary["unique_pairs_explored"] if stored else _spread(pairs)),
        ),
    ]


def tsp_facts_rows(run: Run, tsp: TspFacts) -> list[tuple[str, str]]:
    summary = run.summary or {}
    gap = None if tsp.best_length is None else _gap(tsp.best_length, tsp.optimal_length)
    return [
        ("nodes", str(len(tsp.points))),
        ("optimal length", f"{tsp.optimal_length:.2f}"),
        (
            "best length (gap)",
            DASH if tsp.best_length is None else f"{tsp.best_length:.2f} ({gap:.1f} %)",
        ),
        (
            "nearest neighbour (gap)",
            f"{tsp.nearest_neighbor_length:.2f} "
            f"({_gap(tsp.nearest_neighbor_length, tsp.optimal_length):.1f} %)",
        ),
        (
            "farthest insertion (gap)",
            f"{tsp.farthest_insertion_length:.2f} "
            f"({_gap(tsp.farthest_insertion_length, tsp.optimal_length):.1f} %)",
        ),
        ("first step at the optimum", _text(summary.get("first_optimal_step"))),
    ]


def instruction_table(run: Run) -> Table:
    """The top instructions: from the test evaluation when done, else by training accuracy."""
    summary = run.summary or {}
    headers = ("", "instruction", "train acc. %", "test acc. %", "test n", "p vs initial")
    evaluated = summary.get("test_evaluation")
    initial = summary.get("initial_instruction")
    if evaluated:
        rows, rank = [], 0
        for r in evaluated:
            is_initial = r.get("instruction") == initial
            rank += not is_initial
            rows.append(
                (
                    "initial" if is_initial else f"top {rank}",
                    _instruction(r.get("instruction")),
                    _pct(r.get("train_score")),
                    _pct(r.get("test_score")),
                    _text(r.get("n")),
                    "baseline" if is_initial else _p(r.get("p_value_vs_initial")),
                )
            )
        return Table("Top instructions on the test fold", headers, tuple(rows), "instructions")
    top = int(((run.config.get("problem") or {}).get("test_top")) or 3)
    ranked = sorted(
        ((c.score, s.number, str(c.solution)) for s in run.steps for c in s.candidates),
        key=lambda t: (-t[0], t[1]),
    )[:top]
    rows = [
        (f"top {i}", _instruction(text), _pct(score), DASH, DASH, DASH)
        for i, (score, _, text) in enumerate(ranked, start=1)
    ]
    note = "Not evaluated on the test fold yet (the run has not finished): resume it to do so."
    return Table(
        "Top instructions by training accuracy", headers, tuple(rows), "instructions", note
    )


def linreg_table(job: Job) -> Table:
    headers = (
        "run",
        "status",
        "steps done",
        "steps to optimum",
        "unique pairs",
        "best (w, b)",
        "best objective",
    )
    rows = []
    for run in job.runs:
        best = (run.summary or {}).get("best") or {}
        reached = steps_to_optimum(run)
        pairs = sum(len(s.candidates) for s in run.steps)
        rows.append(
            (
                run.path.name,
                run.status,
                str(run.steps[-1].number if run.steps else 0),
                "not reached" if reached is None else str(reached),
                str(pairs),
                _text(best.get("text")),
                DASH if best.get("score") is None else f"{best['score']:.2f}",
            )
        )
    return Table("Repetitions", headers, tuple(rows))


def usage_table(usage: dict[str, RoleUsage]) -> Table:
    headers = (
        "role",
        "calls",
        "cached",
        "retries",
        "failures",
        "prompt tokens",
        "completion tokens",
        "cost (USD)",
    )
    rows = tuple(
        (
            role,
            str(u.calls),
            str(u.cached_calls),
            str(u.retries),
            str(u.failures),
            str(u.prompt_tokens),
            str(u.completion_tokens),
            "unknown price" if u.cost_usd is None else f"{u.cost_usd:.4f}",
        )
        for role, u in usage.items()
    )
    return Table("Usage and cost per role", headers, rows, "numbers")


def overview(jobs: Sequence[Job]) -> Table:
    headers = ("run", "kind", "status", "steps", "best score")
    rows = []
    for job in jobs:
        best = [b for r in job.runs if (b := r.best_so_far())]
        scores = [curve[-1][1] for curve in best]
        pick = max if job.kind == "instructions" else min
        chosen = pick(scores) if scores else None
        rows.append(
            (
                job.label,
                KIND_NAMES[job.kind],
                job.status,
                ", ".join(str(r.steps[-1].number if r.steps else 0) for r in job.runs),
                DASH if chosen is None else f"{chosen:.4g}",
            )
        )
    return Table("Runs", headers, tuple(rows))


# -- formatting ---------------------------------------------------------------------------


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


def _spec(config: Any) -> str:
    return _text(config.get("spec")) if isinstance(config, dict) else DASH


def _instruction(value: Any) -> str:
    return DASH if value is None else (str(value) or "(empty instruction)")


def _pct(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else DASH


def _p(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else DASH


def _gap(length: float, optimal: float) -> float:
    return (length - optimal) / optimal * 100 if optimal else 0.0


def _paired(paired: Any) -> str:
    if not isinstance(paired, dict):
        return DASH
    return (
        f"p = {_p(paired.get('p_value'))} ({_text(paired.get('n'))} paired examples; "
        f"{_text(paired.get('only_baseline'))} right only under the initial, "
        f"{_text(paired.get('only_other'))} only under the best)"
    )


def _duration(seconds: float) -> str:
    """``0.042`` → ``0.04 s``; ``75.2`` → ``75.2 s``; ``3725`` → ``1 h 02 min 05 s``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _spread(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values)}


def _mean_std(value: Any) -> str:
    if not isinstance(value, dict) or value.get("mean") is None:
        return DASH
    return f"{value['mean']:.1f} ± {value.get('std') or 0.0:.1f}"


def _temperature(engine: Any) -> str:
    start, end = engine.get("temperature"), engine.get("temperature_end")
    return _text(start) if end is None else f"{_text(start)} → {_text(end)}"
