"""An instruction applied to a question exactly as the scorer was asked: ``ScorerPrompt``, the
prompt text, system message and decoding a run (and ``opro evaluate``) send for one example
— what ``RunResult.prompt_for`` and ``opro export`` give back, so that a found instruction
is used the way it was scored. The rendering itself is ``opro.eval.scorer``'s, not a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from opro.data import Example
from opro.eval.scorer import BASE_STOP, ScorerOptions, request_parts
from opro.types import Api, Request

QUESTION = "{question}"
"""Where the question goes in a prompt template (``template_of``)."""


@dataclass(frozen=True)
class ScorerPrompt:
    """One question as the scorer is asked it under an instruction: greedy decoding of
    ``prompt`` (after ``system``, when there is one) up to ``max_tokens`` or a ``stop``."""

    prompt: str
    """A pre-trained scorer's raw text (the Q/A pattern), or a chat scorer's user turn."""
    system: str | None
    """The system message (a completion API reads it before the prompt, a blank line
    between); None when there is none."""
    api: Api
    """``completion`` (a pre-trained scorer) or ``chat``."""
    max_tokens: int
    stop: tuple[str, ...]
    extract: bool = False
    """A second pass followed (``extract_answer``): the prompt, the answer and "So the final
    answer is" sent again, and that completion scored."""

    @property
    def text(self) -> str:
        """The whole text a completion API reads: the system message, a blank line, the
        prompt (the prompt alone without a system message)."""
        return self.prompt if self.system is None else f"{self.system}\n\n{self.prompt}"

    @property
    def messages(self) -> list[dict[str, str]]:
        """The chat messages (the system message, then the user turn), as an OpenAI-style
        chat API takes them."""
        system = [] if self.system is None else [{"role": "system", "content": self.system}]
        return [*system, {"role": "user", "content": self.prompt}]

    def request(self) -> Request:
        """The ``opro.Request`` the scorer got (for ``opro.complete`` or an ``LLM``)."""
        return Request(self.prompt, self.max_tokens, 0.0, self.stop, system=self.system)

    def __str__(self) -> str:
        return self.text


def prompt_of(options: ScorerOptions, instruction: str, question: str) -> ScorerPrompt:
    """``question`` under ``instruction`` as a scorer with ``options`` is asked it."""
    example = Example(question, "", "text", 0)
    prompt, system = request_parts(instruction, example, options)
    base = options.style == "base"
    return ScorerPrompt(
        prompt,
        system,
        "completion" if base else "chat",
        options.max_tokens,
        BASE_STOP if base else (),
        options.extract and base,
    )


def template_of(options: ScorerOptions, instruction: str) -> ScorerPrompt:
    """The prompt of ``instruction`` with ``{question}`` where each question goes."""
    return prompt_of(options, instruction, QUESTION)
