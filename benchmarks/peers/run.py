"""opro against the prompt optimizers users would pick instead, side by side (issue #27):
the same model, task, folds, scorer prompt, answer check and budget for every tool.

    .venv-peers/bin/python benchmarks/peers/run.py            # the benchmark (about an hour)
    .venv-peers/bin/python benchmarks/peers/run.py --quick    # a few minutes: the harness

(``make bench-peers`` / ``make bench-peers-quick`` install .venv-peers from
benchmarks/peers/uv.lock first.) What it does, in order:

1. exports opro's folds of each task (``bbh:TASK``, seed 0) once to JSON lines (folds.py);
2. starts one ``llama_cpp.server`` on the embedded gemma3-270m and the counting proxy in
   front of it (servers.py, proxy.py), and times a few calls through it (calibration);
3. runs each tool (adapters/, one process per run, one run at a time: tool.py) with the
   same job: the training fold, a budget of training-phase scorer calls, a seed, the
   proxy's URLs; it measures the process's wall time, CPU time and peak memory;
4. counts each run's calls and tokens at the proxy (its log, not the tool's own count);
5. scores every returned instruction and the start "" on the held-out fold in one ``opro
   evaluate`` through the same proxy (exact McNemar against the start, Holm-corrected
   across tools, and against opro's instruction of the same seed);
6. writes the results as JSON (benchmarks/peers/results/), from which page.py builds
   docs/results/peers.md.

Needs the benchmark files: --data-dir, else $OPRO_DATA_DIR, else ../shared/data.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import opro
from opro.eval.stats import mcnemar_exact

import folds as folds_module
import servers
from adapters import TOOLS

K = TypeVar("K")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS = ("dspy", "gepa", "promptolution", "textgrad", "optuna")
FULL_TOOLS = (
    "opro", "opro-constrained", "opro-chat", "opro-native", "promptolution-opro",
    "promptolution-evoga", "promptolution-capo", "dspy-copro", "dspy-mipro", "dspy-gepa", "gepa",
)  # fmt: skip
"""The benchmark's tools by default (opro-redraw, on request: --tools)."""
TOOL_ERRORS = 3
"""The exit status when the results are written but a tool's run ended in an error (a
result, on the page), apart from 1, a failure of the harness itself."""
OTHERS = ("opro", "llama-cpp-python", "openai", "litellm", "aiohttp", "numpy")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in (*PEERS, *OTHERS):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    out["opro_commit"] = commit.stdout.strip() or None
    return out


# -- the proxy's log ------------------------------------------------------------------------


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls, tokens, refusals and errors of one run's records, by role and phase."""
    out: dict[str, Any] = {}
    for role in ("scorer", "optimizer"):
        mine = [r for r in records if r.get("role") == role]
        ok = [r for r in mine if r.get("status") == 200]
        phases = Counter(r.get("phase") for r in ok)
        usage = [r.get("usage") or {} for r in ok]
        out[role] = {
            "calls": len(ok),
            "by_phase": dict(phases),
            "prompt_tokens": sum(int(u.get("prompt_tokens") or 0) for u in usage),
            "completion_tokens": sum(int(u.get("completion_tokens") or 0) for u in usage),
            "seconds": round(sum(float(r.get("latency_s") or 0) for r in ok), 2),
            "refused": sum("refused" in r for r in mine),
            "errors": sum(r.get("status") not in (200, None) and "refused" not in r for r in mine),
        }
    temps = Counter(
        str((r.get("requested") or {}).get("temperature"))
        for r in records
        if r.get("role") == "optimizer" and r.get("status") == 200
    )
    out["optimizer"]["requested_temperatures"] = dict(temps)
    return out


def train_accuracy(records: list[dict[str, Any]], instruction: str) -> float | None:
    """The instruction's training accuracy as the proxy saw it scored (each question once)."""
    marks: dict[int, bool] = {}
    for r in records:
        if (
            r.get("role") == "scorer"
            and r.get("phase") == "train"
            and r.get("status") == 200
            and r.get("instruction") == instruction
        ):
            marks.setdefault(int(r["index"]), bool(r["correct"]))
    return round(sum(marks.values()) / len(marks), 4) if marks else None


