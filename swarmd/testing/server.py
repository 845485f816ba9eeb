"""ScriptedModelServer: an OpenAI- and Anthropic-compatible HTTP server on loopback that plays a Script.

It speaks OpenAI chat completions, the OpenAI Responses API and Anthropic messages, with and without
streaming, and answers errors in each API's shape; each API's wire format is in a module of its own
(openai_chat, openai_responses, anthropic_messages). This module handles HTTP: it picks the API by the end
of the path, so a base URL with a prefix works. See docs/testing.md.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from swarmd.testing import anthropic_messages, openai_chat, openai_responses
from swarmd.testing.script import ErrorReply, Playback, Script, Turn
from swarmd.testing.wire import Api, BadRequest

APIS = (openai_chat.API, openai_responses.API, anthropic_messages.API)
OPENAI, RESPONSES, ANTHROPIC = (api.name for api in APIS)


def api_at(path: str) -> Api | None:
    """The API a path asks: the one whose ending it has, whatever comes before (a query is not part of it)."""
    path = urlsplit(path).path.rstrip("/")
    return next((api for api in APIS if api.answers(path)), None)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it came, with the answer chosen. `headers` are kept verbatim, API keys included."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON body; None if it was not JSON
    api: str | None  # "openai" (chat completions), "responses", "anthropic", or None for an unknown path
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
        """base_url + "/v1": the base URL of OpenAI clients (which add /chat/completions or /responses)."""
        return self.base_url + "/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def failures(self) -> list[str]:
        """What went against the script: unmet expectations, requests no reply was scripted for, requests
        that were not valid JSON or came to an unknown path. Scripted errors, wrong API keys and HEAD
        requests are not."""
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
    request_queue_size = 1024  # socketserver's backlog of 5 resets a burst of agents' connections

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
        api = api_at(self.path)
        headers, body, problem = self._read()
        if api is None:
            return self._refuse(None, headers, body, 404, f"no such path: POST {urlsplit(self.path).path}; this "
                                "server answers POST at paths ending in /v1/chat/completions (OpenAI chat), "
                                "/v1/responses (OpenAI Responses) or /v1/messages (Anthropic)")
        if not owner._authorized(headers):
            return self._answer_error(api, headers, body, Turn(None, None), ErrorReply(
                401, "the API key sent does not match the one the scripted server was given"))
        if problem:
            return self._refuse(api, headers, body, 400, problem)
        try:
            seen = api.read(body)
        except BadRequest as exc:
            return self._refuse(api, headers, body, 400, str(exc))
        turn = owner._playback.answer(seen)
        if turn.error is not None:
            return self._answer_error(api, headers, body, turn, turn.error)
        self._record(api, headers, body, turn, 200)
        assert turn.reply is not None
        owner._stopping.wait(turn.reply.delay)
        if body.get("stream"):
            self._stream(api.stream(turn, body))
        else:
            self._send_json(200, api.reply(turn, body))

    def do_HEAD(self) -> None:
        """200 with no body at any path: a client may check that the server is there (Claude Code sends
        `HEAD /` first). Recorded, not a failure."""
        headers, body, _ = self._read()
        self._record(api_at(self.path), headers, body, Turn(None, None), 200)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path, api = urlsplit(self.path).path, api_at(self.path)
        status, message = (405, f"use POST for {path}") if api else (404, f"no such path: {path}")
        headers, body, _ = self._read()
        self._refuse(api, headers, body, status, message)

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _refuse(self, api: Api | None, headers: dict[str, str], body: Any, status: int, message: str) -> None:
        """Answer a request that is not one the script can answer; a failure. An unknown path: OpenAI's shape."""
        self.server.owner._playback.fail(f"{self.command} {self.path}: {message}")
        self._answer_error(api, headers, body, Turn(None, None), ErrorReply(status, message))

    def _answer_error(self, api: Api | None, headers: dict[str, str], body: Any, turn: Turn,
                      error: ErrorReply) -> None:
        self._record(api, headers, body, turn, error.status)
        extra = {} if error.retry_after is None else {"Retry-After": f"{error.retry_after:g}"}
        self._send_json(error.status, (api or openai_chat.API).error(error), extra)

    def _record(self, api: Api | None, headers: dict[str, str], body: Any, turn: Turn, status: int) -> None:
        name = api.name if api else None
        self.server.owner._record(RecordedRequest(self.command, self.path, headers, body, name,
                                                  turn.conversation, turn.index, status))

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Iterator[str]) -> None:
        """Server-sent events; the connection closes after them (HTTP/1.0), which ends the stream."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for event in events:
            self.wfile.write(event.encode())
