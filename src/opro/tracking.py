"""Experiment tracking (``--mlflow``): a run dir logged to MLflow (``pip install
'opro[mlflow]'``): its settings as parameters, its best score and more per step as metrics,
its status and best solution as tags, and summary.json, config.json, the best solution and
the report as artifacts. Logged from the run dir, once the run ends (or stops), so it never
slows a step; a resumed run logs into the same MLflow run (its id is kept in the run dir's
``mlflow.json``). MLflow is imported only here, only when asked for.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opro.errors import ConfigError, MissingDependency, redact
from opro.llm.config import redact_url, url_secrets
from opro.problems.spec import settings_of, value_at
from opro.progress_text import printable
from opro.runlog import RunDir, write_json_atomic

RECORD = "mlflow.json"
PARAM_LIMIT = 500
"""Characters of a parameter's value kept (an instruction, a dataset path...)."""
QUICK = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
}
"""MLflow's HTTP settings while a run is logged, unless the user set them: one retry after
about a second, 10 s a request, so an unreachable server fails in seconds (MLflow's own
defaults, 7 retries with backoff and 120 s a request, took 255 s to fail)."""
_NO_CONNECTION = re.compile(
    r"Failed to establish a new connection: (?:\[Errno -?\d+\] )?([^\"')]+)"
)
_SECRET_NAME = r"(?:key|token|secret|pass|pwd|sig|auth|cred|session)[^=&\s]*="
_URL_SECRETS = (
    (re.compile(r"(//)[^/@\s]+@"), r"\1***@"),  # user:pass@host
    (re.compile(rf"({_SECRET_NAME})[^&\s'\"]+", re.IGNORECASE), r"\1***"),  # ?token=...
)


def log_run(run_dir: Path, tracking_uri: str | None, experiment: str = "opro") -> str:
    """Log ``run_dir`` (a run, or a job: each of its runs) to MLflow; the MLflow run id."""
    try:
        import mlflow
    except ImportError:
        raise MissingDependency(
            "`mlflow` needs MLflow: pip install 'opro[mlflow]' (or mlflow-skinny)"
        ) from None
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "./mlruns"
    if "://" not in uri or uri.startswith("file:"):  # asked for by name: MLflow 3 wants an opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        with _quick_and_quiet():
            return _log(mlflow, run_dir, uri, experiment)
    except Exception as exc:
        # MLflow's stores raise bare Exceptions too (a file store whose folder is gone): at
        # the end of a saved run, any of them is one line, never an internal error.
        text = " ".join(scrub(str(exc), uri).split())
        refused = _NO_CONNECTION.search(text)  # urllib3's long story: its cause
        message = printable(f"cannot connect ({refused[1]})" if refused else text[:300])
        shown = printable(_redacted(uri))
        raise ConfigError(
            f"could not log {run_dir} to MLflow at {shown!r}: {message} (the run is saved: "
            f"log it later with `opro resume {run_dir} --mlflow URI`)"
        ) from None


def scrub(text: str, uri: str) -> str:
    """``text`` (an MLflow message) without ``uri``'s secrets: its user-info and secret query
    values, also where MLflow quotes them apart from the URI."""
    with contextlib.suppress(ValueError):  # not a URL urllib splits: the patterns below
        text = redact(text.replace(uri, redact_url(uri)), url_secrets(uri))
    for pattern, replacement in _URL_SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _redacted(uri: str) -> str:
    try:
        return redact_url(uri)
    except ValueError:
        return scrub(uri, uri)


@contextlib.contextmanager
def _quick_and_quiet() -> Iterator[None]:
    """MLflow's HTTP retries cut short (``QUICK``, where the user did not set them), and its
    loggers, warnings and prints (urllib3's retry lines, a "View run at URL" with the URI's
    credentials) silenced: the outcome is opro's one line."""
    saved = {name: os.environ.get(name) for name in QUICK}
    for name, value in QUICK.items():
        os.environ.setdefault(name, value)
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(before)
        for name, was in saved.items():
            if was is None:
                os.environ.pop(name, None)


def _log(mlflow: Any, run_dir: Path, uri: str, experiment: str) -> str:
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    folder = RunDir.open(run_dir)
    config = folder.config()
    record = run_dir / RECORD
    known = json.loads(record.read_text()) if record.is_file() else {}
    runs = [run_dir / name for name in config.runs] or [run_dir]
    with mlflow.start_run(run_id=known.get("run_id"), run_name=run_dir.name) as active:
        spec = config.spec
        params = {
            name: _param(value_at(spec, path)) for name, path in settings_of(type(spec)).items()
        }
        mlflow.log_params({k: v for k, v in params.items() if v is not None} | {"kind": spec.kind})
        for i, path in enumerate(runs):
            _log_steps(mlflow, RunDir(path), prefix="" if len(runs) == 1 else f"rep{i}_")
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        mlflow.set_tags(
            {"status": summary.get("status"), "stop_reason": summary.get("stop_reason")}
        )
        best = summary.get("best")
        if isinstance(best, dict):
            mlflow.set_tag("best", _param(best.get("text")))
            mlflow.log_text(str(best.get("text")), "best.txt")
        for name in ("summary.json", "config.json", "report.html"):
            if (run_dir / name).is_file():
                mlflow.log_artifact(str(run_dir / name))
        for figure in sorted(run_dir.glob("report-*.svg")):
            mlflow.log_artifact(str(figure), "figures")
        run_id: str = active.info.run_id
    where = _redacted(str(mlflow.get_tracking_uri()))  # never a credential in the run dir
    write_json_atomic(record, {"run_id": run_id, "tracking_uri": where})
    return run_id


def _log_steps(mlflow: Any, run: RunDir, prefix: str) -> None:
    """Per step: the best score so far, the new solutions' mean score, parse failures, calls."""
    for step in run.read_steps():
        scores = [c.score for c in step.candidates]
        metrics = {
            f"{prefix}best_score": step.best_score,
            f"{prefix}mean_new_score": sum(scores) / len(scores) if scores else None,
            f"{prefix}new_solutions": float(len(scores)),
            f"{prefix}parse_failures": float(step.parse_failures),
            f"{prefix}calls": float(sum(u.calls for u in step.usage.values())),
        }
        given = {k: float(v) for k, v in metrics.items() if v is not None}
        mlflow.log_metrics(given, step=step.step)


def _param(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)
    return text[:PARAM_LIMIT]
