"""A scripted model server: test prompts, configs and agents offline, against real HTTP.

    from swarmd.testing import ScriptedModelServer

    script = {"replies": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
        {"text": "Done.", "expect": {"tool_result_contains": "README.md"}},
    ]}
    with ScriptedModelServer(script) as server:
        ...  # point an OpenAI client at server.openai_base, an Anthropic one at server.base_url
    assert not server.failures

The server speaks OpenAI chat completions (`POST /v1/chat/completions`) and Anthropic messages
(`POST /v1/messages`), streaming or not. A script is a list of conversations, each a list of replies; a
request belongs to the first conversation whose `match` texts occur in its system prompt and first user
message, and gets the reply numbered by the assistant messages it holds. A reply gives text and tool
calls, usage, scripted errors before it, a delay, and expectations on the request. Scripts are built
from the dataclasses below, from plain dicts, or loaded from YAML; `python -m swarmd.testing SCRIPT.yaml`
serves one from the command line. The full guide is docs/testing.md.
"""

from swarmd.testing.script import Conversation, ErrorReply, Expect, Reply, Script, ToolCall, Usage
from swarmd.testing.server import RecordedRequest, ScriptedModelServer

__all__ = [
    "Conversation", "ErrorReply", "Expect", "RecordedRequest", "Reply", "Script", "ScriptedModelServer",
    "ToolCall", "Usage",
]
