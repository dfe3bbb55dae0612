"""Build docs/results/peers.md from the peers benchmark's results JSON (run.py).

    python benchmarks/peers/page.py [--results benchmarks/peers/results/full.json ...]
        [--out docs/results/peers.md]

Default: every JSON in benchmarks/peers/results/: the benchmark's files (``full*.json``, one
per invocation) merged into one table, the kill-halfway measurement (``kill.json``), and
``results/findings.md`` (what the numbers mean, written by a person) above them; a quick
check of the harness shows only while there is no benchmark, labelled as such.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from run import holm, paired  # the tests run.py runs, the same here

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

PROTOCOL = """\
- **One model, one server.** gemma3-270m (base, Q4_K_M: the weights opro embeds), served by
  `python -m llama_cpp.server` on 127.0.0.1 (n_ctx 2048), is every tool's scorer *and*
  optimizer. Every call goes through one counting proxy (benchmarks/peers/proxy.py), one
  port per role.
- **The same scorer prompt for all.** Each tool gives the scorer only an instruction and a
  question; the proxy renders every scorer request into opro's own base-model prompt
  (`Q: {question}\\n\\nA: {instruction}`, the instruction at A_begin, stop `\\nQ:`), greedy,
  16 tokens, the sampler's other parameters pinned. That rendering is checked
  byte-identical to what opro sends itself (tests/test_peers_harness.py); a scorer request
  that is not one question of the exported folds under one instruction is refused, never
  scored on another prompt.
- **The same answers read the same way.** Every tool's metric is `opro.score_answer`
  (strict) on the scorer's raw text.
- **The same work.** opro's folds of the task (seed 0) are exported once to JSON lines; every
  tool gets the same training rows in the same order and the start instruction "".
