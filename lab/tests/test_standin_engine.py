# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The stand-in engine (lab/engine): build the artifact, run the real processes on loopback.

Readiness is always polled (READY=1 on the notify socket, /ready, a metric value)
with a deadline; nothing sleeps a fixed time hoping the process is up.
"""

import copy
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = REPO / "lab" / "engine" / "build.py"
ENGINE_SOURCE = REPO / "lab" / "engine" / "scratchbird_engine.py"
CHRONY_SOURCE = REPO / "plugins" / "module_utils" / "chrony.py"
TIERS = ("tx-engine", "ingestion-engine", "olap-shard", "clock-master")
DEADLINE = 10.0

SYNCED = (
    "A9FEA97B,169.254.169.123,3,1700000000.123456789,-0.000012345,0.000001000,0.000020000,"
    "-12.345,0.001,0.020,0.000456000,0.000789000,16.0,Normal"
)
SYNCED_UNCERTAINTY_NS = 1029345  # 12345 + 789000 + 456000 / 2

_SPEC = importlib.util.spec_from_file_location("scratchbird_engine_under_test", ENGINE_SOURCE)
engine = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(engine)

CLUSTER = {
    "cluster": {
        "name": "lab-cluster",
        "environment": "test",
        "region": "local",
        "clock": {
            "mode": "software",
            "master_host": "127.0.0.1",
            "backup_host": "127.0.0.2",
            "heartbeat_port": 8888,
            "heartbeat_interval_ms": 100,
            "max_acceptable_uncertainty_ns": 50000000,
        },
        "replication": {
            "broker": "kafka",
            "brokers": ["127.0.0.1:9092", "kafka-2.lab:9092"],
            "topic_prefix": "db-changes-",
            "compression": "zstd",
        },
        "security": {
            "enable_tls": False,
            "tls_cert_path": "/etc/db/security/server.crt",
            "tls_key_path": "/etc/db/security/server.key",
            "tls_ca_path": "/etc/db/security/ca.crt",
            "auth_method": "kerberos",
            "kerberos_realm": "EXAMPLE.COM",
            "kerberos_keytab": "/etc/db/security/db.keytab",
        },
        "monitoring": {"enable": True, "log_level": "info", "log_output": "/var/log/db/cluster.log"},
    }
}
TX = {
    "tx_engine": {
        "server_id": "auto",
        "listeners": [
            {"protocol": "postgresql", "port": 5432, "max_connections": 1000},
            {"protocol": "mysql", "port": 3306, "max_connections": 1000},
        ],
        "storage": {
            "data_dir": "/var/lib/db/tx-engine",
            "retention_hours": 24,
            "wal_dir": "/var/lib/db/tx-engine/wal",
            "checkpoint_interval_seconds": 300,
        },
        "cache": {"query_result_cache_mb": 4096, "hot_row_cache_mb": 8192, "prepared_statement_cache_size": 10000},
        "consistency": {
            "default_mode": "bounded_staleness",
            "table_overrides": {"financial_transactions": "strict_serializable", "sessions": "eventual"},
        },
        "replication": {"enable": True, "buffer_size_mb": 512, "flush_interval_ms": 100, "compression": "zstd"},
        "resources": {"worker_threads": 16, "io_threads": 4},
    }
}
INGESTION = {
    "ingestion": {
        "broker": {
            "type": "kafka",
            "brokers": ["127.0.0.1:9092"],
            "topic_prefix": "db-changes-",
            "consumer_group": "ingestion-group-1",
        },
        "processing": {"batch_size": 1000, "batch_timeout_ms": 100, "worker_threads": 16, "merge_queue_size": 100000},
        "conflicts": {"default_strategy": "last_write_wins", "table_strategies": {"sessions": "first_write_wins"}},
        "storage": {"retention_days": 7, "gc_interval_seconds": 3600, "versions_per_gc_cycle": 10000},
        "olap_push": {
            "strategy": "batched",
            "max_batch_size": 100000,
            "max_batch_age_seconds": 300,
            "compression": "zstd",
            "parallelism": 4,
        },
    }
}
OLAP = {
    "olap": {
        "storage": {"format": "parquet", "compression": "zstd", "compression_level": 3, "block_size_mb": 128},
        "partitioning": {"strategy": "by_day", "retention_days": 365},
        "sharding": {"strategy": "by_time", "num_shards": 12, "shard_id": 0},
        "indexes": {"bloom_filters": ["user_id"], "zone_maps": True},
        "query": {"max_concurrent": 32},
        "compaction": {"interval_minutes": 60},
        "tiering": {"hot_days": 30, "warm_days": 90, "cold_days": 365},
        "materialized_views": [{"name": "daily_revenue", "refresh": "hourly"}],
    }
}
TIER_FILES = {
    "tx-engine": ("tx-engine.yaml", TX),
    "ingestion-engine": ("ingestion.yaml", INGESTION),
    "olap-shard": ("olap.yaml", OLAP),
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def write_yaml(path, doc):
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def config_args(tmp_path, tier, cluster=None, tier_doc=None):
    args = ["--cluster-config", str(write_yaml(tmp_path / "cluster.yaml", cluster or CLUSTER))]
    if tier in TIER_FILES:
        name, default = TIER_FILES[tier]
        args += ["--config", str(write_yaml(tmp_path / name, default if tier_doc is None else tier_doc))]
    return args


def edited(doc, dotted, value, delete=False):
    """Deep copy of doc with dotted path ("a.b.0.c") set to value (or deleted)."""
    doc = copy.deepcopy(doc)
    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key = int(last) if isinstance(node, list) else last
    if delete:
        del node[key]
    else:
        node[key] = value
    return doc


# What a surrounding systemd or build could set; each test sets its own.
ENV_OVERRIDES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "SOURCE_DATE_EPOCH")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    env.update(extra)
    return env


def run(*cmd, timeout=10):
    return subprocess.run(
        [str(part) for part in cmd], capture_output=True, text=True, timeout=timeout, check=False, env=clean_env()
    )


def build(out, version, fault=None):
    done = run(sys.executable, BUILD, "--version", version, "--out", out, *(["--fault", fault] if fault else []))
    assert done.returncode == 0, done.stderr
    return out / ("scratchbird-engine-%s.tar.gz" % version)


def extract(tarball, dest):
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    root = dest / tarball.name[: -len(".tar.gz")]
    assert root.is_dir()
    return root


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_chronyc(directory, line=SYNCED):
    """A chronyc that answers only the exact invocation the engine must use."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "chronyc"
    path.write_text('#!/bin/sh\n[ "$*" = "-n -c tracking" ] || exit 1\necho "%s"\n' % line)
    path.chmod(0o755)
    return path


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def poll(condition, what, proc=None, deadline=DEADLINE):
    """Poll condition() (truthy = done) until the deadline; fail early if proc exits."""
    end = time.monotonic() + deadline
    while True:
        try:
            result = condition()
        except OSError:
            result = None
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            pytest.fail("%s: process exited with %s before it happened" % (what, proc.returncode))
        if time.monotonic() > end:
            pytest.fail("timed out waiting for %s" % what)
        time.sleep(0.02)


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return line.split(" ", 1)[1]
    return None


