"""Cost estimates from the shipped price table: matching model names, cached tokens, overrides, unknowns."""

from __future__ import annotations

import json
import logging
from importlib import resources

import pytest

from crewtrace.usage.pricing import Price, PriceTable
from crewtrace.usage.tokens import Usage

TABLE = PriceTable.load()
TABLE_PATH = resources.files("crewtrace.usage").joinpath("data/prices.json")


@pytest.mark.parametrize(
    ("model", "provider", "expected"),
    [
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", None, "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "openai", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", None, "gpt-4o"),
        ("anthropic/claude-3-5-sonnet-20241022", None, "claude-3-5-sonnet"),
        ("claude-sonnet-4-5-20250929", "anthropic", "claude-sonnet-4-5"),
        ("gemini/gemini-2.0-flash", None, "gemini-2.0-flash"),
        ("gemini-1.5-flash-002", "gemini", "gemini-1.5-flash"),
        ("bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0", None, "claude-3-5-sonnet"),
        ("groq/llama-3.3-70b-versatile", None, "llama-3.3-70b-versatile"),
        ("deepseek/deepseek-chat", None, "deepseek-chat"),
        ("azure/gpt-4o", None, "gpt-4o"),
    ],
)
def test_model_names_find_their_price(model, provider, expected):
    found = TABLE.find(model, provider)
    shipped = json.loads((TABLE_PATH).read_text())["models"]
    prices = {name: entry for models in shipped.values() for name, entry in models.items()}
    assert found == Price(**{k: float(v) for k, v in prices[expected].items()})


@pytest.mark.parametrize("model", ["o1-mini-preview-x", "gpt-4o-audio-preview", "gpt-7", "claude-sonnet-4-9", ""])
def test_unknown_models_have_no_price(model):
    assert TABLE.find(model, "openai") is None or model == ""
    assert TABLE.find(model, None) is None


def test_local_models_cost_zero():
    assert TABLE.find("ollama/llama3.1", None) == Price(0.0, 0.0)
    assert TABLE.find("crewtrace-offline", "crewtrace") == Price(0.0, 0.0)


def test_cost_counts_cached_input_at_its_own_price():
    price = Price(input=2.5, output=10.0, cached_input=1.25)
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_input_tokens=400)
    assert price.cost(usage) == pytest.approx((600 * 2.5 + 400 * 1.25 + 100 * 10.0) / 1e6)
    write = Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    usage = Usage(input_tokens=1250, output_tokens=80, cache_read_input_tokens=1000, cache_write_input_tokens=200)
    assert write.cost(usage) == pytest.approx((50 * 3.0 + 1000 * 0.3 + 200 * 3.75 + 80 * 15.0) / 1e6)


def test_unknown_model_gets_no_cost_and_one_notice(caplog):
    table = PriceTable.load()
    with caplog.at_level(logging.WARNING, logger="crewtrace.usage.pricing"):
        assert table.cost("mystery-1", "acme", Usage(10, 10)) is None
        assert table.cost("mystery-1", "acme", Usage(10, 10)) is None
    assert len([r for r in caplog.records if "mystery-1" in r.getMessage()]) == 1


def test_overrides_from_a_dict_and_a_file(tmp_path):
    table = PriceTable.load(
        {"mystery-1": {"input": 1.0, "output": 2.0}, "openai": {"gpt-4o": {"input": 9, "output": 9}}}
    )
    assert table.cost("mystery-1", "acme", Usage(1_000_000, 1_000_000)) == pytest.approx(3.0)
    assert table.find("gpt-4o", "openai") == Price(9.0, 9.0)
    assert table.find("gpt-4o-mini", "openai") is not None  # the rest of the shipped table stays
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"acme": {"mystery-2": {"input": 0.5, "output": 0.5}}}}))
    assert PriceTable.load(path).find("acme/mystery-2", None) == Price(0.5, 0.5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("/nonexistent/prices.json", "cannot read price file"),
        ({"m": {"input": "cheap", "output": 1}}, "must be a number"),
        ({"m": {"output": 1}}, "needs numeric 'input' and 'output'"),
        ({"n": 3}, "must be an object"),
    ],
)
def test_bad_price_overrides_are_one_clear_error(override, message):
    with pytest.raises(ValueError, match=message):
        PriceTable.load(override)


def test_lookups_are_remembered_within_a_bound():
    table = PriceTable.load()
    first = table.find("gpt-4o-mini-2024-07-18", "openai")
    assert first is not None and table.find("gpt-4o-mini-2024-07-18", "openai") is first
    assert table.find("no-such-model", None) is None and table.find("no-such-model", None) is None
    for n in range(5000):
        table.find(f"made-up-{n}", "openai")
    assert len(table._found) <= 4096
    assert table.find("gpt-4o-mini", "openai") == TABLE.find("gpt-4o-mini", "openai")  # still answers past it