def uniform_best(records: list[dict[str, Any]], budget: int, n_train: int) -> dict[str, Any]:
    """The best instruction fully scored within the run's first ``budget`` training scorer
    calls (the first on a tie): the same selection rule for every tool."""
    marks: dict[str, dict[int, bool]] = defaultdict(dict)
    order: list[str] = []
    used = 0
    for r in records:
        if r.get("role") != "scorer" or r.get("phase") != "train" or r.get("status") != 200:
            continue
        used += 1
        if used > budget:
            break
        ins = r["instruction"]
        if ins not in marks:
            order.append(ins)
        marks[ins].setdefault(int(r["index"]), bool(r["correct"]))
    full = [(sum(marks[i].values()) / n_train, -k, i) for k, i in enumerate(order)
            if len(marks[i]) == n_train]  # fmt: skip
    if not full:
        return {"instruction": None, "train_accuracy": None, "complete": 0}
    accuracy, _, instruction = max(full)
    return {"instruction": instruction, "train_accuracy": round(accuracy, 4), "complete": len(full)}


# -- running a tool ---------------------------------------------------------------------------


def tool_env(work: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY")
    }  # fmt: skip
    env.update(
        OPENAI_API_KEY="unused",  # clients that insist on a key; the proxy ignores it
        XDG_CACHE_HOME=str(work / "cache"),  # no cross-run caches (TextGrad, DSPy)
        DSPY_CACHEDIR=str(work / "cache" / "dspy"),
        OPRO_CACHE_DIR=str(work / "cache" / "opro"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # offline: no fetch at import
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def run_tool(
    job: dict[str, Any], work: Path, timeout: float, kill_when: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """One tool's run in a process of its own: what it found, and its process's wall time,
    CPU time and peak resident memory. ``kill_when``: checked as it runs; once true, the
    tool's processes are killed (SIGKILL, as a crash or an out-of-memory kill would)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.json").write_text(json.dumps(job))
    out = work / "found.json"
    started = time.perf_counter()
    with open(work / "tool.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "tool.py"), str(work / "job.json"), str(out)],
            stdout=log, stderr=subprocess.STDOUT, env=tool_env(work), start_new_session=True,
        )  # fmt: skip
        timed_out = killed = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if kill_when is not None and kill_when():
                    killed = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                if time.perf_counter() - started > timeout:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.2)
        except BaseException:  # Ctrl-C: the tool (its own session) goes too
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    found: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if killed:
        found["killed"] = True
    elif timed_out:
        found.setdefault("error", f"timed out after {timeout:.0f} s")
    elif proc.returncode != 0 and "error" not in found:
        found["error"] = f"exit {proc.returncode}: " + (work / "tool.log").read_text()[-800:]
    found.update(
        process_s=round(wall, 2),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        exit_code=proc.returncode,
    )
    return found


class TrainCalls:
    """Training-phase scorer calls of one run so far, read from the proxy's log as it grows."""

    def __init__(self, log: Path, run: str) -> None:
        self.log, self.run, self.offset, self.n = log, run, 0, 0

    def __call__(self) -> int:
        if not self.log.exists():
            return self.n
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # whole lines only: the proxy may be mid-write
        self.offset += end
        for line in data[:end].splitlines():
            r = json.loads(line) if line.strip() else {}
            self.n += (
                r.get("run") == self.run
                and r.get("role") == "scorer"
                and r.get("phase") == "train"
                and r.get("status") == 200
            )
        return self.n

    def reached(self, n: int) -> Callable[[], bool]:
        """Whether the run has made ``n`` calls yet (a kill's trigger)."""
        return lambda: self() >= n


LABELS = {
    "full": "benchmark",
    "quick": "QUICK CHECK of the harness, not the benchmark",
    "kill": "what a kill halfway costs",
}

RESTART = {
    "opro": "`opro resume DIR` (its call cache replays the killed step's calls)",
    "opro-constrained": "`opro resume DIR` (its call cache replays the killed step's calls)",
    "opro-chat": "`opro resume DIR` (its call cache replays the killed step's calls)",
    "opro-redraw": "`opro resume DIR` (its call cache replays the killed step's calls)",
    "gepa": "gepa.optimize again with the same run_dir (GEPA reads the state saved there)",
    "dspy-gepa": "dspy.GEPA again with the same log_dir (its docs: the run resumes from it)",
}
"""How each tool continues a killed run, as its docs say; any other runs again from the
start (its docs name no way to continue: DSPy's optimizers, promptolution's)."""


def kill_halfway(
    job: dict[str, Any], work: Path, timeout: float, log_path: Path, urls: dict[str, str]
) -> dict[str, Any]:
    """What a kill halfway through costs: the job uninterrupted; the job again, killed once
    it has made half its training scorer calls, then restarted as the tool's docs say; the
    calls spent again = killed + restarted - uninterrupted (the calls answered before the
    kill count as the killed run's; those in flight then, answered by the server to no one,
    are counted apart: wasted, but not spent again by the tool). Each tool runs as a user would
    (``as_user``: its own caches and saved state on), with the same budget."""
    label = f"{job['task']}/{job['tool']}/s{job['seed']}"
    base = {**job, "as_user": True}
    counts = {}
    found = {}
    in_flight = 0
    for part in ("uninterrupted", "killed", "restarted"):
        run = f"{label}/{part}"
        servers.control(urls["scorer"], run, job["seed"], restarted=part == "restarted")
        calls = TrainCalls(log_path, run)
        folder = work / label.replace("/", "-") / ("whole" if part == "uninterrupted" else "cut")
        this = {**base, "work": str(folder), "restart": part == "restarted"}
        half = calls.reached(job["budget"] // 2) if part == "killed" else None
        found[part] = run_tool(this, folder, timeout, half)
        counts[part] = calls()
        if part == "killed":  # requests the killed tool had sent: the server still answers
            seen = -1  # them (to no one); wait for the last, so none counts as the restart's
            while seen != calls():
                seen = calls()
                time.sleep(3)
            in_flight = seen - counts[part]
    whole, cut, again = counts["uninterrupted"], counts["killed"], counts["restarted"]
    out = {
        "task": job["task"], "tool": job["tool"], "seed": job["seed"], "budget": job["budget"],
        "uninterrupted_calls": whole, "killed_at": cut, "restarted_calls": again,
        "spent_again": cut + again - whole, "in_flight_at_kill": in_flight,
        "killed": bool(found["killed"].get("killed")),
        "restart": RESTART.get(job["tool"], "runs again from the start (no way to continue)"),
        "same_instruction": found["uninterrupted"].get("instruction")
        == found["restarted"].get("instruction"),
        "errors": {k: f["error"] for k, f in found.items() if f.get("error")},
    }  # fmt: skip
    return out


# -- held-out evaluation ----------------------------------------------------------------------


def evaluate(
    test: Path, instructions: list[str], scorer_url: str, work: Path
) -> dict[str, dict[str, Any]]:
    """Every instruction on the held-out fold in one ``opro evaluate`` through the proxy:
    per instruction, its accuracy, marks ("1" right, "0" wrong or empty, "x" failed, in the
    fold's order) and the share of its answers that read as each option."""
    command = [
        sys.executable, "-m", "opro.cli", "evaluate", "--dataset", f"jsonl:{test}",
        "--split", "all", "--scorer", "openai:gemma3-270m", "--scorer-base-url", scorer_url,
        "--scorer-api", "completion", "--position", "A_begin", "--scorer-max-tokens", "16",
        "--scorer-concurrency", "2", "--no-cache", "--json", "--examples", "-q",
        *(arg for ins in instructions for arg in ("--instruction", ins)),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=tool_env(work), check=False)
    (work / "evaluate.stderr").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"opro evaluate failed: {done.stderr[-1500:]}")
    report = json.loads(done.stdout)
    questions = {r["index"]: r for r in _indexed(test)}
    out: dict[str, dict[str, Any]] = {}
    for entry in report["instructions"]:
        examples = sorted(entry["examples"], key=lambda e: e["index"])
        marks = "".join(
            {"correct": "1", "wrong": "0", "empty": "0"}.get(e["status"], "x") for e in examples
        )
        shares: Counter[str] = Counter()
        for e in examples:
            row = questions[e["index"]]
            shares[_option(e.get("prediction") or "", row["question"], row["kind"])] += 1
        out[entry["instruction"]] = {
            "accuracy": round(marks.count("1") / len(marks), 4) if marks else None,
            "n": entry["n"],
            "marks": marks,
            "answers": {k: round(v / len(examples), 3) for k, v in sorted(shares.items())},
        }
    return out


def _indexed(test: Path) -> list[dict[str, Any]]:
    rows = folds_module.read_rows(test)
    return [{**row, "index": i} for i, row in enumerate(rows)]


def _option(prediction: str, question: str, kind: Any) -> str:
    """Which answer a prediction reads as (a constant answer shows here)."""
    if not prediction.strip():
        return "empty"
    if kind == "boolean":
        for value in ("Yes", "No"):
            if opro.score_answer(prediction, value, kind="boolean", question=question):
                return value
        return "other"
    for letter in "ABCDEFGHIJKLMNOPQR":
        if f"({letter})" not in question:
            break
        if opro.score_answer(prediction, f"({letter})", kind="choice", question=question):
            return f"({letter})"
    return "other"


def holm(p_values: dict[K, float]) -> dict[K, float]:
    """Holm's step-down adjustment of a family of p-values."""
    ordered = sorted(p_values.items(), key=lambda kv: kv[1])
    m, running, out = len(ordered), 0.0, {}
    for i, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        out[key] = round(running, 6)
    return out


def paired(base: str, other: str) -> dict[str, Any]:
    test = mcnemar_exact(base, other)
    return {"n": test.n, "only_base": test.only_baseline, "only_other": test.only_other,
            "p": round(test.p_value, 6)}  # fmt: skip


# -- calibration --------------------------------------------------------------------------------


def calibrate(urls: dict[str, str], rows: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per scorer call (greedy, 16 tokens) and per optimizer call (256 tokens)."""
    servers.control(urls["scorer"], "calibration", 0)

    def post(url: str, body: dict[str, Any]) -> float:
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        urllib.request.urlopen(request, timeout=300).read()
        return time.perf_counter() - started

    scorer = [
        post(urls["scorer"] + "/chat/completions",
             {"model": "m", "messages": [{"role": "user", "content": row["question"]}]})
        for row in rows[:8]
    ]  # fmt: skip
    meta = "Write an instruction that helps a model answer multiple-choice questions."
    optimizer = [
        post(urls["optimizer"] + "/chat/completions",
             {"model": "m", "messages": [{"role": "user", "content": meta}]})
        for _ in range(2)
    ]  # fmt: skip
    return {
        "scorer_s": round(sum(scorer[1:]) / max(1, len(scorer) - 1), 3),
        "optimizer_s": round(sum(optimizer) / len(optimizer), 3),
    }


# -- the benchmark ------------------------------------------------------------------------------


def run_row(
    job: dict[str, Any], found: dict[str, Any], records: list[dict[str, Any]], n_train: int
) -> dict[str, Any]:
    """A run's row of the results: what its tool found and what the proxy logged of it."""
    budget, instruction = job["budget"], found.get("instruction")
    row = {
        "task": job["task"], "tool": job["tool"], "seed": job["seed"], "budget": budget,
        "n_train": n_train, **found, "calls": count(records),
        "train_accuracy_proxy": None if instruction is None
        else train_accuracy(records, instruction),
        "uniform": uniform_best(records, budget, n_train),
    }  # fmt: skip
    used = row["calls"]["scorer"]["by_phase"].get("train", 0)
    used = used or int(found.get("own_scorer_calls") or 0)  # opro native: not at the proxy
    row["budget_used"] = round(used / budget, 3)
    row["off_budget"] = abs(used - budget) > 0.1 * budget
    return row


def _threads(work: Path) -> int | None:
    """The model server's threads in the invocation of ``work`` (None: not recorded)."""
    try:
        threads: int = json.loads((work / "model-server.json").read_text())["threads"]
    except (OSError, ValueError, KeyError):
        return None
    return threads


def rebuild(work: Path, out: Path, started_at: str) -> dict[str, Any]:
    """The results JSON of a benchmark invocation from its work folder alone, for one that
    ended before writing it (its orchestrator crashed or was killed): each run's job and
    what it found, the proxy's log (its calls, and the held-out calls of every instruction
    that was evaluated), the folds. Lost with the orchestrator: each run's process figures
    (CPU time, peak memory); its wall time is read from its files' times."""
    log = read_log(work / "calls.jsonl")
    runs, heldout = [], {}
    for folder in sorted((work / "runs").iterdir()):
        job = json.loads((folder / "job.json").read_text())
        found_file = folder / "found.json"
        found: dict[str, Any] = json.loads(found_file.read_text()) if found_file.exists() else {}
        end = found_file.stat().st_mtime if found_file.exists() else None
        if end is None:
            found["error"] = "no result: the run was stopped (timed out, or killed)"
        label = f"{job['task']}/{job['tool']}/s{job['seed']}"
        records = [r for r in log if r.get("run") == label]
        n_train = len(folds_module.read_rows(Path(job["train"])))
        found.update(
            process_s=None if end is None
            else round(end - (folder / "job.json").stat().st_mtime, 2),
            cpu_s=None, peak_rss_mb=None, rebuilt=True,
        )  # fmt: skip
        runs.append(run_row(job, found, records, n_train))
    for task in sorted({r["task"] for r in runs}):
        test = folds_module.read_rows(work / "folds" / task / "test.jsonl")
        position = {int(row["index"]): i for i, row in enumerate(test)}  # the log's: the row's
        marks: dict[str, dict[int, str]] = defaultdict(dict)
        texts: dict[str, dict[int, str]] = defaultdict(dict)
        for r in log:
            if r.get("run") == f"{task}/heldout" and r.get("role") == "scorer":
                ins, i = r.get("instruction", ""), position[int(r["index"])]
                marks[ins][i] = "1" if r.get("correct") else "0" if r.get("status") == 200 else "x"
                texts[ins][i] = r.get("completion") or ""
        scores = {}
        for ins, by_index in marks.items():
            if len(by_index) != len(test):
                continue  # not every question answered: not an evaluation
            line = "".join(by_index[i] for i in range(len(test)))
            shares = Counter(_option(texts[ins][i], test[i]["question"], test[i]["kind"])
                             for i in range(len(test)))  # fmt: skip
            scores[ins] = {
                "accuracy": round(line.count("1") / len(line), 4), "n": len(line), "marks": line,
                "answers": {k: round(v / len(test), 3) for k, v in sorted(shares.items())},
            }  # fmt: skip
        heldout[task] = {"instructions": scores, "n_test": len(test), "rebuilt": True}
    return {
        "kind": "full", "label": LABELS["full"], "started": started_at, "rebuilt_from": str(work),
        "wall_s": round(max(r["t"] for r in log) - min(r["t"] for r in log), 1) if log else 0,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "server_threads": _threads(work)},
        "versions": versions(), "calibration": {},
        "protocol": {"tasks": sorted(heldout), "seeds": sorted({r["seed"] for r in runs}),
                     "tools": [r["tool"] for r in runs], "budget": runs[0]["budget"],
                     "max_train": None, "max_test": None, "start": "",
                     "optimizer_temperature": "1.0"},
        "folds": {t: {"n_train": runs[0]["n_train"], "n_test": h["n_test"]}
                  for t, h in heldout.items()},
        "runs": runs, "heldout": heldout,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one task, one seed, 10 training and 50 test questions, a budget "
                        "of 40 scorer calls, opro and promptolution's OPRO: the harness, in "
                        "minutes (not the benchmark)")  # fmt: skip
    parser.add_argument("--kill-halfway", action="store_true",
                        help="instead of the benchmark: what killing each tool halfway "
                        "through its budget costs (first task and seed; with --quick, the "
                        "quick folds and budget)")  # fmt: skip
    parser.add_argument("--rebuild", type=Path, default=None, metavar="WORK",
                        help="write the results JSON (--out) of an invocation that ended "
                        "before writing it, from its work folder")  # fmt: skip
    parser.add_argument("--tasks", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--tools", nargs="+", choices=sorted(TOOLS), default=None)
    parser.add_argument("--budget", type=int, default=None, help="training scorer calls")
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--max-test", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2, help="the model server's threads")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per tool run")
    parser.add_argument("--optimizer-temperature", default="1.0", help="a number, or keep")
    parser.add_argument("--work", default=None, help="default runs/peers-TIME")
    parser.add_argument("--out", default=None, help="the results JSON")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("OPRO_DATA_DIR") or str(ROOT.parent / "shared" / "data"),
    )
    args = parser.parse_args()
    # Stopped (Ctrl-C, even from a background job; or kill): the tool, proxy and server go too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.rebuild is not None:
        if args.out is None:
            raise SystemExit("--rebuild needs --out FILE")
        first = min(p.stat().st_mtime for p in args.rebuild.glob("runs/*/job.json"))
        started_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(first))
        result = rebuild(args.rebuild, Path(args.out), started_at)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
        return 0
    quick = args.quick
    tasks = args.tasks or (["hyperbaton"] if quick else ["hyperbaton", "navigate"])
    seeds = args.seeds or ([0] if quick else [0, 1, 2])
    tools = args.tools or (
        ["opro", "promptolution-opro"] if quick and not args.kill_halfway else list(FULL_TOOLS)
    )
    budget = args.budget or (40 if quick else 450)
    max_train = args.max_train or (10 if quick else None)
    max_test = args.max_test or (50 if quick else None)
    timeout = args.timeout or (600.0 if quick else 1800.0)
    name = ("quick" if quick else "full") if not args.kill_halfway else "kill"
    work = Path(args.work or ROOT / "runs" / f"peers-{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out or HERE / "results" / f"{name}.json")
    started = time.time()
    all_folds = {
        task: folds_module.export(
            task, args.data_dir, work / "folds", max_train=max_train, max_test=max_test
        )
        for task in tasks
    }
    fold_args = [(p, f) for fo in all_folds.values() for p, f in (("train", fo.train),
                                                                    ("test", fo.test))]  # fmt: skip
    log_path = work / "calls.jsonl"
    runs: list[dict[str, Any]] = []
    heldout: dict[str, Any] = {}
    with (
        servers.model_server(work, args.threads) as upstream,
        servers.proxy(upstream, fold_args, log_path, args.optimizer_temperature) as urls,
    ):
        first = all_folds[tasks[0]].rows("train")
        calibration = calibrate(urls, first)
        print(json.dumps({"calibration": calibration}), flush=True)
        if args.kill_halfway:
            kills = []
            for tool in [t for t in tools if t != "opro-native"]:  # the proxy counts calls
                task_folds = all_folds[tasks[0]]
                job = {
                    "tool": tool, "task": tasks[0], "train": str(task_folds.train),
                    "budget": budget, "seed": seeds[0], "scorer_url": urls["scorer"],
                    "optimizer_url": urls["optimizer"], "work": "",
                }  # fmt: skip
                kills.append(kill_halfway(job, work / "kill", timeout, log_path, urls))
                print(json.dumps(kills[-1]), flush=True)
        for task in [] if args.kill_halfway else tasks:  # the kill: no held-out evaluation
            task_folds = all_folds[task]
            n_train = len(task_folds.rows("train"))
            task_seeds = seeds if task == tasks[0] else seeds[:1]  # repeats: the primary task
            for repeat, seed in enumerate(task_seeds):
                order = tools if repeat % 2 == 0 else list(reversed(tools))  # no drift favoured
                for tool in order:
                    label = f"{task}/{tool}/s{seed}"
                    servers.control(urls["scorer"], label, seed)
                    job = {
                        "tool": tool, "task": task, "train": str(task_folds.train),
                        "budget": budget, "seed": seed, "scorer_url": urls["scorer"],
                        "optimizer_url": urls["optimizer"],
                        "work": str(work / "runs" / label.replace("/", "-")),
                    }  # fmt: skip
                    found = run_tool(job, Path(job["work"]), timeout)
                    records = [r for r in read_log(log_path) if r.get("run") == label]
                    row = run_row(job, found, records, n_train)
                    runs.append(row)
                    print(json.dumps({k: row.get(k) for k in (
                        "task", "tool", "seed", "instruction", "error", "process_s",
                        "budget_used", "train_accuracy_proxy")}), flush=True)  # fmt: skip
            mine = [r for r in runs if r["task"] == task]
            found_set = [r["instruction"] for r in mine if isinstance(r.get("instruction"), str)]
            found_set += [r["uniform"]["instruction"] for r in mine
                          if isinstance(r["uniform"]["instruction"], str)]  # fmt: skip
            unique = list(dict.fromkeys(["", *found_set]))
            servers.control(urls["scorer"], f"{task}/heldout", 0)
            t0 = time.perf_counter()
            scores = evaluate(task_folds.test, unique, urls["scorer"], work)
            spent = count([r for r in read_log(log_path) if r.get("run") == f"{task}/heldout"])
            heldout[task] = {
                "instructions": scores,
                "elapsed_s": round(time.perf_counter() - t0, 1),
                "n_test": len(task_folds.rows("test")),
                "calls": spent["scorer"]["calls"],
            }
            start = scores[""]["marks"]
            versus_start = {}
            for r in mine:
                ins = r.get("instruction")
                if not isinstance(ins, str) or ins not in scores:
                    continue
                r["test_accuracy"] = scores[ins]["accuracy"]
                r["test_answers"] = scores[ins]["answers"]
                r["vs_start"] = paired(start, scores[ins]["marks"])
                versus_start[f"{r['tool']}/s{r['seed']}"] = r["vs_start"]["p"]
                opro_row = next((o for o in mine if o["tool"] == "opro" and o["seed"] == r["seed"]
                                 and isinstance(o.get("instruction"), str)), None)  # fmt: skip
                if opro_row is not None and r["tool"] != "opro":
                    r["vs_opro"] = paired(scores[opro_row["instruction"]]["marks"],
                                          scores[ins]["marks"])  # fmt: skip
                u = r["uniform"]["instruction"]
                if isinstance(u, str) and u in scores:
                    r["uniform"]["test_accuracy"] = scores[u]["accuracy"]
            adjusted = holm(versus_start)
            for r in mine:
                key = f"{r['tool']}/s{r['seed']}"
                if key in adjusted:
                    r["vs_start"]["p_holm"] = adjusted[key]
    result = {
        "kind": name,
        "label": LABELS[name],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": round(time.time() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "server_threads": args.threads,
        },
        "versions": versions(),
        "protocol": {
            "model": "gemma3-270m (base, Q4_K_M, embedded weights), llama_cpp.server, n_ctx 2048",
            "tasks": tasks,
            "seeds": seeds,
            "tools": tools,
            "budget": budget,
            "max_train": max_train,
            "max_test": max_test,
            "start": "",
            "scorer": "opro's A_begin prompt, greedy, 16 tokens, stop '\\nQ:' (proxy-rendered)",
            "metric": "opro.score_answer, strict",
            "optimizer_max_tokens": 256,
            "optimizer_temperature": args.optimizer_temperature,
            "pinned": {"top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1},
        },
        "calibration": calibration,
        "folds": {
            t: {"n_train": len(f.rows("train")), "n_test": len(f.rows("test"))}
            for t, f in all_folds.items()
        },
        "runs": runs,
        "heldout": heldout,
        **({"kill_halfway": kills} if args.kill_halfway else {}),
        "work": str(work.relative_to(ROOT) if work.is_relative_to(ROOT) else work),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0 if all("error" not in r for r in runs) else TOOL_ERRORS


if __name__ == "__main__":
    sys.exit(main())
