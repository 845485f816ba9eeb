"""`python -m swarmd.testing SCRIPT.yaml [--port N]`: serve a script until Ctrl-C, one line per request.

Exit status: 0, 1 if anything went against the script (the failures are printed), 2 for a bad script.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from swarmd.errors import UsageError, ValidationError
from swarmd.testing.server import RecordedRequest, ScriptedModelServer


def _print_request(request: RecordedRequest) -> None:
    where = "" if request.conversation is None else f" conversation {request.conversation} reply {request.reply}"
    print(f"{request.method} {request.path}{where} -> {request.status}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmd.testing", description="Serve a scripted model "
                                     "(docs/testing.md) until Ctrl-C, printing one line per request.")
    parser.add_argument("script", help="the YAML script to serve (see docs/testing.md)")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--api-key", help="answer 401 to requests that do not send this key")
    args = parser.parse_args(argv)
    try:
        server = ScriptedModelServer(args.script, api_key=args.api_key, host=args.host, port=args.port,
                                     on_request=_print_request)
    except ValidationError as exc:
        for problem in exc.problems:
            print(f"swarmd.testing: {problem}", file=sys.stderr)
        return exc.exit_code
    except UsageError as exc:
        print(f"swarmd.testing: {exc}", file=sys.stderr)
        return exc.exit_code
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())  # the handler only records; main() stops the server
    try:
        server.start()
    except OSError as exc:
        print(f"swarmd.testing: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        print(f"serving {args.script} on {server.base_url} (OpenAI clients, chat and Responses: "
              f"{server.openai_base}); Ctrl-C stops", flush=True)
        done.wait()
    finally:
        server.stop()
    for failure in server.failures:
        print(f"failure: {failure}", file=sys.stderr)
    return 1 if server.failures else 0


if __name__ == "__main__":
    sys.exit(main())
