"""The lab on real systemd-nspawn hosts: up, reach, relay, idempotent up, two labs, clean down."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABCTL = str(ROOT / "lab" / "labctl")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


def labctl(*args, check=True):
    res = subprocess.run([LABCTL, *args], capture_output=True, text=True, timeout=300)
    if check and res.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} failed:\n{res.stderr}")
    return res


def state(name):
    states = json.loads(labctl("status", "--json", "--name", name).stdout)
    return states[0] if states else None


def ssh(ip, command):
    return subprocess.run([LABCTL, "ssh", ip, command], capture_output=True, text=True, timeout=120)


def leftovers(name):
    """Everything a lab can leave behind: namespaces, mounts, cgroups, nspawn processes."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines()
              if line.split()[0] == name or line.startswith(f"{name}_")]
    found += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
              if f"/labs/{name}/" in line]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/scratchbird-lab-{name}")]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"scratchbird-lab-{name}")]
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"/labs/{name}/" in cmd:
            found.append(f"process {proc.name}: {cmd[:80]}")
    return found


@pytest.fixture(scope="module")
def two_labs():
    for name in ("it-a", "it-b"):
        labctl("down", "--name", name)
    labctl("up", "--name", "it-a", "--subnet", "auto", "--host", "a1:tx_engines", "--host", "a2:olap_shards")
    labctl("up", "--name", "it-b", "--subnet", "auto", "--host", "b1:clock_masters")
    yield state("it-a"), state("it-b")
    for name in ("it-a", "it-b"):
        labctl("down", "--name", name)


def test_hosts_boot_systemd_and_answer_ssh(two_labs):
    lab_a, _ = two_labs
    for name, host in lab_a["hosts"].items():
        res = ssh(host["ip"], "hostname; systemctl is-system-running --wait; cat /proc/1/comm")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [name, "running", "systemd"]


def test_hosts_reach_each_other_by_name(two_labs):
    lab_a, _ = two_labs
    res = ssh(lab_a["hosts"]["a1"]["ip"], "ping -c1 -W2 a2")
    assert res.returncode == 0, res.stdout + res.stderr


def test_hosts_get_packages_through_the_relay(two_labs):
    lab_a, _ = two_labs
    res = ssh(lab_a["hosts"]["a1"]["ip"], "apt-get -q update && apt-get -q -y --download-only install tzdata")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


def test_hosts_have_no_route_out(two_labs):
    lab_a, _ = two_labs
    # The lab bridge is the only network: the default route leads nowhere beyond it.
    res = ssh(lab_a["hosts"]["a1"]["ip"], "ip -o route get 192.0.2.1; ping -c1 -W1 192.0.2.1")
    assert "via 10.213." in res.stdout
    assert res.returncode != 0


def test_two_labs_run_side_by_side_on_their_own_subnets(two_labs):
    lab_a, lab_b = two_labs
    assert lab_a["subnet"] != lab_b["subnet"]
    b1 = lab_b["hosts"]["b1"]["ip"]
    assert ssh(b1, "hostname").stdout.strip() == "b1"
    # Lab b's host cannot see lab a's hosts.
    assert ssh(b1, f"ping -c1 -W1 {lab_a['hosts']['a1']['ip']}").returncode != 0


def test_up_again_changes_nothing(two_labs):
    lab_a, _ = two_labs
    labctl("up", "--name", "it-a", "--host", "a1:tx_engines", "--host", "a2:olap_shards")
    again = state("it-a")
    assert {n: h["pid"] for n, h in again["hosts"].items()} == {n: h["pid"] for n, h in lab_a["hosts"].items()}
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    assert sorted(n for n in netns if n.startswith("it-a")) == ["it-a", "it-a_a1", "it-a_a2"]


def test_inventory_reaches_every_host_with_ansible(two_labs):
    inventory = labctl("inventory-path", "--name", "it-a").stdout.strip()
    res = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible"), "-i", inventory, "tx_engines:olap_shards",
                          "-m", "ansible.builtin.ping"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == 2


def test_forward_reaches_a_lab_port_from_loopback(two_labs):
    first = labctl("forward", "--name", "it-a", "a1", "22").stdout.strip()
    assert labctl("forward", "--name", "it-a", "a1", "22").stdout.strip() == first  # one per target
    host, port = first.split(":")
    assert host == "127.0.0.1"
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        assert conn.recv(64).startswith(b"SSH-2.0"), "sshd of a1 through the forward"


def test_down_leaves_nothing_and_is_idempotent():
    labctl("up", "--name", "it-c", "--subnet", "auto", "--host", "c1:tx_engines")
    labctl("forward", "--name", "it-c", "c1", "22")
    forwarder = next(iter(state("it-c")["forwards"].values()))["pid"]
    assert leftovers("it-c"), "the lab should be visible while up"
    labctl("down", "--name", "it-c")
    assert leftovers("it-c") == []
    try:  # gone, or a zombie not yet reaped (no command line)
        running = b"TCP-LISTEN" in Path(f"/proc/{forwarder}/cmdline").read_bytes()
    except OSError:
        running = False
    assert not running, "down stops the lab's forwards"
    assert not (ROOT / ".cache" / "lab" / "labs" / "it-c").exists()
    res = labctl("down", "--name", "it-c")
    assert "nothing up" in res.stderr
