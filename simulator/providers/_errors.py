"""Errors of the provider layer, placed in the tree of :mod:`schemas.errors`.

::

    DialogsimError
    ├── ProviderError            one model call failed; ``retryable`` says whether trying again may help
    │   ├── RateLimited          429 / rate_limit_error; ``retry_after`` from the response headers
    │   ├── ProviderUnavailable  5xx, 529 overloaded, connection refused or dropped
    │   ├── ProviderTimeout      no complete answer within the per-request timeout
    │   ├── BadResponse          a 2xx answer whose body is not the protocol's JSON
    │   └── ProviderRejected     any other 4xx: the request itself is wrong (not retried)
    │       └── ProviderAuthError  401 / 403: the key is missing, wrong or not allowed
    └── DialogueError
        └── StructuredOutputError  a structured reply still did not decode after one repair

The client retries ``retryable`` errors with backoff and raises the last one when its
retries are spent. No message ever contains an API key: providers redact it.
"""

from __future__ import annotations

from schemas.errors import DialogsimError, DialogueError

__all__ = [
    "BadResponse",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "StructuredOutputError",
]


class ProviderError(DialogsimError):
    """A model call that failed. ``provider`` and ``model`` say which; ``status`` is the HTTP status if any."""

    code = "provider"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status
        #: Seconds the server asked us to wait (``retry-after`` / ``retry-after-ms``), if it said.
        self.retry_after = retry_after
        self.detail = message
        where = f"{provider}:{model}" if provider else model
        super().__init__(f"{where}: {message}" if where else message)


class RateLimited(ProviderError):
    """The provider refused the call for now (HTTP 429)."""

    code = "rate_limited"

    retryable = True


class ProviderUnavailable(ProviderError):
    """The provider failed or could not be reached (5xx, 529 overloaded, connection errors)."""

    code = "unavailable"

    retryable = True


class ProviderTimeout(ProviderError):
    """No complete answer arrived within the per-request timeout."""

    code = "provider_timeout"

    retryable = True


class BadResponse(ProviderError):
    """A success status whose body is not what the protocol promises (truncated or malformed JSON)."""

    code = "bad_response"

    retryable = True


class ProviderRejected(ProviderError):
    """The provider rejected the request itself (400, 404, 413, 422...). Retrying cannot help."""

    code = "rejected"


class ProviderAuthError(ProviderRejected):
    """The key was refused (401 / 403). Every later call with the same key will fail too."""

    code = "auth"


class StructuredOutputError(DialogueError):
    """A structured reply did not decode into its type, even after one repair request.

    ``output_name`` is the schema's name, ``problem`` the last decoding error and
    ``reply`` the start of the last reply (for the record; never shown to a model again).
    """

    code = "structured_output"

    def __init__(self, output_name: str, problem: str, reply: str) -> None:
        self.output_name = output_name
        self.problem = problem
        self.reply = reply
        super().__init__(f"{output_name}: the model's reply did not match the schema after one repair: {problem}")
