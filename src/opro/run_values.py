"""What a run is given and gives back: ``RunOptions`` (where, at what cost at most, with which
cache, who watches), checked when built, and ``RunResult`` (its dir, spec and summary, and
how to use what it found). ``opro.runner`` runs with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

from pydantic import ValidationError

from opro.errors import ConfigError
from opro.llm.usage import Caps
from opro.problems.jobs import JobSummary
from opro.problems.records import BestSolution, RunSummary, Verdict
from opro.problems.spec import RunSpec, describe
from opro.progress import NoProgress, Progress
from opro.runlog import RunDir
from opro.types import Status, StopReason

if TYPE_CHECKING:
    from opro.instruction_export import InstructionExport
    from opro.problems.instructions.prompting import ScorerPrompt


class HistoryRow(TypedDict):
    """One scored solution, as ``RunResult.history`` gives it."""

    run: NotRequired[str]  # a job's: the run's directory name
    step: int
    text: str
    score: float


def caps_of(caps: Caps | Mapping[str, Any] | None) -> Caps | None:
    """``caps`` as ``Caps``: a dict of its settings converted and checked (a one-line error
    names the bad one), anything else refused."""
    if caps is None or isinstance(caps, Caps):
        return caps
    if not isinstance(caps, Mapping):
        raise ConfigError(
            f"caps must be opro.Caps(max_calls=...) or a dict of its settings, not "
            f"{type(caps).__name__}"
        )
    try:
        return Caps.model_validate(dict(caps))
    except ValidationError as exc:
        raise ConfigError(f"caps: {describe(exc)}") from None


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what: where, at what cost at most, with which cache, who watches.
    Checked when built: a wrong value is a one-line ``ConfigError`` at once."""

    out: Path | str | None = None
    """The run dir (default ``runs/COMMAND-DATE-TIME``)."""
    caps: Caps | None = None
    """Start: the run's caps (none by default). Resume: new caps, kept for later resumes;
    None keeps the stored ones. A dict of ``Caps``' settings is converted."""
    cache: Path | str | None = None
    """The call cache's SQLite file (default: the user cache dir)."""
    use_cache: bool = True
    progress: Progress | bool | None = None
    """Who hears of each step. None (or True): the sync API (``opro.start``,
    ``opro.resume``) shows it — in a notebook's cell, else on stderr (a live line on a
    terminal, a line per step otherwise) — and the async core tells no one; False: no
    progress anywhere; a ``Progress``: that one."""
    trust_code: bool = False
    """Resume: allow the run dir's spec to import the code it names (a ``fake:module:fn``
    model, a ``module:function`` metric). A run dir may come from anyone: off by default,
    and such a run dir is refused."""
    base_urls: Mapping[str, str] = field(default_factory=dict)
    """Resume: role → base URL, for the URLs the run dir keeps without their secrets."""
    if_exists: Literal["continue", "refuse"] = "continue"
    """Start, where ``out`` already holds a run: ``continue`` (re-running a notebook cell)
    returns that run when it is of this very spec — finished, as it is; not finished,
    resumed — and refuses a run of another spec; ``refuse`` always refuses (the CLI's:
    ``opro resume`` continues a run)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "caps", caps_of(self.caps))
        if self.out is not None and not isinstance(self.out, str | os.PathLike):
            raise ConfigError(f"out must be a path, not {type(self.out).__name__}")
        if self.progress is True:
            object.__setattr__(self, "progress", None)
        elif self.progress not in (None, False) and not callable(
            getattr(self.progress, "step_finished", None)
        ):
            raise ConfigError(
                "progress must be an opro.Progress (run_started, step_finished, ...), False "
                "for none, or None for the default"
            )
        if self.if_exists not in ("continue", "refuse"):
            raise ConfigError(f"if_exists must be 'continue' or 'refuse', not {self.if_exists!r}")
        if not isinstance(self.base_urls, Mapping):
            raise ConfigError("base_urls must be a dict of role -> URL, e.g. {'scorer': URL}")

    @property
    def observer(self) -> Progress:
        """The progress given, else one that tells no one."""
        return NoProgress() if isinstance(self.progress, bool | None) else self.progress


@dataclass(frozen=True)
class RunResult:
    """A run's (or a job's) end: its dir, resolved spec and summary."""

    run_dir: Path
    spec: RunSpec
    summary: RunSummary | JobSummary
    reps: tuple[RunResult, ...] = ()
    already_finished: bool = False
    """``resume`` (or ``start`` again, into the same ``out``) found it finished: nothing
    was run."""

    @property
    def status(self) -> Status:
        return self.summary.status

    @property
    def stop_reason(self) -> StopReason:
        return self.summary.stop_reason

    @property
    def message(self) -> str:
        return self.summary.message

    @property
    def best(self) -> BestSolution | None:
        return self.summary.best if isinstance(self.summary, RunSummary) else None

    @property
    def best_instruction(self) -> str | None:
        """The best solution's text (an instruction, for ``opro optimize``)."""
        return None if self.best is None else self.best.text

    @property
    def verdict(self) -> Verdict | None:
        """What the proposals came to (``improved``, ``no_valid_proposals``...; counts in
        ``summary.proposals``); None for a job or a run dir from before they were counted."""
        return self.summary.verdict if isinstance(self.summary, RunSummary) else None

    @property
    def advice(self) -> str | None:
        """Why the run did not improve on its start, with counts and the likely fix; None
        when it did."""
        from opro.problems.verdict import explain

        counts = self.summary.proposals if isinstance(self.summary, RunSummary) else None
        return None if counts is None else explain(counts, self.spec.engine)

    def history(self) -> list[HistoryRow]:
        """Every scored solution, in order: ``{"step", "text", "score"}`` rows, ready for
        ``pandas.DataFrame(result.history())`` (a job: its runs' rows, with ``"run"``)."""
        if self.reps:
            return [{"run": r.run_dir.name, **row} for r in self.reps for row in r.history()]
        return [
            {"step": step.step, "text": c.text, "score": c.score}
            for step in RunDir(self.run_dir).read_steps()
            for c in step.candidates
        ]

    def report(self) -> Path:
        """Write (again) the run's report.html; its path."""
        from opro.report import write_report

        return write_report([self.run_dir])

    def prompt_for(self, question: str, instruction: str | None = None) -> ScorerPrompt:
        """``question`` under the best instruction (or ``instruction``) exactly as the run's
        scorer was asked during the run: the prompt (``str()`` of the value), the system
        message and the decoding (``.messages`` for a chat API, ``.request()`` for
        ``opro.complete``)."""
        from opro.problems.instructions.spec import InstructionsSpec

        if not isinstance(self.spec, InstructionsSpec):
            raise ConfigError(
                f"prompt_for is for instruction runs (opro optimize); this is a "
                f"{self.spec.kind} run"
            )
        chosen = self.best_instruction if instruction is None else instruction
        if chosen is None:
            raise ConfigError(
                "this run has no best instruction"
                + (" (a job: take one of its runs, result.reps[0])" if self.reps else "")
                + ": give instruction=..."
            )
        return self.spec.prompt_for(question, chosen)

    def export(self, top: int = 3) -> InstructionExport:
        """The best instruction and the next ``top - 1``, each with the scorer prompt it
        was scored with (``opro export``'s value)."""
        from opro.instruction_export import export_run

        return export_run(self.run_dir, top)
