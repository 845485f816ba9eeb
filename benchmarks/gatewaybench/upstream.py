"""The upstream's process (`gateway.py --serve-upstream`): the scripted model server (swarmd.testing), its
answer to each kind of request captured once, and the light aiohttp upstream that replays those bytes,
paced as a model is (`--delay` before the answer, `--gap` between a stream's text pieces); it prints its
URLs as JSON and serves until stdin closes."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from gatewaybench.payloads import MODELS, UNPACED, Case, answer_key, answer_text, auth

_TOKEN = re.compile(rb'"delta": \{"content": "|"text_delta"')  # the events a model paces: its text, piece by piece


def serve_upstream(args: argparse.Namespace) -> int:
    """Run the scripted server (and, unless --upstream scripted, the light upstream); print their URLs; serve
    until stdin closes."""
    from swarmd.testing import ScriptedModelServer

    usage = {"input_tokens": args.prompt_kb * 256, "output_tokens": args.tokens * 4}
    delay = args.delay / 1000 if args.upstream == "scripted" else 0.0
    reply = {"text": answer_text(args.tokens), "usage": usage, "delay": delay}
    with ScriptedModelServer({"replies": [reply] * (args.turns + 1)}) as scripted:
        if args.upstream == "scripted":
            print(json.dumps({"scripted": scripted.base_url}), flush=True)
            sys.stdin.read()
            return 0
        answers = capture(scripted.base_url)
        asyncio.run(serve_light(answers, scripted.base_url, args.delay / 1000, args.gap / 1000))
    return 0


def capture(base: str) -> dict[tuple[str, bool, bool], bytes]:
    """The scripted server's answer to each kind of request, as bytes."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(base)
    answers = {}
    for api, stream, usage in (("chat", True, True), ("chat", True, False), ("chat", False, False),
                               ("messages", True, False), ("messages", False, False)):
        case = Case(api, api, stream)
        body: dict[str, Any] = {"model": MODELS[api], "max_tokens": 8192, "stream": stream,
                                "messages": [{"role": "user", "content": "hello"}]}
        if usage:
            body["stream_options"] = {"include_usage": True}
        connection = http.client.HTTPConnection(address.hostname, address.port)
        connection.request("POST", case.path, json.dumps(body).encode(), auth(case, "k"))
        answer = connection.getresponse()
        data = answer.read()
        connection.close()
        if answer.status != 200:
            raise RuntimeError(f"the scripted server answered {answer.status}: {data[:300]!r}")
        answers[(api, stream, usage)] = data
    return answers


async def serve_light(answers: dict[tuple[str, bool, bool], bytes], scripted: str, delay: float, gap: float) -> None:
    from aiohttp import web

    events = {key: [event + b"\n\n" for event in data.split(b"\n\n") if event] for key, data in answers.items()}
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = answer_key(request.path, body)
        paced = UNPACED not in request.headers
        if paced and delay:
            await asyncio.sleep(delay)
        if not key[1]:
            return web.Response(body=answers[key], content_type="application/json")
        answer = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await answer.prepare(request)
        start, tokens = loop.time(), 0
        for event in events[key]:
            if paced and gap and _TOKEN.search(event):  # on a fixed schedule: a late wake-up delays no other
                await asyncio.sleep(start + tokens * gap - loop.time())
                tokens += 1
            await answer.write(event)
        await answer.write_eof()
        return answer

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/{path:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    print(json.dumps({"light": f"http://{host}:{port}", "scripted": scripted}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()
