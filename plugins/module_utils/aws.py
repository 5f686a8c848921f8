# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Shared code of the AWS modules (elbv2_target, s3_upload).

The connection options (the ``scratchbird.cluster.aws`` doc fragment documents them), building a
boto3 client from them with clear errors (boto3 missing, unknown profile, no region, no
credentials), and the text of botocore's errors.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import boto3
    from boto3.exceptions import S3UploadFailedError
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError, ProfileNotFound
except ImportError:
    boto3 = Config = None
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

    class BotoCoreError(Exception):
        """Stand-in: nothing raises it without botocore."""

    class ClientError(Exception):
        """Stand-in: nothing raises it without botocore."""

    class NoRegionError(BotoCoreError):
        """Stand-in: nothing raises it without botocore."""

    class ProfileNotFound(BotoCoreError):
        """Stand-in: nothing raises it without botocore."""

    class S3UploadFailedError(Exception):
        """Stand-in: nothing raises it without boto3."""
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None

# Every error an AWS call may raise that the modules report (HTTP, parameter and service errors;
# boto3's managed S3 transfer wraps the ClientError of a failed upload in S3UploadFailedError).
AWS_ERRORS = (BotoCoreError, ClientError, S3UploadFailedError)  # pylint cannot tell these are exceptions: the modules say so

AWS_CONNECTION_SPEC = dict(
    region=dict(type="str"),
    endpoint_url=dict(type="str"),
    profile=dict(type="str"),
    access_key=dict(type="str", no_log=False),
    secret_key=dict(type="str", no_log=True),
    session_token=dict(type="str", no_log=True),
)

AWS_MUTUALLY_EXCLUSIVE = [("profile", "access_key"), ("profile", "secret_key"), ("profile", "session_token")]
AWS_REQUIRED_TOGETHER = [("access_key", "secret_key")]
AWS_REQUIRED_BY = dict(session_token=("access_key", "secret_key"))

USER_AGENT = "scratchbird.cluster"

NO_CREDENTIALS = ("no AWS credentials found: set access_key and secret_key, or profile, or AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY, or give the host running the module a shared credentials file or an "
                  "instance or container role")


class AWSModuleError(Exception):
    """A failure to report with ``fail_json(msg=str(exc), **exc.details)``."""

    def __init__(self, msg, **details):
        super(AWSModuleError, self).__init__(msg)
        self.details = details


def aws_module(module_options, **kwargs):
    """An AnsibleModule with the connection options plus the module's own."""
    spec = dict((k, dict(v)) for k, v in AWS_CONNECTION_SPEC.items())
    spec.update(module_options)
    kwargs["mutually_exclusive"] = AWS_MUTUALLY_EXCLUSIVE + list(kwargs.get("mutually_exclusive") or [])
    kwargs["required_together"] = AWS_REQUIRED_TOGETHER + list(kwargs.get("required_together") or [])
    required_by = dict(AWS_REQUIRED_BY)
    required_by.update(kwargs.get("required_by") or {})
    kwargs["required_by"] = required_by
    return AnsibleModule(argument_spec=spec, **kwargs)


def _response(exc):
    """The error response of a botocore ClientError, also when exc wraps one (S3UploadFailedError)."""
    seen = 0
    while exc is not None and seen < 5:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and response.get("Error"):
            return response
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def error_code(exc):
    """The AWS error code of a botocore ClientError (``TargetGroupNotFound``, ``404``...), else None."""
    response = _response(exc)
    return response["Error"].get("Code") if response else None


def error_text(exc):
    """``AWS error <Code>: <Message>`` for a ClientError; the exception's own text for the others."""
    response = _response(exc)
    if response:
        error = response["Error"]
        code = error.get("Code") or "unknown"
        message = error.get("Message") or ""
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if not message and status:
            message = "HTTP %s" % status
        return "AWS error %s: %s" % (code, message) if message else "AWS error %s" % code
    return str(exc) or exc.__class__.__name__


def open_client(params, service):
    """A boto3 client of ``service`` from the connection options; AWSModuleError on any problem."""
    if not HAS_BOTO3:
        raise AWSModuleError(missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)
    try:
        session = boto3.session.Session(
            profile_name=params.get("profile"),
            region_name=params.get("region"),
            aws_access_key_id=params.get("access_key"),
            aws_secret_access_key=params.get("secret_key"),
            aws_session_token=params.get("session_token"))
    except ProfileNotFound as exc:
        raise AWSModuleError("AWS profile %r not found in the shared config or credentials files (%s)"
                             % (params.get("profile"), error_text(exc)))
    except BotoCoreError as exc:
        raise AWSModuleError("cannot set up an AWS session: %s" % error_text(exc))
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise AWSModuleError("cannot load AWS credentials: %s" % error_text(exc))
    if credentials is None:
        raise AWSModuleError(NO_CREDENTIALS)
    config = Config(user_agent_extra=USER_AGENT, retries=dict(mode="standard", max_attempts=5))
    try:
        return session.client(service, endpoint_url=params.get("endpoint_url") or None, config=config)
    except NoRegionError:
        raise AWSModuleError("no AWS region: set region, or AWS_REGION or AWS_DEFAULT_REGION, or a region in the "
                             "profile's config")
    except (BotoCoreError, ValueError) as exc:
        raise AWSModuleError("cannot create an AWS %s client: %s" % (service, error_text(exc)))


def client(module, service):
    """``open_client`` for a module: fails the module on any error."""
    try:
        return open_client(module.params, service)
    except AWSModuleError as exc:
        module.fail_json(msg=str(exc), **exc.details)
