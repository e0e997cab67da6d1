"""The LLM agent: a tool-calling loop over the dialogue's MCP tools, with a step limit.

Tools are what the dialogue's server listed; each call goes to the server (so it is
recorded server-side like any agent's) and its result is fed back verbatim. Arguments
that do not match a tool's schema still go to the server, which answers ``isError``, as
a real agent would see; arguments that are not JSON at all cannot be sent and are
answered with an error result here.
"""

from __future__ import annotations

import mcp_types as types
from mcp import MCPError

from schemas import ErrorEvent, ProviderCall
from simulator.dialogue.recorder import messages_from_events
from simulator.dialogue.roles import AgentContext, AgentFactory, AgentTurn
from simulator.llm.setup import current_setup
from simulator.offline.acts import Act
from simulator.providers import ChatMessage, LLMClient, Request, ToolDef
from simulator.providers.wire import chat_messages

__all__ = ["LLMAgent", "llm_agent_brain"]


class LLMAgent:
    """One dialogue's agent played by a model."""

    def __init__(self, client: LLMClient, ctx: AgentContext, system: str, *, max_steps: int) -> None:
        self.client = client
        self.ctx = ctx
        self.max_steps = max_steps
        self.brain = f"llm:{client.spec}"
        self.tools = [
            ToolDef(name=t.name, description=t.description or "", parameters=t.input_schema) for t in ctx.tools
        ]
        self.messages: list[ChatMessage] = [ChatMessage.system(system), *_history(ctx)]

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        self.messages.append(ChatMessage.user(text))
        for _ in range(self.max_steps):
            response = await self.client.complete(Request(messages=self.messages, tools=self.tools))
            self.messages.append(response.message())
            if not response.tool_calls:
                return AgentTurn(text=response.text)
            for call in response.tool_calls:
                if call.invalid_arguments is not None:
                    await self.ctx.publish(
                        ErrorEvent(
                            where="agent", error_type="InvalidToolArguments", message=call.invalid_arguments[:500]
                        )
                    )
                    self.messages.append(
                        ChatMessage.tool(call.id, "Error: the arguments were not a JSON object.", is_error=True)
                    )
                    continue
                try:
                    result = await self.ctx.client.call_tool(call.name, call.arguments)
                except MCPError as exc:  # e.g. a tool that does not exist: the model hears why
                    self.messages.append(ChatMessage.tool(call.id, f"Error: {exc}", is_error=True))
                    continue
                self.messages.append(ChatMessage.tool(call.id, _text(result), is_error=bool(result.is_error)))
        text = "I'm sorry — I could not finish that within the steps I'm allowed. Could you rephrase the request?"
        self.messages.append(ChatMessage.assistant(text))
        return AgentTurn(text=text)

    async def aclose(self) -> None:
        """The client is shared by the run; nothing to release."""


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def _history(ctx: AgentContext) -> list[ChatMessage]:
    """The recorded prefix of a continued dialogue, from the agent's side (as the recorder pairs it)."""
    return chat_messages(messages_from_events(ctx.history))


def llm_agent_brain(model: str) -> AgentFactory:
    """The agent of spec ``provider:model``: checks the model name now, finds its client at run time."""
    from simulator.providers import parse_model

    spec = parse_model(model)

    async def factory(ctx: AgentContext) -> LLMAgent:
        setup = current_setup()

        async def publish(event: ProviderCall) -> object:
            return await ctx.publish(event)

        client = setup.client(spec).bind(role="agent", on_call=publish, meter=setup.meter)
        system = setup.prompt("agent").format(description=ctx.description or "a service.", policy=ctx.policy or "")
        return LLMAgent(client, ctx, system, max_steps=setup.max_agent_steps)

    return factory
