"""Evaluate any MCP-capable agent against simulated users and real database state.

``dialogsim eval --agent AGENT`` runs K trials of every scenario with the agent under
test, checks every task against the final database and what the agent said, and reports
pass^k, pass@k (with confidence intervals) and the usual dialogue metrics. Agents come in
through ``simulator.dialogue.brains`` specs: ``offline``, LLM models, ``python:module:factory``
(``simulator.eval.agents``) and ``cmd:COMMAND`` (the JSON-lines protocol in
``simulator.eval.protocol``).
"""

from simulator.eval.agents import (
    AgentEndpoint,
    AgentExited,
    AgentInfo,
    AgentProtocolError,
    AgentReply,
    AgentStartError,
    AgentTimeout,
    OutsideAgentError,
    PythonAgent,
    Utterance,
)
from simulator.eval.evaluate import EvalConfig, EvalOutcome, run_eval, trial_scenarios
from simulator.eval.scoring import (
    EvalResults,
    EvalSummary,
    Interval,
    ScenarioScore,
    TaskScore,
    pass_at_k,
    pass_hat_k,
    render_results,
    score,
    split_trial_id,
    trial_id,
)

__all__ = [
    "AgentEndpoint",
    "AgentExited",
    "AgentInfo",
    "AgentProtocolError",
    "AgentReply",
    "AgentStartError",
    "AgentTimeout",
    "EvalConfig",
    "EvalOutcome",
    "EvalResults",
    "EvalSummary",
    "Interval",
    "OutsideAgentError",
    "PythonAgent",
    "ScenarioScore",
    "TaskScore",
    "Utterance",
    "pass_at_k",
    "pass_hat_k",
    "render_results",
    "run_eval",
    "score",
    "split_trial_id",
    "trial_id",
    "trial_scenarios",
]