class Processes:
    """Engine processes started by a test; each stopped by its own PID afterwards."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def start(self, binary, args, **env):
        log = open(self.tmp_path / ("engine-%d.log" % len(self.procs)), "w+b")
        proc = subprocess.Popen([str(binary)] + args, stdout=subprocess.DEVNULL, stderr=log, env=clean_env(**env))
        proc.log_file = log
        self.procs.append(proc)
        return proc

    @staticmethod
    def log(proc):
        proc.log_file.seek(0)
        return proc.log_file.read().decode()

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            proc.log_file.close()


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.cleanup()


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(DEADLINE)
    yield str(path), sock
    sock.close()


def wait_notify(sock, wanted):
    """Read sd_notify datagrams until one carries the line `wanted`."""
    seen = []
    while True:
        try:
            message = sock.recv(4096).decode()
        except socket.timeout:
            pytest.fail("no %s on the notify socket (got %r)" % (wanted, seen))
        seen.append(message)
        if wanted in message.splitlines():
            return message


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    base = tmp_path_factory.mktemp("artifacts")
    good = build(base / "good", "1.0.0")
    faulty = build(base / "faulty", "1.2.0", fault="unhealthy")
    return {
        "good_tarball": good,
        "faulty_tarball": faulty,
        "good": extract(good, base / "good-x"),
        "faulty": extract(faulty, base / "faulty-x"),
    }


# --------------------------------------------------------------------------
# artifact
# --------------------------------------------------------------------------


def test_tarball_layout(artifacts):
    tarball = artifacts["good_tarball"]
    top = "scratchbird-engine-1.0.0"
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for tier in TIERS:
        link = members["%s/bin/%s" % (top, tier)]
        assert link.issym() and link.linkname == "scratchbird-engine"
    binary = members[top + "/bin/scratchbird-engine"]
    assert binary.isfile() and binary.mode == 0o755
    assert {m.uid for m in members.values()} == {0} and {m.mtime for m in members.values()} == {1704067200}
    assert (artifacts["good"] / "VERSION").read_text() == "1.0.0\n"
    assert (artifacts["faulty"] / "VERSION").read_text() == "1.2.0\nfault: unhealthy\n"

    zipapp = artifacts["good"] / "bin" / "scratchbird-engine"
    assert zipapp.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(zipapp, os.X_OK)
    with zipfile.ZipFile(zipapp) as zf:
        names = zf.namelist()
        assert zf.read("scratchbird_chrony.py") == CHRONY_SOURCE.read_bytes()  # the one parser, bundled
        assert zf.read("scratchbird_engine.py") == ENGINE_SOURCE.read_bytes()
    assert {"__main__.py", "yaml/__init__.py", "yaml/scanner.py"} <= set(names)
    assert not [n for n in names if n.endswith((".so", ".pyc"))]


def test_build_is_reproducible(artifacts, tmp_path):
    again = build(tmp_path, "1.0.0")
    first = artifacts["good_tarball"]
    assert again.read_bytes() == first.read_bytes()
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    expected = "%s  scratchbird-engine-1.0.0.tar.gz\n" % digest
    assert (first.parent / (first.name + ".sha256")).read_text() == expected
    assert (tmp_path / (again.name + ".sha256")).read_text() == expected
    assert build(tmp_path / "other", "1.0.1").read_bytes() != first.read_bytes()


def test_build_rejects_bad_version_and_fault(tmp_path):
    for extra in (["--version", "../1.0"], ["--version", "1.0.0", "--fault", "slow"]):
        done = run(sys.executable, BUILD, "--out", tmp_path, *extra)
        assert done.returncode == 2, done.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["good", "faulty"])
def test_every_tier_reports_its_version(artifacts, kind):
    suffix = " (stand-in)\n" if kind == "good" else " (stand-in, fault: unhealthy)\n"
    version = "1.0.0" if kind == "good" else "1.2.0"
    for tier in TIERS:
        done = run(artifacts[kind] / "bin" / tier, "--version")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "scratchbird-engine %s %s%s" % (tier, version, suffix)


def test_tier_from_copied_binary_name_and_unknown_name(artifacts, tmp_path):
    copied = tmp_path / "olap-shard"  # e.g. the role copies the zipapp to /opt/db/olap-shard
    shutil.copy2(artifacts["good"] / "bin" / "scratchbird-engine", copied)
    done = run(copied, "--version")
    assert done.stdout.startswith("scratchbird-engine olap-shard 1.0.0")
    generic = artifacts["good"] / "bin" / "scratchbird-engine"
    done = run(generic, "--check-config")
    assert done.returncode == 2 and "--tier" in done.stderr
    done = run(generic, "--tier", "clock-master", "--check-config", *config_args(tmp_path, "clock-master"))
    assert (done.returncode, done.stdout) == (0, "config ok\n"), done.stderr


# --------------------------------------------------------------------------
# --check-config
# --------------------------------------------------------------------------


def test_check_config_through_the_artifact(artifacts, tmp_path):
    binary = artifacts["good"] / "bin" / "tx-engine"
    done = run(binary, "--check-config", *config_args(tmp_path, "tx-engine"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "config ok\n", "")
    bad = edited(TX, "tx_engine.cache.hot_row_cache_mbb", 8192)
    done = run(binary, "--check-config", *config_args(tmp_path, "tx-engine", tier_doc=bad))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "tx-engine.yaml: tx_engine.cache.hot_row_cache_mbb: unknown key" in done.stderr
    assert "did you mean 'hot_row_cache_mb'" in done.stderr


@pytest.mark.parametrize("tier", TIERS)
def test_good_configs_pass(tier, tmp_path, capsys):
    assert engine.main(["--tier", tier, "--check-config"] + config_args(tmp_path, tier)) == 0
    assert capsys.readouterr().out == "config ok\n"


def test_minimal_configs_pass(tmp_path, capsys):
    cluster = {"cluster": {"name": "c"}}
    minimal = {
        "tx-engine": {"tx_engine": {"server_id": 7, "listeners": [{"protocol": "mysql", "port": 3306}]}},
        "ingestion-engine": {"ingestion": {"broker": {"brokers": ["k:9092"]}}},
        "olap-shard": {"olap": {}},
    }
    for tier, doc in minimal.items():
        assert engine.main(["--tier", tier, "--check-config"] + config_args(tmp_path, tier, cluster, doc)) == 0
    # optional keys left empty by a template count as absent
    nulls = edited(CLUSTER, "cluster.clock.backup_host", None)
    assert engine.main(["--tier", "clock-master", "--check-config"] + config_args(tmp_path, "clock-master", nulls)) == 0


C, T, I, O, CM = "cluster", "tx-engine", "ingestion-engine", "olap-shard", "clock-master"
MODES = "(allowed: eventual, bounded_staleness, monotonic_reads, strict_serializable)"
COMPRESSIONS = "(allowed: zstd, lz4, snappy, gzip, none)"
# fmt: off
BAD = [
    # (id, tier run, which doc is edited (C = cluster.yaml, else that tier's file), dotted path, value or None to
    #  delete, expected message)
    ("unknown-key", T, T, "tx_engine.cache.hot_row_cache_mbb", 1,
     "tx-engine.yaml: tx_engine.cache.hot_row_cache_mbb: unknown key "
     "(allowed: hot_row_cache_mb, prepared_statement_cache_size, query_result_cache_mb)"),
    ("consistency-enum", T, T, "tx_engine.consistency.default_mode", "strong",
     "tx-engine.yaml: tx_engine.consistency.default_mode: invalid value 'strong' " + MODES),
    ("override-enum", T, T, "tx_engine.consistency.table_overrides.sessions", "weak",
     "tx-engine.yaml: tx_engine.consistency.table_overrides.sessions: invalid value 'weak' " + MODES),
    ("protocol-enum", T, T, "tx_engine.listeners.1.protocol", "oracle",
     "tx-engine.yaml: tx_engine.listeners[1].protocol: invalid value 'oracle' (allowed: postgresql, mysql)"),
    ("port-range", T, T, "tx_engine.listeners.0.port", 70000,
     "tx-engine.yaml: tx_engine.listeners[0].port: port 70000 out of range 1..65535"),
    ("port-type", T, T, "tx_engine.listeners.0.port", "5432",
     "tx-engine.yaml: tx_engine.listeners[0].port: expected a port number (integer 1..65535), got string '5432'"),
    ("duplicate-port", T, T, "tx_engine.listeners.1.port", 5432,
     "tx-engine.yaml: tx_engine.listeners[1].port: duplicate listener port 5432 (also tx_engine.listeners[0].port)"),
    ("listeners-missing", T, T, "tx_engine.listeners", None,
     "tx-engine.yaml: tx_engine.listeners: required key missing"),
    ("listeners-empty", T, T, "tx_engine.listeners", [],
     "tx-engine.yaml: tx_engine.listeners: needs at least 1 item(s)"),
    ("server-id", T, T, "tx_engine.server_id", "first",
     'tx-engine.yaml: tx_engine.server_id: expected "auto" or a non-negative integer'),
    ("bool-type", T, T, "tx_engine.replication.enable", "yes",
     "tx-engine.yaml: tx_engine.replication.enable: expected true or false, got string 'yes'"),
    ("int-type", T, T, "tx_engine.resources.worker_threads", True,
     "tx-engine.yaml: tx_engine.resources.worker_threads: expected an integer, got boolean True"),
    ("tx-compression", T, T, "tx_engine.replication.compression", "brotli",
     "tx-engine.yaml: tx_engine.replication.compression: invalid value 'brotli' " + COMPRESSIONS),
    ("clock-mode", T, C, "cluster.clock.mode", "atomic",
     "cluster.yaml: cluster.clock.mode: invalid value 'atomic' (allowed: software, hardware)"),
    ("auth-method", I, C, "cluster.security.auth_method", "oauth",
     "cluster.yaml: cluster.security.auth_method: invalid value 'oauth' (allowed: kerberos, ldap, jwt)"),
    ("heartbeat-port", O, C, "cluster.clock.heartbeat_port", 0,
     "cluster.yaml: cluster.clock.heartbeat_port: port 0 out of range 1..65535"),
    ("prometheus-port", CM, C, "cluster.monitoring.prometheus_port", 65536,
     "cluster.yaml: cluster.monitoring.prometheus_port: port 65536 out of range"),
    ("broker-hostport", T, C, "cluster.replication.brokers.1", "kafka-2",
     "cluster.yaml: cluster.replication.brokers[1]: expected \"host:port\", got string 'kafka-2'"),
    ("cluster-compression", CM, C, "cluster.replication.compression", "xz",
     "cluster.yaml: cluster.replication.compression: invalid value 'xz' " + COMPRESSIONS),
    ("cluster-name", CM, C, "cluster.name", None,
     "cluster.yaml: cluster.name: required key missing"),
    ("cluster-unknown", CM, C, "cluster.clock.heartbeat_intervall_ms", 100,
     "cluster.yaml: cluster.clock.heartbeat_intervall_ms: unknown key"),
    ("ingestion-brokers", I, I, "ingestion.broker.brokers", None,
     "ingestion.yaml: ingestion.broker.brokers: required key missing"),
    ("ingestion-compression", I, I, "ingestion.olap_push.compression", "lzma",
     "ingestion.yaml: ingestion.olap_push.compression: invalid value 'lzma' " + COMPRESSIONS),
    ("ingestion-unknown", I, I, "ingestion.processing.batchsize", 5,
     "ingestion.yaml: ingestion.processing.batchsize: unknown key"),
    ("olap-format", O, O, "olap.storage.format", "csv",
     "olap.yaml: olap.storage.format: invalid value 'csv' (allowed: parquet)"),
    ("olap-free-form-type", O, O, "olap.tiering", 30,
     "olap.yaml: olap.tiering: expected a mapping or a list, got integer 30"),
    ("olap-unknown-section", O, O, "olap.shards", 4,
     "olap.yaml: olap.shards: unknown key"),
]
# fmt: on


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_config_names_the_key(case, tmp_path, capsys):
    tier, which, path, value, message = case[1:]
    if which == C:
        cluster, tier_doc = edited(CLUSTER, path, value, delete=value is None), None
    else:
        cluster, tier_doc = None, edited(TIER_FILES[which][1], path, value, delete=value is None)
    assert engine.main(["--tier", tier, "--check-config"] + config_args(tmp_path, tier, cluster, tier_doc)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "tx_engine:\n  server_id: 1\n  server_id: 2\n  listeners: []\n",
            "tx-engine.yaml: YAML error at line 3 column 3: duplicate key 'server_id'",
        ),
        ("tx_engine: [unclosed\n", "tx-engine.yaml: YAML error at line 2"),
        ("", "tx-engine.yaml: file is empty"),
        ("- just a list\n", "tx-engine.yaml: expected a mapping, got list"),
        ("ingestion:\n  broker: {brokers: ['k:1']}\n", "tx-engine.yaml: ingestion: unknown key"),
        ("ingestion:\n  broker: {brokers: ['k:1']}\n", "tx-engine.yaml: tx_engine: required key missing"),
        ("!!python/object:os.system {}\n", "tx-engine.yaml: YAML error"),
    ],
)
def test_bad_yaml_files(text, message, tmp_path, capsys):
    assert (
        engine.main(["--tier", "tx-engine", "--check-config"] + config_args(tmp_path, "tx-engine", tier_doc=text)) == 2
    )
    assert message in capsys.readouterr().err


def test_missing_file_and_port_collisions(tmp_path, capsys):
    missing = ["--cluster-config", str(tmp_path / "nope.yaml"), "--config", str(tmp_path / "nope-tx.yaml")]
    assert engine.main(["--tier", "tx-engine", "--check-config"] + missing) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: cannot read %s: No such file or directory" % (tmp_path / "nope.yaml") in err
    assert "nope-tx.yaml: cannot read" in err
    # a listener on the metrics port (the tier's default 9090, or the one given)
    clash = edited(TX, "tx_engine.listeners.0.port", 9090)
    assert (
        engine.main(["--tier", "tx-engine", "--check-config"] + config_args(tmp_path, "tx-engine", tier_doc=clash)) == 2
    )
    assert "tx_engine.listeners[0].port: port 9090 collides with the metrics port" in capsys.readouterr().err
    args = ["--tier", "tx-engine", "--check-config", "--metrics-port", "3306"] + config_args(tmp_path, "tx-engine")
    assert engine.main(args) == 2
    assert "tx_engine.listeners[1].port: port 3306 collides" in capsys.readouterr().err
    assert engine.main(["--tier", "clock-master", "--check-config", "--config", "x.yaml"]) == 2
    assert "has no tier config file" in capsys.readouterr().err


# --------------------------------------------------------------------------
# service mode (real processes on loopback)
# --------------------------------------------------------------------------


def test_tx_engine_service(artifacts, tmp_path, processes, notify_socket):
    notify_path, notify = notify_socket
    metrics, pg, mysql, heartbeat = free_port(), free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    cluster = edited(CLUSTER, "cluster.clock.heartbeat_port", heartbeat)
    tx = edited(edited(TX, "tx_engine.listeners.0.port", pg), "tx_engine.listeners.1.port", mysql)
    data_dir = tmp_path / "data" / "tx"
    path = "%s:%s" % (fake_chronyc(tmp_path / "fakebin").parent, os.environ["PATH"])
    args = config_args(tmp_path, "tx-engine", cluster, tx)
    args += ["--bind", "127.0.0.1", "--metrics-port", str(metrics), "--data-dir", str(data_dir)]
    proc = processes.start(artifacts["good"] / "bin" / "tx-engine", args, NOTIFY_SOCKET=notify_path, PATH=path)

    assert wait_notify(notify, "READY=1").startswith("READY=1")
    base = "http://127.0.0.1:%d" % metrics
    assert http_get(base + "/ready")[0] == 200

    code, body = http_get(base + "/health")
    health = json.loads(body)
    assert code == 200
    assert (health["status"], health["tier"], health["version"]) == ("ok", "tx-engine", "1.0.0")
    assert isinstance(health["server_id"], int) and health["uptime_s"] >= 0
    assert health["clock"]["available"] and health["clock"]["synchronised"]
    assert health["clock"]["uncertainty_ns"] == SYNCED_UNCERTAINTY_NS and health["clock"]["within_bound"]

    for port, _proto in ((pg, "postgresql"), (mysql, "mysql")):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            assert conn.makefile("rb").readline() == b"scratchbird stand-in tx-engine 1.0.0\n"

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for seq in range(5):
            udp.sendto(b"SBHB1 test %d" % seq, ("127.0.0.1", heartbeat))
    poll(
        lambda: metric_value(http_get(base + "/metrics")[1], "tx_engine_clock_heartbeats_received_total") == "5",
        "5 heartbeats counted",
        proc,
    )

    code, text = http_get(base + "/metrics")
    assert code == 200
    lines = text.splitlines()
    assert "tx_engine_up 1" in lines
    assert 'tx_engine_build_info{version="1.0.0",tier="tx-engine",fault=""} 1' in lines
    assert metric_value(text, "tx_engine_clock_uncertainty_nanoseconds") == str(SYNCED_UNCERTAINTY_NS)
    assert metric_value(text, "tx_engine_clock_offset_nanoseconds") == "-12345"
    assert metric_value(text, "tx_engine_clock_heartbeats_missed_total") is not None
    assert 'tx_engine_connections_accepted_total{protocol="postgresql",port="%d"} 1' % pg in lines
    assert "# TYPE tx_engine_clock_heartbeats_received_total counter" in lines
    assert http_get(base + "/nope")[0] == 404

    marker = json.loads((data_dir / ".scratchbird-standin.json").read_text())
    assert (marker["tier"], marker["version"], marker["pid"]) == ("tx-engine", "1.0.0", proc.pid)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=DEADLINE) == 0
    assert wait_notify(notify, "STOPPING=1")
    log = processes.log(proc)
    for event in (
        "listening proto=tcp address=127.0.0.1:%d protocol=postgresql" % pg,
        "ready",
        "signal name=SIGTERM",
        "stopped",
    ):
        assert event in log
    assert "GET /" not in log  # no access logs


def test_clock_master_abstract_notify_and_heartbeats(artifacts, tmp_path, processes):
    abstract = "sbtest-%s" % uuid.uuid4().hex
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind("\0" + abstract)
    notify.settimeout(DEADLINE)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(DEADLINE)
    try:
        metrics = free_port()
        cluster = edited(
            edited(CLUSTER, "cluster.clock.heartbeat_interval_ms", 20),
            "cluster.clock.heartbeat_port",
            free_port(socket.SOCK_DGRAM),
        )
        args = config_args(tmp_path, "clock-master", cluster) + [
            "--bind", "127.0.0.1", "--metrics-port", str(metrics), "--data-dir", str(tmp_path / "cm"),
            "--chronyc", str(fake_chronyc(tmp_path / "fakebin")),
            "--heartbeat-target", "127.0.0.1:%d" % receiver.getsockname()[1],
        ]  # fmt: skip
        env = {"NOTIFY_SOCKET": "@" + abstract, "WATCHDOG_USEC": "100000"}
        proc = processes.start(artifacts["good"] / "bin" / "clock-master", args, **env)
        wait_notify(notify, "READY=1")
        wait_notify(notify, "WATCHDOG=1")
        assert receiver.recv(2048).startswith(b"SBHB1 ")
        base = "http://127.0.0.1:%d" % metrics
        text = http_get(base + "/metrics")[1]
        assert metric_value(text, "clock_master_up") == "1"
        assert metric_value(text, "clock_master_uncertainty_nanoseconds") == str(SYNCED_UNCERTAINTY_NS)
        assert metric_value(text, "clock_master_clock_uncertainty_nanoseconds") == str(SYNCED_UNCERTAINTY_NS)
        assert metric_value(text, "clock_master_clock_offset_nanoseconds") == "-12345"
        assert float(metric_value(text, "clock_master_drift_ppm")) == pytest.approx(-12.345)
        assert int(metric_value(text, "clock_master_clock_heartbeats_sent_total")) >= 1
        assert json.loads(http_get(base + "/health")[1])["tier"] == "clock-master"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 0
        wait_notify(notify, "STOPPING=1")
    finally:
        notify.close()
        receiver.close()


def test_unhealthy_build_fails_health_but_keeps_running(artifacts, tmp_path, processes):
    metrics = free_port()
    args = config_args(tmp_path, "olap-shard") + [
        "--bind", "127.0.0.1", "--metrics-port", str(metrics), "--data-dir", str(tmp_path / "olap"),
        "--chronyc", str(tmp_path / "no-such-chronyc"),
    ]  # fmt: skip
    proc = processes.start(artifacts["faulty"] / "bin" / "olap-shard", args)
    base = "http://127.0.0.1:%d" % metrics
    poll(lambda: http_get(base + "/ready")[0] == 200, "olap-shard /ready", proc)
    code, body = http_get(base + "/health")
    assert code == 503
    assert json.loads(body)["status"] == "failing"
    text = http_get(base + "/metrics")[1]
    assert metric_value(text, "olap_shard_up") == "1"
    assert metric_value(text, "olap_shard_healthy") == "0"
    assert metric_value(text, "olap_shard_clock_tracking_available") == "0"
    assert "olap_shard_clock_uncertainty_nanoseconds" not in text  # no chronyc, no clock metrics
    assert proc.poll() is None
    assert "fault injection active fault=unhealthy" in processes.log(proc)
    proc.send_signal(signal.SIGHUP)  # re-validates, keeps running
    poll(lambda: "reload: config ok" in processes.log(proc), "SIGHUP reload logged", proc)
    assert http_get(base + "/ready")[0] == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=DEADLINE) == 0


def test_ingestion_service_without_chrony(artifacts, tmp_path, processes):
    metrics = free_port()
    args = config_args(tmp_path, "ingestion-engine") + [
        "--bind", "127.0.0.1", "--metrics-port", str(metrics), "--data-dir", str(tmp_path / "ing"),
        "--chronyc", str(fake_chronyc(tmp_path / "broken", line="506 Cannot talk to daemon")),
    ]  # fmt: skip
    proc = processes.start(artifacts["good"] / "bin" / "ingestion-engine", args)
    base = "http://127.0.0.1:%d" % metrics
    poll(lambda: http_get(base + "/ready")[0] == 200, "ingestion /ready", proc)
    health = json.loads(http_get(base + "/health")[1])
    assert health["status"] == "ok" and health["clock"]["available"] is False and health["server_id"] is None
    text = http_get(base + "/metrics")[1]
    assert metric_value(text, "ingestion_up") == "1"
    assert "ingestion_clock_offset_nanoseconds" not in text
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=DEADLINE) == 0


def test_start_failures_exit_codes(artifacts, tmp_path, processes):
    binary = artifacts["good"] / "bin" / "olap-shard"

    def run(extra, cluster=None):
        config_dir = tmp_path / ("run-%d" % len(processes.procs))
        config_dir.mkdir()
        args = config_args(config_dir, "olap-shard", cluster) + ["--bind", "127.0.0.1", "--chronyc", "/nonexistent"]
        proc = processes.start(binary, args + extra)
        return proc.wait(timeout=DEADLINE), processes.log(proc)

    # invalid config: exit 2 before anything is opened
    bad = edited(CLUSTER, "cluster.clock.mode", "atomic")
    code, log = run(["--metrics-port", str(free_port()), "--data-dir", str(tmp_path / "d1")], cluster=bad)
    assert code == 2 and "cluster.clock.mode" in log and "refusing to start" in log
    assert not (tmp_path / "d1").exists()

    # data dir not usable: exit 1
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, log = run(["--metrics-port", str(free_port()), "--data-dir", str(blocker / "sub")])
    assert code == 1 and "data dir not usable" in log

    # metrics port taken: exit 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        code, log = run(["--metrics-port", str(busy.getsockname()[1]), "--data-dir", str(tmp_path / "d2")])
    assert code == 1 and "bind failed" in log

    # TLS enabled but the material is not there: exit 1, names the key
    tls = edited(CLUSTER, "cluster.security.tls_cert_path", str(tmp_path / "missing.crt"))
    tls = edited(tls, "cluster.security.enable_tls", True)
    code, log = run(["--metrics-port", str(free_port()), "--data-dir", str(tmp_path / "d3")], cluster=tls)
    assert code == 1 and "cluster.security.tls_cert_path: %s is missing" % (tmp_path / "missing.crt") in log


def test_missed_heartbeats_are_counted_by_interval():
    class S:
        heartbeat_interval = 0.1

    fake = engine.Engine.__new__(engine.Engine)
    fake.s = S()
    assert [fake._missed(gap) for gap in (0.05, 0.1, 0.14, 0.16, 0.31, 1.0)] == [0, 0, 0, 1, 2, 9]


def test_metrics_port_precedence(tmp_path):
    parser = engine.build_parser()

    def port(extra, cluster=None, tier="ingestion-engine"):
        args = parser.parse_args(["--tier", tier] + config_args(tmp_path, tier, cluster) + extra)
        settings = engine.Settings(engine.TIERS[tier], args)
        assert settings.errors == []
        return settings.metrics_port

    assert port([]) == 9091
    assert port([], tier="olap-shard") == 9092
    assert port([], tier="clock-master") == 9093
    with_prom = edited(CLUSTER, "cluster.monitoring.prometheus_port", 19100)
    assert port([], cluster=with_prom) == 19100
    assert port(["--metrics-port", "19200"], cluster=with_prom) == 19200


def test_engine_source_uses_the_collection_parser():
    assert engine.chrony.parse_tracking is not None
    assert pathlib.Path(engine.chrony.__file__).resolve() == CHRONY_SOURCE.resolve()
    assert not re.search(r"split\(\s*[\"'],[\"']\s*\)", ENGINE_SOURCE.read_text())  # no second CSV parser


def test_sighup_reloads_the_tls_material(artifacts, tmp_path, processes):
    """SIGHUP takes a new certificate without a restart; /health tells which one is in use."""
    tls = tmp_path / "tls"
    tls.mkdir()
    for name, text in (("ca.crt", "ca"), ("server.crt", "first"), ("server.key", "key")):
        (tls / name).write_text(text)
    (tls / "server.key").chmod(0o600)
    cluster = edited(CLUSTER, "cluster.security.enable_tls", True)
    for key, name in (("tls_cert_path", "server.crt"), ("tls_key_path", "server.key"), ("tls_ca_path", "ca.crt")):
        cluster = edited(cluster, "cluster.security." + key, str(tls / name))
    metrics = free_port()
    args = config_args(tmp_path, "olap-shard", cluster=cluster) + [
        "--bind", "127.0.0.1", "--metrics-port", str(metrics), "--data-dir", str(tmp_path / "olap"),
        "--chronyc", str(tmp_path / "no-such-chronyc"),
    ]  # fmt: skip
    proc = processes.start(artifacts["good"] / "bin" / "olap-shard", args)
    base = "http://127.0.0.1:%d" % metrics
    poll(lambda: http_get(base + "/ready")[0] == 200, "olap-shard /ready", proc)
    health = json.loads(http_get(base + "/health")[1])
    assert health["tls"] == {"cert_sha256": hashlib.sha256(b"first").hexdigest(), "reloads": 0}
    (tls / "server.crt").write_text("second")
    proc.send_signal(signal.SIGHUP)
    poll(lambda: json.loads(http_get(base + "/health")[1])["tls"]["reloads"] == 1, "TLS reload", proc)
    assert json.loads(http_get(base + "/health")[1])["tls"]["cert_sha256"] == hashlib.sha256(b"second").hexdigest()
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=DEADLINE) == 0
