"""A ``python:`` agent that reports the environment it saw when imported and when it replies.

Its own module (not ``agents_for_tests``), so that it is imported by the test that checks it.
"""

from __future__ import annotations

import json
import os
from typing import Any

#: The environment when the evaluator imported this module.
AT_IMPORT = dict(os.environ)


class EnvAgent:
    async def reply(self, conversation: list[Any], session: Any) -> str:
        return json.dumps({"at_import": AT_IMPORT, "at_reply": dict(os.environ)})


def make_agent(info: Any) -> EnvAgent:
    return EnvAgent()
