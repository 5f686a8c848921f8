# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""consul_service through ansible-playbook against a real Consul agent (1.8.7, see consul_agent),
on loopback ports, with its HTTP checks on a small HTTP server and its TCP checks on listening
sockets that this test starts. Every result is read back through the agent's API (py-consul).

Consul 1.8 reports no check definition on its agent API (``"Definition": {}``): where a test
needs proof that the agent runs a check against the right target, it reads the check's Output
(``HTTP GET <url>: 200 OK ...``, ``TCP connect <host:port>: Success``), written by the agent's
own run of the check.
"""
from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from consul_agent import MASTER_TOKEN, Agent, wait_leader
from inventory_run import BIN, ansible_env, base_env, free_port, hosts_of, inventory, plain, write_config

MODULE = "scratchbird.cluster.consul_service"
NOTES_PREFIX = "scratchbird.cluster.consul_service definition: "


class HealthServer:
    """HTTP on a free loopback port: /health answers 200, /fail 500, anything else 404."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                code = {"/health": 200, "/fail": 500}.get(self.path, 404)
                body = b"ok\n" if code == 200 else b"failing\n"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class Listener:
    """A listening loopback socket that accepts and closes every connection (a TCP check target)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    with Agent(tmp_path_factory.mktemp("consul")) as running:
        wait_leader(running.client())
        yield running


@pytest.fixture(scope="module")
def health():
    with HealthServer() as server:
        yield server


@pytest.fixture(scope="module")
def listeners():
    with Listener() as first, Listener() as second:
        yield first, second


def play(tmp_path, tasks, *options, env=None):
    """Run ``tasks`` on localhost (connection local, this venv's Python) -> (results, output).

    Each task is registered and may fail (ignore_errors); the results are written to a file.
    """
    out = tmp_path / f"results-{time.monotonic_ns()}.json"
    body = [dict(task, register=f"r{index}", ignore_errors=True) for index, task in enumerate(tasks)]
    names = ", ".join(f"r{index}" for index in range(len(tasks)))
    save = {"content": "{{ [%s] | to_json }}" % names, "dest": str(out), "mode": "0600"}
    body.append({"name": "Save the results", "ansible.builtin.copy": save, "check_mode": False, "diff": False})
    playbook = [{"name": "consul_service", "hosts": "localhost", "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable}, "tasks": body}]
    path = tmp_path / f"playbook-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    res = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", *options, str(path)],
                         capture_output=True, text=True, env=env or ansible_env(), cwd=tmp_path, timeout=300, check=False,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and out.exists(), f"ansible-playbook failed:\n{res.stdout}\n{res.stderr}"
    return json.loads(out.read_text()), res.stdout + res.stderr


def svc(agent_or_url, name, **options):
    url = agent_or_url if isinstance(agent_or_url, str) else agent_or_url.url
    return {"name": f"service {name}", MODULE: dict(url=url, name=name, **options)}


def http_check(name, url, **extra):
    return {"name": name, "http": url, "interval": "1s", "timeout": "2s", **extra}


def tcp_check(name, address, **extra):
    return {"name": name, "tcp": address, "interval": "1s", "timeout": "2s", **extra}


def service_of(client, service_id):
    return client.agent.services().get(service_id)


def checks_of(client, service_id):
    return {k: v for k, v in client.agent.checks().items() if v["ServiceID"] == service_id}


def notes_of(check):
    assert check["Notes"].startswith(NOTES_PREFIX), check
    return json.loads(check["Notes"][len(NOTES_PREFIX):])


def ok(result):
    assert not result.get("failed"), result
    return result


def wait_for(condition, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


def test_register_with_checks_wait_and_rerun(agent, health, listeners, tmp_path):
    client = agent.client()
    options = dict(id="web-1", address="127.0.0.1", port=8080, tags=["b", "a"], meta={"k": "v", "n": 3, "flag": True},
                   checks=[http_check("health", health.url("/health"), tls_skip_verify=True),
                           tcp_check("port", listeners[0].address, deregister_critical_service_after="90m")],
                   wait=True, wait_timeout=30)
    rerun = {**options, "tags": ["a", "b"], "wait": False}
    first, second = play(tmp_path, [svc(agent, "web", **options), svc(agent, "web", **rerun)])[0]
    ok(first)
    assert first["changed"] is True and first["actions"] == ["register service web-1"]
    assert first["checks"] == {"service:web-1:health": "passing", "service:web-1:port": "passing"}
    assert first["service"]["checks"][0] == {
        "id": "service:web-1:health", "name": "health", "http": health.url("/health"), "interval": "1s", "timeout": "2s",
        "tls_skip_verify": True, "deregister_critical_service_after": None}
    assert ok(second)["changed"] is False and second["actions"] == []

    service = service_of(client, "web-1")
    assert (service["Service"], service["Address"], service["Port"]) == ("web", "127.0.0.1", 8080)
    assert sorted(service["Tags"]) == ["a", "b"]
    assert service["Meta"] == {"k": "v", "n": "3", "flag": "true"}
    checks = checks_of(client, "web-1")
    assert set(checks) == {"service:web-1:health", "service:web-1:port"}
    web, port = checks["service:web-1:health"], checks["service:web-1:port"]
    assert (web["Name"], web["Type"], web["Status"]) == ("health", "http", "passing")
    assert web["Output"].startswith(f"HTTP GET {health.url('/health')}: 200 OK"), web["Output"]
    assert (port["Name"], port["Type"], port["Status"]) == ("port", "tcp", "passing")
    assert port["Output"] == f"TCP connect {listeners[0].address}: Success"
    assert notes_of(web) == {"http": health.url("/health"), "interval": "1s", "timeout": "2s", "tls_skip_verify": True,
                             "deregister_critical_service_after": None}
    assert notes_of(port)["deregister_critical_service_after"] == "90m"
    # The catalog (the servers' view) has it too: the agent synced it.
    wait_for(lambda: client.catalog.service("web")[1], what="web in the catalog")


def test_changes_update_the_agent(agent, health, listeners, tmp_path):
    client = agent.client()
    base = dict(id="web-2", port=9000, tags=["t1"], meta={"m": "1"},
                checks=[http_check("health", health.url("/health")), tcp_check("port", listeners[0].address)])
    steps = [base,
             {**base, "tags": ["t1", "t2"]},
             {**base, "tags": ["t1", "t2"], "meta": {"m": "2"}},
             {**base, "tags": ["t1", "t2"], "meta": {"m": "2"}, "port": 9001},
             {**base, "tags": ["t1", "t2"], "meta": {"m": "2"}, "port": 9001,
              "checks": [http_check("health", health.url("/health")), tcp_check("port", listeners[1].address)], "wait": True},
             {**base, "tags": ["t1", "t2"], "meta": {"m": "2"}, "port": 9001,
              "checks": [http_check("health", health.url("/health"), interval="2s")]},
             {**base, "tags": ["t1", "t2"], "meta": {"m": "2"}, "port": 9001, "checks": []}]
    results = play(tmp_path, [svc(agent, "web", **step) for step in steps])[0]
    for result in results:
        ok(result)
    assert [r["changed"] for r in results] == [True] * len(steps)
    assert results[1]["actions"] == ["register service web-2 (tags differ)"]
    assert results[2]["actions"] == ["register service web-2 (meta differ)"]
    assert results[3]["actions"] == ["register service web-2 (port differ)"]
    assert results[4]["actions"] == ["register service web-2 (checks differ)"]
    assert results[4]["checks"] == {"service:web-2:health": "passing", "service:web-2:port": "passing"}
    service = service_of(client, "web-2")
    assert (sorted(service["Tags"]), service["Meta"], service["Port"]) == (["t1", "t2"], {"m": "2"}, 9001)
    assert checks_of(client, "web-2") == {}  # the last step removed every check

    # One step at a time, read back after each: the tcp target and the interval.
    (moved,), dummy = play(tmp_path, [svc(agent, "web", **steps[4])])
    assert ok(moved)["changed"] is True
    port = checks_of(client, "web-2")["service:web-2:port"]
    assert port["Output"] == f"TCP connect {listeners[1].address}: Success" and port["Status"] == "passing"
    (interval,), dummy = play(tmp_path, [svc(agent, "web", **steps[5])])
    assert ok(interval)["changed"] is True
    checks = checks_of(client, "web-2")
    assert set(checks) == {"service:web-2:health"} and notes_of(checks["service:web-2:health"])["interval"] == "2s"


def test_check_mode_and_diff_change_nothing(agent, health, tmp_path):
    client = agent.client()
    options = dict(id="web-3", port=7000, tags=["x"], checks=[http_check("health", health.url("/health"))])
    (new,), dummy = play(tmp_path, [svc(agent, "web", **options)], "--check")
    assert ok(new)["changed"] is True and new["actions"] == ["register service web-3"]
    assert service_of(client, "web-3") is None
    (created,), dummy = play(tmp_path, [svc(agent, "web", **options)])
    assert ok(created)["changed"] is True
    (checked,), output = play(tmp_path, [svc(agent, "web", **{**options, "port": 7001, "tags": ["y"]})], "--check", "--diff")
    assert ok(checked)["changed"] is True
    assert checked["actions"] == ["register service web-3 (port, tags differ)"]
    assert checked["service"]["port"] == 7001
    assert checked["diff"]["before"]["port"] == 7000 and checked["diff"]["after"]["port"] == 7001
    assert checked["diff"]["before"]["tags"] == ["x"] and checked["diff"]["after"]["tags"] == ["y"]
    assert checked["diff"]["before"]["checks"] == checked["diff"]["after"]["checks"]
    lines = [re.sub(r"^([-+])\s+", r"\1", line.strip()) for line in output.splitlines()]
    assert "-port: 7000" in lines and "+port: 7001" in lines, output
    service = service_of(client, "web-3")
    assert (service["Port"], service["Tags"]) == (7000, ["x"])
    (absent,), dummy = play(tmp_path, [svc(agent, "web", id="web-3", state="absent")], "--check")
    assert ok(absent)["changed"] is True and absent["actions"] == ["deregister service web-3"]
    assert service_of(client, "web-3") is not None


def test_absent_deregisters(agent, health, tmp_path):
    client = agent.client()
    tasks = [svc(agent, "gone", checks=[http_check("health", health.url("/health"))]),
             svc(agent, "gone", state="absent"),
             svc(agent, "gone", state="absent")]
    (created, deleted, again), dummy = play(tmp_path, tasks)
    assert ok(created)["changed"] and ok(deleted)["changed"] and ok(again)["changed"] is False
    assert deleted["actions"] == ["deregister service gone"] and deleted["service"] is None
    assert service_of(client, "gone") is None and checks_of(client, "gone") == {}


def test_wait_fails_naming_the_check_that_does_not_pass(agent, health, listeners, tmp_path):
    client = agent.client()
    checks = [http_check("health", health.url("/health")), http_check("broken", health.url("/fail"))]
    started = time.monotonic()
    (result,), dummy = play(tmp_path, [svc(agent, "flaky", checks=checks, wait=True, wait_timeout=4)])
    elapsed = time.monotonic() - started
    assert result["failed"] and result["changed"] is True
    assert result["msg"].startswith("service flaky: 1 check(s) not passing after 4s: service:flaky:broken (broken) critical: "
                                    f"HTTP GET {health.url('/fail')}: 500 Internal Server Error"), result["msg"]
    assert "service:flaky:health" not in result["msg"]
    assert result["checks"] == {"service:flaky:health": "passing", "service:flaky:broken": "critical"}
    assert 4 <= elapsed < 4 + 30, elapsed
    assert checks_of(client, "flaky")["service:flaky:broken"]["Status"] == "critical"


def test_maintenance_mode_survives_a_change(agent, health, tmp_path):
    client = agent.client()
    options = dict(tags=["a"], checks=[http_check("health", health.url("/health"))])
    (created,), dummy = play(tmp_path, [svc(agent, "maint", **options)])
    assert ok(created)["changed"]
    assert client.agent.service.maintenance("maint", True, reason="kernel update")
    (changed, same), dummy = play(tmp_path, [svc(agent, "maint", **{**options, "tags": ["b"]}), svc(agent, "maint", **{**options, "tags": ["b"]})])
    assert ok(changed)["changed"] is True and ok(same)["changed"] is False
    checks = checks_of(client, "maint")
    assert checks["_service_maintenance:maint"]["Notes"] == "kernel update"
    assert service_of(client, "maint")["Tags"] == ["b"]


def test_bad_check_items_fail_clearly(agent, health, listeners, tmp_path):
    tasks = [svc(agent, "bad", checks=[http_check("ok", health.url("/health")),
                                       dict(name="both", http=health.url("/health"), tcp=listeners[0].address)]),
             svc(agent, "bad", checks=[dict(name="none", interval="1s")]),
             svc(agent, "bad", checks=[dict(http=health.url("/health"))]),
             svc(agent, "bad", checks=[dict(name="x", tcp="no-port")]),
             svc(agent, "bad", checks=[dict(name="x", tcp=listeners[0].address, interval="10")])]
    results, dummy = play(tmp_path, tasks)
    assert all(r["failed"] for r in results), results
    keys = "a check's keys are name, http, tcp, interval, timeout, tls_skip_verify, deregister_critical_service_after"
    assert results[0]["msg"] == ("checks[1] has both http and tcp: give exactly one of http (a URL) or tcp (host:port); " + keys)
    assert results[1]["msg"] == ("checks[0] has neither http nor tcp: give exactly one of http (a URL) or tcp (host:port); " + keys)
    assert results[2]["msg"].startswith("checks[0] has no name: every check needs a name")
    assert results[3]["msg"] == "checks[0].tcp 'no-port' is not host:port (a port from 1 to 65535; [address]:port for IPv6)"
    assert results[4]["msg"] == "checks[0].interval '10' is not a duration such as 10s, 1m30s or 500ms"
    assert service_of(agent.client(), "bad") is None


def test_unreachable_agent(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    (result,), dummy = play(tmp_path, [svc(url, "nowhere", port=1)])
    assert result["failed"]
    assert result["msg"] == f"Consul agent unreachable at {url}: [Errno 111] Connection refused"


def test_acl_tokens(tmp_path, health):
    with Agent(tmp_path, acl=True) as secured:
        master = secured.client(MASTER_TOKEN)
        wait_leader(master)
        master.acl.policy.create("read-only", rules={"service_prefix": {"": {"policy": "read"}},
                                                     "node_prefix": {"": {"policy": "read"}}})
        reader = master.acl.token.create(policies_name=["read-only"], description="reads only")["SecretID"]
        options = dict(port=7400, checks=[http_check("health", health.url("/health"))])
        denied = ("Consul denied registering service secured (403 ACL permission denied); "
                  "the token needs service:write on secured (Consul: Permission denied: Missing service:write on secured)")
        tasks = [svc(secured, "secured", **options),
                 svc(secured, "secured", token=reader, **options),
                 svc(secured, "secured", token=MASTER_TOKEN, wait=True, **options),
                 svc(secured, "secured", token=reader, **{**options, "port": 7401}),
                 svc(secured, "secured", token=reader, state="absent")]
        (anonymous, read_only, allowed, change, remove), output = play(tmp_path, tasks)
        assert anonymous["failed"] and anonymous["msg"] == denied, anonymous
        assert read_only["failed"] and read_only["msg"] == denied, read_only
        assert ok(allowed)["changed"] is True and allowed["checks"] == {"service:secured:health": "passing"}
        assert change["failed"] and change["msg"] == denied
        assert remove["failed"] and remove["msg"] == denied.replace("registering", "deregistering")
        everything = output + json.dumps([anonymous, read_only, allowed, change, remove])
        assert reader not in everything and MASTER_TOKEN not in everything
        assert service_of(master, "secured")["Port"] == 7400
        # The token from the managed host's environment (CONSUL_HTTP_TOKEN), and the url too.
        env = ansible_env(CONSUL_HTTP_TOKEN=MASTER_TOKEN, CONSUL_HTTP_ADDR=f"127.0.0.1:{secured.ports['http']}")
        task = {"name": "from the environment", MODULE: dict(name="secured", **options)}
        (same, gone), output = play(tmp_path, [task, {"name": "absent", MODULE: dict(name="secured", state="absent")}], env=env)
        assert ok(same)["changed"] is False and ok(gone)["changed"] is True
        assert MASTER_TOKEN not in output
        assert service_of(master, "secured") is None


def test_round_trip_with_the_inventory_plugin(agent, health, tmp_path):
    """Register as the cluster roles do, then find the node with the collection's consul inventory plugin."""
    client = agent.client()
    role_options = dict(port=7400, tags=["tier=tx_engines", "version=1.0.0"],
                        meta={"cluster": "it-cluster", "tier": "tx_engines", "version": "1.0.0"})
    (registered,), dummy = play(tmp_path, [svc(agent, "tx-engine", checks=[http_check("health", health.url("/health"))],
                                               wait=True, wait_timeout=30, **role_options)])
    assert ok(registered)["changed"] and registered["checks"] == {"service:tx-engine:health": "passing"}
    wait_for(lambda: client.health.service("tx-engine", passing=True)[1], what="tx-engine passing in the catalog")
    config = {"plugin": "scratchbird.cluster.consul", "url": agent.url, "cluster_name": "it-cluster"}
    env = base_env(ANSIBLE_INVENTORY_ENABLED="scratchbird.cluster.consul")
    data, dummy = inventory(write_config(tmp_path, "rt.consul.yml", config), env=env)
    assert hosts_of(data, "tx_engines") == {"agent-node"}
    assert set(data["_meta"]["hostvars"]) == {"agent-node"}  # the other tests' services are of no cluster
    node = plain(data["_meta"]["hostvars"]["agent-node"])
    assert node["ansible_host"] == "127.0.0.1" and node["scratchbird_tier"] == "tx_engines"
    engine = node["consul_services"]["tx-engine"]
    assert (engine["id"], engine["port"], sorted(engine["tags"])) == ("tx-engine", 7400, ["tier=tx_engines", "version=1.0.0"])
    assert engine["meta"] == role_options["meta"]

    # A failing check: the instance is not passing, and passing_only (the default) leaves it out.
    (failing,), dummy = play(tmp_path, [svc(agent, "tx-engine", checks=[http_check("health", health.url("/fail"))],
                                            **role_options)])
    assert ok(failing)["changed"] is True
    wait_for(lambda: checks_of(client, "tx-engine")["service:tx-engine:health"]["Status"] == "critical", what="the check failing")
    wait_for(lambda: not client.health.service("tx-engine", passing=True)[1], what="tx-engine not passing in the catalog")
    data, dummy = inventory(write_config(tmp_path, "rt2.consul.yml", dict(config, passing_only=True)), env=env)
    assert hosts_of(data, "tx_engines") == set() and "agent-node" not in data["_meta"]["hostvars"]
    data, dummy = inventory(write_config(tmp_path, "rt3.consul.yml", dict(config, passing_only=False)), env=env)
    assert hosts_of(data, "tx_engines") == {"agent-node"}
