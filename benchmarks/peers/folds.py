"""The folds every tool sees: opro's own split of a BBH task (seed 0), exported once to JSON
lines, so that every tool gets the same rows in the same order.

For ``bbh:TASK`` it writes ``DIR/TASK/TASK.jsonl`` (the training fold; the stem is the task's
name, so that opro's meta-prompt names the task as it does for ``bbh:TASK``) and
``DIR/TASK/test.jsonl``; each row ``{"question", "answer", "kind", "index"}``, ``index``
being the row in opro's source file. A quick check subsamples both folds (seeded, as opro's
``--max-train`` does), keeping their order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opro.data.loaders import load_dataset
from opro.data.splits import subsample


@dataclass(frozen=True)
class Folds:
    task: str
    """The BBH task, e.g. ``hyperbaton``."""
    train: Path
    test: Path

    def rows(self, which: str) -> list[dict[str, Any]]:
        return read_rows(self.train if which == "train" else self.test)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def export(
    task: str,
    data_dir: str | Path | None,
    out: Path,
    *,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Folds:
    """``bbh:TASK``'s folds as opro splits them (seed 0), written under ``out/TASK``."""
    data = load_dataset(f"bbh:{task}", data_dir, seed=0)
    train, test = data.train, data.test
    if max_train is not None:
        train = subsample(train, max_train, 0)
    if max_test is not None:
        test = subsample(test, max_test, 1)
    folder = out / task
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in ((f"{task}.jsonl", train), ("test.jsonl", test)):
        path = folder / name
        lines = [
            json.dumps(
                {"question": e.question, "answer": e.answer, "kind": e.kind, "index": e.index}
            )
            for e in rows
        ]
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return Folds(task, paths[0], paths[1])
