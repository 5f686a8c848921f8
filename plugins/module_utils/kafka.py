# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Shared code of the Kafka admin modules (kafka_topic, kafka_info).

The connection options (the ``scratchbird.cluster.kafka`` doc fragment documents them),
building a ``kafka.KafkaAdminClient`` with clear errors, and the metadata helpers.

The modules talk to the brokers through kafka-python, 2.0.2 (Debian 12's python3-kafka) or
later.  The admin API changed a lot between 2.0.2 and 3.0, so the calls here look at what the
installed client offers (its configuration keys, the parameters of its methods) rather than at
its version number, and accept the shapes of both:

- 2.0.2 has no ``bootstrap_timeout_ms``: ``api_version_auto_timeout_ms`` bounds its bootstrap.
- 2.0.2 takes ``NewTopic``/``NewPartitions`` objects and raises the first failed topic's Kafka
  error; 3.0 takes dicts and, with ``raise_errors=False``, returns the errors per topic.
- 2.0.2 returns the raw protocol responses (``topic``/``replicas``/``isr`` metadata keys,
  DescribeConfigs/AlterConfigs response structs); 3.0 returns processed dicts.
- 2.0.2's ``describe_configs`` has no ``config_filter`` (it returns every config) and its
  ``alter_configs`` sends only the non-incremental AlterConfigs, which replaces all of a
  topic's configs; 3.0 prefers IncrementalAlterConfigs itself.
- 2.0.2 has no ``api_versions()`` (its network client knows the broker's API versions) and logs
  a refused connection at INFO level only.

Errors are classified by their Kafka error code (``errno``) and class name, so this file also
works with a stand-in admin client (the unit tests use one).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import contextlib
import inspect
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

# Kafka API keys of the requests the modules may ask a broker about (kafka-python 2.x reports
# the broker's API versions by number only).
API_KEYS = dict(Metadata=3, ApiVersions=18, CreateTopics=19, DeleteTopics=20, DescribeConfigs=32,
                AlterConfigs=33, CreatePartitions=37, IncrementalAlterConfigs=44, DescribeCluster=60)

# DescribeConfigs config sources by number (a DescribeConfigs v1+ response) and the one that
# marks a config set on the topic itself.
CONFIG_SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
                  3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG",
                  6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}
TOPIC_CONFIG_SOURCE = "DYNAMIC_TOPIC_CONFIG"

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


def client_config(params, client_class=None):
    """The ``KafkaAdminClient`` keyword arguments for the module parameters.

    Only the keys ``client_class`` knows (its ``DEFAULT_CONFIG``): kafka-python refuses others.
    """
    timeout = params.get("request_timeout_ms") or 30000
    known = getattr(client_class if client_class is not None else KafkaAdminClient, "DEFAULT_CONFIG", None)
    config = dict(
        bootstrap_servers=[s.strip() for s in params["bootstrap_servers"]],
        client_id=CLIENT_ID,
        security_protocol=params.get("security_protocol") or "PLAINTEXT",
        request_timeout_ms=timeout,
    )
    # Bounds the wait for a first broker too, so that a wrong address fails in time:
    # bootstrap_timeout_ms (kafka-python 3.0), api_version_auto_timeout_ms before (the broker
    # version probe, which is the first thing 2.x connects for).
    if known is None or "bootstrap_timeout_ms" in known:
        config["bootstrap_timeout_ms"] = timeout
    elif "api_version_auto_timeout_ms" in known:
        config["api_version_auto_timeout_ms"] = timeout
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
    raises a bare "Unable to bootstrap" (3.0) or "NoBrokersAvailable" (2.x); the reason is only
    in its log: a warning in 3.0, "<connection>: Closing connection. <error>" at INFO in 2.x.
    """

    _PATTERNS = (
        re.compile(r"(?:connection to \S+ failed|Connection failed|Connection lost): (.+?)(?: \(backoff [^)]*\))?$"),
        re.compile(r"Closing connection\. (\S.*?)\s*$"),
    )

    def __init__(self):
        logging.Handler.__init__(self, logging.INFO)
        self.reason = None

    def emit(self, record):
        try:
            message = record.getMessage()
        except Exception:  # pylint: disable=broad-except
            return
        for pattern in self._PATTERNS:
            match = pattern.search(message)
            if match:
                self.reason = match.group(1).strip()
                return


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
    # kafka-python 2.x logs why a connection closed at INFO level only.
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def open_admin_client(params, client_class=None):
    """A connected ``KafkaAdminClient``; raises KafkaModuleError with a clear message."""
    client_class = client_class or KafkaAdminClient
    config = client_config(params, client_class)
    servers = ", ".join(config["bootstrap_servers"])
    log = _capture_kafka_log()
    limit = config["request_timeout_ms"] / 1000.0 + CONNECT_MARGIN_S
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


def accepts(function, name):
    """True when ``function`` takes a keyword argument ``name`` (how the client versions differ)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def _api_versions(admin):
    """The broker's API versions: ``{ApiKey or name or number: (min, max)}``."""
    if hasattr(admin, "api_versions"):  # kafka-python 3.0
        return admin.api_versions()
    client = getattr(admin, "_client", None)  # kafka-python 2.x: {api key number: (min, max)}
    if client is not None and hasattr(client, "get_api_versions"):
        return client.get_api_versions()
    return None


def supports_api(admin, api_name):
    """True/False when the broker advertises/does not advertise the API, None when unknown."""
    try:
        versions = _api_versions(admin)
    except Exception:  # pylint: disable=broad-except
        return None
    if not versions:
        return None
    keys = set()
    for key in versions:
        keys.add(getattr(key, "name", key))
        try:
            keys.add(int(key))
        except (TypeError, ValueError):
            pass
    return api_name in keys or API_KEYS.get(api_name) in keys


def cluster_info(admin):
    """{cluster_id, controller_id, brokers: [{id, host, port, rack}]} from DescribeCluster/Metadata."""
    raw = call("describe the Kafka cluster", admin.describe_cluster)
    brokers = []
    for broker in raw.get("brokers") or []:
        broker_id = broker.get("broker_id", broker.get("node_id"))  # DescribeCluster / Metadata
        brokers.append(dict(id=broker_id, host=broker.get("host"), port=broker.get("port"), rack=broker.get("rack")))
    brokers.sort(key=lambda b: (b["id"] is None, b["id"]))
    controller = raw.get("controller_id")
    if controller is not None and controller < 0:
        controller = None
    return dict(cluster_id=raw.get("cluster_id"), controller_id=controller, brokers=brokers)


def _topic_name(topic):
    return topic.get("name", topic.get("topic"))  # kafka-python 3.0 / 2.x


def _replicas(partition):
    return partition.get("replica_nodes", partition.get("replicas")) or []  # kafka-python 3.0 / 2.x


def _isr(partition):
    return partition.get("isr_nodes", partition.get("isr")) or []  # kafka-python 3.0 / 2.x


def _leader(partition):
    leader = partition.get("leader_id", partition.get("leader"))  # kafka-python 3.0 / 2.x
    return -1 if leader is None else leader


def topic_summary(topic):
    """Partitions, replication factor and health of one topic from its metadata."""
    partitions = topic.get("partitions") or []
    replica_counts = [len(_replicas(p)) for p in partitions]
    under = sum(1 for p in partitions if len(_isr(p)) < len(_replicas(p)))
    offline = sum(1 for p in partitions if _leader(p) < 0)
    return dict(
        name=_topic_name(topic),
        partitions=len(partitions),
        replication_factor=max(replica_counts) if replica_counts else None,
        under_replicated_partitions=under,
        min_isr=min(len(_isr(p)) for p in partitions) if partitions else None,
        offline_partitions=offline,
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
        name = _topic_name(topic)
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


def _as_dict(response):
    """A response as a dict: kafka-python 3.0 returns dicts, 2.x protocol structs (``to_object``)."""
    for method in ("to_dict", "to_object"):
        if hasattr(response, method):
            return getattr(response, method)()
    return response if isinstance(response, dict) else {}


def _config_source(entry):
    """The source of a DescribeConfigs entry by name (``DYNAMIC_TOPIC_CONFIG``, ``DEFAULT_CONFIG``, ...)."""
    if "config_source" in entry:
        source = entry["config_source"]
        source = getattr(source, "name", source)
        return CONFIG_SOURCES.get(source, source) if isinstance(source, int) else source
    # DescribeConfigs v0: only is_default; a topic config that is not a default is set on the topic.
    return "DEFAULT_CONFIG" if entry.get("is_default") else TOPIC_CONFIG_SOURCE


def _topic_config_entries(result, name):
    """{key: {"value": ..., "source": ...}} of topic ``name`` in a describe_configs result.

    kafka-python 3.0: ``{"topic": {name: {key: {"value": ..., "config_source": ...}}}}``;
    2.x: a list of DescribeConfigs responses with ``resources`` and their ``config_entries``.
    """
    if isinstance(result, dict):
        raw = ((result or {}).get("topic") or {}).get(name) or {}
        entries = {}
        for key, entry in raw.items():
            if isinstance(entry, dict):
                entries[key] = dict(value=entry.get("value"), source=_config_source(entry))
            else:
                entries[key] = dict(value=entry, source=None)
        return entries
    entries = {}
    for response in result or []:
        for resource in _as_dict(response).get("resources") or []:
            if resource.get("resource_name") != name:
                continue
            # A resource error (an unknown topic, no permission) leaves it without configs, as in 3.0.
            for entry in resource.get("config_entries") or []:
                key = entry.get("config_names", entry.get("config_name", entry.get("name")))
                entries[key] = dict(value=entry.get("config_value", entry.get("value")), source=_config_source(entry))
    return entries


def describe_topic_config(admin, name):
    """(entries {key: {"value", "source"}}, None), or (None, reason) when the broker does not report them."""
    resource = _topic_resource(name)
    try:
        if accepts(admin.describe_configs, "config_filter"):  # kafka-python 3.0 reports the modified only by default
            result = admin.describe_configs([resource], config_filter="all")
        else:  # kafka-python 2.x: every config
            result = admin.describe_configs([resource])
    except KafkaModuleError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        if is_unsupported(exc):
            return None, "the broker does not support DescribeConfigs (%s)" % error_text(exc)
        raise KafkaModuleError("cannot read the configuration of topic %s: %s" % (name, error_text(exc)))
    entries = _topic_config_entries(result, name)
    if not entries:
        return None, ("the broker returned no configuration for topic %s (DescribeConfigs not implemented "
                      "by this broker, or not allowed)" % name)
    return entries, None


def read_topic_config(admin, name):
    """(config {key: value}, None), or (None, reason) when the broker does not report it.

    A Kafka broker reports every topic config, the defaults included. A broker that answers
    DescribeConfigs with nothing (or does not support it) cannot be compared with.
    """
    entries, reason = describe_topic_config(admin, name)
    if entries is None:
        return None, reason
    return dict((key, entry["value"]) for key, entry in entries.items()), None


def _error_string(code, message):
    """``[Error 40] InvalidConfigurationError: <message>``, as kafka-python 3.0 reports a resource error."""
    if kafka_errors is not None:
        try:
            return str(kafka_errors.for_code(code)(message))
        except Exception:  # pylint: disable=broad-except
            pass
    return "%s: %s" % (error_code_name(code), message) if message else error_code_name(code)


def _alter_outcome(response, name):
    """"OK" or the error of topic ``name`` in an (Incremental)AlterConfigs response struct."""
    data = _as_dict(response)
    for entry in data.get("resources", data.get("responses")) or []:
        if entry.get("resource_name") == name:
            code = entry.get("error_code") or 0
            return "OK" if not code else _error_string(code, entry.get("error_message"))
    return "the broker did not answer for topic %s" % name


def _incremental_alter_request_class():
    """IncrementalAlterConfigsRequest v0 built on kafka-python 2.x's protocol classes.

    kafka-python 2.0.2 has no IncrementalAlterConfigs; None when these classes are not there.
    """
    try:
        from kafka.protocol.api import Request, Response
        from kafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String
    except ImportError:
        return None

    class IncrementalAlterConfigsResponse_v0(Response):  # pylint: disable=invalid-name
        API_KEY = API_KEYS["IncrementalAlterConfigs"]
        API_VERSION = 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            ("responses", Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")))))

    class IncrementalAlterConfigsRequest_v0(Request):  # pylint: disable=invalid-name
        API_KEY = API_KEYS["IncrementalAlterConfigs"]
        API_VERSION = 0
        RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
        SCHEMA = Schema(
            ("resources", Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                ("configs", Array(
                    ("name", String("utf-8")),
                    ("config_operation", Int8),
                    ("value", String("utf-8")))))),
            ("validate_only", Boolean))

    return IncrementalAlterConfigsRequest_v0


def _send_to_any_broker(admin, request):
    """Send a protocol request through a kafka-python 2.x admin client and wait for the response."""
    future = admin._send_request_to_node(admin._client.least_loaded_node(), request)  # pylint: disable=protected-access
    admin._wait_for_futures([future])  # pylint: disable=protected-access
    return future.value


def _can_send_requests(admin):
    return (hasattr(admin, "_send_request_to_node") and hasattr(admin, "_wait_for_futures")
            and hasattr(getattr(admin, "_client", None), "least_loaded_node"))


_SET = 0  # IncrementalAlterConfigs operation SET


def _alter_topic_config_legacy(admin, name, changes):
    """alter_topic_config through a kafka-python 2.x client; the outcome ("OK" or the error).

    IncrementalAlterConfigs (Kafka 2.3+) when the broker has it; otherwise AlterConfigs, which
    replaces all of the topic's configs: it is sent the configs set on the topic (read just
    before) with ``changes`` over them, so that the others stay as they are.
    """
    what = "change the configuration of topic %s" % name
    request_class = _incremental_alter_request_class()
    if request_class is not None and _can_send_requests(admin) and supports_api(admin, "IncrementalAlterConfigs"):
        request = request_class(
            resources=[(int(ConfigResourceType.TOPIC), name,
                        [(key, _SET, value) for key, value in sorted(changes.items())])],
            validate_only=False)
        return _alter_outcome(call(what, _send_to_any_broker, admin, request), name)
    entries, reason = describe_topic_config(admin, name)
    if entries is None:  # sending only the changes would reset the configs it did not report
        raise KafkaModuleError("cannot change %s of topic %s: the broker has only AlterConfigs, which replaces all "
                               "of the topic's configs, and %s" % (", ".join(sorted(changes)), name, reason))
    configs = {}
    for key, entry in entries.items():
        if entry["source"] != TOPIC_CONFIG_SOURCE or key in changes:
            continue
        if entry["value"] is None:
            raise KafkaModuleError(
                "cannot change %s of topic %s: the broker has only AlterConfigs, which replaces all of the topic's "
                "configs, and it does not tell the value of %s (sensitive) to keep it"
                % (", ".join(sorted(changes)), name, key))
        configs[key] = entry["value"]
    configs.update(changes)
    return _alter_outcome(call(what, admin.alter_configs, [_topic_resource(name, configs)]), name)


def alter_topic_config(admin, name, changes):
    """Set ``changes`` ({key: value}) on topic ``name``, leaving its other configs alone."""
    if accepts(admin.alter_configs, "raise_on_unknown"):
        # kafka-python 3.0: IncrementalAlterConfigs when the broker has it, else AlterConfigs with
        # the topic's other set configs added.
        result = call("change the configuration of topic %s" % name, admin.alter_configs,
                      [_topic_resource(name, dict(changes))], raise_on_unknown=False)
        outcome = ((result or {}).get("topic") or {}).get(name)
    else:
        outcome = _alter_topic_config_legacy(admin, name, dict(changes))
    if outcome != "OK":
        raise KafkaModuleError("cannot change %s of topic %s: %s" % (", ".join(sorted(changes)), name, outcome))


def config_value(value):
    """A topic config value as Kafka spells it: booleans lower case, lists comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(config_value(v) for v in value)
    return str(value)


# The per-topic results of CreateTopics, DeleteTopics and CreatePartitions: kafka-python 3.0's
# keys, then 2.x's protocol fields.
_RESULT_KEYS = ("topics", "results", "topic_errors", "topic_error_codes")


def response_errors(response, key=None):
    """[(name, code, message)] of the failed entries of a create/delete response (dict or object)."""
    data = _as_dict(response)
    entries = None
    for candidate in ((key,) if key else ()) + _RESULT_KEYS:
        if data.get(candidate) is not None:
            entries = data[candidate]
            break
    failed = []
    for entry in entries or []:
        code = entry.get("error_code") or 0
        if code:
            failed.append((_topic_name(entry), code, entry.get("error_message")))
    return failed


_ERROR_MESSAGE_RE = re.compile(r"""error_message=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def _failure_of(exc, name):
    """kafka-python 2.x raises a topic's Kafka error instead of returning it: the failure tuple
    (name, code, message), None when ``exc`` is no error of the broker about the topic."""
    code = getattr(exc, "errno", None)
    if not isinstance(code, int) or code <= 0 or is_unsupported(exc):
        return None
    # The broker's message is only in the text: "... failed with response '...error_message='...''".
    message = None
    for match in _ERROR_MESSAGE_RE.finditer(str(exc)):
        try:
            message = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            continue
        if message:
            break
    return (name, code, message)


def _call_for_topic(what, name, function, *args, **kwargs):
    """``call`` for a kafka-python 2.x request about topic ``name``: its Kafka error becomes a failure."""
    try:
        return function(*args, **kwargs), []
    except KafkaModuleError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        failure = _failure_of(exc, name)
        if failure is None:
            raise KafkaModuleError("cannot %s: %s" % (what, error_text(exc)))
        return None, [failure]


class _NewTopic:
    """kafka-python 2.x's NewTopic, without its check that refuses replication factor -1 (the
    broker default, Kafka 2.4+)."""

    def __init__(self, name, num_partitions, replication_factor, topic_configs):
        self.name = name
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignments = {}
        self.topic_configs = topic_configs


class _NewPartitions:
    """kafka-python 2.x's NewPartitions."""

    def __init__(self, total_count):
        self.total_count = total_count
        self.new_assignments = None


def create_topic(admin, name, partitions, replication_factor, configs):
    """Create topic ``name`` (replication factor -1: the broker's default); [failure] or []."""
    what = "create topic %s" % name
    if accepts(admin.create_topics, "raise_errors"):
        spec = dict(num_partitions=partitions, replication_factor=replication_factor, configs=dict(configs))
        return response_errors(call(what, admin.create_topics, {name: spec}, raise_errors=False), "topics")
    response, failures = _call_for_topic(what, name, admin.create_topics,
                                         [_NewTopic(name, partitions, replication_factor, dict(configs))])
    return failures or response_errors(response)


def delete_topic(admin, name):
    """Delete topic ``name``; [failure] or []."""
    what = "delete topic %s" % name
    if accepts(admin.delete_topics, "raise_errors"):
        return response_errors(call(what, admin.delete_topics, [name], raise_errors=False), "topics")
    response, failures = _call_for_topic(what, name, admin.delete_topics, [name])
    return failures or response_errors(response)


def create_partitions(admin, name, count):
    """Grow topic ``name`` to ``count`` partitions; [failure] or []. Other errors are raised as they
    are (the caller tells an unsupported request from the rest)."""
    if accepts(admin.create_partitions, "raise_errors"):
        return response_errors(admin.create_partitions({name: count}, raise_errors=False), "results")
    try:
        response = admin.create_partitions({name: _NewPartitions(count)})
    except Exception as exc:  # pylint: disable=broad-except
        failure = _failure_of(exc, name)
        if failure is None:
            raise
        return [failure]
    return response_errors(response)


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
