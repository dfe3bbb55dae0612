"""Untrusted run dirs import no code, and URL secrets are never written (issue #17, item 6).

Reproduced before: ``opro resume`` of a run dir whose config.json names
``fake:some.module:fn`` imported that module (a run dir from elsewhere could import any
installed module); a base URL carrying ``?api-key=...`` or ``user:pass@`` was stored
verbatim in config.json. Now such a resume needs ``--trust-code`` (``RunOptions(
trust_code=True)``) unless this user's opro made the run dir (its signature: see
test_signed_run_dirs.py; "from elsewhere" is a run made under another user's key here), and
config.json keeps the URL with ``***`` in place of its secrets; ``opro resume --base-url
ROLE=URL`` gives it again (checked to be the same server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from opro import LinregSpec, RunOptions, api
from opro.errors import ConfigError
from opro.llm.config import redact_url
from opro.testing.stub_server import StubServer
from tests.conftest import PYTHONPATH, SHARED_DATA, Ran, assert_one_line_error
from tests.doubles import summary_of

CANARY = """
from pathlib import Path
Path(__file__).with_name("imported").write_text("yes")

def propose(request):
    return "My proposal is [3, 4]"
"""


def canary_run(tmp_path: Path) -> tuple[Path, Path]:
    """A stopped run dir whose optimizer is ``fake:canary_module:propose``: importing that
    module leaves a file named ``imported`` beside it."""
    (tmp_path / "canary_module.py").write_text(CANARY)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=f"{PYTHONPATH}{os.pathsep}{tmp_path}")
    cli = [sys.executable, "-m", "opro.cli", "-q"]
    made = subprocess.run(
        [*cli, "linreg", "--optimizer", "fake:canary_module:propose", "--reps", "1",
         "--steps", "3", "--max-calls", "8", "--no-cache", "--no-report", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (tmp_path / "imported").unlink()
    return out, tmp_path / "imported"


def resume(
    out: Path, tmp_path: Path, *extra: str, key_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``opro resume OUT``, as another user (another signing key) when ``key_dir`` is given."""
    env = dict(os.environ, PYTHONPATH=f"{PYTHONPATH}{os.pathsep}{tmp_path}")
    if key_dir is not None:
        env["OPRO_CONFIG_DIR"] = str(key_dir)
    return subprocess.run(
        [sys.executable, "-m", "opro.cli", "-q", "resume", str(out), "--no-report", *extra],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_resume_imports_a_run_dirs_code_only_when_trusted(tmp_path: Path) -> None:
    out, imported = canary_run(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    elsewhere = tmp_path / "another-user"
    refused = resume(out, tmp_path, "--max-calls", "100", key_dir=elsewhere)
    assert_one_line_error(
        refused, "names code to import (fake:canary_module:propose)", "--trust-code"
    )
    assert refused.returncode == 2
    assert not imported.exists()  # refused before anything was imported
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the lock too

    trusted = resume(out, tmp_path, "--trust-code", "--max-calls", "100", key_dir=elsewhere)
    assert trusted.returncode == 0, trusted.stderr
    assert imported.exists()
    assert summary_of(out)["status"] == "finished"


def test_the_python_api_refuses_untrusted_code_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = LinregSpec(optimizer="fake:tests.doubles:linreg_walker", reps=1, engine={"steps": 3})
    out = tmp_path / "run"
    api.start(spec, RunOptions(out=out, caps=api.Caps(max_calls=8), use_cache=False))
    monkeypatch.setenv("OPRO_CONFIG_DIR", str(tmp_path / "another-user"))
    with pytest.raises(ConfigError, match=r"fake:tests\.doubles:linreg_walker.*trust_code"):
        api.resume(out, RunOptions(caps=api.Caps(max_calls=100)))
    done = api.resume(out, RunOptions(caps=api.Caps(max_calls=100), trust_code=True))
    assert done.status == "finished"


def test_fake_echo_needs_no_trust(opro: Callable[..., Ran], tmp_path: Path) -> None:
    out = tmp_path / "run"
    made = opro("-q", "linreg", "--optimizer", "fake:echo", "--reps", "1", "--steps", "3",
                "--max-calls", "8", "--no-cache", "--no-report", "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    again = opro("-q", "resume", str(out), "--max-calls", "100", "--no-report")
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:pw-SECRET-1@h:8/v1", "http://***@h:8/v1"),
        ("https://TOKEN-SECRET-2@h/v1", "https://***@h/v1"),
        ("http://h/v1?api-key=SECRET-3&api-version=2024-06", "http://h/v1?api-key=***&api-version=2024-06"),
        ("http://h/v1?access_token=SECRET-4", "http://h/v1?access_token=***"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_secrets_never_reach_the_run_dir_and_resume_takes_the_url_again(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-url")
    out, cache = tmp_path / "run", tmp_path / "calls.sqlite"
    with StubServer() as server:
        secret_url = server.url.replace("//", "//alice:PASS-S3CRET@") + "?api-key=QUERY-S3CRET"
        made = opro("-q", "optimize", "--dataset", "bbh:boolean_expressions", "--data-dir",
                    str(SHARED_DATA), "--scorer", "openai:stub", "--scorer-base-url", secret_url,
                    "--optimizer", "fake:tests.doubles:instruction_proposer", "--steps", "2",
                    "--max-train", "5", "--max-test", "3", "--no-report", "--cache", str(cache),
                    "--max-calls", "12", "--out", str(out))  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert all("api-key=QUERY-S3CRET" in t for t in server.targets)  # it was used
        written = b"".join(p.read_bytes() for p in [*out.rglob("*"), cache] if p.is_file())
        assert b"S3CRET" not in written
        stored = json.loads((out / "config.json").read_text())["spec"]["scorer"]["base_url"]
        assert stored == redact_url(secret_url)

        missing = opro("resume", str(out), "--trust-code", "--max-calls", "1000")
        assert_one_line_error(missing, "without its secret", "--base-url scorer=URL")
        assert "S3CRET" not in missing.stderr
        other = opro("resume", str(out), "--trust-code", "--base-url",
                     "scorer=http://elsewhere:1/v1")  # fmt: skip
        assert_one_line_error(other, "is not the run's scorer URL")
        again = opro("-q", "resume", str(out), "--trust-code", "--max-calls", "1000",
                     "--no-report", "--base-url", f"scorer={secret_url}")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert summary_of(out)["status"] == "finished"
    written = b"".join(p.read_bytes() for p in [*out.rglob("*"), cache] if p.is_file())
    assert b"S3CRET" not in written
