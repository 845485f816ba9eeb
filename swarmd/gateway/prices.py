"""What a model's tokens cost: the config's `price`, else litellm's price map, read as the JSON file
litellm ships (importing litellm would take seconds and hundreds of MB in the daemon), else unknown."""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from swarmd.gateway.apis import Counts

log = logging.getLogger(__name__)

PRICE_MAP = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class Price:
    """US dollars per token."""

    input: float
    output: float
    cached_input: float
    cache_write: float

    @classmethod
    def per_million(cls, input: float, output: float, cached_input: float | None = None) -> Price:
        cached = input if cached_input is None else cached_input
        return cls(input / 1e6, output / 1e6, cached / 1e6, input / 1e6)

    def cost(self, counts: Counts) -> float:
        fresh = max(0, counts.input_tokens - counts.cached_tokens - counts.cache_write_tokens)
        return (fresh * self.input + counts.cached_tokens * self.cached_input
                + counts.cache_write_tokens * self.cache_write + counts.output_tokens * self.output)


@cache
def _price_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        try:
            data = json.loads((Path(location) / PRICE_MAP).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("cannot read litellm's price map in %s", location, exc_info=True)
            continue
        if isinstance(data, dict):
            return data
    return {}


def known_price(model: str) -> Price | None:
    """litellm's price for `model` ("provider/name" or "name"), or None if it has none."""
    table = _price_map()
    entry = table.get(model)
    if entry is None and "/" in model:
        entry = table.get(model.partition("/")[2])
    if not isinstance(entry, dict):
        return None
    try:
        input_, output = float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])
    except (KeyError, TypeError, ValueError):
        return None
    cached, write = entry.get("cache_read_input_token_cost"), entry.get("cache_creation_input_token_cost")
    return Price(input_, output, float(cached) if isinstance(cached, (int, float)) else input_,
                 float(write) if isinstance(write, (int, float)) and write else input_)
