"""Start-up: ``import opro`` and ``opro --version`` load nothing heavy, and building the
command line loads no runner, plotting, solver, LiteLLM, Ray or llama.cpp. A kind's heavy
parts load when that kind runs, a report's when a report is drawn (the figures, matplotlib).

Each check runs in a fresh interpreter (``sys.modules`` of this one holds everything the
other tests imported). benchmarks/startup.py measures what this saves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import opro
from tests.conftest import PYTHONPATH

HEAVY = (
    "matplotlib",
    "highspy",
    "litellm",
    "ray",
    "llama_cpp",
    "openai",
    "aiohttp",
    "mlflow",
    "pandas",
    "datasets",
)
"""Never loaded by ``import opro`` or by building the command line."""


def _loaded_after(code: str) -> set[str]:
    """The top-level packages and opro modules a fresh interpreter holds after ``code``."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps(sorted(sys.modules)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=True,
    )
    names: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {n for n in names if n.startswith("opro.")} | {n.partition(".")[0] for n in names}


def test_import_opro_loads_no_dependency() -> None:
    loaded = _loaded_after("import opro")
    assert not loaded & {*HEAVY, "numpy", "pydantic", "rich", "jinja2", "sqlite3"}, loaded
    assert not {n for n in loaded if n.startswith("opro.")}, loaded


def test_version_loads_no_command() -> None:
    loaded = _loaded_after(
        """
        import contextlib, io
        from opro.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["--version"]) == 0
        assert out.getvalue().startswith("opro "), out.getvalue()
        """
    )
    assert not loaded & {*HEAVY, "numpy", "pydantic", "rich", "jinja2"}, loaded
    assert "opro.cli.run_commands" not in loaded


def test_the_command_line_loads_no_runner_nor_heavy_parts() -> None:
    loaded = _loaded_after(
        """
        from opro.cli import build_parser
        build_parser()
        """
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert not loaded & {
        "opro.runner",
        "opro.api",
        "opro.sweep",
        "opro.executors",
        "opro.report",
        "opro.plotting",
        "opro.problems.figures",
        "opro.llm.local",
        "opro.llm.openai",
    }, sorted(n for n in loaded if n.startswith("opro."))


def test_a_kind_loads_its_solver_when_it_solves_and_a_report_its_plotting() -> None:
    loaded = _loaded_after(
        """
        from opro.problems.registry import kinds
        kinds()
        import sys
        assert "highspy" not in sys.modules and "matplotlib" not in sys.modules
        from opro.problems import tsp_solvers as ts
        ts.solve_exact(ts.distance_matrix(ts.random_instance(6, seed=0)))
        from opro.problems.figures import linreg
        """
    )
    assert {"highspy", "matplotlib", "opro.problems.figures.linreg"} <= loaded


def test_every_public_name_resolves() -> None:
    """The lazy re-exports (``opro.__getattr__``) name every public name once, and each
    resolves to the object its module defines."""
    assert set(opro.__all__) == set(opro._EXPORTS) | {"__version__"}
    for name in opro.__all__:
        assert getattr(opro, name) is not None, name
    assert opro.start.__module__ == "opro.api"
    assert dir(opro) == sorted(opro.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        opro.no_such_name  # noqa: B018
