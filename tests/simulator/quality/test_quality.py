"""The quality measures on hand-made dialogues whose answers are known, and ``stats --quality`` end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.policy import Policy, TableRules
from simulator.cli import main
from simulator.policy import derive_policy
from simulator.quality import Distribution, grammar_hits, measure_views, policy_for
from simulator.quality._checks import check_dialogue
from simulator.quality._language import measure_language
from simulator.quality._policy_check import check_policy
from simulator.quality._view import view_of
from tests.conftest import shop_environment
from toolservers.database import open_database


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def agent(text: str = "", *calls: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [{"id": cid, "name": name, "arguments": args} for cid, name, args in calls],
    }


def tool(cid: str, name: str, result: Any, *, error: bool = False) -> dict[str, Any]:
    text = result if isinstance(result, str) else json.dumps(result)
    return {"role": "tool", "tool_call_id": cid, "name": name, "content": text, "is_error": error}


def record(messages: list[dict[str, Any]], **scenario: Any) -> dict[str, Any]:
    return {
        "id": "d",
        "messages": messages,
        "scenario": {"environment_id": "shop", "mode": "user-oriented", **scenario},
    }


# --------------------------------------------------------------------------- grounding


def test_an_argument_nobody_said_and_no_tool_returned_is_ungrounded() -> None:
    view = view_of(
        record(
            [
                user("Hi, my email is ada@example.com — what's my tier?"),
                agent("", ("c1", "search_customers", {"email": "ada@example.com", "limit": 5})),
                tool("c1", "search_customers", {"rows": [{"customer_id": 1, "tier": "gold"}]}),
                agent("", ("c2", "get_customer", {"customer_id": 1})),  # 1 came back from the tool
                tool("c2", "get_customer", {"customer_id": 1, "tier": "gold"}),
                agent("", ("c3", "get_customer", {"customer_id": 7})),  # 7: from nowhere
                tool("c3", "get_customer", "Error (not_found): no customer", error=True),
                agent("Your tier is gold."),
            ]
        )
    )
    checks = check_dialogue(view)
    assert (checks.calls, checks.ungrounded_calls, checks.arguments, checks.ungrounded_arguments) == (3, 1, 3, 1)
    assert checks.ungrounded_examples == ["get_customer.customer_id=7"]


def test_dates_and_money_said_the_way_people_say_them_ground_the_iso_arguments() -> None:
    view = view_of(
        record(
            [
                user("Book me on 12 May for 2 people, paying €45.50."),
                agent("", ("c1", "book", {"date": "2026-05-12", "seats": 2, "amount": 45.5})),
                tool("c1", "book", {"ok": True}),
                agent("Done."),
            ]
        )
    )
    assert check_dialogue(view).ungrounded_calls == 0


def test_a_date_inside_a_longer_number_is_not_said() -> None:
    """Neither 20 May (the "may 20" of "may 2026") nor 3 May (the "3 may" of "13 may") is said by 7 May 2026."""
    view = view_of(
        record(
            [
                user("Book me on 7 May 2026, or on 13 May."),
                agent("", ("c1", "book", {"date": "2026-05-20"})),
                tool("c1", "book", {"ok": True}),
                agent("", ("c2", "book", {"date": "2026-05-03"})),
                tool("c2", "book", {"ok": True}),
                agent("", ("c3", "book", {"date": "2026-05-13"})),
                tool("c3", "book", {"ok": True}),
                agent("Done."),
            ]
        )
    )
    checks = check_dialogue(view)
    assert checks.ungrounded_examples == ["book.date='2026-05-20'", "book.date='2026-05-03'"]
    rows = {"rows": [{"booking_id": 4, "date": "2026-05-20", "status": "confirmed"}]}
    answer = check_dialogue(
        view_of(
            record(
                [
                    user("What's the status of my booking BK-4, the one I made on 7 May?"),
                    agent("", ("c1", "search_bookings", {"reference": "BK-4"})),
                    tool("c1", "search_bookings", rows),
                    agent("Your booking made on 7 May 2026 is confirmed."),
                ]
            )
        )
    )
    assert (answer.read_answers, answer.answers_with_unasked) == (1, 0)


def test_fields_reported_but_never_asked_for_are_counted() -> None:
    rows = {"rows": [{"order_id": 10, "status": "shipped", "total": 45.5, "placed_on": "2026-05-02"}]}
    asked_status = [
        user("What's the status of my order ORD-10?"),
        agent("", ("c1", "search_orders", {"order_number": "ORD-10"})),
        tool("c1", "search_orders", rows),
    ]
    clean = check_dialogue(view_of(record([*asked_status, agent("It is shipped.")])))
    assert (clean.read_answers, clean.answers_with_unasked) == (1, 0)
    chatty = check_dialogue(view_of(record([*asked_status, agent("It is shipped; total €45.50, placed 2 May 2026.")])))
    assert (chatty.read_answers, chatty.answers_with_unasked, chatty.unasked_fields) == (1, 1, 2)
    # a word for the field asks for it: "when" asks for a date, "how much" for money
    when = check_dialogue(
        view_of(
            record(
                [
                    user("When did I place order ORD-10, and how much was it?"),
                    agent("", ("c1", "search_orders", {"order_number": "ORD-10"})),
                    tool("c1", "search_orders", rows),
                    agent("It was placed on 2 May 2026 and came to €45.50."),
                ]
            )
        )
    )
    assert when.answers_with_unasked == 0


def test_an_asked_value_inside_another_is_taken_out_whole_whatever_the_hash_order() -> None:
    """The order number ORD-10073 holds the order id 73: taking the 73 out first would leave a
    "100" that looks like the product's stock. The figures must not depend on the hash seed."""
    script = """
from simulator.quality._checks import check_dialogue
from simulator.quality._view import view_of
from tests.simulator.quality.test_quality import agent, record, tool, user
rows = {"rows": [{"order_id": 73, "order_number": "ORD-10073", "total": 11.99}]}
product = {"rows": [{"product_id": 5, "name": "Desk Lamp", "stock": 100}]}
messages = [
    user("Please order the Desk Lamp and tell me the total."),
    agent("", ("c1", "search_products", {"name": "Desk Lamp"})),
    tool("c1", "search_products", product),
    agent("", ("c2", "place_order", {"product_id": 5})),
    tool("c2", "place_order", rows),
    agent("Done: the order number is ORD-10073 and the total is 11.99."),
]
c = check_dialogue(view_of(record(messages)))
print(c.read_answers, c.answers_with_unasked)
"""
    seen = set()
    for seed in ("1", "2", "3", "4"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[3],
        )
        seen.add(done.stdout.strip())
    assert seen == {"1 0"}


