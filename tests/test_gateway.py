"""The metering gateway over real HTTP on loopback, with the scripted model server as its upstream: answers
relayed unchanged (streams included), usage metered and priced, the real key swapped in, budgets refused,
spend kept across restarts, a 429 held back for everyone, and a stop that does not hang."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from swarmd.gateway.apis import Api, Counts
from swarmd.gateway.prices import Price
from swarmd.gateway.routes import Route
from swarmd.gateway.server import Gateway, Refused
from swarmd.gateway.spend import SPEND_LOG, Badge, Budgets, Limit, Spend, read_summary
from gatewayutil import (
    APIS, ENV, LITELLM_PRICES, OWN_LOGIN, REAL_KEY, TEXT, WAIT_S, Upstream, error_of, metered, parsed,
    request_body, send,
)


@pytest.mark.parametrize("api, stream, include_usage", [
    (Api.CHAT, False, False), (Api.CHAT, True, False), (Api.CHAT, True, True), (Api.RESPONSES, False, False),
    (Api.RESPONSES, True, False), (Api.MESSAGES, False, False), (Api.MESSAGES, True, False)])
def test_the_answer_comes_back_unchanged_and_its_usage_is_metered(
        upstream: Upstream, gateway: Callable[..., Gateway], api: Api, stream: bool, include_usage: bool) -> None:
    gw = gateway()
    badge = gw.admit("worker", "t1", 1, 1)
    data = request_body(api, stream, include_usage=include_usage)
    direct = send(upstream.server.base_url, api, data, REAL_KEY)
    relayed = send(gw.base_url(badge), api, data, badge.token)
    assert relayed[0] == direct[0] == 200
    assert parsed(relayed[2], stream) == parsed(direct[2], stream)
    assert relayed[1]["Content-Type"] == direct[1]["Content-Type"]
    counts = metered(gw)
    assert (counts.input_tokens, counts.cached_tokens, counts.output_tokens) == (1000, 600, 50)
    if api is Api.MESSAGES:  # Anthropic's input_tokens leaves out the cache read and written: added back
        assert counts.cache_write_tokens == 100
    if api is Api.CHAT and stream:  # the gateway always asks for usage; the client sees it only if it asked
        assert upstream.server.requests[-1].body["stream_options"] == {"include_usage": True}
        assert (b'"usage"' in relayed[2]) is include_usage


def test_real_clients_read_the_relayed_streams(
        upstream: Upstream, gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch) -> None:
    from openai import OpenAI

    gw = gateway()
    badge = gw.admit("worker", "t1", 1, 1)
    client = OpenAI(base_url=gw.base_url(badge) + "/v1", api_key=badge.token, max_retries=0, timeout=WAIT_S)
    messages = request_body(Api.CHAT)["messages"]
    chunks = list(client.chat.completions.create(model="test-model", messages=messages, stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == TEXT
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(chunk.usage is None for chunk in chunks)
    asked = list(client.chat.completions.create(model="test-model", messages=messages, stream=True,
                                                stream_options={"include_usage": True}))
    assert asked[-1].usage is not None and asked[-1].usage.prompt_tokens == 1000
    events = list(client.responses.create(model="test-model", instructions="You are a worker.", input="Fix it.",
                                          stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.output_text == TEXT
    assert events[-1].response.usage is not None and events[-1].response.usage.input_tokens == 1000
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # the Anthropic client at hand (the anthropic SDK is not installed)

    messages = [{"role": "user", "content": "Fix the bug."}]
    streamed = list(litellm.completion(model="anthropic/test-model", api_base=gw.base_url(badge), api_key=badge.token,
                                       messages=messages, max_tokens=100, stream=True))
    whole = litellm.stream_chunk_builder(streamed, messages=messages)
    assert whole.choices[0].message.content == TEXT
    assert whole.choices[0].message.tool_calls[0].function.name == "bash"
    assert whole.usage.prompt_tokens == 1000
    assert metered(gw, 4000).input_tokens == 4000


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
@pytest.mark.parametrize("api", APIS)
def test_the_upstream_gets_the_real_key_in_its_apis_header(
        upstream: Upstream, gateway: Callable[..., Gateway], api: Api, header: str) -> None:
    gw = gateway()
    badge = gw.admit("worker", "t1", 1, 1)
    for base in (gw.base_url(badge), gw.url):  # the token in the path and the header, or in the header alone
        assert send(base, api, request_body(api), badge.token, header)[0] == 200
        seen = upstream.last_headers()
        if api is Api.MESSAGES:
            assert seen["x-api-key"] == REAL_KEY and "authorization" not in seen
        else:
            assert seen["authorization"] == f"Bearer {REAL_KEY}" and "x-api-key" not in seen
        assert badge.token not in json.dumps(seen)
    assert metered(gw, 2000).input_tokens == 2000


@pytest.mark.parametrize("api", APIS)
def test_an_unknown_or_revoked_token_is_refused_before_the_upstream(
        upstream: Upstream, gateway: Callable[..., Gateway], api: Api) -> None:
    gw = gateway()
    gone = gw.admit("worker", "t1", 1, 1)
    gw.revoke(gone.token)
    for base, token in [(gw.url + "/agent/swarmd-nobody", "swarmd-nobody"), (gw.url, "swarmd-nobody"),
                        (gw.base_url(gone), gone.token)]:
        status, _, raw = send(base, api, request_body(api), token)
        assert status == 401 and error_of(api, raw)[0] == "authentication_error"
    assert upstream.server.requests == []


@pytest.mark.parametrize("api", APIS)
def test_a_role_without_its_key_is_told_which_variable_to_set(
        upstream: Upstream, gateway: Callable[..., Gateway], api: Api) -> None:
    gw = gateway(environ={})
    badge = gw.admit("worker", "t1", 1, 1)
    status, _, raw = send(gw.base_url(badge), api, request_body(api), badge.token)
    assert status == 401
    kind, message = error_of(api, raw)
    assert kind == "authentication_error" and "UPSTREAM_KEY" in message
    assert upstream.server.requests == []


def test_a_server_of_your_own_gets_no_key(upstream: Upstream, gateway: Callable[..., Gateway]) -> None:
    upstream.server.api_key = None
    gw = gateway(routes={"worker": Route(api_base=upstream.server.base_url)}, environ=ENV)
    badge = gw.admit("worker", "t1", 1, 1)
    for api in APIS:
        assert send(gw.base_url(badge), api, request_body(api), badge.token)[0] == 200
        assert {"authorization", "x-api-key", "api-key"}.isdisjoint(upstream.last_headers())


@pytest.mark.parametrize("environ", [
    pytest.param(ENV, id="key-set"),
    pytest.param({}, id="no-key")])
@pytest.mark.parametrize("api", APIS)
def test_an_own_login_passes_unchanged_and_is_still_metered_and_capped(
        upstream: Upstream, gateway: Callable[..., Gateway], refusals: list[Refused], api: Api,
        environ: dict[str, str]) -> None:
    upstream.server.api_key = OWN_LOGIN
    gw = gateway(Budgets(task=Limit(max_tokens=1000)), environ=environ)
    badge = gw.admit("worker", "t1", 1, 1)
    assert send(gw.base_url(badge), api, request_body(api), OWN_LOGIN, "authorization")[0] == 200
    seen = upstream.last_headers()
    assert seen["authorization"] == f"Bearer {OWN_LOGIN}" and "x-api-key" not in seen
    assert metered(gw).tokens == 1050
    status, _, raw = send(gw.base_url(badge), api, request_body(api), OWN_LOGIN, "authorization")
    assert status == 402 and error_of(api, raw)[1].startswith("swarmd: budget spent")
    assert [refused.scope for refused in refusals] == ["task"] and len(upstream.server.requests) == 1


CYCLE = Budgets(cycle=Limit(max_tokens=1000))


@pytest.mark.parametrize("budgets, role, task, cycle, scope, api", [
    (Budgets(task=Limit(max_tokens=1000)), "worker", "t1", 1, "task", Api.CHAT),
    (Budgets(task=Limit(max_usd=0.001)), "worker", "t1", 1, "task", Api.MESSAGES),
    (Budgets(task=Limit(max_tokens=1000)), "worker", "t2", 1, None, Api.CHAT),
    (CYCLE, "planner", "planner-root@1", 1, "cycle", Api.RESPONSES),
    (CYCLE, "worker", "t2", 1, "cycle", Api.MESSAGES),
    (CYCLE, "judge", "judge-root@1", 1, None, Api.CHAT),
    (CYCLE, "worker", "t2", 2, None, Api.RESPONSES),
    (Budgets(run=Limit(max_tokens=1000)), "judge", "judge-root@2", 2, "run", Api.MESSAGES),
    (Budgets(run=Limit(max_usd=0.001)), "planner", "planner-root@2", 2, "run", Api.CHAT),
])
def test_a_spent_budget_refuses_the_next_request(
        upstream: Upstream, gateway: Callable[..., Gateway], refusals: list[Refused], budgets: Budgets, role: str,
        task: str, cycle: int, scope: str | None, api: Api) -> None:
    route = Route(api_base=upstream.server.openai_base, api_key_env="UPSTREAM_KEY", price=Price.per_million(1, 1))
    gw = gateway(budgets, routes={name: route for name in ("planner", "worker", "judge")})
    first = gw.admit("worker", "t1", 1, 1)
    assert send(gw.base_url(first), api, request_body(api), first.token)[0] == 200  # 1,050 tokens, $0.00105
    badge = gw.admit(role, task, cycle, 2)
    status, _, raw = send(gw.base_url(badge), api, request_body(api), badge.token)
    if scope is None:
        assert status == 200 and refusals == []
        return
    assert status == 402
    kind, message = error_of(api, raw)
    assert kind == "budget_spent" and message.startswith("swarmd: budget spent")
    assert [(refused.badge, refused.scope) for refused in refusals] == [(badge, scope)]
    assert len(upstream.server.requests) == 1


def litellm_cost(name: str, written: int) -> float:
    """USAGE's cost by litellm's price map: fresh input, cache read, cache written, output."""
    entry = LITELLM_PRICES[name]
    return ((1000 - 600 - written) * entry["input_cost_per_token"] + 600 * entry["cache_read_input_token_cost"]
            + written * (entry.get("cache_creation_input_token_cost") or entry["input_cost_per_token"])
            + 50 * entry["output_cost_per_token"])


@pytest.mark.parametrize("api, route_model, asked, price, cost", [
    (Api.CHAT, "gpt-4.1", "test-model", None, litellm_cost("gpt-4.1", 0)),
    (Api.RESPONSES, None, "gpt-4.1", None, litellm_cost("gpt-4.1", 0)),  # no model in the config: the request's
    (Api.MESSAGES, "anthropic/claude-sonnet-4-5", "test-model", None, litellm_cost("claude-sonnet-4-5", 100)),
    (Api.CHAT, "gpt-4.1", "gpt-4.1", Price.per_million(10, 20, 1), (400 * 10 + 600 * 1 + 50 * 20) / 1e6),
    (Api.MESSAGES, "anthropic/no-such-model", "no-such-model", None, None),
])
def test_usage_is_priced(upstream: Upstream, gateway: Callable[..., Gateway], api: Api, route_model: str | None,
                         asked: str, price: Price | None, cost: float | None) -> None:
    route = Route(model=route_model, api_base=upstream.server.openai_base, api_key_env="UPSTREAM_KEY", price=price)
    gw = gateway(routes={"worker": route})
    badge = gw.admit("worker", "t1", 1, 1)
    assert send(gw.base_url(badge), api, request_body(api, model=asked), badge.token)[0] == 200
    assert metered(gw).cost_usd == (None if cost is None else pytest.approx(cost, rel=1e-9))


def test_spend_is_rebuilt_from_its_log_and_a_torn_line_is_skipped(
        upstream: Upstream, gateway: Callable[..., Gateway], tmp_path: Path) -> None:
    idle = gateway()
    idle.stop()  # nothing spent, so only stop() can have written the summary
    assert read_summary(tmp_path)["run"]["input_tokens"] == 0  # type: ignore[index]
    gw = gateway()
    badge = gw.admit("worker", "t1", 1, 1)
    for api in (Api.CHAT, Api.MESSAGES):
        assert send(gw.base_url(badge), api, request_body(api), badge.token)[0] == 200
    before = metered(gw, 2000)
    gw.stop()
    summary = read_summary(tmp_path)
    assert summary is not None and summary["run"]["input_tokens"] == 2000
    assert summary["roles"]["worker"]["output_tokens"] == 100
    with open(tmp_path / SPEND_LOG, "a", encoding="utf-8") as log:
        log.write('{"time": 1.5, "role": "worker", "task": "t1", "cycle": 1, "attempt": 1, "input_tok')  # kill -9
    again = Spend(tmp_path, Budgets(task=Limit(max_tokens=2100)))
    assert again.of_attempt("t1", 1, 1) == before
    assert again.admit(Badge("swarmd-y", "worker", "t1", 1, 2), Counts()) == (
        "task", "the budget of task t1 is spent (2,100 of 2,100 tokens; budget.task)")


def test_a_line_appended_after_a_torn_one_is_kept(tmp_path: Path) -> None:
    (tmp_path / SPEND_LOG).write_text('{"time": 1.5, "role": "worker", "task": "t1", "inp')
    Spend(tmp_path, Budgets()).add(Badge("swarmd-x", "worker", "t1", 1, 1), Counts(100, 10), "chat", None, 200)
    assert Spend(tmp_path, Budgets()).of_attempt("t1", 1, 1) == Counts(100, 10, unpriced_tokens=110)


def test_a_429_holds_back_every_agents_next_request_until_its_retry_after(
        upstream: Upstream, gateway: Callable[..., Gateway]) -> None:
    gw = gateway()
    first, second = gw.admit("worker", "t1", 1, 1), gw.admit("worker", "t2", 1, 1)
    status, headers, raw = send(gw.base_url(first), Api.CHAT, request_body(Api.CHAT, tag="BUSY"), first.token)
    assert status == 429 and headers["Retry-After"] == "1" and error_of(Api.CHAT, raw)[0] == "requests"
    assert gw.spend.of_attempt("t1", 1, 1) is None  # an error is not metered
    assert send(gw.base_url(second), Api.MESSAGES, request_body(Api.MESSAGES), second.token)[0] == 200
    upstream.wait_for(2)
    assert upstream.arrived[1] - upstream.arrived[0] >= 1.0


@pytest.mark.parametrize("api", APIS)
def test_an_upstream_not_listening_is_a_502(upstream: Upstream, gateway: Callable[..., Gateway], api: Api) -> None:
    with socket.socket() as bound:  # bound but not listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        dead = Route(api_base=f"http://127.0.0.1:{bound.getsockname()[1]}/v1", api_key_env="UPSTREAM_KEY")
        gw = gateway(routes={"worker": dead})
        badge = gw.admit("worker", "t1", 1, 1)
        status, _, raw = send(gw.base_url(badge), api, request_body(api, stream=True), badge.token)
    assert status == 502 and error_of(api, raw)[0] == "upstream_unreachable"


@pytest.mark.parametrize("path", ["/", "/agent/swarmd-unknown/v1/messages"])
def test_head_is_answered(gateway: Callable[..., Gateway], path: str) -> None:
    where = urlsplit(gateway().url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=WAIT_S)
    try:
        connection.request("HEAD", path)
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_stop_returns_with_a_request_waiting_on_a_slow_upstream(
        upstream: Upstream, gateway: Callable[..., Gateway]) -> None:
    gw = gateway()
    badge = gw.admit("worker", "t1", 1, 1)
    outcome: list[Any] = []

    def ask() -> None:
        try:
            outcome.append(send(gw.base_url(badge), Api.CHAT, request_body(Api.CHAT, True, tag="SLOW"), badge.token)[0])
        except OSError as exc:  # the gateway closed the connection
            outcome.append(exc)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    upstream.wait_for(1)  # the upstream has the request and sits on it
    stopping = threading.Thread(target=gw.stop, daemon=True)
    stopping.start()
    stopping.join(WAIT_S)
    assert not stopping.is_alive()
    asking.join(WAIT_S)
    assert not asking.is_alive() and outcome and outcome[0] != 200
