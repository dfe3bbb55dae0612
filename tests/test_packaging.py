"""`pip install` works: the sdist and wheel build from this checkout with complete metadata,
and the wheel installed into a clean virtual environment (the core: no llama.cpp) runs
`opro --version` and evaluations on a `fake:` model, of a JSONL file and of a BIG-Bench Hard
task from a data dir — nothing downloaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED_DATA


def _uv() -> str | None:
    local = ROOT / ".tools" / "bin" / "uv"
    return str(local) if local.is_file() else shutil.which("uv")


def _run(*args: str, cwd: Path | None = None, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPRO_DATA_DIR", "PYTHONPATH")}
    env["OPRO_DATA_DIR"] = str(SHARED_DATA)
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT))
    return out


def test_the_wheel_and_sdist_carry_everything(dist: Path) -> None:
    [wheel] = dist.glob("opro-*.whl")
    [sdist] = dist.glob("opro-*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "opro/py.typed",
        "opro/prompts/scorer.jinja",
        "opro/report/templates/report.html.jinja",
        "opro/data/checksums.sha256",
        "opro/cli/__main__.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("tests/")]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(metadata).decode())
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert any(url.startswith("Paper,") for url in meta.get_all("Project-URL"))
    assert {"local", "litellm", "ray", "hf", "dev"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("highspy") and "<2" in r for r in requires)  # bounded ranges
    points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(points).decode()  # the built-ins, as a plugin's
    for line in ("[opro.kinds]", "tsp = opro.problems.tsp:KIND", "[opro.backends]"):
        assert line in text, line
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("/LICENSE") for m in members)


def test_the_wheel_installs_and_runs_in_a_clean_environment(dist: Path, tmp_path: Path) -> None:
    [wheel] = dist.glob("opro-*.whl")
    venv = tmp_path / "venv"
    uv = _uv()
    if uv is not None:  # the lock's versions, from uv's cache: fast and known good
        constraints = tmp_path / "constraints.txt"
        exported = _run(
            uv, "export", "--frozen", "--no-hashes", "--no-emit-project", "--all-extras", cwd=ROOT
        )
        constraints.write_text(exported)
        _run(uv, "venv", "--quiet", "--python", sys.executable, str(venv))
        _run(
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "-c",
            str(constraints),
            str(wheel),
        )
    else:
        _run(sys.executable, "-m", "venv", str(venv))
        _run(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel))
    opro = str(venv / "bin" / "opro")
    assert _run(opro, "--version").strip().startswith("opro ")
    listed = _run(str(venv / "bin" / "python"), "-m", "pip", "list") if uv is None else ""
    assert "llama" not in listed.lower()  # the core install: no embedded runtime
    rows = [{"question": f"{a} and True is", "answer": str(a)} for a in (True, False) * 3]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scored = json.loads(
        _run(
            opro,
            "evaluate",
            "--dataset",
            f"jsonl:{data}",
            "--scorer",
            "fake:echo",
            "--instruction",
            "Think.",
            "--split",
            "all",
            "--json",
            "--no-cache",
            "-q",
            cwd=tmp_path,
        )
    )
    assert scored["instructions"][0]["n"] == 6
    benchmark = json.loads(
        _run(
            opro,
            "evaluate",
            "--dataset",
            "bbh:sports_understanding",
            "--scorer",
            "fake:echo",
            "--instruction",
            "",
            "--max-examples",
            "5",
            "--json",
            "--no-cache",
            "-q",
            cwd=tmp_path,
        )
    )
    assert benchmark["instructions"][0]["n"] == 5
