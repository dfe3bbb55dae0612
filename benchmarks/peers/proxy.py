"""The counting and fairness proxy between every tool and the one model server.

One port per role, each an OpenAI-compatible ``/v1``:

* **scorer**: every request is one question under one instruction. A chat request (what
  the peers send) must be ``[system: instruction, user: question]`` (no system message: the
  empty instruction), the question one of the exported folds' (else it is refused, 400, so
  that no tool is ever scored on another prompt unnoticed); it is re-rendered into opro's
  own scorer prompt (``opro.InstructionsSpec(...).prompt_for``: the base-model Q/A pattern,
  the instruction at A_begin, opro's stop sequence), sent to ``/v1/completions`` and the
  answer wrapped back into a chat reply. A completion request (opro's own) must already be
  that prompt for a fold's question: it is checked against the same rendering. Decoding is
  pinned: greedy, 16 tokens, fixed top_p/top_k/min_p/repeat_penalty, seed 0.
* **optimizer**: a chat request is rendered with Gemma 3's own chat template (the GGUF has
  none: ``gemma_chat``) and sent as a completion; ``max_tokens`` capped at 256, the
  sampler's other parameters pinned, the temperature forced to 1.0 (``--optimizer-temperature
  keep``: the tool's own, or the server's default when it sends none) and the seed drawn
  from the run's seed and the call's number in the run (each tool's run is reproducible
  given its calls; the tool's own seed, if any, is logged).

Both split a request for ``n > 1`` completions into n upstream calls (llama.cpp's server
ignores ``n``), and log every upstream call as a JSON line: run, role, phase (``train`` or
``test``: the fold the question is from; an optimizer call is ``train``), latency, prompt
and completion tokens (the server's ``usage``), the instruction and whether the answer is
right (``opro.score_answer``, strict) for a scorer call, the completion's text. ``POST
/_control`` on either port names the run that the next calls belong to (and its seed).

    python benchmarks/peers/proxy.py --upstream http://127.0.0.1:8100/v1 \\
        --fold train:DIR/hyperbaton/hyperbaton.jsonl --fold test:DIR/hyperbaton/test.jsonl \\
        --log calls.jsonl [--scorer-port 0] [--optimizer-port 0]
    # prints {"scorer": URL, "optimizer": URL} once both listen
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import opro
from aiohttp import web
from opro.problems.instructions.prompting import ScorerPrompt

ALIAS = "gemma3-270m"
"""The one model name sent upstream, whatever name a tool uses."""
PINNED = {"top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}
"""llama.cpp server's own defaults, sent explicitly so that no tool's choice differs."""
SCORER_MAX_TOKENS = 16
OPTIMIZER_MAX_TOKENS = 256
SCORER_SPEC = opro.InstructionsSpec(
    dataset="bbh:hyperbaton",  # only for prompt_for: no data is read
    position="A_begin",
    scorer_style="base",
    scorer_max_tokens=SCORER_MAX_TOKENS,
)


@dataclass(frozen=True)
class Item:
    question: str
    answer: str
    kind: str
    phase: str
    index: int


def scorer_prompt(instruction: str, question: str) -> ScorerPrompt:
    """The prompt opro itself sends for ``question`` under ``instruction`` (A_begin, base)."""
    return SCORER_SPEC.prompt_for(question, instruction)


END_OF_TURN = "<end_of_turn>"


def gemma_chat(messages: Any) -> str:
    """Chat messages as Gemma 3's own chat template renders them (the system message opens
    the first user turn; the model's turn begun). The embedded GGUF carries no template, and
    llama.cpp's server would fall back to Llama 2's ``[INST]`` format, or, asked for
    ``gemma``, drop the system message: rendered here, every tool's optimizer request is
    read the same way, as the model family's own format."""
    if not isinstance(messages, list) or not messages:
        raise Refused("no messages")
    system = "\n\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
    out, first = ["<bos>"], True
    for message in messages:
        role = message.get("role")
        if role == "system":
            continue
        content = _text(message.get("content")).strip()
        if first and system:
            content = f"{system.strip()}\n\n{content}"
        first = False
        turn = "model" if role == "assistant" else "user"
        out.append(f"<start_of_turn>{turn}\n{content}{END_OF_TURN}\n")
    out.append("<start_of_turn>model\n")
    return "".join(out)


