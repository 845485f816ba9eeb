"""A scripted model server: test prompts, configs and agents offline, against real HTTP.

    from swarmd.testing import ScriptedModelServer

    script = {"replies": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
        {"text": "Done.", "expect": {"tool_result_contains": "README.md"}},
    ]}
    with ScriptedModelServer(script) as server:
        ...  # point an OpenAI client (chat or Responses) at server.openai_base, an Anthropic one at base_url
    assert not server.failures

The server speaks OpenAI chat completions (`POST /v1/chat/completions`), the OpenAI Responses API
(`POST /v1/responses`, what Codex CLI speaks; same base URL) and Anthropic messages (`POST /v1/messages`),
streaming or not, at any path ending so (a base URL may have a prefix). A script is a list of
conversations, each a list of replies; a request belongs to the first conversation whose `match` texts
occur in its opening (its system prompt and first user message; in the Responses API, all it holds before
the first assistant item), and gets the reply numbered by the assistant turns it holds. A reply gives
text and tool calls, usage, scripted errors before it, a delay, and expectations on the request. Scripts
are built from the dataclasses below, from plain dicts, or loaded from YAML; `python -m swarmd.testing
SCRIPT.yaml` serves one from the command line. The full guide is docs/testing.md.
"""

from swarmd.testing.script import Conversation, ErrorReply, Expect, Reply, Script, ToolCall, Usage
from swarmd.testing.server import RecordedRequest, ScriptedModelServer

__all__ = [
    "Conversation", "ErrorReply", "Expect", "RecordedRequest", "Reply", "Script", "ScriptedModelServer",
    "ToolCall", "Usage",
]
