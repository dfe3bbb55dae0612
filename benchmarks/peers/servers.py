"""The one model server (llama.cpp's, serving the embedded gemma3-270m) and the counting
proxy in front of it, each a process of its own, both on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_path() -> Path:
    """The embedded gemma3-270m's weights (base, Q4_K_M), where opro finds them."""
    from opro.llm.models import EMBEDDED

    return EMBEDDED["gemma3-270m"].locate()


def server_command(port: int, threads: int, n_ctx: int = 2048) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()),
        "--model_alias", "gemma3-270m", "--n_ctx", str(n_ctx), "--n_threads", str(threads),
        "--n_threads_batch", str(threads), "--logits_all", "false", "--seed", "0",
        "--host", "127.0.0.1", "--port", str(port), "--verbose", "false",
    ]  # fmt: skip


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/models", timeout=2).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{url} did not start:\n{tail}") from None
            time.sleep(0.3)


@contextlib.contextmanager
def model_server(work: Path, threads: int = 2) -> Iterator[str]:
    """``python -m llama_cpp.server`` on the embedded gemma3-270m: its base URL."""
    port = free_port()
    log = work / "model-server.log"
    # What a rebuilt invocation (run.py --rebuild) cannot know otherwise: wall times depend on it.
    (work / "model-server.json").write_text(json.dumps({"threads": threads}))
    with open(log, "wb") as out:
        proc = subprocess.Popen(server_command(port, threads), stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            wait_until_up(url, proc, log, timeout=180)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def proxy(
    upstream: str, folds: list[tuple[str, Path]], log: Path, optimizer_temperature: str = "1.0"
) -> Iterator[dict[str, str]]:
    """The proxy (proxy.py) in a process of its own: {"scorer": URL, "optimizer": URL}."""
    command = [
        sys.executable, str(HERE / "proxy.py"), "--upstream", upstream, "--log", str(log),
        "--optimizer-temperature", optimizer_temperature,
        *(f"--fold={phase}:{path}" for phase, path in folds),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout is not None else ""
        if not line.startswith("{"):
            raise RuntimeError("the proxy did not start")
        urls: dict[str, str] = json.loads(line)
        yield urls
    finally:
        proc.terminate()
        proc.wait(10)


def control(url: str, run: str, seed: int, restarted: bool = False) -> None:
    """Tell the proxy which run the next calls belong to (``restarted``: a killed run's
    restart, which goes on numbering its optimizer calls' seeds)."""
    base = url.rsplit("/v1", 1)[0]
    data = json.dumps({"run": run, "seed": seed, "continue": restarted}).encode()
    request = urllib.request.Request(
        base + "/_control", data=data, headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()
