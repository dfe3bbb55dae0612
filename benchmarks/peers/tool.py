"""Run one tool on one job, in this process: ``python tool.py JOB.json OUT.json``.

The orchestrator (run.py) starts one such process per run, one after another, and measures
its wall time, CPU time and peak memory from outside; this writes what the tool found (or
the error that stopped it) to OUT.json.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from adapters import Job, adapter


def main() -> int:
    job = Job(**json.loads(Path(sys.argv[1]).read_text()))
    out = Path(sys.argv[2])
    try:
        found = adapter(job.tool).run(job)
    except Exception as exc:  # a tool's crash is a result too
        out.write_text(
            json.dumps(
                {
                    "error": f"{type(exc).__name__}: {exc}"[:2000],
                    "traceback": traceback.format_exc()[-4000:],
                }
            )
        )
        return 1
    out.write_text(json.dumps(found.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
