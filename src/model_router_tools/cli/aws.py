"""The command line's calls to a deployed stack: the region an ARN names, a Step Functions client, and every
AWS failure (no credentials, access denied, no such execution, no network) as one line saying what to do.

The region comes from the ARN, because a state machine can only be called in its own region: a default
region in the environment or the profile that differs would only turn into a "does not exist".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

# arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME (or :execution:NAME:RUN, :express:NAME:RUN:ID)
_STATES_ARN = re.compile(r"^arn:aws[a-z-]*:states:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):\d{12}:"
                         r"(?P<kind>stateMachine|execution|express):\S+$")
ARN_FORMS = {
    "stateMachine": "arn:aws:states:REGION:ACCOUNT:stateMachine:NAME",
    "execution": "arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME",
    "express": "arn:aws:states:REGION:ACCOUNT:express:STATE_MACHINE:NAME:ID",
}
CREDENTIALS_HINT = ("set AWS_PROFILE to a configured profile (aws configure, or aws sso login), or AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY")
# Error codes the caller fixes (credentials, permissions, names): exit 2 like any usage error.
_CALLER_CODES = {
    "AccessDenied": "the credentials in use may not make this call: check AWS_PROFILE and its policy",
    "AccessDeniedException": "the credentials in use may not make this call: check AWS_PROFILE and its policy",
    "UnrecognizedClientException": f"the credentials are not valid: {CREDENTIALS_HINT}",
    "InvalidClientTokenId": f"the credentials are not valid: {CREDENTIALS_HINT}",
    "InvalidSignatureException": f"the secret key does not match the key id: {CREDENTIALS_HINT}",
    "ExpiredToken": "the session credentials have expired: renew them (aws sso login)",
    "ExpiredTokenException": "the session credentials have expired: renew them (aws sso login)",
    "StateMachineDoesNotExist": "check --state-machine-arn (the stack output RouterStateMachineArn)",
    "StateMachineDeleting": "the state machine is being deleted: deploy the stack again",
    "ExecutionDoesNotExist": "check the execution's name or ARN (and --state-machine-arn with a name)",
    "InvalidArn": "check the ARN",
    "InvalidName": "execution names (the request_id) are at most 80 letters, digits, '-' and '_'",
    "ExecutionAlreadyExists": "an execution of that name (the request_id) exists: names are unique for 90 days, "
                              "pass another --request-id",
    "InvalidExecutionInput": "the request is not input Step Functions takes (at most 256 KiB of JSON)",
    "ValidationException": "check the arguments",
    "NoSuchBucket": "check the bucket in the s3:// location",
    "NoSuchKey": "check the key in the s3:// location",
    "ParameterNotFound": "check --stack: the stack creates its champion parameter when RouterModelUri or "
                         "ChallengerModelUri is set (docs/rollout.md)",
}


class AwsError(Exception):
    """A failed call to AWS, as one line; ``usage`` when it is the caller's to fix (exit 2), else exit 1."""

    def __init__(self, message: str, *, usage: bool = True):
        super().__init__(" ".join(message.split()))
        self.usage = usage


def arn_region(arn: str, *, flag: str, kinds: tuple[str, ...], region: str | None = None) -> str:
    """The region ``arn`` (given as ``flag``) names; an AwsError when it is not an ARN of one of ``kinds``,
    or when ``region`` (the --region flag) names another region."""
    match = _STATES_ARN.match(arn.strip())
    if match is None or match["kind"] not in kinds:
        forms = " or ".join(ARN_FORMS[kind] for kind in kinds)
        raise AwsError(f"{flag} {arn!r} is not a Step Functions ARN of the form {forms}")
    if region and region != match["region"]:
        raise AwsError(f"--region {region} but {flag} is in {match['region']}: a state machine is called in its "
                       "own region (leave --region out)")
    return match["region"]


def stepfunctions_client(region: str) -> Any:
    """A Step Functions client in ``region`` (tests put a botocore Stubber on the one this returns).

    A session of its own: boto3's default session keeps the credentials it found first."""
    import boto3

    return boto3.session.Session().client("stepfunctions", region_name=region)


def client(service: str, region: str | None = None) -> Any:
    """A client of ``service`` in ``region`` (None: the profile's or the environment's), in a session of its own."""
    import boto3

    return boto3.session.Session().client(service, region_name=region)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn botocore's exceptions in the body into an AwsError that says what to set or check."""
    from botocore import exceptions as aws

    try:
        yield
    except aws.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "error")
        message = str(error.get("Message") or "")
        hint = _CALLER_CODES.get(code)
        text = f"{exc.operation_name}: {code}: {message}"
        raise AwsError(f"{text} ({hint})" if hint else text, usage=hint is not None) from exc
    except (aws.NoCredentialsError, aws.PartialCredentialsError) as exc:
        raise AwsError(f"no usable AWS credentials ({exc}): {CREDENTIALS_HINT}") from exc
    except aws.ProfileNotFound as exc:
        raise AwsError(f"{exc}: set AWS_PROFILE to one of `aws configure list-profiles`") from exc
    except (aws.SSOError, aws.TokenRetrievalError) as exc:
        raise AwsError(f"the AWS SSO login is missing or has expired ({exc}): run aws sso login") from exc
    except aws.NoRegionError as exc:
        raise AwsError("no AWS region: pass --region or set AWS_REGION") from exc
    except aws.ParamValidationError as exc:
        raise AwsError(f"AWS refused the parameters: {exc}") from exc
    except (aws.EndpointConnectionError, aws.ConnectTimeoutError, aws.ReadTimeoutError,
            aws.ConnectionClosedError) as exc:
        raise AwsError(f"cannot reach AWS: {exc}", usage=False) from exc
    except aws.BotoCoreError as exc:
        raise AwsError(f"{type(exc).__name__}: {exc}", usage=False) from exc
