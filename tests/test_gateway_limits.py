"""What the gateway refuses and how it keeps its caps hard: calls it could not meter, another API than the
role's, many calls at once against one budget, answers nobody can price against a dollar budget, and a
stream cut short before it said its usage. Real HTTP against swarmd.testing's scripted server."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gatewayutil import PATHS, WAIT_S, Upstream, error_of, request_body, send

from swarmd.gateway.apis import Api
from swarmd.gateway.routes import Route
from swarmd.gateway.server import Gateway
from swarmd.gateway.spend import Budgets, Limit


def post(base: str, path: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, b"{}", {"Authorization": f"Bearer {key}",
                                                          "Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("path", ["/v1/embeddings", "/v1/completions", "/v1/batches", "/v1/messages/batches",
                                  "/v1/responses/resp_1/cancel", "/v1/files"])
def test_a_call_the_gateway_cannot_meter_is_refused(upstream: Upstream, gateway: Callable[..., Gateway],
                                                    path: str) -> None:
    gw = gateway()
    badge = gw.admit("worker", "t1", 1, 1)
    status, raw = post(gw.base_url(badge), path, badge.token)
    assert status == 403 and "is not a call the gateway lets the worker make" in raw.decode()
    assert upstream.server.requests == [], "nothing reached the provider, with its key"


def test_a_responses_call_in_the_background_is_refused(upstream: Upstream, gateway: Callable[..., Gateway]) -> None:
    gw = gateway()
    badge = gw.admit("worker", "t1", 1, 1)
    status, _, raw = send(gw.base_url(badge), Api.RESPONSES, {**request_body(Api.RESPONSES), "background": True},
                          badge.token)
    assert status == 400 and "`background: true` is not supported" in error_of(Api.RESPONSES, raw)[1]
    assert upstream.server.requests == []


def test_a_role_may_speak_only_its_agent_s_api(upstream: Upstream, gateway: Callable[..., Gateway]) -> None:
    """An aider role (OpenAI chat) cannot reach Anthropic's API, and with it the Anthropic key."""
    chat_only = Route(api_base=upstream.server.openai_base, api_key_env="UPSTREAM_KEY", apis=frozenset({Api.CHAT}))
    gw = gateway(routes={"worker": chat_only})
    badge = gw.admit("worker", "t1", 1, 1)
    status, _, raw = send(gw.base_url(badge), Api.MESSAGES, request_body(Api.MESSAGES), badge.token)
    assert status == 403 and "meters and caps chat" in error_of(Api.MESSAGES, raw)[1]
    assert send(gw.base_url(badge), Api.CHAT, request_body(Api.CHAT), badge.token)[0] == 200
    assert len(upstream.server.requests) == 1


def test_calls_at_once_cannot_each_pass_a_budget_the_others_break(upstream: Upstream,
                                                                  gateway: Callable[..., Gateway]) -> None:
    """Twenty calls in flight together against a 1,000-token task budget: what each may cost is held
    against the budget from the moment it is let through, so at most the calls already in flight when
    the budget went are over it, not all twenty."""
    gw = gateway(Budgets(task=Limit(max_tokens=1000)))
    badge = gw.admit("worker", "t1", 1, 1)
    body = request_body(Api.CHAT, tag="You are a worker. " + "context " * 500)  # about 1,000 tokens of prompt
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(send(gw.base_url(badge), Api.CHAT, body, badge.token)[0]))
               for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert len(statuses) == 20 and set(statuses) <= {200, 402}
    assert statuses.count(200) <= 2, statuses
    assert len(upstream.server.requests) == statuses.count(200)


def test_a_dollar_budget_refuses_a_model_nobody_can_price(upstream: Upstream, gateway: Callable[..., Gateway]) -> None:
    route = Route(api_base=upstream.server.openai_base, api_key_env="UPSTREAM_KEY")  # no price, no known model
    gw = gateway(Budgets(run=Limit(max_usd=20.0)), routes={"worker": route})
    badge = gw.admit("worker", "t1", 1, 1)
    assert send(gw.base_url(badge), Api.CHAT, request_body(Api.CHAT, model="nobody-knows-me"), badge.token)[0] == 200
    status, _, raw = send(gw.base_url(badge), Api.CHAT, request_body(Api.CHAT, model="nobody-knows-me"), badge.token)
    assert status == 402
    message = error_of(Api.CHAT, raw)[1]
    assert "1,050 tokens of a model with no known price, so $20 cannot be held; set agents.<role>.price" in message


class StallingUpstream:
    """An OpenAI chat stream that sends its first event, then waits for `go`, then either sends a second
    event and ends properly, or (`break_off`) drops the connection mid-stream."""

    FIRST = b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}\n\n'
    SECOND = b'data: {"choices": [{"index": 0, "delta": {"content": "lo"}}]}\n\n'

    def __init__(self, break_off: bool) -> None:
        self.go = threading.Event()
        self.break_off = break_off
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + _chunk(self.FIRST))
            self.go.wait(WAIT_S)
            if not self.break_off:
                conn.sendall(_chunk(self.SECOND) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    def close(self) -> None:
        self.go.set()
        self.thread.join(WAIT_S)
        self.listener.close()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stream_request(gw: Gateway, token: str) -> bytes:
    body = json.dumps(request_body(Api.CHAT, stream=True)).encode()
    return (f"POST /agent/{token}{PATHS[Api.CHAT]} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def test_a_stream_the_agent_leaves_before_its_usage_is_charged_an_estimate(gateway: Callable[..., Gateway]) -> None:
    stalling = StallingUpstream(break_off=False)
    try:
        gw = gateway(routes={"worker": Route(api_base=stalling.base)})
        charged = threading.Event()
        add = gw.spend.add

        def observed(*args: Any, **kwargs: Any) -> None:  # the real Spend.add, then word that it ran
            add(*args, **kwargs)
            charged.set()

        gw.spend.add = observed  # type: ignore[method-assign]
        badge = gw.admit("worker", "t1", 1, 1)
        host, port = gw.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=WAIT_S) as conn:
            conn.sendall(stream_request(gw, badge.token))
            received = b""
            while b"Hel" not in received:
                received += conn.recv(4096)
        stalling.go.set()  # the next event finds the agent gone
        assert charged.wait(WAIT_S), "never charged"  # once the relay finds it gone
        counts = gw.spend.of_attempt("t1", 1, 1)
        assert counts is not None
    finally:
        stalling.close()
    assert counts.input_tokens > 0 and counts.output_tokens > 0
    line = json.loads((Path(gw.spend.folder) / "spend.jsonl").read_text().splitlines()[-1])
    assert line["estimated"] is True


def test_a_stream_the_provider_breaks_off_is_broken_off_for_the_agent_too(gateway: Callable[..., Gateway]) -> None:
    """Not a clean end the agent would take for the whole answer."""
    import http.client

    stalling = StallingUpstream(break_off=True)
    try:
        gw = gateway(routes={"worker": Route(api_base=stalling.base)})
        badge = gw.admit("worker", "t1", 1, 1)
        connection = http.client.HTTPConnection(gw.url.removeprefix("http://"), timeout=WAIT_S)
        body = json.dumps(request_body(Api.CHAT, stream=True))
        connection.request("POST", f"/agent/{badge.token}{PATHS[Api.CHAT]}", body,
                           {"Authorization": f"Bearer {badge.token}", "Content-Type": "application/json"})
        answer = connection.getresponse()
        assert b"Hel" in answer.read1(4096)
        stalling.go.set()  # and the provider's connection drops
        with pytest.raises(http.client.IncompleteRead):
            answer.read()
    finally:
        stalling.close()