def _text(content: Any) -> str:
    """A message's text (a string, or OpenAI's list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def load_items(folds: list[tuple[str, Path]]) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for phase, path in folds:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                item = Item(row["question"], row["answer"], row["kind"], phase, row["index"])
                items.setdefault(item.question, item)
    return items


class Refused(Exception):
    """A request the proxy will not forward (400, with the reason)."""


@dataclass
class Proxy:
    upstream: str
    """The model server's base URL (``http://HOST:PORT/v1``)."""
    items: dict[str, Item]
    log: TextIO
    optimizer_temperature: float | None = 1.0
    """None: keep each tool's own (the server's default when it sends none)."""
    run: str = ""
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _session: aiohttp.ClientSession | None = None

    # -- the requests ---------------------------------------------------------------------

    def parse_completion(self, prompt: str) -> tuple[str, Item]:
        """(instruction, question) of a prompt opro rendered; refused if it is not one."""
        if prompt.startswith("Q: "):
            at = prompt.find("\n\nA:")
            while at != -1:
                item = self.items.get(prompt[3:at])
                if item is not None:
                    rest = prompt[at + 4 :]
                    instruction = rest[1:] if rest.startswith(" ") else rest
                    if scorer_prompt(instruction, item.question).prompt == prompt:
                        return instruction, item
                at = prompt.find("\n\nA:", at + 1)
        raise Refused("a scorer prompt that is not opro's A_begin rendering of a fold's question")

    def parse_chat(self, messages: Any) -> tuple[str, Item]:
        """(instruction, question) of ``[system: instruction, user: question]``."""
        if not isinstance(messages, list) or not messages:
            raise Refused("no messages")
        roles = [m.get("role") for m in messages]
        contents = [m.get("content") for m in messages]
        if not all(isinstance(c, str) for c in contents):
            raise Refused("a message whose content is not text")
        if roles not in (["user"], ["system", "user"]):
            raise Refused(
                f"scorer messages must be [system: instruction, user: question], got {roles}"
            )
        item = self.items.get(contents[-1])
        if item is None:
            raise Refused("the user turn is not a question of the exported folds")
        return (contents[0] if len(contents) == 2 else ""), item

    def next_seed(self) -> int:
        number = self.counts.get("optimizer", 0)
        self.counts["optimizer"] = number + 1
        return (self.seed * 1_000_003 + number) % 2**31

    async def handle(self, role: str, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeError):
            return _error(400, "the body is not JSON")
        chat = request.path.endswith("/chat/completions")
        try:
            if body.get("stream"):
                raise Refused("streaming is not supported by the benchmark's proxy")
            n = int(body.get("n") or 1)
            if role == "scorer":
                return await self._scorer(body, chat, n)
            return await self._optimizer(body, chat, n)
        except Refused as exc:
            self._write({"role": role, "status": 400, "refused": str(exc)})
            return _error(400, f"benchmark proxy: {exc}")

    async def _scorer(self, body: dict[str, Any], chat: bool, n: int) -> web.Response:
        if chat:
            instruction, item = self.parse_chat(body.get("messages"))
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise Refused("a completion request whose prompt is not one string")
            instruction, item = self.parse_completion(prompt)
        rendered = scorer_prompt(instruction, item.question)
        sent = {
            "model": ALIAS,
            "prompt": rendered.prompt,
            "max_tokens": rendered.max_tokens,
            "temperature": 0.0,
            "stop": list(rendered.stop),
            "seed": 0,
            **PINNED,
        }
        requested = {k: body.get(k) for k in ("temperature", "max_tokens", "stop", "n")}
        choices, usage, status, error = [], _zero_usage(), 200, None
        for i in range(n):
            reply, status, latency = await self._post("/completions", sent)
            if status != 200:
                error = reply
                self._write(
                    {
                        "role": "scorer",
                        "phase": item.phase,
                        "status": status,
                        "error": reply,
                        "latency_s": latency,
                        "instruction": instruction,
                    }
                )
                break
            choice = reply["choices"][0]
            text = choice.get("text") or ""
            _add_usage(usage, reply.get("usage"))
            correct = opro.score_answer(
                text,
                item.answer,
                kind=item.kind,  # type: ignore[arg-type]
                question=item.question,
            )
            self._write(
                {
                    "role": "scorer",
                    "phase": item.phase,
                    "api": "chat" if chat else "completion",
                    "status": 200,
                    "latency_s": latency,
                    "usage": reply.get("usage"),
                    "instruction": instruction,
                    "index": item.index,
                    "completion": text,
                    "correct": correct,
                    "sample": i,
                    "requested": requested,
                }
            )
            choices.append((text, choice.get("finish_reason")))
        if error is not None:
            return web.json_response(error, status=status)
        return web.json_response(_reply(choices, usage, chat))

    async def _optimizer(self, body: dict[str, Any], chat: bool, n: int) -> web.Response:
        cap = body.get("max_tokens") or body.get("max_completion_tokens") or OPTIMIZER_MAX_TOKENS
        keep = ("temperature", "stop", "frequency_penalty", "presence_penalty", "grammar")
        sent: dict[str, Any] = {k: body[k] for k in keep if body.get(k) is not None}
        if chat:  # the model's own chat template, rendered here: the same for every tool
            sent["prompt"] = gemma_chat(body.get("messages"))
            stop = sent.get("stop") or []
            sent["stop"] = [*([stop] if isinstance(stop, str) else stop), END_OF_TURN]
        elif isinstance(body.get("prompt"), str):
            sent["prompt"] = body["prompt"]
        else:
            raise Refused("a completion request whose prompt is not one string")
        sent.update(PINNED, model=ALIAS, max_tokens=min(int(cap), OPTIMIZER_MAX_TOKENS))
        if self.optimizer_temperature is not None:
            sent["temperature"] = self.optimizer_temperature
        requested = {k: body.get(k) for k in ("temperature", "max_tokens", "n", "seed", "top_p")}
        choices, usage = [], _zero_usage()
        for i in range(n):
            sent["seed"] = self.next_seed()
            reply, status, latency = await self._post("/completions", sent)
            if status != 200:
                self._write(
                    {
                        "role": "optimizer",
                        "phase": "train",
                        "status": status,
                        "error": reply,
                        "latency_s": latency,
                    }
                )
                return web.json_response(reply, status=status)
            choice = reply["choices"][0]
            text = choice.get("text") or ""
            _add_usage(usage, reply.get("usage"))
            self._write(
                {
                    "role": "optimizer",
                    "phase": "train",
                    "api": "chat" if chat else "completion",
                    "grammar": "grammar" in sent,
                    "status": 200,
                    "latency_s": latency,
                    "usage": reply.get("usage"),
                    "completion": text,
                    "finish_reason": choice.get("finish_reason"),
                    "sample": i,
                    "requested": requested,
                    "sent_temperature": sent.get("temperature"),
                    "seed": sent["seed"],
                }
            )
            choices.append((text, choice.get("finish_reason")))
        return web.json_response(_reply(choices, usage, chat))

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[Any, int, float]:
        """One upstream call, one at a time (the server serves one at a time anyway: the
        latency logged is the call's, not its wait in the server's queue)."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=900)
            self._session = aiohttp.ClientSession(timeout=timeout)
        async with self._lock:
            started = time.perf_counter()
            async with self._session.post(self.upstream + path, json=body) as response:
                raw = await response.read()
                status = response.status
            latency = round(time.perf_counter() - started, 4)
        try:
            data = json.loads(raw)
        except ValueError:
            data = {"error": {"message": raw[:500].decode("utf-8", "replace")}}
        return data, status, latency

    def _write(self, record: dict[str, Any]) -> None:
        self.log.write(json.dumps({"run": self.run, "t": round(time.time(), 3), **record}) + "\n")
        self.log.flush()

    # -- the server -----------------------------------------------------------------------

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.run = str(body.get("run", ""))
        self.seed = int(body.get("seed", 0))
        if not body.get("continue"):  # a restarted run goes on numbering its calls
            self.counts = {}
        return web.json_response({"run": self.run, "seed": self.seed})

    def app(self, role: str) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)

        async def handle(request: web.Request) -> web.Response:
            return await self.handle(role, request)

        async def models(request: web.Request) -> web.Response:
            return web.json_response({"object": "list", "data": [{"id": ALIAS, "object": "model"}]})

        app.router.add_post("/_control", self.control)
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/completions", handle)
        app.router.add_post("/v1/chat/completions", handle)
        return app

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _zero_usage() -> dict[str, int]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _add_usage(total: dict[str, int], usage: Any) -> None:
    if isinstance(usage, dict):
        for key in total:
            total[key] += int(usage.get(key) or 0)


def _reply(choices: list[tuple[str, Any]], usage: dict[str, int], chat: bool) -> dict[str, Any]:
    if chat:
        out = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": why}
            for i, (text, why) in enumerate(choices)
        ]
    else:
        out = [
            {"index": i, "text": text, "logprobs": None, "finish_reason": why}
            for i, (text, why) in enumerate(choices)
        ]
    return {
        "id": f"proxy-{time.time_ns()}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": ALIAS,
        "choices": out,
        "usage": usage,
    }


def _error(status: int, message: str) -> web.Response:
    error = {"message": message, "type": "invalid_request_error"}
    return web.json_response({"error": error}, status=status)


async def serve(args: argparse.Namespace) -> None:
    folds = [(phase, Path(path)) for phase, _, path in (f.partition(":") for f in args.fold)]
    with open(args.log, "a") as log:
        temperature = (
            None if args.optimizer_temperature == "keep" else float(args.optimizer_temperature)
        )
        proxy = Proxy(args.upstream.rstrip("/"), load_items(folds), log, temperature)
        urls = {}
        runners = []
        for role, port in (("scorer", args.scorer_port), ("optimizer", args.optimizer_port)):
            runner = web.AppRunner(proxy.app(role), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            runners.append(runner)
            server = site._server
            assert server is not None
            sockets = getattr(server, "sockets", None) or []
            urls[role] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/v1"
        print(json.dumps(urls), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await proxy.close()
            for runner in runners:
                await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the model server's /v1 URL")
    parser.add_argument("--fold", action="append", default=[], help="PHASE:PATH (JSON lines)")
    parser.add_argument("--log", required=True)
    parser.add_argument("--scorer-port", type=int, default=0)
    parser.add_argument("--optimizer-port", type=int, default=0)
    parser.add_argument("--optimizer-temperature", default="1.0", help="a number, or keep")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
