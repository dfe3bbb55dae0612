"""Soak: kill `opro` at random moments, resume, and check that nothing is lost or duplicated.

    .venv/bin/python benchmarks/soak.py [--kills 100] [--seed N] [--latency 0.03] [--keep DIR]

Three targets share the kills (round robin, one episode after another), each against an
uninterrupted reference run made first with the same settings:

- ``optimize``: `opro optimize` on bbh:boolean_expressions (a fake optimizer, the scorer the
  stub OpenAI server below), killed, then `opro resume`d (each resume killed again with
  some probability) until it finishes: its steps.jsonl (step, outputs, candidates) and
  summary must equal the reference's, steps 0..N each once.
- ``evaluate``: `opro evaluate` of three instructions with the call cache, killed, then run
  again until it ends: its accuracies must equal the reference's.
- ``sweep``: `opro sweep --parallel 2` of four linreg runs (a fake optimizer), killed, then
  run again until it ends: every run dir's steps must equal the reference's.

A kill is SIGKILL (of the process only: a sweep's pool must die by itself), SIGTERM (of the
process) or SIGINT (of its process group, as Ctrl-C in a terminal), at a moment drawn from
the last 70 % of the reference's duration (the first 30 % is mostly Python starting). After
each kill the process group must empty within 15 s (no survivor). The stub server tags each
answer with a hash of its request (``[ref …]``); after every attempt the cache is read, and
a request the stub receives for an answer already cached before that attempt began counts
as a duplicate (an answer paid for twice); a finished run's cache must hold the reference's
calls, no more, no fewer. Each kill, resume or check that fails is a mismatch, named in the
output; "mid-run" counts the kills that landed after the attempt had kept something (a cache
row or a step).

Prints a table (target, episodes, kills, mid-run, resumes, mismatches) and exits 1 on any mismatch.
The seed replays the same kill plan (the moments land where the machine's speed puts them).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opro.llm.openai import RequestBody
from opro.testing.stub_server import StubServer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TARGETS = ("optimize", "evaluate", "sweep")
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
KILL_AGAIN = 0.4
"""The chance that a resume (or rerun) is killed too."""


def ref_of(body: RequestBody) -> str:
    return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def scorer_reply(body: RequestBody) -> str:
    """A deterministic boolean answer, tagged with the request's hash."""
    ref = ref_of(body)
    return f"{'True' if int(ref, 16) % 5 < 3 else 'False'}. [ref {ref}]"


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the call cache; a cache killed before its table was made has none."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        try:
            return list(db.execute(sql))
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return [(0,)] if "COUNT" in sql else []


def cached_refs(cache_dir: Path) -> set[str]:
    """The request hashes whose answers the call cache holds."""
    path = cache_dir / "calls.sqlite"
    if not path.exists():
        return set()
    values = [row[0] for row in query(path, "SELECT value FROM calls")]
    refs = set()
    for value in values:
        text = json.loads(value).get("text", "")
        if "[ref " in text:
            refs.add(text.rsplit("[ref ", 1)[1].split("]", 1)[0])
    return refs


def cache_rows(cache_dir: Path) -> int:
    path = cache_dir / "calls.sqlite"
    if not path.exists():
        return 0
    return int(query(path, "SELECT COUNT(*) FROM calls")[0][0])


def progress(out: Path, cache: Path) -> int:
    """Cache rows plus step lines: what a run has kept so far."""
    lines = sum(s.read_bytes().count(b"\n") for s in out.glob("**/steps.jsonl"))
    return cache_rows(cache) + lines


