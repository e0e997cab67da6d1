"""Usage and cost: the totals match what the server reported, per dialogue and per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import ProviderCall
from schemas.errors import ConfigError
from simulator.providers import (
    ChatMessage,
    ModelPrice,
    PriceTable,
    Request,
    TokenUsage,
    UsageMeter,
    load_prices,
)
from simulator.providers.loopback import Script, serve_loopback
from tests.simulator.providers.conftest import OPENAI, Protocol, client_for

pytestmark = pytest.mark.anyio

ASK = Request(messages=[ChatMessage.user("hello")])


async def test_totals_match_the_server_and_roll_up_to_the_run(proto: Protocol) -> None:
    reported = [(120, 30), (400, 55), (77, 1)]
    price = ModelPrice(input=3.0, output=15.0)
    events: list[ProviderCall] = []

    async def publish(event: ProviderCall) -> None:
        events.append(event)

    run = UsageMeter()
    dialogues = [run.child(), run.child()]
    script = Script(*(proto.ok(input_tokens=i, output_tokens=o) for i, o in reported))
    async with serve_loopback(script) as server:
        async with client_for(proto, server, prices={proto.spec: price}) as client:
            user = client.bind(role="user", meter=dialogues[0], on_call=publish)
            agent = client.bind(role="agent", meter=dialogues[1], on_call=publish)
            responses = [await user.complete(ASK), await agent.complete(ASK), await agent.complete(ASK)]

    expected_costs = [(i * 3.0 + o * 15.0) / 1e6 for i, o in reported]
    assert [r.cost_usd for r in responses] == pytest.approx(expected_costs)
    first, second = (d.totals for d in dialogues)
    assert (first.requests, first.input_tokens, first.output_tokens) == (1, 120, 30)
    assert (second.requests, second.input_tokens, second.output_tokens) == (2, 477, 56)
    total = run.totals
    assert (total.requests, total.input_tokens, total.output_tokens) == (3, 597, 86)
    assert total.cost_usd == pytest.approx(sum(expected_costs))
    assert run.by_model()[proto.spec].requests == 3
    record = total.as_record()
    assert (record.input_tokens, record.output_tokens, record.requests) == (597, 86, 3)

    assert [(e.role, e.model, e.input_tokens, e.output_tokens) for e in events] == [
        ("user", proto.spec, 120, 30),
        ("agent", proto.spec, 400, 55),
        ("agent", proto.spec, 77, 1),
    ]
    assert [e.cost_usd for e in events] == pytest.approx(expected_costs)
    assert all(e.latency_ms > 0 and not e.cached for e in events)


async def test_an_unpriced_model_costs_none_not_a_guess() -> None:
    meter = UsageMeter()
    async with serve_loopback(Script(OPENAI.ok(input_tokens=9, output_tokens=9))) as server:
        async with client_for(OPENAI, server) as client:
            response = await client.bind(meter=meter).complete(
                Request(messages=[ChatMessage.user("hi")], model="Qwen/Qwen3-8B")
            )
    assert response.cost_usd is None
    assert (meter.totals.unpriced_requests, meter.totals.cost_usd, meter.totals.input_tokens) == (1, 0.0, 9)


def test_built_in_prices_cover_dated_snapshots_and_overrides_win() -> None:
    table = PriceTable({"gpt-4.1": ModelPrice(input=1.0, output=1.0)})
    assert table.price("anthropic", "claude-haiku-4-5-20251001") == ModelPrice(input=1.0, output=5.0)
    assert table.price("openai", "gpt-4.1-2025-04-14") == ModelPrice(input=1.0, output=1.0)
    assert table.price("openai", "gpt-4o") == ModelPrice(input=2.5, output=10.0)
    assert table.price("openai", "my-finetune") is None
    assert table.cost("openai", "gpt-4o", TokenUsage(input_tokens=1_000_000, output_tokens=100_000)) == 3.5


def test_price_files_in_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "prices.toml"
    toml.write_text('["openai:Qwen/Qwen3-8B"]\ninput = 0.1\noutput = 0.2\n')
    js = tmp_path / "prices.json"
    js.write_text('{"claude-sonnet-5": {"input": 9, "output": 9}}')
    assert load_prices(toml) == {"openai:Qwen/Qwen3-8B": ModelPrice(input=0.1, output=0.2)}
    table = PriceTable(load_prices(js))
    assert table.price("anthropic", "claude-sonnet-5") == ModelPrice(input=9.0, output=9.0)


@pytest.mark.parametrize(
    "content",
    [
        '{"gpt-x": {"input": "cheap", "output": 1}}',
        '{"gpt-x": {"input": 1}}',
        '{"gpt-x": {"input": -1, "output": 1}}',
        "[1",
    ],
)
def test_a_bad_price_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ConfigError):
        load_prices(path)
