"""The LLM user: the paper's behavioural rules as a prompt, one structured reply per turn."""

from __future__ import annotations

import mcp_types as types
import msgspec

from schemas import Mode, ProviderCall
from simulator.dialogue.roles import UserContext, UserFactory, UserTurn
from simulator.llm.setup import current_setup
from simulator.offline.acts import Act
from simulator.offline.language import format_value
from simulator.providers import ChatMessage, LLMClient, Request, ToolDef, complete_structured

__all__ = ["LLMUser", "UserReply", "llm_user_brain"]

_START = "(The conversation begins. Write your first message to the assistant.)"


class UserReply(msgspec.Struct, forbid_unknown_fields=True):
    """What the user model returns each turn."""

    user_message: str
    is_task_complete: bool


class LLMUser:
    """One dialogue's user played by a model.

    From the model's side the roles are swapped: the assistant's messages arrive as
    ``user`` messages and its own replies are the ``assistant`` ones.
    """

    def __init__(self, client: LLMClient, ctx: UserContext, system: str, *, max_tool_steps: int = 6) -> None:
        self.client = client
        self.ctx = ctx
        self.brain = f"llm:{client.spec}"
        # The user's own tools ("dual control"): offered on a step before each reply.
        self.tools = [
            ToolDef(name=t.name, description=t.description or "", parameters=t.input_schema) for t in ctx.tools
        ]
        self.max_tool_steps = max_tool_steps
        if self.tools:
            system += _TOOLS_NOTE
        self.messages: list[ChatMessage] = [ChatMessage.system(system)]
        self.started = {t.id for t in ctx.scenario.tasks}

    async def opening(self) -> UserTurn:
        return await self._turn(_START, started=[t.id for t in self.ctx.scenario.tasks])

    async def respond(self, text: str, acts: list[Act]) -> UserTurn:
        return await self._turn(text or "(The assistant sent an empty message.)")

    async def _turn(self, heard: str, *, started: list[str] | None = None) -> UserTurn:
        self.messages.append(ChatMessage.user(heard))
        if self.tools and self.ctx.call_tool is not None:
            await self._use_tools()
        reply = await complete_structured(self.client, Request(messages=self.messages), UserReply, name="user_turn")
        self.messages.append(ChatMessage.assistant(msgspec.json.encode(reply).decode()))
        return UserTurn(text=reply.user_message, acts=[], started_tasks=started or [], complete=reply.is_task_complete)

    async def _use_tools(self) -> None:
        """Let the model call its own tools (each call recorded as the user's) until it has none to make."""
        assert self.ctx.call_tool is not None
        for _ in range(self.max_tool_steps):
            response = await self.client.complete(Request(messages=self.messages, tools=self.tools))
            if not response.tool_calls:
                return  # what it would say now comes as the structured reply below
            self.messages.append(response.message())
            for call in response.tool_calls:
                if call.invalid_arguments is not None:
                    text, failed = "Error: the arguments were not a JSON object.", True
                else:
                    result = await self.ctx.call_tool(call.name, call.arguments)
                    text = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
                    failed = bool(result.is_error)
                self.messages.append(ChatMessage.tool(call.id, text, is_error=failed))


_TOOLS_NOTE = """

# Your own tools
You also have tools of your own (your device, your account page). When the assistant asks
you to do or check something on your side, do it with them, then tell the assistant what
you did or saw. Never do the assistant's part for it."""


def user_prompt(template: str, ctx: UserContext) -> str:
    scenario = ctx.scenario
    goals = []
    for i, task in enumerate(scenario.tasks, start=1):
        steps = "; ".join(s.text for s in task.sub_requests)
        goals.append(f"{i}. {task.goal} (In order: {steps})")
    if scenario.mode is Mode.TASK_ORIENTED:
        goals.append("State everything you need in your first message, with all the facts you know.")
    facts = [f"- {f.description}: {format_value(f.value)}" for t in scenario.tasks for f in t.facts]
    persona = scenario.persona
    return template.format(
        goal="\n".join(goals),
        facts="\n".join(facts) or "- nothing beyond the goal",
        persona=f"{persona.name}, {persona.verbosity}, {persona.temperament}",
    )


def llm_user_brain(model: str) -> UserFactory:
    """The user of spec ``provider:model``."""
    from simulator.providers import parse_model

    spec = parse_model(model)

    async def factory(ctx: UserContext) -> LLMUser:
        setup = current_setup()

        async def publish(event: ProviderCall) -> object:
            return await ctx.publish(event)

        client = setup.client(spec).bind(role="user", on_call=publish, meter=setup.meter)
        return LLMUser(client, ctx, user_prompt(setup.prompt("user"), ctx))

    return factory
