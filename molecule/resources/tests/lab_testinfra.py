"""Helpers shared by every scenario's testinfra tests (on PYTHONPATH via .config/molecule)."""
import os
import re
import subprocess
import time

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)


def host(name):
    """A testinfra host of the scenario's inventory."""
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def address(name):
    return RUNNER.get_variables(name)["ansible_host"]


def selected_source(name):
    """(mode, source) of the source chronyd on the host has selected (`*`), or None."""
    for line in host(name).check_output("chronyc -n -c sources").splitlines():
        fields = line.split(",")
        if fields[1] == "*":
            return fields[0], fields[2]
    return None


def wait_for(condition, timeout, what):
    """Poll condition until it returns something true: (that value, seconds it took)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = condition()
        if value:
            return value, time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout} s")


def playbook(name, *args, ok=True):
    """Run one of the scenario's playbooks (converge.yml, ...) with its inventory (and group
    and host vars); returns the CompletedProcess. ok=True: it must succeed, ok=False: fail."""
    path = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], name)
    cmd = ["ansible-playbook", "-i", os.path.dirname(INVENTORY), path, *args]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if ok is not None:
        assert (result.returncode == 0) == ok, result.stdout[-4000:] + result.stderr[-3000:]
    return result


def recap(result, name):
    """The play recap line of one host."""
    match = re.search(rf"^{re.escape(name)}\s+:.*$", result.stdout, re.M)
    assert match, result.stdout[-3000:]
    return match.group(0)


def exposure(name, unit):
    """`systemd-analyze security` overall exposure of a unit on a host (printed for the log)."""
    out = host(name).check_output(f"systemd-analyze security --no-pager {unit}")
    value = float(re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", out).group(1))
    print(f"{name}: systemd-analyze security {unit}: {value}")
    return value


# Units the roles write carry one of these in their header; Debian's own units do not.
_ROLE_UNIT_MARKS = ("Ansible managed", "Managed by Ansible")
# Debian's units the roles start (recorded, never failed: they are not ours to harden).
DEBIAN_UNITS = ("chrony.service", "gpsd.service")
MAX_ROLE_UNIT_EXPOSURE = 2.5


def role_units(name):
    """The units the roles wrote on a host (/etc/systemd/system/*.service with the managed mark);
    a template unit (name@.service) is listed by its loaded instances."""
    h = host(name)
    marks = " ".join(f"-e '{mark}'" for mark in _ROLE_UNIT_MARKS)
    files = h.run(f"grep -l {marks} /etc/systemd/system/*.service").stdout.split()
    units = []
    for path in sorted(files):
        unit = os.path.basename(path)
        if unit.endswith("@.service"):
            pattern = unit.replace("@.service", "@*.service")
            listed = h.check_output(f"systemctl list-units --all --plain --no-legend '{pattern}'")
            units += [line.split()[0] for line in listed.splitlines() if line.strip()]
        else:
            units.append(unit)
    return units


def unit_exposures(names):
    """{(host, unit): exposure} for every role unit on the hosts, and Debian's units found there
    (printed for the log); returns (role units' scores, Debian units' scores)."""
    ours, debian = {}, {}
    for name in names:
        for unit in role_units(name):
            ours[(name, unit)] = exposure(name, unit)
        for unit in DEBIAN_UNITS:
            if host(name).run(f"systemctl cat {unit}").rc == 0:
                debian[(name, unit)] = exposure(name, unit)
                print(f"{name}: {unit} is Debian's unit: recorded, not checked")
    return ours, debian


def assert_role_units_hardened(names, minimum=1):
    """Every unit the roles wrote on the hosts scores at most MAX_ROLE_UNIT_EXPOSURE on
    `systemd-analyze security`; each host has at least `minimum` of them (so it can fail)."""
    ours, _debian = unit_exposures(names)
    for name in names:
        found = [unit for (h, unit) in ours if h == name]
        assert len(found) >= minimum, f"{name}: only {found} found among the roles' units"
    over = {f"{h} {unit}": value for (h, unit), value in ours.items() if value > MAX_ROLE_UNIT_EXPOSURE}
    assert not over, f"over {MAX_ROLE_UNIT_EXPOSURE} on systemd-analyze security: {over}"
    return ours


_ROUND_TRIP = """
import sys, uuid
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
servers, topic = sys.argv[1], sys.argv[2]
payload = uuid.uuid4().hex.encode()
producer = KafkaProducer(bootstrap_servers=servers)
sent = producer.send(topic, payload, partition=0).get(timeout=20)
producer.flush()
consumer = KafkaConsumer(bootstrap_servers=servers, consumer_timeout_ms=20000)
part = TopicPartition(topic, 0)
consumer.assign([part])
consumer.seek(part, sent.offset)
print("ok" if next(iter(consumer)).value == payload else "mismatch")
"""


def kafka_round_trip(name, servers, topic):
    """Produce a message to a topic and read it back, with python3-kafka on a lab host."""
    return host(name).check_output(f"python3 -c '{_ROUND_TRIP}' {servers} {topic}") == "ok"
