"""What is sent and answered: the kinds of request the benchmark times (`Case`), the conversation every
request carries, the text of the answer, the headers of each API, and which of the scripted server's
captured answers a request gets."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any

MODELS = {"chat": "gpt-4o", "messages": "claude-sonnet-4-5"}  # priced from litellm's map, as a real run is
DIRECT_KEY = "sk-benchmark-direct"
UNPACED = "x-benchmark-unpaced"  # the calibration asks the light upstream to answer at once
SYSTEM = "You are a worker of a swarm of coding agents. Do the task below, run the tests, commit, hand off."
WORDS = ("parser config loader cache index report export command option flag schema handler request response "
         "client server token query record entry node branch commit merge retry timeout limit output format "
         'module function class test fixture error message path file folder def return "value" {x} \\ ->').split()
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')


@dataclass(frozen=True)
class Case:
    name: str
    api: str  # chat or messages
    stream: bool

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/messages"


def conversation(kb: int, seed: int = 1) -> tuple[list[dict[str, str]], int]:
    """Alternating user and assistant messages of about `kb` KB in all, ending with a user message; and
    how many assistant turns they hold."""
    rng = random.Random(seed)
    messages: list[dict[str, str]] = []
    size = 0
    while size < kb * 1024 or len(messages) % 2 == 0:
        lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randint(4, 40))]
        messages.append({"role": "assistant" if len(messages) % 2 else "user", "content": "\n".join(lines)})
        size += len(json.dumps(messages[-1]))
    return messages, len(messages) // 2


def request_body(case: Case, messages: list[dict[str, str]]) -> bytes:
    if case.api == "chat":
        body: dict[str, Any] = {"model": MODELS["chat"], "messages": [{"role": "system", "content": SYSTEM}, *messages]}
    else:
        body = {"model": MODELS["messages"], "max_tokens": 8192, "system": SYSTEM, "messages": messages}
    return json.dumps({**body, "stream": case.stream}).encode()


def answer_text(tokens: int) -> str:
    rng = random.Random(2)
    text = ""
    while len(text) < 16 * tokens:  # the scripted server streams text in pieces of 16 characters
        text += rng.choice(WORDS) + " "
    return text[:16 * tokens]


def auth(case: Case, key: str) -> dict[str, str]:
    if case.api == "chat":
        return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return {"Content-Type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01"}


def answer_key(path: str, body: bytes) -> tuple[str, bool, bool]:
    """Which captured answer a request gets: (api, streamed, with a usage chunk)."""
    api = "chat" if path.endswith("/chat/completions") else "messages"
    return api, bool(_STREAM.search(body)), api == "chat" and bool(_INCLUDE_USAGE.search(body))