def test_steps_turns_and_errors_are_counted_per_request() -> None:
    view = view_of(
        record(
            [
                user("Check order ORD-10 and cancel it."),
                agent("", ("a", "search_orders", {"order_number": "ORD-10"}), ("b", "list_items", {"order_id": 10})),
                tool("a", "search_orders", {"rows": [{"order_id": 10}]}),
                tool("b", "list_items", {"rows": []}),
                agent("", ("c", "cancel_order", {"order_number": "ORD-10"})),
                tool("c", "cancel_order", "Error (not_found): no order ORD-10 that can be cancelled", error=True),
                agent("I'm sorry, I couldn't find an order ORD-10 that can still be cancelled. Could you check it?"),
                user("Sorry, ORD-10 it is."),
                agent("", ("d", "cancel_order", {"order_number": "ORD-10"})),
                tool("d", "cancel_order", {"order_id": 10, "status": "cancelled"}),
                agent("Done: it is cancelled."),
            ]
        )
    )
    checks = check_dialogue(view)
    assert checks.steps == [3, 1]
    # turns as the paper counts: 2 user messages + 4 calls + 4 results + 2 agent texts
    assert checks.turns == 12
    assert (checks.tool_errors, checks.errors_reported, checks.errors_recovered) == (1, 1, 1)


def test_an_error_the_agent_glosses_over_is_not_reported() -> None:
    view = view_of(
        record(
            [
                user("Cancel ORD-10."),
                agent("", ("c", "cancel_order", {"order_number": "ORD-10"})),
                tool("c", "cancel_order", "Error (not_found): no such order", error=True),
                agent("All done!"),
            ]
        )
    )
    checks = check_dialogue(view)
    assert (checks.tool_errors, checks.errors_reported, checks.errors_recovered) == (1, 0, 0)


