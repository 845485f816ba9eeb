"""The gateway's HTTP side: an aiohttp server and client in one asyncio loop on a thread of the daemon.

Each agent is admitted with a token of its own and reaches the gateway at `/agent/<token>` (its base
URL) with that token as its API key. A request is refused when its token is unknown (401) or its budget
is spent (402, the message says so), waits out a provider's 429 (holdback.py), goes to the upstream with
the real key in place of the token (or, when the agent logs in by itself, with its own credentials), and
comes back unchanged, a stream event by event as each is whole; its usage is read on the way and charged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmd.gateway.apis import Api, Counts, Request, api_of, body_counts, error_body, prepare
from swarmd.gateway.holdback import Holdback
from swarmd.gateway.routes import Route, Upstream, price_for, upstream
from swarmd.gateway.spend import SUMMARY_EVERY_S, Badge, Spend
from swarmd.gateway.stream import StreamMeter

log = logging.getLogger(__name__)

PREFIX = "/agent/"
MAX_REQUEST_BYTES = 256 * 1024 * 1024  # a whole conversation, images and all
STOP_TIMEOUT_S = 1.0
UPSTREAM_READ_TIMEOUT_S = 900.0  # between two reads of an answer: a model may think a long while
# Not relayed either way: hop-by-hop headers, what aiohttp sets itself, and the credentials.
_DROP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                   "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding", "content-encoding"})
_CREDENTIALS = frozenset({"authorization", "x-api-key", "api-key"})


@dataclass(frozen=True)
class Refused:
    """An agent's request was refused because a budget is spent (for the daemon, which stops the agent)."""

    badge: Badge
    scope: str  # task, cycle or run
    reason: str


@dataclass(frozen=True)
class GatewayFailed:
    """The gateway's thread died after it had started (for the daemon, which cannot go on without it)."""

    reason: str


