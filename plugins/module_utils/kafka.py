# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Shared code of the Kafka admin modules (kafka_topic, kafka_info).

The connection options (the ``scratchbird.cluster.kafka`` doc fragment documents them),
building a ``kafka.KafkaAdminClient`` with clear errors, and the metadata helpers.

The modules talk to the brokers through kafka-python (3.0 or later).  Errors are
classified by their Kafka error code (``errno``) and class name, so this file also works
with a stand-in admin client (the unit tests use one).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import logging
import re
import signal
import threading
import time
import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka import errors as kafka_errors
except ImportError:
    KafkaAdminClient = ConfigResource = ConfigResourceType = kafka_errors = None
    HAS_KAFKA = False
    KAFKA_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_KAFKA = True
    KAFKA_IMPORT_ERROR = None

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

KAFKA_CONNECTION_SPEC = dict(
    bootstrap_servers=dict(type="list", elements="str", required=True),
    security_protocol=dict(type="str", default="PLAINTEXT", choices=list(SECURITY_PROTOCOLS)),
    ssl_cafile=dict(type="path"),
    ssl_certfile=dict(type="path"),
    ssl_keyfile=dict(type="path"),
    sasl_mechanism=dict(type="str", choices=list(SASL_MECHANISMS)),
    sasl_username=dict(type="str"),
    sasl_password=dict(type="str", no_log=True),
    request_timeout_ms=dict(type="int", default=30000),
)

_SASL_OPTIONS = ("sasl_mechanism", "sasl_username", "sasl_password")
_SSL_OPTIONS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")

KAFKA_REQUIRED_IF = [
    ("security_protocol", "SASL_PLAINTEXT", _SASL_OPTIONS),
    ("security_protocol", "SASL_SSL", _SASL_OPTIONS),
]

# Kafka error codes the modules look at.
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
UNSUPPORTED_VERSION = 35
# Topic, group and cluster authorization; unsupported SASL mechanism, illegal SASL state,
# SASL authentication.
_AUTH_ERRNOS = (29, 30, 31, 33, 34, 58)

# A legal Kafka topic name.
TOPIC_NAME_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

CLIENT_ID = "scratchbird.cluster"

# Seconds the connection set-up may take beyond request_timeout_ms before the module gives up.
CONNECT_MARGIN_S = 5


class KafkaModuleError(Exception):
    """A failure to report with ``fail_json(msg=str(exc), **exc.details)``."""

    def __init__(self, msg, **details):
        super(KafkaModuleError, self).__init__(msg)
        self.details = details


def kafka_argument_spec(**module_options):
    """The connection options plus the module's own."""
    spec = dict((k, dict(v)) for k, v in KAFKA_CONNECTION_SPEC.items())
    spec.update(module_options)
    return spec


def parse_server(server):
    """``host:port`` (``[v6]:port`` for IPv6) -> (host, port); ValueError when malformed."""
    text = (server or "").strip()
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("%r is not host:port" % (server,))
    return host, int(port)


def check_connection_params(params):
    """Errors in the connection options that the argument spec cannot express (a list)."""
    errors = []
    servers = params.get("bootstrap_servers") or []
    if not servers:
        errors.append("bootstrap_servers must list at least one host:port")
    for server in servers:
        try:
            parse_server(server)
        except ValueError as exc:
            errors.append("bootstrap_servers: %s" % exc)
    if params.get("request_timeout_ms") is not None and params["request_timeout_ms"] <= 0:
        errors.append("request_timeout_ms must be greater than 0, got %d" % params["request_timeout_ms"])
    protocol = params.get("security_protocol") or "PLAINTEXT"
    if not protocol.startswith("SASL_"):
        given = [o for o in _SASL_OPTIONS if params.get(o) is not None]
        if given:
            errors.append("%s need security_protocol SASL_PLAINTEXT or SASL_SSL (it is %s)" % (", ".join(given), protocol))
    if "SSL" not in protocol:
        given = [o for o in _SSL_OPTIONS if params.get(o) is not None]
        if given:
            errors.append("%s need security_protocol SSL or SASL_SSL (it is %s)" % (", ".join(given), protocol))
    return errors


def client_config(params):
    """The ``KafkaAdminClient`` keyword arguments for the module parameters."""
    timeout = params.get("request_timeout_ms") or 30000
    config = dict(
        bootstrap_servers=[s.strip() for s in params["bootstrap_servers"]],
        client_id=CLIENT_ID,
        security_protocol=params.get("security_protocol") or "PLAINTEXT",
        request_timeout_ms=timeout,
        # Bounds the wait for a first broker too, so that a wrong address fails in time.
        bootstrap_timeout_ms=timeout,
    )
    for option in _SSL_OPTIONS:
        if params.get(option):
            config[option] = params[option]
    if config["security_protocol"].startswith("SASL_"):
        config["sasl_mechanism"] = params.get("sasl_mechanism")
        config["sasl_plain_username"] = params.get("sasl_username")
        config["sasl_plain_password"] = params.get("sasl_password")
    return config


