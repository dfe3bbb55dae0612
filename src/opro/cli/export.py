"""``opro export RUN_DIR``: a run's best instruction(s) with the exact scorer prompt each was
scored with (the template, the position, the system message, the decoding), for people on
stdout, or as JSON (``--json``, ``--out FILE``) for the program that will use them.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from opro.cli.options import path_arg
from opro.errors import ConfigError
from opro.progress_text import printable


def add_export_command(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="a run's best instruction(s) with the exact prompt the scorer was given",
        description="Print (or write) the best instruction of an `opro optimize` run and the "
        "next best, each with its training (and test) accuracy and the scorer's prompt it was "
        "scored with, {question} standing for the question: how to use the result.",
        examples=[
            "opro export runs/optimize-20261121-101500",
            "opro export runs/optimize-20261121-101500 --json",
            "opro export runs/optimize-20261121-101500 --top 5 --out best-instruction.json",
        ],
    )
    p.add_argument("run_dir", type=path_arg, metavar="RUN_DIR", help="an `opro optimize` run")
    p.add_argument("--top", type=int, default=3, help="instructions exported (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument(
        "--out",
        type=path_arg,
        metavar="FILE",
        help="also write the JSON to FILE (for a program that uses the instruction)",
    )
    p.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from opro.instruction_export import export_run  # loaded when the command runs

    exported = export_run(args.run_dir, args.top)
    data = exported.to_json()
    if args.out is not None:
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot write {args.out} ({exc.strerror}): name a file in a folder that exists"
            ) from None
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for line in exported.lines():
            print(printable(line))
        if args.out is not None:
            print(f"\nwritten: {args.out}")
    return 0