class Gateway:
    def __init__(self, spend: Spend, routes: Mapping[str, Route], environ: Mapping[str, str],
                 on_event: Callable[[Refused | GatewayFailed], None] = lambda event: None) -> None:
        self.spend = spend
        self.routes = dict(routes)  # by role
        self.environ = environ  # where the real keys are
        self.on_event = on_event
        self.badges: dict[str, Badge] = {}
        self.holdback = Holdback()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None

    # -- the daemon's side ------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on a free loopback port; returns the base URL once the gateway answers."""
        self._thread = threading.Thread(target=self._serve, name="gateway", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            raise self._failed
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=STOP_TIMEOUT_S * 10)
            if self._thread.is_alive():
                log.warning("the gateway did not stop within %s s; leaving its thread behind", STOP_TIMEOUT_S * 10)
        self.spend.write_summary()
        self.spend.close()

    def admit(self, role: str, task: str, cycle: int, attempt: int) -> Badge:
        badge = Badge("swarmd-" + secrets.token_urlsafe(24), role, task, cycle, attempt)
        self.badges[badge.token] = badge
        return badge

    def revoke(self, token: str) -> None:
        self.badges.pop(token, None)

    def base_url(self, badge: Badge) -> str:
        return f"{self.url}{PREFIX}{badge.token}"

    # -- the loop ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # the daemon hears of it: from start(), or as an event once it ran
            log.exception("the gateway stopped")
            if self._ready.is_set():
                self.on_event(GatewayFailed(f"{type(exc).__name__}: {exc}"))
            self._failed = exc
            self._ready.set()

    async def _main(self) -> None:
        from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", "/{path:.*}", self._handle)
        # Agents are stopped before the gateway: what is still in flight then is cut off, not awaited.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=STOP_TIMEOUT_S)
        await runner.setup()
        timeout = ClientTimeout(total=None, sock_connect=30, sock_read=UPSTREAM_READ_TIMEOUT_S)
        # Not decompressed: upstreams are asked for identity; one that compresses anyway is relayed as it
        # came (with its Content-Encoding) and metered from a decompressed copy, or estimated.
        async with ClientSession(connector=TCPConnector(limit=0), timeout=timeout, auto_decompress=False) as session:
            self.session = session
            try:
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                host, port = runner.addresses[0][:2]
                self.url = f"http://{host}:{port}"
                self._ready.set()
                while not self._stopped.is_set():
                    try:
                        await asyncio.wait_for(self._stopped.wait(), SUMMARY_EVERY_S)
                    except asyncio.TimeoutError:
                        pass
                    if self.spend.dirty:
                        self.spend.write_summary()
            finally:
                await session.close()  # calls still waiting on an upstream end now
                await runner.cleanup()

    async def _handle(self, request: Any) -> Any:
        from aiohttp import ClientError, web

        path, token = _split(request.path)
        if token is None:
            token = _credential(request.headers)
        if request.method == "HEAD":  # a client checking that the server is there (Claude Code does)
            return web.Response(status=200)
        api = api_of(request.method, path)
        shape = api or (Api.MESSAGES if "anthropic-version" in request.headers else Api.CHAT)  # for errors
        badge = self.badges.get(token or "")
        if badge is None:
            return _error(401, shape, "authentication_error",
                          "swarmd: this agent token is not known to the gateway (its attempt ended, or it is not swarmd's)")
        route = self.routes.get(badge.role, Route())
        if api is None or (route.apis is not None and api is not Api.OTHER and api not in route.apis):
            return _error(403, shape, "permission_error", f"swarmd: {request.method} {path} is not a call the gateway "
                          f"lets the {badge.role} make: it meters and caps " + ", ".join(
                              sorted(a.value for a in (route.apis or {Api.CHAT, Api.RESPONSES, Api.MESSAGES}))))
        own = _credential(request.headers)
        target = upstream(route, api, self.environ, own_login=bool(own) and own != badge.token)
        if isinstance(target, str):
            return _error(401, api, "authentication_error", target)
        ask = prepare(api, await request.read())
        if ask.background:
            return _error(400, api, "invalid_request_error", "swarmd: `background: true` is not supported: the "
                                                             "gateway meters an answer as it passes")
        await self.holdback.wait(_holdback_key(target, own if own != badge.token else None))
        estimate = Counts(len(ask.body) // 4)  # what the prompt alone may cost, held against the budgets
        price = price_for(route, ask.model)
        estimate.cost_usd = price.cost(estimate) if price else 0.0
        if refusal := self.spend.admit(badge, estimate):  # after any hold: a budget may be spent meanwhile
            scope, reason = refusal
            self.on_event(Refused(badge, scope, reason))
            return _error(402, api, "budget_spent", f"swarmd: budget spent: {reason}. Stop now: commit what you "
                                                    "have and hand off, saying what is left to do")
        try:
            return await self._relay(request, badge, route, target, api, path, ask, own)
        except (ClientError, asyncio.TimeoutError) as exc:  # before the answer began: the agent hears why
            return _error(502, api, "upstream_unreachable",
                          f"swarmd: the gateway cannot reach {target.base}: {type(exc).__name__}: {exc}")
        finally:
            self.spend.settle(badge, estimate)

    async def _relay(self, request: Any, badge: Badge, route: Route, target: Upstream, api: Api, path: str,
                     ask: Request, own: str | None) -> Any:
        from aiohttp import ClientError, web

        headers = _forwarded(request.headers, badge.token, target, api)
        url = target.base + (path[3:] if path.startswith("/v1/") or path == "/v1" else path)
        if request.query_string:
            url += "?" + request.query_string
        counts: Counts | None = None
        status = 0
        try:
            async with self.session.request(request.method, url, data=ask.body, headers=headers,
                                            allow_redirects=False) as answer:
                status = answer.status
                self.holdback.answered(_holdback_key(target, own if own != badge.token else None), status,
                                       answer.headers.get("Retry-After"))
                back = {name: value for name, value in answer.headers.items() if name.lower() not in _DROP}
                encoding = answer.headers.get("Content-Encoding", "identity").lower()
                if encoding != "identity":
                    back["Content-Encoding"] = encoding
                if "text/event-stream" not in answer.headers.get("Content-Type", ""):
                    data = await answer.read()
                    counts = body_counts(api, _decoded(data, encoding)) if status < 400 else None
                    return web.Response(status=status, body=data, headers=back)
                meter = StreamMeter(api, ask.hide_usage)
                relay = web.StreamResponse(status=status, headers=back)
                await relay.prepare(request)
                charged = False
                try:
                    async for chunk in answer.content.iter_any():
                        if out := meter.feed(chunk):
                            await relay.write(out)
                    if rest := meter.close():
                        await relay.write(rest)
                    # Charged before the client has the end of it: its next call is checked against it.
                    self._charge(badge, route, api, ask.model, meter.counts or meter.estimate(ask.body), status)
                    charged = True
                    await relay.write_eof()
                except (ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                    if isinstance(exc, ConnectionResetError):  # the agent went away (stopped, killed)
                        log.debug("the %s of %s left mid-answer", badge.role, badge.task)
                    else:  # the upstream broke off: so does the relay, so the client cannot take it as whole
                        log.warning("the answer from %s broke off: %s", target.base, exc)
                        if request.transport is not None:
                            request.transport.abort()
                finally:
                    if not charged:  # cut short: what came is charged, estimated where it said no usage
                        counts = meter.counts or (meter.estimate(ask.body) if status < 400 else None)
                return relay
        finally:
            self._charge(badge, route, api, ask.model, counts, status)

    def _charge(self, badge: Badge, route: Route, api: Api, model: str | None, counts: Counts | None, status: int) -> None:
        if counts is None:
            return
        price = price_for(route, model)
        if price is not None:
            counts.cost_usd = price.cost(counts)
        self.spend.add(badge, counts, api.value, model or route.model, status)


def _decoded(data: bytes, encoding: str) -> bytes:
    """A body as it reads, for metering: gzip and deflate undone (anything else is left, and not metered)."""
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            return zlib.decompress(data, 47 if "gzip" in encoding else zlib.MAX_WBITS)
        except zlib.error:
            return data
    return data


def _holdback_key(target: Upstream, own: str | None) -> str:
    """A 429 holds back the callers that share its quota: one key (or one login) at one upstream."""
    who = own or target.key or ""
    return f"{target.base} {hashlib.sha256(who.encode()).hexdigest()[:16]}"


def _split(path: str) -> tuple[str, str | None]:
    """`/agent/<token>/v1/messages` -> (`/v1/messages`, token); a path without the prefix -> (path, None)."""
    if not path.startswith(PREFIX):
        return path, None
    token, _, rest = path[len(PREFIX):].partition("/")
    return "/" + rest, token


def _credential(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key") or headers.get("api-key")
    if key:
        return key
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _forwarded(headers: Mapping[str, str], token: str, target: Upstream, api: Api) -> dict[str, str]:
    """The request's headers for the upstream: the agent's token swapped for the real key; credentials
    of the agent's own (a subscription login) passed as they are."""
    own = _credential(headers)
    out = {name: value for name, value in headers.items() if name.lower() not in _DROP}
    out["Accept-Encoding"] = "identity"  # so a stream can be read as it passes
    if own and own != token:
        return out
    for name in list(out):
        if name.lower() in _CREDENTIALS:
            del out[name]
    if target.key:
        if api.anthropic:
            out["x-api-key"] = target.key
        else:
            out["Authorization"] = f"Bearer {target.key}"
    return out


def _error(status: int, api: Api, kind: str, message: str) -> Any:
    from aiohttp import web

    return web.Response(status=status, body=error_body(api, kind, message), content_type="application/json")
