"""LLM brains: every role played by a model through the provider layer.

The command line builds an :class:`LLMSetup` (provider settings read from flags and
environment variables, a client pool, prompt overrides) and installs it for the run
with :func:`use_setup`; brain specs such as ``anthropic:claude-sonnet-4-5`` then find
their client there. Nothing here reads the environment itself.
"""

from __future__ import annotations

from simulator.llm.setup import LLMSetup, current_setup, use_setup

__all__ = ["LLMSetup", "current_setup", "use_setup"]
