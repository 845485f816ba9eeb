"""ScriptedModelServer: an OpenAI- and Anthropic-compatible HTTP server on loopback that plays a Script.

It speaks `POST /v1/chat/completions` (also `/chat/completions`) and `POST /v1/messages`, with and without
streaming, and answers errors in each API's shape. See docs/testing.md.
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from swarmd.testing.script import ErrorReply, Playback, Script, Turn

OPENAI, ANTHROPIC = "openai", "anthropic"
PATHS = {"/v1/chat/completions": OPENAI, "/chat/completions": OPENAI, "/v1/messages": ANTHROPIC}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it came, with the answer chosen. `headers` are kept verbatim, API keys included."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON body; None if it was not JSON
    api: str | None  # "openai", "anthropic", or None for an unknown path
    conversation: int | None  # the script's conversation it belongs to, numbered from 0
    reply: int | None  # the number of the reply it asked for, from 0
    status: int  # the HTTP status answered


class ScriptedModelServer:
    """Serves `script` on http://HOST:PORT (port 0: a free one) from a daemon thread, between start() and
    stop(), or as a context manager. With `api_key`, a request whose `Authorization: Bearer` or
    `x-api-key` header differs is answered 401. `on_request` is called with every RecordedRequest."""

    def __init__(
        self,
        script: Script | Mapping[str, Any] | str | os.PathLike[str],
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        if isinstance(script, Script):
            script = script.validated()
        elif isinstance(script, Mapping):
            script = Script.from_dict(script)
        elif isinstance(script, (str, os.PathLike)):
            script = Script.load(script)
        else:
            raise TypeError(f"a script is a Script, a mapping or the path of a YAML file, not {type(script).__name__}")
        self.script = script
        self.api_key = api_key
        self.on_request = on_request
        self._address = (host, port)
        self._playback = Playback(script)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started: call start() or use it in a `with` block")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """http://HOST:PORT: the base URL of Anthropic clients (which add /v1/messages themselves)."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def openai_base(self) -> str:
        """base_url + "/v1": the base URL of OpenAI clients (which add /chat/completions)."""
        return self.base_url + "/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def failures(self) -> list[str]:
        """What went against the script: unmet expectations, requests no reply was scripted for, requests
        that were not valid JSON or came to an unknown path. Scripted errors and wrong API keys are not."""
        return self._playback.failures

    def start(self) -> ScriptedModelServer:
        if self._httpd is not None:
            raise RuntimeError("the server is already started")
        self._httpd = _HTTPServer(self._address, self)
        self._httpd.socket.setblocking(False)  # a connection gone before accept() does not block the loop
        self._wake = socket.socketpair()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=f"scripted-model-server:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: delays are cut short, requests being answered finish, the port is released."""
        if self._httpd is None or self._thread is None or self._wake is None:
            return
        self._stopping.set()
        self._wake[1].send(b"x")
        self._thread.join()
        self._httpd.server_close()  # joins the threads answering requests
        for end in self._wake:
            end.close()
        self._httpd = self._thread = self._wake = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        assert self._httpd is not None and self._wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake[0] for key, _ in ready):
                    return
                self._httpd.handle_request()  # accepts, and answers from a new thread

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
        if self.on_request is not None:
            self.on_request(request)

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        return self.api_key is None or self.api_key in (headers.get("x-api-key"),
                                                        headers.get("authorization", "").removeprefix("Bearer "))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins them
    timeout = 0  # handle_request() is called only when a connection waits

    def __init__(self, address: tuple[str, int], owner: ScriptedModelServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = 30  # on the connection's socket: a client that stops reading or writing is dropped
    server_version = "swarmd-scripted-model"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the requests are recorded instead

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client went away (its own timeout, say); what it asked is recorded

    def _read(self) -> tuple[dict[str, str], Any, str | None]:
        """The headers, the JSON body (None if there is none) and what is wrong with it. The body is read
        whatever the answer: closing a connection with unread data resets it, and the answer may be lost."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            length = max(0, int(headers.get("content-length") or 0))
        except ValueError:
            length = 0
        raw = self.rfile.read(length)
        try:
            return headers, json.loads(raw), None
        except ValueError as exc:
            return headers, None, f"the request body is not valid JSON: {exc}"

    def do_POST(self) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path.rstrip("/")
        api = PATHS.get(path)
        headers, body, problem = self._read()
        if api is None:
            return self._refuse(None, headers, body, 404, f"no such path: POST {path}; this server answers POST "
                                "/v1/chat/completions (OpenAI) and POST /v1/messages (Anthropic)")
        if not owner._authorized(headers):
            return self._answer_error(api, headers, body, Turn(None, None), ErrorReply(
                401, "the API key sent does not match the one the scripted server was given"))
        if problem:
            return self._refuse(api, headers, body, 400, problem)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._refuse(api, headers, body, 400, "the request body has no `messages` list")
        turn = owner._playback.answer(body)
        if turn.error is not None:
            return self._answer_error(api, headers, body, turn, turn.error)
        self._record(api, headers, body, turn, 200)
        assert turn.reply is not None
        owner._stopping.wait(turn.reply.delay)
        model = str(body.get("model") or "scripted")
        if body.get("stream") and api == OPENAI:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream((f"data: {json.dumps(c)}\n\n" for c in _openai_chunks(turn, model, include_usage)),
                         last="data: [DONE]\n\n")
        elif body.get("stream"):
            self._stream(f"event: {name}\ndata: {json.dumps(e)}\n\n" for name, e in _anthropic_events(turn, model))
        else:
            respond = _openai_response if api == OPENAI else _anthropic_response
            self._send_json(200, respond(turn, model))

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        status, message = (405, f"use POST for {path}") if path in PATHS else (404, f"no such path: {path}")
        headers, body, _ = self._read()
        self._refuse(PATHS.get(path), headers, body, status, message)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _refuse(self, api: str | None, headers: dict[str, str], body: Any, status: int, message: str) -> None:
        """Answer a request that is not one the script can answer; a failure. An unknown path: OpenAI's shape."""
        self.server.owner._playback.fail(f"{self.command} {self.path}: {message}")
        self._answer_error(api, headers, body, Turn(None, None), ErrorReply(status, message))

    def _answer_error(self, api: str | None, headers: dict[str, str], body: Any, turn: Turn, error: ErrorReply) -> None:
        self._record(api, headers, body, turn, error.status)
        extra = {} if error.retry_after is None else {"Retry-After": f"{error.retry_after:g}"}
        self._send_json(error.status, _error_body(api or OPENAI, error), extra)

    def _record(self, api: str | None, headers: dict[str, str], body: Any, turn: Turn, status: int) -> None:
        self.server.owner._record(RecordedRequest(self.command, self.path, headers, body, api,
                                                  turn.conversation, turn.index, status))

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, events: Iterator[str], last: str = "") -> None:
        """Server-sent events; the connection closes after them (HTTP/1.0), which ends the stream."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for event in events:
            self.wfile.write(event.encode())
        self.wfile.write(last.encode())


# --- the two APIs' formats ---

_OPENAI_ERRORS = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
                  403: ("permission_error", None), 404: ("invalid_request_error", "model_not_found"),
                  429: ("requests", "rate_limit_exceeded")}
_ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def _error_body(api: str, error: ErrorReply) -> dict[str, Any]:
    message = error.message or f"{http.client.responses.get(error.status, 'Error')} (scripted error {error.status})"
    if api == OPENAI:
        kind, code = _OPENAI_ERRORS.get(error.status, ("server_error" if error.status >= 500 else
                                                       "invalid_request_error", None))
        return {"error": {"message": message, "type": error.type or kind, "param": None, "code": error.code or code}}
    kind = _ANTHROPIC_ERRORS.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": error.type or kind, "message": message}}


def _pieces(text: str, size: int = 16) -> list[str]:
    """Streamed text comes in several pieces, so that clients are seen to join them."""
    return [text[start:start + size] for start in range(0, len(text), size)]


def _arguments(arguments: Mapping[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _call_id(api: str, turn: Turn, n: int, given: str | None) -> str:
    return given or f"{'call' if api == OPENAI else 'toolu'}_{turn.conversation}_{turn.index}_{n}"


def _openai_usage(turn: Turn) -> dict[str, Any]:
    assert turn.usage is not None and turn.usage.input_tokens is not None and turn.usage.output_tokens is not None
    usage: dict[str, Any] = {"prompt_tokens": turn.usage.input_tokens, "completion_tokens": turn.usage.output_tokens,
                             "total_tokens": turn.usage.input_tokens + turn.usage.output_tokens}
    if turn.usage.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": turn.usage.cached_tokens}
    return usage


def _openai_head(turn: Turn, model: str, kind: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-scripted-{turn.conversation}-{turn.index}", "object": kind,
            "created": int(time.time()), "model": model, "system_fingerprint": None}


def _openai_response(turn: Turn, model: str) -> dict[str, Any]:
    assert turn.reply is not None
    calls = turn.reply.tool_calls
    message: dict[str, Any] = {"role": "assistant", "content": turn.reply.text or (None if calls else "")}
    if calls:
        message["tool_calls"] = [{"id": _call_id(OPENAI, turn, n, call.id), "type": "function",
                                  "function": {"name": call.name, "arguments": _arguments(call.arguments)}}
                                 for n, call in enumerate(calls)]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if calls else "stop"}
    return {**_openai_head(turn, model, "chat.completion"), "choices": [choice], "usage": _openai_usage(turn)}


def _openai_chunks(turn: Turn, model: str, include_usage: bool) -> Iterator[dict[str, Any]]:
    assert turn.reply is not None
    head = _openai_head(turn, model, "chat.completion.chunk")
    tail = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "choices": [choice], **tail}

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(turn.reply.text or ""):
        yield chunk({"content": piece})
    for n, call in enumerate(turn.reply.tool_calls):
        yield chunk({"tool_calls": [{"index": n, "id": _call_id(OPENAI, turn, n, call.id), "type": "function",
                                     "function": {"name": call.name, "arguments": ""}}]})
        for piece in _pieces(_arguments(call.arguments)):
            yield chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if turn.reply.tool_calls else "stop")
    if include_usage:
        yield {**head, "choices": [], "usage": _openai_usage(turn)}


def _anthropic_usage(turn: Turn) -> dict[str, Any]:
    assert turn.usage is not None and turn.usage.input_tokens is not None
    cached, created = turn.usage.cached_tokens, turn.usage.cache_creation_tokens
    usage: dict[str, Any] = {"input_tokens": turn.usage.input_tokens - cached - created,
                             "output_tokens": turn.usage.output_tokens}
    if cached or created:
        usage.update(cache_read_input_tokens=cached, cache_creation_input_tokens=created)
    return usage


def _anthropic_input(arguments: Mapping[str, Any] | str) -> Any:
    """A tool_use block's `input` is JSON, not text: raw arguments go as the object they parse to, or (not
    what the real API would do) as a JSON string. Streaming sends them byte for byte."""
    if not isinstance(arguments, str):
        return arguments
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    return parsed if isinstance(parsed, dict) else arguments


def _anthropic_response(turn: Turn, model: str) -> dict[str, Any]:
    assert turn.reply is not None
    reply = turn.reply
    content: list[dict[str, Any]] = []
    if reply.text or not reply.tool_calls:
        content.append({"type": "text", "text": reply.text or ""})
    content += [{"type": "tool_use", "id": _call_id(ANTHROPIC, turn, n, call.id), "name": call.name,
                 "input": _anthropic_input(call.arguments)} for n, call in enumerate(reply.tool_calls)]
    return {"id": f"msg_scripted_{turn.conversation}_{turn.index}", "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
            "stop_sequence": None, "usage": _anthropic_usage(turn)}


def _anthropic_events(turn: Turn, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    assert turn.reply is not None
    message = _anthropic_response(turn, model)
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    first_call = len(message["content"]) - len(turn.reply.tool_calls)
    for index, block in enumerate(message["content"]):
        if index < first_call:
            opening, kind, key, pieces = {"type": "text", "text": ""}, "text_delta", "text", _pieces(block["text"])
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            arguments = _arguments(turn.reply.tool_calls[index - first_call].arguments)  # raw ones unchanged
            kind, key, pieces = "input_json_delta", "partial_json", [""] + _pieces(arguments)
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}
        for piece in pieces:
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": kind, key: piece}}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {"type": "message_delta", "usage": usage,
                            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}}
    yield "message_stop", {"type": "message_stop"}

