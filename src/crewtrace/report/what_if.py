"""What each task's exact token counts would have cost on the other models of the same provider, from the price
database (genai-prices, with the user's CREWTRACE_PRICES laid over it). Facts only: no advice."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from crewtrace import attributes
from crewtrace.report.records import SpanRecord
from crewtrace.report.spans import is_llm
from crewtrace.report.summary import Summary
from crewtrace.usage import price_db
from crewtrace.usage.pricing import PRICES_ENV, Price, PriceTable
from crewtrace.usage.tokens import Usage

_PER = 1_000_000


@dataclass
class WhatIf:
    """One task's LLM calls priced on each model of their provider."""

    task: str
    provider: str
    models: list[str]  # the models the task's calls used
    cost_usd: float | None  # what they cost, as recorded
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # (model, cost), cheapest first


@cache
def _prices() -> PriceTable:
    return PriceTable.load(os.environ.get(PRICES_ENV) or None)


def _provider_and_model(record: SpanRecord) -> tuple[str | None, str | None]:
    provider = record.attributes.get(attributes.GEN_AI_PROVIDER_NAME)
    model = record.attributes.get(attributes.GEN_AI_REQUEST_MODEL)
    return (str(provider) if provider else None), (str(model) if model else None)


def price_of(record: SpanRecord) -> Price | None:
    """The price of the model an LLM span called, or None when unknown."""
    provider, model = _provider_and_model(record)
    return _prices().find(model, provider)


def cached_savings(calls: Sequence[SpanRecord], tokens: int) -> float | None:
    """What ``tokens`` input tokens would cost less if read from the prompt cache of the calls' model (the
    model of the first call); None without a price or a cached price."""
    price = price_of(calls[0]) if calls else None
    if price is None or price.cached_input is None:
        return None
    return tokens * (price.input - price.cached_input) / _PER


def _alternatives(provider: str, usages: Sequence[Usage]) -> list[tuple[str, float]]:
    found = price_db.provider(provider)
    if found is None:
        return []
    priced = []
    for model in found.models:
        hit = price_db.lookup(found, model.id)
        if hit is not None and hit.price is not None:
            priced.append((model.id, sum(hit.price.cost(usage) for usage in usages)))
    return sorted(priced, key=lambda pair: (pair[1], pair[0]))


def what_if(run: Summary) -> list[WhatIf]:
    """For each task whose LLM calls all went to one provider the database knows, their cost on its models."""
    rows = []
    for task in run.tasks:
        calls = [r for r in run.below(task.span_id) if is_llm(r)]
        providers = {_provider_and_model(c)[0] for c in calls}
        if not calls or len(providers) != 1 or None in providers:
            continue
        (provider,) = providers
        usages = [u for c in calls if (u := Usage.of_span(c.attributes)) is not None]
        alternatives = _alternatives(str(provider), usages)
        if alternatives:
            models = sorted({m for c in calls if (m := _provider_and_model(c)[1])})
            rows.append(WhatIf(task.name, str(provider), models, task.cost_usd, alternatives))
    return rows
