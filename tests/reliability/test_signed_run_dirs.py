"""A run dir this user made here is trusted; one from elsewhere still needs ``--trust-code``
(issue #24, point 4: the commands opro prints work as printed).

Reproduced before: after Ctrl-C (or a cap), ``opro resume DIR`` as printed was refused for
the user's own run with a custom metric (or a ``fake:module:fn`` model) until
``--trust-code`` was added. Now opro signs each config.json it writes (an HMAC-SHA256 of its
bytes under a per-user key, ``.signature`` beside it): a resume of such a run dir imports its
code without the flag. A config.json copied in from another run, edited by hand, signed under
another user's key, or with its signature gone is refused as before.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

import opro
from opro import signature
from tests.conftest import Ran, assert_one_line_error
from tests.doubles import summary_of

WALKER = ["--optimizer", "fake:tests.doubles:linreg_walker", "--reps", "1"]
UNTRUSTED = "names code to import (fake:tests.doubles:linreg_walker)"


def stopped(opro_cli: Callable[..., Ran], out: Path, *extra: str) -> None:
    made = opro_cli("-q", "linreg", *WALKER, "--steps", "4", "--max-calls", "8", "--no-cache",
                    "--no-report", "--out", str(out), *extra)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert summary_of(out)["stop_reason"] == "budget"


def resume(opro_cli: Callable[..., Ran], out: Path, *extra: str) -> Ran:
    return opro_cli("-q", "resume", str(out), "--max-calls", "1000", "--no-report", *extra)


def test_the_users_own_run_resumes_as_printed_without_trust_code(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    stopped(opro, out)
    assert (out / ".signature").read_text().startswith("hmac-sha256:")
    result = resume(opro, out)
    assert result.returncode == 0, result.stderr
    assert summary_of(out)["status"] == "finished"


def test_a_run_dir_signed_under_another_users_key_needs_trust_code(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    stopped(opro, out)
    monkeypatch.setenv("OPRO_CONFIG_DIR", str(tmp_path / "another-user"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused = resume(opro, out)
    assert_one_line_error(refused, UNTRUSTED, "no signature of yours", "--trust-code")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert resume(opro, out, "--trust-code").returncode == 0


def copied_config(out: Path, tmp_path: Path, opro_cli: Callable[..., Ran]) -> None:
    """config.json of another run of this user's (same spec but its seed), copied in."""
    other = tmp_path / "other"
    stopped(opro_cli, other, "--seed", "7")
    shutil.copy(other / "config.json", out / "config.json")


def edited_config(out: Path, tmp_path: Path, opro_cli: Callable[..., Ran]) -> None:
    config = json.loads((out / "config.json").read_text())
    config["caps"]["max_calls"] = 9  # any byte changed
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def signature_removed(out: Path, tmp_path: Path, opro_cli: Callable[..., Ran]) -> None:
    (out / ".signature").unlink()


def signature_of_another_run(out: Path, tmp_path: Path, opro_cli: Callable[..., Ran]) -> None:
    other = tmp_path / "other"
    stopped(opro_cli, other, "--seed", "7")
    shutil.copy(other / ".signature", out / ".signature")


@pytest.mark.parametrize(
    "tamper", [copied_config, edited_config, signature_removed, signature_of_another_run]
)
def test_a_config_json_opro_did_not_write_here_needs_trust_code(
    opro: Callable[..., Ran], tmp_path: Path, tamper: Callable[..., None]
) -> None:
    out = tmp_path / "run"
    stopped(opro, out)
    tamper(out, tmp_path, opro)
    refused = resume(opro, out)
    assert_one_line_error(refused, UNTRUSTED, "--trust-code")


def test_a_raised_cap_is_signed_again(opro: Callable[..., Ran], tmp_path: Path) -> None:
    out = tmp_path / "run"
    stopped(opro, out)
    first = (out / ".signature").read_bytes()
    raised = opro("-q", "resume", str(out), "--max-calls", "12", "--no-report")
    assert raised.returncode == 0, raised.stderr
    assert json.loads((out / "config.json").read_text())["caps"]["max_calls"] == 12
    assert (out / ".signature").read_bytes() != first
    assert resume(opro, out).returncode == 0  # the rewritten config.json is trusted
    assert summary_of(out)["status"] == "finished"


def test_the_python_api_trusts_the_users_own_run_dir(tmp_path: Path) -> None:
    spec = opro.LinregSpec(
        optimizer="fake:tests.doubles:linreg_walker", reps=1, engine={"steps": 3}
    )
    out = tmp_path / "run"
    opro.start(spec, opro.RunOptions(out=out, caps=opro.Caps(max_calls=8), use_cache=False))
    done = opro.resume(out, opro.RunOptions(caps=opro.Caps(max_calls=100)))
    assert done.status == "finished"


def test_the_key_is_private_and_made_once(tmp_path: Path) -> None:
    first = signature.sign(b"{}")
    path = signature.key_path()
    assert path.parent == Path(os.environ["OPRO_CONFIG_DIR"])  # conftest: one per test
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signature.sign(b"{}") == first
    assert signature.signed_here(b"{}", first)
    assert not signature.signed_here(b"{ }", first)


def test_a_key_others_may_read_signs_and_trusts_nothing(
    opro: Callable[..., Ran], tmp_path: Path
) -> None:
    assert signature.sign(b"{}") is not None
    signature.key_path().chmod(0o644)
    out = tmp_path / "run"
    stopped(opro, out)
    assert not (out / ".signature").exists()
    assert_one_line_error(resume(opro, out), UNTRUSTED, "--trust-code")


def test_no_place_for_a_key_leaves_runs_working_and_unsigned(
    opro: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("OPRO_CONFIG_DIR", str(tmp_path / "a-file" / "opro"))
    out = tmp_path / "run"
    stopped(opro, out)
    assert not (out / ".signature").exists()
    assert_one_line_error(resume(opro, out), UNTRUSTED, "--trust-code")
    assert resume(opro, out, "--trust-code").returncode == 0