def session_pids(sid: int) -> list[int]:
    """The live (not zombie) processes of session ``sid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


@dataclass
class Tally:
    episodes: int = 0
    kills: int = 0
    mid_run: int = 0
    """Kills that landed after the attempt had kept something (a cache row, a step)."""
    resumes: int = 0
    by_signal: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)


@dataclass
class Attempt:
    killed: str | None
    returncode: int
    stdout: str
    stderr: str
    duration_s: float


class Soak:
    def __init__(self, work: Path, latency_s: float, seed: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.server = StubServer(latency_s=latency_s, reply=scorer_reply).start()
        self.env = {k: v for k, v in os.environ.items() if not k.endswith("API_KEY")}
        self.env |= {
            "OPENAI_API_KEY": "sk-soak",
            "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT))),
        }
        self.cli = [sys.executable, "-m", "opro.cli", "-q"]
        self.reference: dict[str, Any] = {}
        self.ref_seconds: dict[str, float] = {}
        self.ref_cache: dict[str, tuple[int, set[str]]] = {}
        """Per target: the reference's cache rows and the stub answers among them."""
        self.tally = {t: Tally() for t in TARGETS}
        self.sweep_file = work / "sweep.toml"
        self.sweep_file.write_text(
            'command = "linreg"\nseeds = [0, 1]\nmode = "grid"\n\n[base]\n'
            'optimizer = "fake:tests.doubles:linreg_walker"\nreps = 1\nsteps = 6\n'
            "samples-per-step = 4\n\n"
            '[axes]\norder = ["ascending", "descending"]\n'
        )

    # -- the targets' commands and results ---------------------------------------------

    def start_command(self, target: str, out: Path) -> list[str]:
        booleans = ["--dataset", "bbh:boolean_expressions", "--data-dir", str(DATA),
                    "--scorer", "openai:stub", "--scorer-base-url", self.server.url]  # fmt: skip
        if target == "optimize":
            return [*self.cli, "optimize", *booleans, "--scorer-concurrency", "4",
                    "--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "3",
                    "--samples-per-step", "3", "--max-train", "8", "--max-test", "6",
                    "--test-top", "2", "--seed", "7", "--no-report", "--out", str(out)]  # fmt: skip
        if target == "evaluate":
            return [*self.cli, "evaluate", *booleans, "--split", "all", "--max-examples", "30",
                    "--concurrency", "4", "--instruction", "", "--instruction",
                    "Let's think step by step.", "--instruction",
                    "Evaluate each operator in turn.", "--json",
                    "--scorer-max-retries", "0"]  # fmt: skip
        return [*self.cli, "sweep", str(self.sweep_file), "--out", str(out), "--parallel", "2"]

    def resume_command(self, target: str, out: Path) -> list[str]:
        if target == "optimize" and (out / "config.json").exists():
            return [*self.cli, "resume", str(out), "--trust-code"]
        return self.start_command(target, out)  # evaluate, sweep: the same command again

    def result(self, target: str, out: Path, attempt: Attempt) -> Any:
        if target == "optimize":
            steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
            summary = json.loads((out / "summary.json").read_text())
            keep = ("status", "steps_completed", "best_instruction", "best_train_score",
                    "best_test_score")  # fmt: skip
            rows = [{k: v for k, v in r.items() if k != "elapsed_s"}
                    for r in summary["test_evaluation"]]  # fmt: skip
            return {
                "steps": [{k: s[k] for k in ("step", "outputs", "candidates")} for s in steps],
                "summary": {k: summary[k] for k in keep} | {"test_evaluation": rows},
            }
        if target == "evaluate":
            report = json.loads(attempt.stdout)
            return [(i["instruction"], i["accuracy"], i.get("n")) for i in report["instructions"]]
        runs = {}
        for run in sorted(out.glob("**/steps.jsonl")):
            records = [json.loads(line) for line in run.read_text().splitlines()]
            status = json.loads((run.parent / "summary.json").read_text())["status"]
            runs[str(run.parent.relative_to(out))] = {
                "status": status,
                "steps": [{k: s[k] for k in ("step", "outputs", "candidates")} for s in records],
            }
        return runs

    def finished(self, target: str, out: Path, attempt: Attempt) -> bool:
        if attempt.killed is not None or attempt.returncode != 0:
            return False
        if target == "optimize":
            summary = out / "summary.json"
            return summary.exists() and json.loads(summary.read_text())["status"] == "finished"
        return True

    # -- running -------------------------------------------------------------------------

    def attempt(self, command: list[str], cache: Path, kill_at: float | None) -> Attempt:
        env = self.env | {"OPRO_CACHE_DIR": str(cache)}
        began = time.monotonic()
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, cwd=self.work,
        )  # fmt: skip
        killed = None
        try:
            if kill_at is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(kill_at)
                if proc.poll() is None:
                    sig = self.rng.choice(SIGNALS)
                    if sig == signal.SIGINT:
                        os.killpg(proc.pid, sig)
                    else:
                        proc.send_signal(sig)
                    killed = sig.name
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        duration = time.monotonic() - began
        deadline = time.monotonic() + 15
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = session_pids(proc.pid)
        if survivors:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stderr += f"\nSOAK: {len(survivors)} processes survived {killed} by 15 s"
        return Attempt(killed, proc.returncode, stdout, stderr, duration)

    def make_references(self) -> None:
        for target in TARGETS:
            out, cache = self.work / f"ref-{target}", self.work / f"ref-{target}-cache"
            done = self.attempt(self.start_command(target, out), cache, None)
            if not self.finished(target, out, done):
                raise SystemExit(f"the {target} reference run failed: {done.stderr[-2000:]}")
            self.reference[target] = self.result(target, out, done)
            self.ref_seconds[target] = done.duration_s
            self.ref_cache[target] = (cache_rows(cache), cached_refs(cache))

    def episode(self, target: str, number: int, kills_left: int) -> int:
        """One run killed and resumed until it finishes; the kills it took."""
        tally = self.tally[target]
        tally.episodes += 1
        out, cache = self.work / f"{target}-{number}", self.work / f"{target}-{number}-cache"
        name = f"{target} #{number}"
        command = self.start_command(target, out)
        kills = 0
        for attempt_no in range(60):
            kill = kills < kills_left and (attempt_no == 0 or self.rng.random() < KILL_AGAIN)
            span = self.ref_seconds[target]
            kill_at = self.rng.uniform(0.3 * span, span) if kill else None
            before = cached_refs(cache)
            kept = progress(out, cache)
            sent_from = len(self.server.requests)
            done = self.attempt(command, cache, kill_at)
            sent = [ref_of(body) for body in self.server.requests[sent_from:]]
            again = sorted({r for r in sent if r in before})
            if again:
                tally.mismatches.append(
                    f"{name} attempt {attempt_no}: {len(again)} requests answered and cached "
                    f"before it were sent again ({', '.join(again[:3])})"
                )
            if target != "sweep":  # one process: each distinct request once per attempt
                twice = sorted(r for r, n in Counter(sent).items() if n > 1)
                if twice:
                    tally.mismatches.append(
                        f"{name} attempt {attempt_no}: {len(twice)} requests sent twice"
                    )
            if "SOAK:" in done.stderr:
                tally.mismatches.append(f"{name}: {done.stderr.rsplit('SOAK: ', 1)[1]}")
            if done.killed is not None:
                kills += 1
                tally.kills += 1
                tally.by_signal[done.killed] += 1
                tally.mid_run += progress(out, cache) > kept
            elif done.returncode != 0 or not self.finished(target, out, done):
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                tally.mismatches.append(f"{name} attempt {attempt_no}: exit "
                                        f"{done.returncode}, not killed: {last}")  # fmt: skip
                return kills
            if self.finished(target, out, done):
                try:
                    got = self.result(target, out, done)
                except (OSError, ValueError, KeyError) as exc:
                    tally.mismatches.append(f"{name}: its result cannot be read ({exc!r})")
                    return kills
                if got != self.reference[target]:
                    tally.mismatches.append(f"{name}: differs from the reference: "
                                            f"{describe(got, self.reference[target])}")  # fmt: skip
                rows, refs = self.ref_cache[target]
                if (cache_rows(cache), cached_refs(cache)) != (rows, refs):
                    tally.mismatches.append(
                        f"{name}: its cache holds {cache_rows(cache)} calls "
                        f"({len(cached_refs(cache))} stub answers), the reference's {rows} "
                        f"({len(refs)}): {len(refs - cached_refs(cache))} answers lost, "
                        f"{len(cached_refs(cache) - refs)} not the reference's"
                    )
                return kills
            tally.resumes += 1
            command = self.resume_command(target, out)
        tally.mismatches.append(f"{name}: not finished after 60 attempts")
        return kills


