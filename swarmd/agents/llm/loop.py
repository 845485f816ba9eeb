"""The tool loop: run -> step -> query -> execute, until the model calls `finish`. It is left only by
exceptions that carry their message: `Finished` (the handoff), `Misconfigured` (the role cannot run),
`Stopped` (this attempt cannot go on). Every message, tool call, answer and retry goes to the transcript."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from swarmd.agents.llm import context
from swarmd.agents.llm.model import Misconfigured, ModelError, Reply, Retryable, Settings, TooLong, Usage
from swarmd.agents.llm.tools import Finished, ToolError, Workspace, execute, specs
from swarmd.agents.llm.transcript import Transcript

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
    usage: Usage = field(default_factory=Usage)
    messages: list[dict[str, Any]] = field(default_factory=list)
    reached: bool = False  # some call reached the provider: a lost connection is not a wrong api_base

    def run(self, system: str, prompt: str) -> dict[str, Any]:
        """The handoff the model gave `finish`; raises Misconfigured or Stopped otherwise."""
        tools = specs(self.workspace)
        self.messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        for message in self.messages:
            self.transcript.write("message", **message)
        limit = context.budget(self.model.window(), self.settings.max_tokens)
        for step in range(1, self.settings.max_steps + 1):
            try:
                self.step(step, tools, limit)
            except Finished as done:
                self.transcript.write("finish", step=step, result=done.result)
                return done.result
        raise Stopped(f"used all {self.settings.max_steps} steps (agents.{self.workspace.role}.max_steps) "
                      "without calling finish")

    def step(self, step: int, tools: list[dict[str, Any]], limit: int) -> None:
        def count(messages: list[dict[str, Any]]) -> int:
            return self.model.count(messages, tools)

        try:
            elided = context.fit(self.messages, limit, count)
        except context.WindowFull as exc:
            raise Stopped(str(exc)) from None
        if elided:
            self.transcript.write("elided", step=step, outputs=elided)
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
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": answer})
            self.transcript.write("tool", step=step, id=call.id, name=call.name, arguments=call.arguments,
                                  answer=answer)
        if finished is not None:
            raise finished

    def query(self, step: int, tools: list[dict[str, Any]]) -> Reply:
        """One model call, tried again after a 429, a 5xx, a timeout or a lost connection: after the
        provider's Retry-After, else `retry_delay` doubled each time with full jitter."""
        tries = self.settings.retries + 1
        for number in range(1, tries + 1):
            try:
                reply = self.model.query(self.messages, tools)
            except TooLong as exc:
                raise Stopped(f"the provider says the conversation is past the context window ({exc}); "
                              "set agents.<role>.context_window to what the model really takes") from None
            except Retryable as exc:
                self.reached = self.reached or exc.reached
                if number == tries:
                    if not self.reached:  # never reached the server in this run: its address is wrong
                        raise Misconfigured(f"cannot reach the model's server "
                                            f"({self.settings.api_base or 'the provider default'}): {exc}") from None
                    raise Stopped(f"the model call failed {tries} times; the last: {exc}") from None
                delay = self._delay(number, exc.retry_after)
                self.transcript.write("retry", step=step, error=str(exc), wait_s=round(delay, 2), tried=number)
                self.sleep(delay)
                continue
            except Misconfigured:
                raise
            except ModelError as exc:
                raise Stopped(f"the model call failed: {exc}") from None
            self.reached = True
            self.usage.add(reply.usage)
            return reply
        raise AssertionError("unreachable")

    def _delay(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_DELAY_S * 2.5)
        return random.uniform(0, min(MAX_DELAY_S, self.settings.retry_delay * 2 ** (number - 1)))

    def _answer_user(self, step: int, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        self.transcript.write("message", step=step, role="user", content=text)
