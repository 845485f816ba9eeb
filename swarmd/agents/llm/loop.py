"""The tool loop: run -> step -> query -> execute, until the model calls `finish`. It is left only by
exceptions that carry their message: `Finished` (the handoff), `Misconfigured` (the role cannot run),
`Stopped` (this attempt cannot go on). Every message, tool call, answer and retry goes to the transcript."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from swarmd.agents.llm import context
from swarmd.agents.llm.model import BudgetSpent, Misconfigured, ModelError, Refused, Reply, Retryable, Settings, TooLong, Usage, shown_url
from swarmd.agents.llm.tools import Finished, ToolError, Workspace, execute, specs
from swarmd.agents.llm.transcript import Transcript

log = logging.getLogger(__name__)

MAX_DELAY_S = 120.0  # the longest wait between two tries of one model call
NUDGE = ("You replied without calling a tool. Work through the tools; when the task is really done, "
         "call `finish` with your handoff.")


class Stopped(Exception):
    """This attempt cannot go on (steps spent, the provider kept failing, the window is full)."""


class Model(Protocol):
    def window(self) -> int: ...
    def count(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int: ...
    def query(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply: ...


@dataclass
class Loop:
    model: Model
    settings: Settings
    workspace: Workspace
    transcript: Transcript
    sleep: Callable[[float], None] = time.sleep
    on_usage: Callable[[Usage], None] = lambda usage: None  # after each call: the usage so far
    usage: Usage = field(default_factory=Usage)
    messages: list[dict[str, Any]] = field(default_factory=list)
    limit: int = 0  # tokens a request may hold (set by run)
    reached: bool = False  # some call reached the provider: a lost connection is not a wrong api_base
    answered: bool = False  # some call got a reply: a refused request is not the settings' fault

    def run(self, system: str, prompt: str) -> dict[str, Any]:
        """The handoff the model gave `finish`; raises Misconfigured or Stopped otherwise."""
        tools = specs(self.workspace)
        self.messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        for message in self.messages:
            self.transcript.write("message", **message)
        self.limit = context.budget(self.model.window(), self.settings.max_tokens)
        for step in range(1, self.settings.max_steps + 1):
            try:
                self.step(step, tools)
            except Finished as done:
                self.transcript.write("finish", step=step, result=done.result)
                return done.result
        raise Stopped(f"used all {self.settings.max_steps} steps (agents.{self.workspace.role}.max_steps) "
                      "without calling finish")

    def step(self, step: int, tools: list[dict[str, Any]]) -> None:
        reply = self.query(step, tools)
        self.messages.append(reply.message)
        self.transcript.write("message", step=step, usage=reply.usage.contract(), **reply.message)
        if not reply.tool_calls:
            self._answer_user(step, NUDGE if not reply.truncated else
                              "Your reply was cut off at max_tokens. Say less at once; work through the tools.")
            return
        finished: Finished | None = None
        for call in reply.tool_calls:  # each one answered, in order, as the API requires
            if finished is not None:
                answer = "not run: finish was called before it"
            else:
                try:
                    answer = execute(self.workspace, call.name, call.arguments)
                except Finished as done:
                    finished, answer = done, "finished"
                except ToolError as exc:
                    answer = f"error: {exc}"
                except Exception as exc:  # a bug in a tool costs that call, not the attempt
                    log.exception("the tool %s failed", call.name)
                    answer = f"error: the tool {call.name} failed inside swarmd ({type(exc).__name__}: {exc})"
            answer = answer.encode("utf-8", "backslashreplace").decode("utf-8")  # a file name's stray bytes
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": answer})
            self.transcript.write("tool", step=step, id=call.id, name=call.name, arguments=call.arguments,
                                  answer=answer)
        if finished is not None:
            raise finished

    def query(self, step: int, tools: list[dict[str, Any]]) -> Reply:
        """One model call, tried again after a 429, a 5xx, a timeout or a lost connection: after the
        provider's Retry-After, else `retry_delay` doubled each time with full jitter."""
        failures = shrunk = 0
        while True:
            self._fit(step, tools)
            try:
                reply = self.model.query(self.messages, tools)
            except TooLong as exc:
                if shrunk == 2:  # our count is off by more than a little: the window setting is wrong
                    raise Stopped(f"the provider says the conversation is past the context window ({exc}); "
                                  "set agents.<role>.context_window to what the model really takes") from None
                shrunk += 1
                self.limit = int(self.limit * 0.8)  # the provider counts more tokens than litellm's counter
                continue
            except Retryable as exc:
                self.reached = self.reached or exc.reached
                failures += 1
                if failures > self.settings.retries:
                    if not self.reached:  # never reached the server in this run: its address is wrong
                        raise Misconfigured(f"cannot reach the model's server "
                                            f"({shown_url(self.settings.api_base)}): {exc}") from None
                    raise Stopped(f"the model call failed {failures} times; the last: {exc}") from None
                delay = self._delay(failures, exc.retry_after)
                self.transcript.write("retry", step=step, error=str(exc), wait_s=round(delay, 2), tried=failures)
                self.sleep(delay)
                continue
            except (Misconfigured, BudgetSpent):
                raise
            except Refused as exc:
                if not self.answered:
                    raise Misconfigured(f"the provider refused the run's first request ({exc}); check "
                                        f"agents.<role>: model, max_tokens, temperature") from None
                raise Stopped(f"the provider refused the request: {exc}") from None
            except ModelError as exc:
                raise Stopped(f"the model call failed: {exc}") from None
            self.reached = self.answered = True
            self.usage.add(reply.usage)
            self.on_usage(self.usage)
            return reply

    def _fit(self, step: int, tools: list[dict[str, Any]]) -> None:
        try:
            changed = context.fit(self.messages, self.limit, lambda messages: self.model.count(messages, tools))
        except context.WindowFull as exc:
            if not self.answered:  # the system prompt and the task alone do not fit: no run of this role can
                raise Misconfigured(str(exc)) from None
            raise Stopped(str(exc)) from None
        if changed:
            self.transcript.write("elided", step=step, messages=changed)

    def _delay(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_DELAY_S * 2.5)
        return random.uniform(0, min(MAX_DELAY_S, self.settings.retry_delay * 2 ** (number - 1)))

    def _answer_user(self, step: int, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        self.transcript.write("message", step=step, role="user", content=text)