def test_distribution_percentiles_are_nearest_rank() -> None:
    d = Distribution.of([1, 2, 3, 4, 5, 6, 7, 8, 9, 100])
    assert (d.n, d.mean, d.p50, d.p90, d.p99, d.min, d.max) == (10, 14.5, 5, 9, 100, 1, 100)
    assert Distribution.of([]).n == 0


# --------------------------------------------------------------------------- language


def test_grammar_rules_catch_the_slips_of_template_language() -> None:
    text = (
        "i need a order. The total total is 5. It was placed_on 2026-04-09 at 1947-09-19T00:00:00Z. "
        "Does it persist.? An user asked."
    )
    hits = grammar_hits(text)
    assert hits == {
        "lowercase_start": 1,
        "lowercase_i": 1,
        "article": 2,
        "doubled_word": 1,
        "raw_name": 1,
        "raw_timestamp": 1,
        "punctuation": 1,
    }
    assert grammar_hits("An order for an hour, a user and a SKU. I think it's fine.") == {}
    assert grammar_hits("maya.okafor@example.com.") == {}


def test_repeated_sentences_and_distinct_n_on_a_matched_sample() -> None:
    user_texts = ["Thanks. Yes.", "Thanks. Please cancel it.", "Thanks."]
    agent_texts = ["Done. Anything else?", "Done. The order is cancelled now, as you asked."]
    stats = measure_language({"user": user_texts, "agent": agent_texts})
    # user sentences: Thanks x3, Yes, Please cancel it -> the top 20 are all 5
    assert stats["user"].sentences == 5 and stats["user"].top20_share == 1.0
    assert stats["user"].top_sentences[0] == ("Thanks.", 3)
    # both sides are cut to the same number of tokens
    assert stats["user"].sample_tokens == stats["agent"].sample_tokens
    same = measure_language({"user": ["a b a b a b"], "agent": ["a b c d e f"]})
    assert same["user"].distinct_2 == pytest.approx(2 / 5)
    assert same["agent"].distinct_2 == 1.0


# --------------------------------------------------------------------------- policy


SHOP_RULES = Policy(
    user_table="customers",
    identify_by=["email"],
    tables={
        "customers": TableRules(),
        "orders": TableRules(
            owner=["customer_id"],
            owner_tables=["customers"],
            editable=["status"],
            transitions={"status": {"placed": ["cancelled"]}},
        ),
    },
)


def _write_dialogue(order: int, status: str, *, confirmed: bool) -> dict[str, Any]:
    ask = f"Just to confirm: I will set order {order} to {status}. Shall I go ahead?" if confirmed else "Right away."
    return record(
        [
            user(f"Please make order {order} {status}."),
            agent(ask),
            user("Yes, go ahead." if confirmed else "Thanks."),
            agent("", ("w", "update_order_status", {"order_id": order, "status": status})),
            tool("w", "update_order_status", {"order_id": order, "status": status}),
            agent("Done."),
        ],
        user={"table": "customers", "pk": 1},
    )


def test_a_confirmed_allowed_write_on_the_users_own_row_is_no_violation() -> None:
    found = check_policy(view_of(_write_dialogue(10, "cancelled", confirmed=True)), shop_environment(), SHOP_RULES)
    assert (found.writes, found.violations) == (1, 0)


def test_a_write_without_a_restated_yes_is_unconfirmed() -> None:
    found = check_policy(view_of(_write_dialogue(10, "cancelled", confirmed=False)), shop_environment(), SHOP_RULES)
    assert (found.unconfirmed, found.not_owned, found.forbidden) == (1, 0, 0)


def test_a_status_the_transitions_do_not_allow_is_forbidden() -> None:
    found = check_policy(view_of(_write_dialogue(10, "shipped", confirmed=True)), shop_environment(), SHOP_RULES)
    assert (found.unconfirmed, found.forbidden) == (0, 1)


def test_another_customers_order_is_not_owned() -> None:
    # order 11 belongs to customer 2
    found = check_policy(view_of(_write_dialogue(11, "cancelled", confirmed=True)), shop_environment(), SHOP_RULES)
    assert found.not_owned == 1