def error_code_name(code):
    """``37`` -> ``INVALID_PARTITIONS`` (the Kafka name of an error code)."""
    if kafka_errors is not None:
        try:
            name = kafka_errors.for_code(code).message
            if name:
                return name
        except Exception:  # pylint: disable=broad-except
            pass
    return "error code %s" % code


def error_text(exc):
    """A one-line description of an exception."""
    text = str(exc).strip() or type(exc).__name__
    if type(exc).__name__ not in text:
        text = "%s: %s" % (type(exc).__name__, text)
    return text.splitlines()[0]


def is_unsupported(exc):
    """True when the broker does not implement the request (UNSUPPORTED_VERSION)."""
    return getattr(exc, "errno", None) == UNSUPPORTED_VERSION or type(exc).__name__ in (
        "IncompatibleBrokerVersion", "UnsupportedVersionError")


def is_auth_failure(exc):
    """True for a SASL authentication or an authorization failure."""
    name = type(exc).__name__
    return getattr(exc, "errno", None) in _AUTH_ERRNOS or is_auth_failure_text(name)


def is_auth_failure_text(text):
    return bool(re.search(r"Authentication|Authorization|Sasl|SASL", text))


class _LastConnectionError(logging.Handler):
    """Keeps the last connection error kafka-python logs while it bootstraps.

    kafka-python retries refused or failed connections until its bootstrap timeout and then
    raises a bare "Unable to bootstrap"; the reason is only in its log.
    """

    _PATTERN = re.compile(r"(?:connection to \S+ failed|Connection failed|Connection lost): (.+?)(?: \(backoff [^)]*\))?$")

    def __init__(self):
        logging.Handler.__init__(self, logging.WARNING)
        self.reason = None

    def emit(self, record):
        try:
            match = self._PATTERN.search(record.getMessage())
        except Exception:  # pylint: disable=broad-except
            return
        if match:
            self.reason = match.group(1).strip()


class _Deadline(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds):
    """Raise _Deadline in the main thread after ``seconds`` (no-op where SIGALRM is not usable).

    kafka-python does not bound every step of a connection (a TLS handshake with a plaintext
    listener waits forever), so the module bounds the whole connection set-up.
    """
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expired(signum, frame):
        raise _Deadline()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _capture_kafka_log():
    logger = logging.getLogger("kafka")
    for handler in logger.handlers:
        if isinstance(handler, _LastConnectionError):
            handler.reason = None
            return handler
    handler = _LastConnectionError()
    logger.addHandler(handler)
    # kafka-python logs through the root logger otherwise, which writes to the module's stderr.
    logger.propagate = False
    return handler


def open_admin_client(params, client_class=None):
    """A connected ``KafkaAdminClient``; raises KafkaModuleError with a clear message."""
    client_class = client_class or KafkaAdminClient
    config = client_config(params)
    servers = ", ".join(config["bootstrap_servers"])
    log = _capture_kafka_log()
    limit = config["bootstrap_timeout_ms"] / 1000.0 + CONNECT_MARGIN_S
    try:
        with _deadline(limit):
            return client_class(**config)
    except _Deadline:
        raise KafkaModuleError(
            "no Kafka broker reachable at %s (no complete answer within %g s; check security_protocol "
            "against the listener)" % (servers, limit), bootstrap_servers=config["bootstrap_servers"])
    except Exception as exc:  # pylint: disable=broad-except
        name = type(exc).__name__
        if is_auth_failure(exc):
            raise KafkaModuleError(
                "authentication with the Kafka brokers at %s failed: %s" % (servers, error_text(exc)),
                bootstrap_servers=config["bootstrap_servers"])
        if name == "KafkaConfigurationError":
            raise KafkaModuleError("invalid Kafka client settings: %s" % error_text(exc))
        reason = log.reason or error_text(exc)
        if log.reason and is_auth_failure_text(log.reason):
            raise KafkaModuleError(
                "authentication with the Kafka brokers at %s failed: %s" % (servers, log.reason),
                bootstrap_servers=config["bootstrap_servers"])
        raise KafkaModuleError("no Kafka broker reachable at %s (%s)" % (servers, reason),
                               bootstrap_servers=config["bootstrap_servers"])


