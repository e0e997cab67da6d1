"""The per-dialogue event bus: stamping, filtered delivery in order, the run-level sink,
closing with EndOfStream, and back-pressure from a bounded buffer."""

from __future__ import annotations

import anyio
import pytest

from schemas import AgentMessage, Event, ToolCall, ToolResult, UserMessage
from simulator.dialogue.bus import DialogueBus

pytestmark = pytest.mark.anyio


def user(text: str) -> UserMessage:
    return UserMessage(text=text)


def agent(text: str) -> AgentMessage:
    return AgentMessage(text=text)


async def test_publish_stamps_dialogue_id_and_consecutive_seq() -> None:
    bus = DialogueBus("d-1")
    published = [await bus.publish(e) for e in (user("a"), agent("b"), user("c"))]
    assert [e.seq for e in published] == [0, 1, 2]
    assert {e.dialogue_id for e in published} == {"d-1"}
    # The log is what the recorder reads: the stamped events, in publish order.
    assert bus.events == published
    assert [e.text for e in bus.events if isinstance(e, UserMessage | AgentMessage)] == ["a", "b", "c"]


async def test_publish_does_not_mutate_the_event_it_was_given() -> None:
    bus = DialogueBus("d-1")
    await bus.publish(user("first"))
    original = user("second")
    stamped = await bus.publish(original)
    assert (original.dialogue_id, original.seq) == ("", 0)
    assert (stamped.dialogue_id, stamped.seq) == ("d-1", 1)


async def test_subscribers_get_only_their_kinds_in_order() -> None:
    bus = DialogueBus("d-1")
    users = bus.subscribe(UserMessage)
    tools = bus.subscribe(ToolCall, ToolResult)
    everything = bus.subscribe()
    events: list[Event] = [
        user("u1"),
        ToolCall(call_id="c1", tool="get", arguments={}),
        agent("a1"),
        ToolResult(call_id="c1", tool="get", is_error=False, text="{}"),
        user("u2"),
    ]
    for e in events:
        await bus.publish(e)
    await bus.aclose()

    with users, tools, everything:
        got_users = [e async for e in users]
        got_tools = [e async for e in tools]
        got_all = [e async for e in everything]
    assert [(type(e), e.seq) for e in got_users] == [(UserMessage, 0), (UserMessage, 4)]
    assert [(type(e), e.seq) for e in got_tools] == [(ToolCall, 1), (ToolResult, 3)]
    assert [e.seq for e in got_all] == [0, 1, 2, 3, 4]
    assert got_all == bus.events


async def test_a_subscriber_sees_only_what_is_published_after_it_subscribed() -> None:
    bus = DialogueBus("d-1")
    await bus.publish(user("before"))
    late = bus.subscribe(UserMessage)
    await bus.publish(user("after"))
    await bus.aclose()
    with late:
        assert [e.text async for e in late if isinstance(e, UserMessage)] == ["after"]


async def test_sink_sees_every_event_stamped_and_in_order() -> None:
    seen: list[Event] = []

    async def sink(event: Event) -> None:
        seen.append(event)

    bus = DialogueBus("run-7", sink=sink)
    with bus.subscribe(AgentMessage):  # a filter on a subscriber does not filter the sink
        for e in (user("u"), agent("a"), ToolCall(call_id="c", tool="t", arguments={"x": 1})):
            await bus.publish(e)
        await bus.aclose()
    assert [(type(e), e.seq, e.dialogue_id) for e in seen] == [
        (UserMessage, 0, "run-7"),
        (AgentMessage, 1, "run-7"),
        (ToolCall, 2, "run-7"),
    ]
    assert seen == bus.events


async def test_aclose_drains_then_ends_every_subscriber_and_refuses_more() -> None:
    bus = DialogueBus("d-1")
    a = bus.subscribe()
    b = bus.subscribe(AgentMessage)
    await bus.publish(user("one"))
    await bus.publish(agent("two"))
    await bus.aclose()
    assert bus.closed
    with a, b:
        # Buffered events are still delivered, then the stream ends.
        assert (await a.receive()).seq == 0
        assert (await a.receive()).seq == 1
        with pytest.raises(anyio.EndOfStream):
            await a.receive()
        assert (await b.receive()).seq == 1
        with pytest.raises(anyio.EndOfStream):
            await b.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await bus.publish(user("late"))
    with pytest.raises(anyio.ClosedResourceError):
        bus.subscribe()
    assert len(bus.events) == 2


async def test_a_subscriber_that_went_away_does_not_stop_the_others() -> None:
    bus = DialogueBus("d-1")
    gone = bus.subscribe()
    stays = bus.subscribe()
    await gone.aclose()
    await bus.publish(user("still delivered"))
    await bus.aclose()
    with stays:
        assert [e.seq async for e in stays] == [0]


async def test_a_full_subscriber_buffer_blocks_the_publisher_until_it_reads() -> None:
    bus = DialogueBus("d-1", buffer=2)
    slow = bus.subscribe()
    await bus.publish(user("1"))
    await bus.publish(user("2"))
    assert slow.statistics().current_buffer_used == 2
    finished: list[int] = []

    async def publish_third() -> None:
        stamped = await bus.publish(user("3"))
        finished.append(stamped.seq)

    async with anyio.create_task_group() as tg:
        tg.start_soon(publish_third)
        await anyio.wait_all_tasks_blocked()
        # The publisher is parked on the full buffer: logged, not yet delivered, not returned.
        assert finished == []
        assert slow.statistics().tasks_waiting_send == 1
        assert len(bus.events) == 3
        first = await slow.receive()
        assert first.seq == 0
        await anyio.wait_all_tasks_blocked()
        assert finished == [2]
    assert slow.statistics().tasks_waiting_send == 0
    assert [(await slow.receive()).seq for _ in range(2)] == [1, 2]
    await bus.aclose()
    slow.close()
