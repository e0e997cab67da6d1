"""Secrets never reach an agent under evaluation: its environment is an allow-list plus what the user grants."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from schemas import AgentMessage
from schemas.errors import ConfigError
from simulator.cli import main as cli_main
from simulator.eval import EvalConfig, run_eval
from simulator.eval.agents import AGENT_ENV_ALLOWED, agent_environment, scrub_environment
from simulator.eval.evaluate import RECORDS_DIR
from simulator.run.dataset import DATASET_FILE, iter_records
from tests.simulator.eval.conftest import HERE, cmd_test_agent

pytestmark = pytest.mark.anyio

#: Values no agent may ever see.
CANARY_KEY = "sk-canary-agent-0d9e8f7a6b5c"
CANARY_OTHER = "canary-not-on-the-list-41c2"
#: A value the user hands to the agent on purpose (--agent-env).
GRANTED = "granted-value-77aa"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_KEY)
    monkeypatch.setenv("MY_SERVICE_TOKEN", CANARY_KEY)
    monkeypatch.setenv("SOME_UNLISTED_SETTING", CANARY_OTHER)
    monkeypatch.setenv("AGENT_SETTING", GRANTED)
    monkeypatch.setenv("DIALOGSIM_TEST_FLAVOUR", "mint")


def _replies(out: Path) -> list[str]:
    return [e.text for _, r in iter_records(out / RECORDS_DIR) for e in r.events if isinstance(e, AgentMessage)]


async def test_a_cmd_agent_gets_the_allow_list_and_what_is_granted_never_the_keys(
    tmp_path: Path, shop_file: Path, secrets: None
) -> None:
    out = tmp_path / "cmd"
    await run_eval(
        EvalConfig(
            agent=cmd_test_agent("env"),
            out_dir=out,
            source=str(shop_file),
            agent_env=("AGENT_SETTING",),
            progress=False,
        )
    )
    replies = _replies(out)
    assert replies
    seen = json.loads(replies[0])
    assert CANARY_KEY not in replies[0] and CANARY_OTHER not in replies[0]
    assert seen["AGENT_SETTING"] == GRANTED and seen["DIALOGSIM_TEST_FLAVOUR"] == "mint"
    assert seen["PATH"] == os.environ["PATH"] and seen["DIALOGSIM_MCP_TOKEN"]
    allowed = set(AGENT_ENV_ALLOWED) | {"AGENT_SETTING"}
    assert {k for k in seen if not k.startswith("DIALOGSIM_")} <= allowed
    # Nothing secret reached the dataset either (the agent said everything it saw).
    assert CANARY_KEY.encode() not in (out / RECORDS_DIR / DATASET_FILE).read_bytes()


async def test_a_python_agent_reads_no_keys_from_os_environ(tmp_path: Path, shop_file: Path, secrets: None) -> None:
    out = tmp_path / "py"
    agent = f"python:{HERE / 'env_agent.py'}:make_agent"
    await run_eval(
        EvalConfig(agent=agent, out_dir=out, source=str(shop_file), agent_env=("AGENT_SETTING",), progress=False)
    )
    replies = _replies(out)
    assert replies
    seen = json.loads(replies[0])
    for environ in (seen["at_import"], seen["at_reply"]):
        assert CANARY_KEY not in json.dumps(environ)
        assert not {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MY_SERVICE_TOKEN"} & set(environ)
        assert environ["AGENT_SETTING"] == GRANTED
    assert CANARY_KEY.encode() not in (out / RECORDS_DIR / DATASET_FILE).read_bytes()


def test_the_command_line_grants_variables_with_agent_env(
    tmp_path: Path, shop_file: Path, secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    argv = ["eval", "--agent", cmd_test_agent("env"), "--scenarios", str(shop_file), "--seed", "1"]
    assert cli_main([*argv, "--agent-env", "AGENT_SETTING", "--out", str(out), "--no-progress"]) == 0
    seen = json.loads(_replies(out)[0])
    assert seen["AGENT_SETTING"] == GRANTED and "OPENAI_API_KEY" not in seen
    capsys.readouterr()
    assert cli_main([*argv, "--agent-env", "NOT_SET_ANYWHERE_1234", "--out", str(tmp_path / "x")]) == 2
    assert "NOT_SET_ANYWHERE_1234" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["NOT_SET_ANYWHERE_1234", "1BAD", "A=B", ""])
def test_a_grant_must_name_a_variable_that_is_set(name: str) -> None:
    with pytest.raises(ConfigError):
        agent_environment([name], {"PATH": "/bin"})


def test_the_scrub_keeps_the_allow_list_grants_and_own_variables() -> None:
    environ = {
        "PATH": "/bin",
        "HOME": "/home/a",
        "OPENAI_API_KEY": "k",
        "AWS_SECRET_ACCESS_KEY": "k",
        "GITHUB_TOKEN": "k",
        "PGPASSWORD": "k",
        "NEEDED_TOKEN": "k",
        "DIALOGSIM_MCP_TOKEN": "t",
        "EDITOR": "vi",
        "DATABASE_URL": "postgres://app:s3cret@db.internal:5432/prod",
        "SENTRY_DSN": "https://abc@o1.ingest.sentry.io/1",
        "PROXY_URL": "http://proxy.internal:3128",
    }
    removed = scrub_environment(environ, keep=["NEEDED_TOKEN"])
    assert removed == [
        "AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "GITHUB_TOKEN", "OPENAI_API_KEY", "PGPASSWORD", "SENTRY_DSN",
    ]  # fmt: skip
    assert set(environ) == {"PATH", "HOME", "NEEDED_TOKEN", "DIALOGSIM_MCP_TOKEN", "EDITOR", "PROXY_URL"}