def connect(module):
    """``open_admin_client`` for a module: fails the module on any error."""
    if not HAS_KAFKA:
        module.fail_json(msg=missing_required_lib("kafka-python"), exception=KAFKA_IMPORT_ERROR)
    errors = check_connection_params(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    try:
        return open_admin_client(module.params)
    except KafkaModuleError as exc:
        module.fail_json(msg=str(exc), **exc.details)


def close(admin):
    try:
        admin.close()
    except Exception:  # pylint: disable=broad-except
        pass


def call(what, function, *args, **kwargs):
    """``function(*args, **kwargs)``; an exception becomes KafkaModuleError("cannot <what>: ...")."""
    try:
        return function(*args, **kwargs)
    except KafkaModuleError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise KafkaModuleError("cannot %s: %s" % (what, error_text(exc)))


def supports_api(admin, api_name):
    """True/False when the broker advertises/does not advertise the API, None when unknown."""
    try:
        versions = admin.api_versions()
    except Exception:  # pylint: disable=broad-except
        return None
    if not versions:
        return None
    return api_name in set(getattr(key, "name", key) for key in versions)


def cluster_info(admin):
    """{cluster_id, controller_id, brokers: [{id, host, port, rack}]} from DescribeCluster/Metadata."""
    raw = call("describe the Kafka cluster", admin.describe_cluster)
    brokers = []
    for broker in raw.get("brokers") or []:
        broker_id = broker.get("broker_id", broker.get("node_id"))
        brokers.append(dict(id=broker_id, host=broker.get("host"), port=broker.get("port"), rack=broker.get("rack")))
    brokers.sort(key=lambda b: (b["id"] is None, b["id"]))
    controller = raw.get("controller_id")
    if controller is not None and controller < 0:
        controller = None
    return dict(cluster_id=raw.get("cluster_id"), controller_id=controller, brokers=brokers)


def topic_summary(topic):
    """Partitions, replication factor and health of one topic from its metadata."""
    partitions = topic.get("partitions") or []
    replica_counts = [len(p.get("replica_nodes") or []) for p in partitions]
    under = sum(1 for p in partitions if len(p.get("isr_nodes") or []) < len(p.get("replica_nodes") or []))
    return dict(
        name=topic.get("name"),
        partitions=len(partitions),
        replication_factor=max(replica_counts) if replica_counts else None,
        under_replicated_partitions=under,
        internal=bool(topic.get("is_internal")),
    )


def describe_topics(admin, names=None):
    """(found: {name: topic_summary}, missing: [name]) for ``names`` (all topics when None)."""
    if names is None:
        raw = call("list the Kafka topics", admin.describe_topics)
    else:
        if not names:
            return {}, []
        raw = call("describe the Kafka topics %s" % ", ".join(names), admin.describe_topics, list(names))
    found, missing = {}, []
    for topic in raw or []:
        name = topic.get("name")
        code = topic.get("error_code") or 0
        if code == UNKNOWN_TOPIC_OR_PARTITION:
            missing.append(name)
        elif code in (0, LEADER_NOT_AVAILABLE):
            found[name] = topic_summary(topic)
        else:
            raise KafkaModuleError("cannot describe topic %s: %s" % (name, error_code_name(code)), error_code=code)
    if names is not None:
        missing.extend(n for n in names if n not in found and n not in missing)
    return found, missing


def describe_topic(admin, name):
    """topic_summary of one topic, None when it does not exist."""
    found, dummy = describe_topics(admin, [name])
    return found.get(name)


def _topic_resource(name, configs=None):
    if ConfigResource is None:
        raise KafkaModuleError(missing_required_lib("kafka-python"))
    return ConfigResource(ConfigResourceType.TOPIC, name, configs=configs)


def read_topic_config(admin, name):
    """(config {key: value}, None), or (None, reason) when the broker does not report it.

    A Kafka broker reports every topic config, the defaults included. A broker that answers
    DescribeConfigs with nothing (or does not support it) cannot be compared with.
    """
    try:
        result = admin.describe_configs([_topic_resource(name)], config_filter="all")
    except KafkaModuleError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        if is_unsupported(exc):
            return None, "the broker does not support DescribeConfigs (%s)" % error_text(exc)
        raise KafkaModuleError("cannot read the configuration of topic %s: %s" % (name, error_text(exc)))
    entries = ((result or {}).get("topic") or {}).get(name)
    if not entries:
        return None, ("the broker returned no configuration for topic %s (DescribeConfigs not implemented "
                      "by this broker, or not allowed)" % name)
    return dict((key, entry.get("value") if isinstance(entry, dict) else entry) for key, entry in entries.items()), None


def alter_topic_config(admin, name, changes):
    """Set ``changes`` ({key: value}) on topic ``name``, leaving its other configs alone."""
    result = call("change the configuration of topic %s" % name, admin.alter_configs,
                  [_topic_resource(name, dict(changes))], raise_on_unknown=False)
    outcome = ((result or {}).get("topic") or {}).get(name)
    if outcome != "OK":
        raise KafkaModuleError("cannot change %s of topic %s: %s" % (", ".join(sorted(changes)), name, outcome))


def config_value(value):
    """A topic config value as Kafka spells it: booleans lower case, lists comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(config_value(v) for v in value)
    return str(value)


def response_errors(response, key):
    """[(name, code, message)] of the failed entries of a create/delete response (dict or object)."""
    if hasattr(response, "to_dict"):
        response = response.to_dict()
    entries = (response or {}).get(key) or []
    failed = []
    for entry in entries:
        code = entry.get("error_code") or 0
        if code:
            failed.append((entry.get("name"), code, entry.get("error_message")))
    return failed


def describe_failure(failure):
    name, code, message = failure
    text = error_code_name(code)
    if message and message not in ("No error.", text):
        text = "%s: %s" % (text, message)
    return text


def wait_until(predicate, timeout, interval=0.1):
    """Poll ``predicate()`` until it returns a true value or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