- **An equal budget** of training-phase scorer calls, counted at the proxy (not by the
  tools), translated into each tool's own knobs (its row's settings); a run more than 10 %
  off its budget is flagged. Two budgets: 450 (one OPRO step of 8 proposals on 50 training
  questions) for every tool and seed, and 850 (two steps) for the tools whose search can go
  on, on one seed (`make bench-peers` runs both). Optimizer calls are reported, not
  equalised; the proxy caps them at 256 tokens, splits `n > 1` into n calls (llama.cpp's
  server ignores `n`) and, by default, sets the temperature to 1.0 for every tool (the
  tool's own request is logged).
- **One held-out evaluation.** The start and every returned instruction are scored on the
  held-out fold by one `opro evaluate` through the same proxy; exact McNemar tests against
  the start (Holm-corrected across the tools of a task) and against opro's instruction of
  the same seed.
- **One tool at a time**, each run in a process of its own (its wall time, CPU time and peak
  memory are that process's: the model server and the proxy are apart), the order of the
  tools reversed on every other seed.
"""

LIMITS = """\
- **A 270M model is a weak optimizer and a weak scorer.** Its proposals are often
  malformed, and its held-out accuracy on these tasks sits near or below chance; what this
  page can show is how each tool *behaves* with a small model (robustness, budget
  discipline, cost), not how good its algorithm is with a capable one.
- **Single seeds are anecdotes.** A difference that is not significant after Holm's
  correction is noise at these fold sizes.
- **The tools are run as their docs set them up, with two changes each, the same for all:**
  the scorer request's form (the instruction as the system message, the question as the
  user turn: the proxy turns it into opro's prompt) and the metric (`opro.score_answer`).
  Each adapter's docstring (benchmarks/peers/adapters/) says what else it sets and why.
- **Wall times are on a shared 2-core machine**: compare them within one results file.
"""


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def pval(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


ORDER = ("opro", "opro-constrained", "opro-chat", "opro-redraw", "opro-pool", "opro-native")
"""opro's rows first, in this order; then the peers, by name."""


def ordered(tools: Any) -> list[str]:
    return sorted(dict.fromkeys(tools), key=lambda t: (ORDER.index(t) if t in ORDER else 99, t))


def pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f} %"


def num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{float(value):,.{digits}f}"


def clip(text: Any, width: int = 60) -> str:
    if not isinstance(text, str):
        return "—"
    flat = " ".join(text.split()) or '""'
    flat = flat if len(flat) <= width else flat[: width - 1] + "…"
    return flat.replace("|", "\\|")


def table(data: dict[str, Any]) -> list[str]:
    lines = [
        "| task | tool | seed | held-out | start | p vs start (Holm) | p vs opro | train "
        "(proxy) | scorer calls (budget) | optimizer calls | optimizer tokens | parse "
        "failures | wall s | server threads | optimize s | CPU s | peak MB | instruction |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rank = {t: i for i, t in enumerate(ordered(r["tool"] for r in data["runs"]))}
    order = sorted(data["runs"], key=lambda r: (r["task"], r["budget"], r["seed"], rank[r["tool"]]))
    for r in order:
        start = data["heldout"].get(r["task"], {}).get("instructions", {}).get("", {})
        calls = r.get("calls", {})
        scorer, optimizer = calls.get("scorer", {}), calls.get("optimizer", {})
        vs_start, vs_opro = r.get("vs_start") or {}, r.get("vs_opro") or {}
        used: Any = (scorer.get("by_phase") or {}).get("train", 0)
        flag = " ⚠" if r.get("off_budget") else ""
        tokens: Any = (optimizer.get("prompt_tokens") or 0) + (
            optimizer.get("completion_tokens") or 0
        )
        meta: Any = optimizer.get("calls", 0)
        if r.get("own_scorer_calls") is not None:  # opro native: in its own process
            used, meta, tokens = f"{r['own_scorer_calls']}*", "—", None
        found = f"error: {clip(r['error'], 50)}" if r.get("error") else clip(r.get("instruction"))
        p_start = (
            f"{pval(vs_start['p'])} ({pval(vs_start.get('p_holm', vs_start['p']))})"
            if vs_start
            else "—"
        )
        p_opro = pval(vs_opro["p"]) if vs_opro else "—"
        lines.append(
            f"| {r['task']} | {r['tool']}{' †' if r.get('rebuilt') else ''} | {r['seed']} | "
            f"{pct(r.get('test_accuracy'))} | "
            f"{pct(start.get('accuracy'))} | {p_start} | "
            f"{p_opro} | "
            f"{pct(r.get('train_accuracy_proxy'))} | {used} ({r['budget']}){flag} | "
            f"{meta} | {num(tokens)} | {r.get('parse_failures', '—')} | "
            f"{num(r.get('process_s'), 1)} | {threads(r)} | {num(r.get('optimize_s'), 1)} | "
            f"{num(r.get('cpu_s'), 1)} | {num(r.get('peak_rss_mb'))} | {found} |"
        )
    return lines


def server_threads(data: dict[str, Any]) -> str:
    """``2 thread(s)``, or per invocation where they differ (``1 thread in 9 invocations,
    2 in 3: each run's is in the table``): a run's wall time depends on it."""
    counts = Counter(data.get("threads_by_file", {}).values()) or Counter(
        [data["machine"]["server_threads"]]
    )
    if len(counts) == 1:
        return f"{next(iter(counts))} thread(s)"
    each = ", ".join(f"{t} in {n}" for t, n in sorted(counts.items(), key=lambda x: str(x[0])))
    return f"threads by invocation, {each} (each run's in the table: its wall time depends on it)"


def threads(run: dict[str, Any]) -> str:
    """The model server's threads in the run's invocation (opro-native: its own model, on
    every core, in its process)."""
    if run.get("own_scorer_calls") is not None:
        return "— (own: all)"
    return "?" if run.get("threads") is None else str(run["threads"])


def section(data: dict[str, Any]) -> list[str]:
    quick = data.get("kind") == "quick"
    protocol = data["protocol"]
    title = "Quick check of the harness (not the benchmark)" if quick else "The benchmark"
    out = [f"## {title}", ""]
    if quick:
        out += [
            "> **A check that the harness runs end to end, not a result.** "
            f"{protocol['max_train']} training and {protocol['max_test']} held-out questions, "
            f"a budget of {protocol['budget']} scorer calls, one seed: no difference here "
            "means anything about the tools.",
            "",
        ]
    folds = ", ".join(
        f"bbh:{t} ({f['n_train']} train / {f['n_test']} test)" for t, f in data["folds"].items()
    )
    cal = data.get("calibration", {})
    files = data.get("files", [data["started"]])
    when = (
        data["started"]
        if len(files) == 1
        else (
            f"in {len(files)} invocations (a seed or a set of tools each), "
            f"{files[0]} to {files[-1]},"
        )
    )
    out += [
        f"Run {when} on {data['machine']['cpus']} CPUs "
        f"(`{data['machine']['platform']}`), model server on "
        f"{server_threads(data)}; {folds}; seeds {protocol['seeds']}; "
        f"budget {' and '.join(map(str, budgets(protocol)))} training scorer calls; "
        f"optimizer temperature {protocol['optimizer_temperature']}. Calibration through the "
        f"proxy (the last invocation's): {num(cal.get('scorer_s'), 2)} s a scorer call, "
        f"{num(cal.get('optimizer_s'), 1)} s an optimizer call. The invocations took "
        f"{num(data['wall_s'] / 60, 1)} min together. Runs marked † were read back from their "
        "work folder (`run.py --rebuild`: their orchestrator had stopped before writing its "
        "results; their CPU time and peak memory were lost with it).",
        "",
        *table(data),
        "",
        "Held-out: accuracy of the returned instruction on the held-out fold; start: the "
        "empty instruction's. p: exact McNemar (two-sided). Scorer calls: training phase, at "
        "the proxy (⚠: more than 10 % off the budget; *: opro native, counted from its run "
        "directory: its calls never reach the proxy, and it is outside the fairness "
        "comparison). Wall s: the tool's whole process; "
        "optimize s: its optimisation call alone. Parse failures: optimizer replies the tool "
        "could not read as an instruction (promptolution: replies without `<prompt>` tags, "
        "which it uses whole; opro: replies without an instruction, which it drops).",
        "",
    ]
    for task, held in data["heldout"].items():
        answers = [
            f"{clip(ins, 40)}: {', '.join(f'{k} {v:.0%}' for k, v in entry['answers'].items())}"
            for ins, entry in held["instructions"].items()
        ]
        out += [f"Answers on bbh:{task}'s held-out fold, by option:", ""]
        out += [f"- {a}" for a in answers]
        out += [""]
    notes = [(r, n) for r in data["runs"] for n in r.get("notes", [])]
    if notes:
        out += ["Notes from the runs:", ""]
        out += [f"- {r['tool']} (bbh:{r['task']}, seed {r['seed']}): {n}" for r, n in notes]
        out += [""]
    versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items() if v)
    out += [f"Versions: {versions}.", ""]
    return out


# -- the summary, the figure, the kill --------------------------------------------------------


def summary(data: dict[str, Any], figure: Path | None) -> list[str]:
    """A table per task and budget, then the figure."""
    out = ["## Summary", ""]
    for task in data["marks"]:
        for budget in sorted({r["budget"] for r in data["runs"] if r["task"] == task}):
            out += summary_table(data, task, budget)
    if figure is not None and draw(data, figure):
        out += [f"![held-out accuracy against training scorer calls]({figure.name})", ""]
    return out


def summary_table(data: dict[str, Any], task: str, budget: int) -> list[str]:
    """One row per tool over its seeds: held-out accuracy, a paired test against opro with
    every seed's questions pooled, the budget spent, the optimizer's cost, failures, time."""
    mine = [r for r in data["runs"] if r["task"] == task and r["budget"] == budget]
    seeds = sorted({r["seed"] for r in mine})
    out = [
        f"bbh:{task}, a budget of {budget} training scorer calls, seed"
        f"{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; the empty start "
        f"instruction scores {pct(rate(data['marks'][task]['']))} held out.",
        "",
        "| tool | runs | held-out, mean (range) | vs opro, seeds pooled: opro only / tool "
        "only, p | training scorer calls, mean (budget) | under budget | optimizer "
        "calls, mean | parse failures | errors | wall s, mean |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in ordered(r["tool"] for r in mine):
        rows = [r for r in mine if r["tool"] == tool]
        accs = [r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None]
        held = f"{pct(sum(accs) / len(accs))} ({pct(min(accs))}–{pct(max(accs))})" if accs else "—"
        used = [train_calls(r) for r in rows]
        under = sum(u < 0.9 * budget for u in used)
        meta = [r.get("calls", {}).get("optimizer", {}).get("calls") for r in rows]
        meta_known = [m for m in meta if m is not None and rows[0].get("own_scorer_calls") is None]
        out.append(
            f"| {tool} | {len(rows)} | {held} | {pooled_vs_opro(data, task, tool, budget)} | "
            f"{num(sum(used) / len(used))} ({budget}) | {under} | "
            f"{num(sum(meta_known) / len(meta_known), 1) if meta_known else '—'} | "
            f"{sum(int(r.get('parse_failures') or 0) for r in rows)} | "
            f"{sum(1 for r in rows if r.get('error'))} | "
            f"{num(mean([r['process_s'] for r in rows if r.get('process_s') is not None]))} |"
        )
    return [
        *out,
        "",
        "Pooled: every seed's held-out questions paired (the tool's answer against "
        "opro's of the same seed and budget, same question), one exact McNemar test. Under "
        "budget: runs that spent less than 90 % of their training scorer calls. opro native's "
        "calls are counted from its run directory (it never calls the proxy).",
        "",
    ]


def train_calls(r: dict[str, Any]) -> int:
    if r.get("own_scorer_calls") is not None:
        return int(r["own_scorer_calls"])
    return int(((r.get("calls") or {}).get("scorer") or {}).get("by_phase", {}).get("train", 0))


def pooled_vs_opro(data: dict[str, Any], task: str, tool: str, budget: int) -> str:
    if tool == "opro":
        return "—"
    marks = data["marks"][task]
    found = {  # (tool, seed) -> instruction, this task and budget
        (r["tool"], r["seed"]): r.get("instruction")
        for r in data["runs"]
        if (r["task"], r["budget"]) == (task, budget)
    }
    base, other = "", ""
    for (who, seed), mine in found.items():
        theirs = found.get(("opro", seed))
        if who == tool and mine in marks and theirs in marks:  # each a scored instruction
            base, other = base + marks[theirs], other + marks[mine]
    if not base:
        return "—"
    test = paired(base, other)
    shown = pval(test["p"])
    shown = shown if "<" in shown else "= " + shown
    return f"{test['only_base']} / {test['only_other']}, p {shown}"


def draw(data: dict[str, Any], path: Path) -> bool:
    """Held-out accuracy against training scorer calls, a point a run, a marker a tool."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.hashsalt"] = "peers"  # the same data, the same file
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(data["marks"]), figsize=(7 * len(data["marks"]), 4.5),
                             squeeze=False)  # fmt: skip
    markers = "osD^v<>pXh*"
    for ax, task in zip(axes[0], data["marks"], strict=True):
        mine = [r for r in data["runs"] if r["task"] == task and r.get("test_accuracy") is not None]
        for k, tool in enumerate(dict.fromkeys(r["tool"] for r in mine)):
            rows = [r for r in mine if r["tool"] == tool]
            dots = ax.scatter(
                [train_calls(r) for r in rows], [100 * r["test_accuracy"] for r in rows],
                marker=markers[k % len(markers)], label=tool, s=50, alpha=0.8,
            )  # fmt: skip
            spent = sorted({r["budget"] for r in rows})
            if len(spent) > 1:  # the tool's mean at each budget, joined: what more calls bought
                at = [[r for r in rows if r["budget"] == b] for b in spent]
                ax.plot([mean([train_calls(r) for r in a]) for a in at],
                        [100 * (mean([r["test_accuracy"] for r in a]) or 0) for a in at],
                        color=dots.get_facecolor()[0], alpha=0.5, linewidth=1)  # fmt: skip
        ax.axhline(100 * (rate(data["marks"][task][""]) or 0), color="grey", linestyle=":",
                   label='start ("")')  # fmt: skip
        ax.set_ylim(0, 100)  # the whole scale: small differences look as small as they are
        ax.set_title(f"bbh:{task} (points of equal value overlap)")
        ax.set_xlabel("training scorer calls (at the proxy)")
        ax.set_ylabel("held-out accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return True


def kill_section(data: dict[str, Any]) -> list[str]:
    protocol = data["protocol"]
    task = data["kill_halfway"][0]["task"]
    out = [
        "## A kill halfway through",
        "",
        f"Each tool ran its job three times ({data['started']}; bbh:{task}, "
        f"{data['folds'][task]['n_train']} training questions, a budget of "
        f"{protocol['budget']} scorer calls, seed {protocol['seeds'][0]}), as a user runs it "
        "(its own caches and saved state on): once uninterrupted; once killed (SIGKILL, as "
        "a crash or an out-of-memory kill) when it had made half its training scorer calls; "
        "and once more to finish the killed run, as its docs say to continue one. Calls "
        "spent again = killed + restarted − uninterrupted (at the proxy); the calls the "
        "tool had sent but not had answered when it was killed (in flight: the server "
        "finishes them for no one) are counted apart.",
        "",
        "| tool | how it continues | uninterrupted | killed at | in flight at the kill | "
        "after the restart | spent again | same instruction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in data["kill_halfway"]:
        errors = "; ".join(f"{p}: {clip(e, 40)}" for p, e in k["errors"].items())
        out.append(
            f"| {k['tool']} | {k['restart']} | {k['uninterrupted_calls']} | {k['killed_at']}"
            f"{'' if k['killed'] else ' (finished first)'} | {k.get('in_flight_at_kill', '—')} | "
            f"{k['restarted_calls']} | "
            f"**{k['spent_again']}** | {'yes' if k['same_instruction'] else 'no'}"
            f"{f' ({errors})' if errors else ''} |"
        )
    return [*out, ""]


# -- the benchmark's files, merged ----------------------------------------------------------


def combine(datas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The benchmark's results files (kind "full": one per invocation, e.g. one per seed) as
    one: every run, a later file's run replacing an earlier one of the same task, tool, seed
    and budget (a rerun), the held-out marks of every instruction from every file (the same
    exported fold), and every paired test computed again across the merged runs."""
    full = sorted((d for d in datas if d.get("kind") == "full"), key=lambda d: d["started"])
    if not full:
        return None
    runs: dict[tuple[str, str, int, int], dict[str, Any]] = {}
    marks: dict[str, dict[str, str]] = {}
    heldout: dict[str, dict[str, Any]] = {}
    for d in full:
        for r in d["runs"]:
            made = {"file": d["started"], "threads": d.get("machine", {}).get("server_threads")}
            runs[(r["task"], r["tool"], r["seed"], r["budget"])] = {**r, **made}
        for task, held in d["heldout"].items():
            n = {len(e["marks"]) for e in held["instructions"].values()}
            mine = marks.setdefault(task, {})
            assert len(n | {len(m) for m in mine.values()}) == 1, f"{task}: held-out folds differ"
            mine.update({ins: e["marks"] for ins, e in held["instructions"].items()})
            heldout.setdefault(task, {"instructions": {}})["instructions"].update(
                held["instructions"]
            )
    merged = sorted(runs.values(), key=lambda r: (r["task"], r["budget"], r["seed"], r["file"]))
    for task in marks:
        start = marks[task][""]
        versus_start = {}
        for r in (r for r in merged if r["task"] == task):
            for key in ("test_accuracy", "vs_start", "vs_opro"):
                r.pop(key, None)
            ins = r.get("instruction")
            if not isinstance(ins, str) or ins not in marks[task]:
                continue
            r["test_accuracy"] = rate(marks[task][ins])
            r["vs_start"] = paired(start, marks[task][ins])
            versus_start[(r["tool"], r["seed"], r["budget"])] = r["vs_start"]["p"]
            opro_row = runs.get((task, "opro", r["seed"], r["budget"]))
            theirs = (opro_row or {}).get("instruction")
            if r["tool"] != "opro" and isinstance(theirs, str) and theirs in marks[task]:
                r["vs_opro"] = paired(marks[task][theirs], marks[task][ins])
        adjusted = holm(versus_start)
        for r in merged:
            if (r["tool"], r["seed"], r["budget"]) in adjusted and r["task"] == task:
                r["vs_start"]["p_holm"] = adjusted[(r["tool"], r["seed"], r["budget"])]
    last = full[-1]
    return {
        **last,
        "runs": merged,
        "heldout": heldout,
        "marks": marks,
        "files": [d["started"] for d in full],
        "threads_by_file": {d["started"]: d.get("machine", {}).get("server_threads") for d in full},
        "folds": {task: f for d in full for task, f in d.get("folds", {}).items()},
        "wall_s": sum(d["wall_s"] for d in full),
        "protocol": {
            **last["protocol"],
            "tasks": sorted({r["task"] for r in merged}),
            "seeds": sorted({r["seed"] for r in merged}),
            "budgets": sorted({r["budget"] for r in merged}),
            "tools": list(dict.fromkeys(r["tool"] for r in merged)),
        },
    }


def budgets(protocol: dict[str, Any]) -> list[int]:
    """The budgets the results hold (one per invocation before several were merged)."""
    return list(protocol.get("budgets") or [protocol["budget"]])


def rate(marks: str) -> float | None:
    return round(marks.count("1") / len(marks), 4) if marks else None


def build(results: list[Path], figure: Path | None = None) -> str:
    loaded = [json.loads(p.read_text()) for p in results]
    merged = combine(loaded)
    datas = [d for d in loaded if d.get("kind") not in ("full", "kill")]
    datas = [merged] if merged else datas  # a quick check only while there is no benchmark
    kills = [d for d in loaded if d.get("kind") == "kill"]
    out = [
        "# opro and the tools users would pick instead",
        "",
        "<!-- Built by benchmarks/peers/page.py from benchmarks/peers/results/*.json: "
        "edit those, not this page. -->",
        "",
        "The same model, task, folds, scorer prompt, answer check and budget of scorer calls "
        "for every tool, so that only the optimizer differs (issue #27). "
        "`make bench-peers` runs it (5–6 hours on 2 cores with its defaults, then about 1 "
        "more at the second budget; "
        "benchmarks/peers/README.md says how to run a part), then the kill-halfway "
        "measurement, then builds this page; `make bench-peers-quick` checks the harness "
        "in minutes.",
        "",
    ]
    if not any(d.get("kind") != "quick" for d in datas):
        out += [
            "**The benchmark has not been run yet**: only a quick check of the harness is "
            "below. It shows that every part works end to end, not how the tools compare.",
            "",
        ]
    findings = HERE / "results" / "findings.md"
    if merged and findings.exists():  # what the numbers mean: written by a person, kept
        out += ["## What it shows", "", findings.read_text().strip(), ""]  # beside the data
    if merged:
        out += summary(merged, figure)
    for data in datas:
        out += section(data)
    for data in kills:
        out += kill_section(data)
    out += ["## Protocol", "", PROTOCOL, "## Limits", "", LIMITS]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "peers.md")
    args = parser.parse_args()
    results = args.results or sorted((HERE / "results").glob("*.json"))
    if not results:
        raise SystemExit("no results: run benchmarks/peers/run.py (or --quick) first")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(build(results, args.out.with_suffix(".svg")))
    print(f"wrote {args.out}")
    docs = ROOT / "docs"
    if args.out.resolve().is_relative_to(docs) and "results/peers.md" not in (
        (ROOT / "mkdocs.yml").read_text()
    ):  # the strict docs build refuses a page outside the nav
        print("note: add results/peers.md to mkdocs.yml's nav (Results)", file=sys.stderr)


if __name__ == "__main__":
    main()
