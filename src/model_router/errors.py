"""Errors the Lambdas raise on purpose.

The Lambda Python runtime reports an exception's class name as ``errorType``, and Step Functions
matches that name in ``Retry``/``Catch`` ``ErrorEquals``. So these class names are part of the
state machine's contract: renaming one means editing statemachine/router.asl.json too.
"""

from __future__ import annotations


class RouterError(Exception):
    """Base for errors raised by the router's own code."""


class InvalidRequest(RouterError):
    """The request does not match the contract; ``field`` names the offending field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ModelInvocationError(RouterError):
    """A model call failed; subclasses carry the name the state machine matches on."""

    retryable = False

    def __init__(self, message: str, *, tier: str | None = None, model_id: str | None = None):
        self.tier = tier
        self.model_id = model_id
        super().__init__(message)


# Transient: Retry with backoff in the ASL, then Catch -> fall back to another tier.
class ThrottlingException(ModelInvocationError):
    retryable = True


class ServiceUnavailableException(ModelInvocationError):
    retryable = True


class InternalServerException(ModelInvocationError):
    retryable = True


class ModelNotReadyException(ModelInvocationError):
    retryable = True


class ModelTimeoutException(ModelInvocationError):
    retryable = True


# Not transient for this model: no retry, fall back or escalate at once.
class ModelErrorException(ModelInvocationError):
    """The model returned something unusable (malformed output, model-side error)."""


class ContextWindowExceededException(ModelInvocationError):
    """The input does not fit this model's context window: escalate to a larger-context tier."""


class ContentFilteredException(ModelInvocationError):
    """The model's own safety filter withheld the answer: try another tier."""


class PromptNotRecordedException(ModelInvocationError):
    """The replay provider has no recorded answer for this prompt on this tier."""


# Fails fast: the same request would be rejected by every tier.
class ValidationException(ModelInvocationError):
    """Bedrock rejected the request itself (bad parameter, unsupported field)."""


class AccessDeniedException(ModelInvocationError):
    """IAM or model access is missing for this model: a deployment problem, not a transient one."""


# Not called at all: the tier's circuit breaker is open (src/model_router/circuit.py). Not retried: fall back.
class CircuitOpenException(ModelInvocationError):
    """The tier failed too often recently; it gets no traffic until its cool-down ends."""


MODEL_ERRORS: tuple[type[ModelInvocationError], ...] = (
    ThrottlingException,
    ServiceUnavailableException,
    InternalServerException,
    ModelNotReadyException,
    ModelTimeoutException,
    ModelErrorException,
    ContextWindowExceededException,
    ContentFilteredException,
    PromptNotRecordedException,
    ValidationException,
    AccessDeniedException,
    CircuitOpenException,
)
MODEL_ERRORS_BY_NAME: dict[str, type[ModelInvocationError]] = {e.__name__: e for e in MODEL_ERRORS}
