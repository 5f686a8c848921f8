"""The kafka role in external mode against a real Kafka-protocol broker (Tansu on kx-1)."""
import hashlib
import json

from lab_testinfra import address, host, kafka_round_trip, playbook

ADMIN = "kx-1"
CLIENT = """
import json, sys
from kafka import KafkaConsumer
consumer = KafkaConsumer(bootstrap_servers=sys.argv[1])
print(json.dumps({t: len(consumer.partitions_for_topic(t)) for t in consumer.topics()}))
"""


def servers():
    return f"{address(ADMIN)}:9092"


def server_id(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:12], 16) % 999999 + 1


def topics():
    out = host(ADMIN).check_output(f"python3 -c '{CLIENT}' {servers()}")
    return json.loads(out)


def test_one_topic_per_tx_engine_with_32_partitions():
    found = topics()
    expected = {f"db-changes-{server_id('tx-a')}", "db-changes-42"}
    assert expected <= set(found), found
    assert {found[t] for t in expected} == {32}


def test_a_message_round_trip_through_a_cluster_topic():
    assert kafka_round_trip(ADMIN, servers(), "db-changes-42")


def test_an_unreachable_external_kafka_fails_clearly():
    # An address of the lab's own subnet where no host runs.
    nowhere = address(ADMIN).rsplit(".", 1)[0] + ".250:9092"
    result = playbook("converge.yml", "-e", f"cluster_kafka_bootstrap={nowhere}", ok=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert nowhere in output and "no Kafka broker reachable" in output, output[-3000:]