def test_a_forbidden_request_must_be_refused_and_change_nothing() -> None:
    messages = [
        user("Please ship order 10 right now."),
        agent("I'm sorry, but I can't do that: order 10 is placed, and shipping is not up to me."),
    ]
    scenario = {"user": {"table": "customers", "pk": 1}, "tasks": [{"id": "t0", "expected": {"refusal": "no"}}]}
    raw = record(messages, **scenario)
    raw["events"] = [
        {"kind": "task_started", "task_id": "t0"},
        {"kind": "user_message", "text": messages[0]["content"]},
    ]
    assert check_policy(view_of(raw), shop_environment(), SHOP_RULES).refusals_missed == 0
    raw["messages"][1] = agent("Sure, shipping it now.")
    missed = check_policy(view_of(raw), shop_environment(), SHOP_RULES)
    assert (missed.refusals_expected, missed.refusals_missed) == (1, 1)


def test_rules_are_derived_from_a_schema_that_says_who_users_are() -> None:
    env = shop_environment()
    db = open_database(env.database)
    try:
        derived = derive_policy(db.query)
    finally:
        db.close()
    assert derived is not None
    assert derived.user_table == "customers" and derived.identify_by == ["email"]
    assert derived.tables["orders"].owner == ["customer_id"]
    assert policy_for(env) == derived


def test_measure_views_adds_it_all_up() -> None:
    views = [
        view_of(_write_dialogue(10, "cancelled", confirmed=True)),
        view_of(_write_dialogue(11, "cancelled", confirmed=False)),
    ]
    report = measure_views(views, {"shop": shop_environment()})
    assert report.dialogues == 2 and report.writes == 2
    assert report.unconfirmed_writes == 1 and report.not_owned == 1
    assert report.policy_violations == 2 and report.dialogues_with_violations == 1
    assert report.ungrounded_call_rate == 0.0


def test_stats_quality_reads_a_generated_dataset(user_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--quality", str(user_data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dialogues"] > 0 and report["tool_calls"] > 0
    assert report["ungrounded_call_rate"] == 0.0
    assert report["policy_checked"] == report["dialogues"] and report["policy_violations"] == 0
    assert main(["stats", "--quality", str(user_data)]) == 0
    assert "writes without confirmation" in capsys.readouterr().out


def test_the_figures_do_not_depend_on_the_order_of_the_records(
    user_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Concurrent runs write records in the order they finish: the same dialogues, other order."""
    shuffled = tmp_path / "shuffled"
    shutil.copytree(user_data, shuffled)
    lines = (shuffled / "dialogues.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) > 2
    (shuffled / "dialogues.jsonl").write_text("".join(reversed(lines)))
    assert main(["stats", "--quality", str(user_data), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["stats", "--quality", str(shuffled), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first


def test_stats_quality_reads_chat_format_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A researcher's own data: OpenAI-style messages (arguments as JSON strings), no environment."""
    line = {
        "messages": [
            {"role": "user", "content": "What's the weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "1", "content": '{"temp": 4}'},
            {"role": "assistant", "content": "It is 4 degrees."},
        ]
    }
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(line) + "\n")
    assert main(["stats", "--quality", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dialogues"] == 1 and report["tool_calls"] == 1 and report["ungrounded_call_rate"] == 0.0
    assert report["policy_checked"] == 0


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "sharegpt"])
def test_every_chat_export_reads_as_the_dataset_does(tmp_path: Path, fmt: str) -> None:
    """The tool calls and tool errors of an export are those of its dataset, in every format
    dialogsim writes. Before, Anthropic and ShareGPT files read as 0 tool calls, and no export
    showed a tool error ("Error (...)" was matched case-sensitively)."""
    from simulator.export import RejectedTurns, export
    from simulator.quality import measure_quality

    data = tmp_path / "data"
    assert main(["generate", "--dialogues", "30", "--seed", "3", "--out", str(data)]) == 0
    dataset = measure_quality([data])
    assert dataset.tool_calls > 100 and dataset.tool_error_dialogues > 0
    out = tmp_path / f"chat.{fmt}.jsonl"
    export(data, fmt, out, rejected_turns=RejectedTurns.KEEP)  # every dialogue, in every format
    chat = measure_quality([out])
    assert (chat.dialogues, chat.tool_calls, chat.tool_error_dialogues) == (
        dataset.dialogues,
        dataset.tool_calls,
        dataset.tool_error_dialogues,
    )


def test_a_file_of_something_else_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"messages": []}\n{"foo": 1}\n')
    from schemas.errors import ConfigError
    from simulator.quality import measure_quality

    with pytest.raises(ConfigError, match="line 2 holds no dialogue"):
        measure_quality([path])
