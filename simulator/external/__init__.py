"""Any MCP server as a per-dialogue environment (``--server``, ``--url``).

- ``spec``: what the command line describes (command or URL, state template), checked up front;
- ``instance``: starting a server on a fresh state copy (or a pool of them);
- ``proxy``: dialogsim's recording MCP server in front of it (the same events as SQL tools);
- ``connect``: the dialogue runner's connector and the verification hook;
- ``planner``: offline tasks from a walk over the read tools; ``tasks``: tasks a model writes;
- ``verify``: replay on a fresh instance, read calls re-run, state tree diffs;
- ``run``: inspecting, planning and running a whole run.
"""

from simulator.external.spec import STATE_TOKEN, ExternalSpec

__all__ = ["STATE_TOKEN", "ExternalSpec"]
