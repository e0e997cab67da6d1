"""Model names, settings from the environment, the provider registry: errors before any work."""

from __future__ import annotations

import pickle
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from schemas.errors import ConfigError
from simulator import registry as registry_module
from simulator.providers import (
    PLACEHOLDER_KEY,
    ModelPrice,
    ModelSpec,
    ProviderSettings,
    Request,
    Response,
    Secret,
    _registry,
    known_providers,
    parse_model,
    provider,
    provider_info,
    settings_from_env,
)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("anthropic:claude-sonnet-4-5", ModelSpec("anthropic", "claude-sonnet-4-5")),
        ("openai:gpt-4.1", ModelSpec("openai", "gpt-4.1")),
        ("openai:Qwen/Qwen3-8B", ModelSpec("openai", "Qwen/Qwen3-8B")),
        ("openai:llama3.1:8b", ModelSpec("openai", "llama3.1:8b")),
    ],
)
def test_model_names(text: str, spec: ModelSpec) -> None:
    assert parse_model(text) == spec
    assert str(spec) == text


def test_an_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_model("gemini:pro")
    assert "anthropic, openai" in str(caught.value)


@pytest.mark.parametrize("text", ["gpt-4.1", ":gpt-4.1", "openai:", "Open AI:x"])
def test_malformed_model_names(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_model(text)


def test_settings_read_keys_and_urls_from_the_environment_given() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-ant-env", "ANTHROPIC_BASE_URL": "https://proxy.example/anthropic"}
    settings = settings_from_env(parse_model("anthropic:claude-sonnet-5"), env, timeout=30, rpm=50)
    assert settings.api_key == Secret("sk-ant-env")
    assert settings.base_url == "https://proxy.example/anthropic"
    assert (settings.timeout, settings.rpm, settings.tpm) == (30, 50, None)
    flagged = settings_from_env(parse_model("anthropic:claude-sonnet-5"), env, api_key="sk-flag", base_url=None)
    assert flagged.api_key == Secret("sk-flag")


@pytest.mark.parametrize("model", ["anthropic:claude-sonnet-5", "openai:gpt-4.1"])
def test_a_missing_key_is_reported_before_any_work(model: str) -> None:
    spec = parse_model(model)
    with pytest.raises(ConfigError) as caught:
        settings_from_env(spec, {})
    assert ("ANTHROPIC_API_KEY" if spec.provider == "anthropic" else "OPENAI_API_KEY") in str(caught.value)


def test_a_local_compatible_server_needs_no_key() -> None:
    spec = parse_model("openai:Qwen/Qwen3-8B")
    from_env = settings_from_env(spec, {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"})
    from_flag = settings_from_env(spec, {}, base_url="http://localhost:11434/v1")
    assert from_env.api_key == from_flag.api_key == Secret(PLACEHOLDER_KEY)
    with pytest.raises(ConfigError):  # a local Anthropic endpoint still needs its key
        settings_from_env(parse_model("anthropic:claude-sonnet-5"), {}, base_url="http://127.0.0.1:9/")


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 0}, {"max_concurrency": 0}, {"rpm": -1}, {"max_retries": -1}, {"base_url": "localhost:8000"}],
)
def test_values_out_of_range_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ProviderSettings(**kwargs)  # type: ignore[arg-type]


def test_price_file_flag(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('["gpt-4.1"]\ninput = 1\noutput = 2\n')
    settings = settings_from_env(parse_model("openai:gpt-4.1"), {"OPENAI_API_KEY": "k" * 8}, price_file=path)
    assert settings.prices == {"gpt-4.1": ModelPrice(input=1.0, output=2.0)}
    with pytest.raises(ConfigError):
        settings_from_env(parse_model("openai:gpt-4.1"), {"OPENAI_API_KEY": "k" * 8}, price_file=tmp_path / "none.toml")


def test_the_key_is_masked_everywhere_it_could_show() -> None:
    key = "sk-very-secret-value"
    settings = ProviderSettings(api_key=Secret(key))
    for text in (repr(settings), str(settings), f"{settings.api_key}", repr(settings.api_key), str(settings.api_key)):
        assert key not in text
    assert settings.api_key is not None and settings.api_key.reveal() == key
    with pytest.raises(TypeError):
        pickle.dumps(settings.api_key)


class _FakeProvider:
    name = "fake"

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    async def send(self, request: Request) -> Response:
        return Response(text="fake")

    async def aclose(self) -> None:
        pass


def make_fake(settings: ProviderSettings) -> _FakeProvider:
    return _FakeProvider(settings)


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry.PROVIDERS, "_entries", dict(_registry.PROVIDERS._entries))
    monkeypatch.setattr(_registry.PROVIDERS, "_owners", dict(_registry.PROVIDERS._owners))


@pytest.mark.usefixtures("clean_registry")
def test_registering_a_name_twice_is_an_error() -> None:
    provider("fake")(make_fake)
    provider("fake")(make_fake)  # the same factory again is harmless (a re-import)
    with pytest.raises(ConfigError):
        provider("fake")(_FakeProvider)
    with pytest.raises(ConfigError):
        provider("openai")(make_fake)  # a built-in name belongs to its module


@pytest.mark.usefixtures("clean_registry")
def test_third_party_providers_come_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint(name="fake", value=f"{__name__}:make_fake", group=_registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep])
    assert "fake" in known_providers()
    assert parse_model("fake:tiny") == ModelSpec("fake", "tiny")
    assert provider_info("fake").factory is make_fake


@pytest.mark.usefixtures("clean_registry")
def test_an_entry_point_cannot_take_a_built_in_or_a_taken_name(monkeypatch: pytest.MonkeyPatch) -> None:
    group = _registry.ENTRY_POINT_GROUP
    clash = EntryPoint(name="anthropic", value=f"{__name__}:make_fake", group=group)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [clash])
    with pytest.raises(ConfigError):
        known_providers()
    twice = [EntryPoint(name="fake", value=v, group=group) for v in (f"{__name__}:make_fake", "other:make")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: twice)
    with pytest.raises(ConfigError):
        known_providers()