def describe(got: Any, want: Any) -> str:
    """Where two results first differ, briefly."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            if got.get(key) != want.get(key):
                return f"[{key}] " + describe(got.get(key), want.get(key))
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{len(got)} items, the reference {len(want)}"
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            if a != b:
                return f"[{i}] " + describe(a, b)
    return f"{str(got)[:200]} != {str(want)[:200]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.03, help="the stub's, seconds")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args(argv)
    seed = random.randrange(10**6) if args.seed is None else args.seed
    print(f"soak: {args.kills} kills, seed {seed} (replay: --seed {seed})", flush=True)
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opro-soak-")))
        else:
            work = args.keep
            work.mkdir(parents=True, exist_ok=True)
        soak = Soak(work, args.latency, seed)
        stack.callback(soak.server.stop)
        soak.make_references()
        refs = ", ".join(f"{t} {s:.1f} s" for t, s in soak.ref_seconds.items())
        print(
            f"references: {refs}; evaluate accuracies "
            f"{[row[1] for row in soak.reference['evaluate']]}",
            flush=True,
        )
        kills, number = 0, 0
        while kills < args.kills and number < 2 * args.kills + 10:
            target = TARGETS[number % len(TARGETS)]
            try:
                soak.episode(target, number, args.kills - kills)
            except Exception as exc:  # the soak's own failure: said, counted, and on
                soak.tally[target].mismatches.append(f"{target} #{number}: soak error {exc!r}")
            kills = sum(t.kills for t in soak.tally.values())
            number += 1
    elapsed = time.monotonic() - began
    print(f"\n{'target':<10} {'episodes':>8} {'kills':>6} {'mid-run':>8} {'resumes':>8} "
          f"{'mismatches':>10}  signals")  # fmt: skip
    total = Tally()
    for target, tally in soak.tally.items():
        signals = ", ".join(f"{s} {n}" for s, n in sorted(tally.by_signal.items()))
        print(f"{target:<10} {tally.episodes:>8} {tally.kills:>6} {tally.mid_run:>8} "
              f"{tally.resumes:>8} "
              f"{len(tally.mismatches):>10}  {signals}")  # fmt: skip
        total.episodes += tally.episodes
        total.kills += tally.kills
        total.mid_run += tally.mid_run
        total.resumes += tally.resumes
        total.mismatches += tally.mismatches
    print(f"{'total':<10} {total.episodes:>8} {total.kills:>6} {total.mid_run:>8} "
          f"{total.resumes:>8} "
          f"{len(total.mismatches):>10}")  # fmt: skip
    print(f"\nseed {seed}, {elapsed:.0f} s")
    for line in total.mismatches:
        print(f"MISMATCH {line}")
    return 1 if total.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
