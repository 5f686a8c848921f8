"""Certificates from Vault's PKI and registration in Consul, on real hosts: OpenBao and the
Consul server on svc-1, a Consul client agent on every engine host (prepare.yml)."""
import json
import os
import subprocess

import pytest
import yaml
from lab_testinfra import RUNNER, address, host, playbook, recap

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
LAB_SERVICES = yaml.safe_load(open(os.path.join(PROJECT, "lab/prepare/lab_services.yml"), encoding="utf-8"))
LAB = "m-" + os.environ["MOLECULE_SCENARIO_NAME"].replace("_", "-")[:10]
# host -> (unit / Consul service, metrics port)
TIER = {
    **{h: ("clock-master", 9093) for h in RUNNER.get_hosts("clock_masters")},
    **{h: ("tx-engine", 9090) for h in RUNNER.get_hosts("tx_engines")},
    **{h: ("olap-shard", 9092) for h in RUNNER.get_hosts("olap_shards")},
}
TX = RUNNER.get_hosts("tx_engines")
OTHERS = sorted(set(TIER) - set(TX))
GET = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"


def health(name):
    return json.loads(host(name).check_output(f"python3 -c '{GET}' http://127.0.0.1:{TIER[name][1]}/health"))


def cert(name):
    """(sha256, serial, text) of the host's certificate."""
    h = host(name)
    sha = h.check_output("sha256sum /etc/db/security/server.crt").split()[0]
    serial = h.check_output("openssl x509 -noout -serial -in /etc/db/security/server.crt")
    return sha, serial, h.check_output("openssl x509 -noout -text -in /etc/db/security/server.crt")


def main_pid(name):
    return host(name).check_output(f"systemctl show -p MainPID --value {TIER[name][0]}.service")


def unchanged(result, name):
    """The host changed nothing (or no play reached it)."""
    line = [l for l in result.stdout.splitlines() if l.startswith(name + " ") and " : ok=" in l]
    return not line or " changed=0 " in line[0]


def forward(name, port):
    out = subprocess.run([os.path.join(PROJECT, "lab/labctl"), "forward", "--name", LAB, name, str(port)],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("name", sorted(TIER))
def test_certificate_from_vault(name):
    h = host(name)
    key = h.file("/etc/db/security/server.key")
    assert key.mode == 0o600 and key.user == "dbengine"
    assert h.file("/etc/db/security/server.crt").mode == 0o644
    assert h.run("openssl verify -CAfile /etc/db/security/ca.crt /etc/db/security/server.crt").rc == 0
    sha, _, text = cert(name)
    assert "scratchbird cluster CA" in text  # issued by the PKI mount vault_setup.yml made
    for san in (f"DNS:{name}", f"IP Address:{address(name)}", f"DNS:{TIER[name][0]}.service.consul"):
        assert san in text, text
    # The key matches the certificate, and the daemon runs with this certificate.
    assert h.check_output("openssl x509 -noout -pubkey -in /etc/db/security/server.crt") == h.check_output(
        "openssl pkey -pubout -in /etc/db/security/server.key")
    assert health(name)["tls"]["cert_sha256"] == sha


def test_services_registered_and_passing():
    import consul
    agent = forward("svc-1", 8500).split(":")
    client = consul.Consul(host=agent[0], port=int(agent[1]), token=LAB_SERVICES["lab_consul_token"])
    for service in ("tx-engine", "olap-shard", "clock-master"):
        _, entries = client.health.service(service, passing=True)
        nodes = {e["Node"]["Node"]: e for e in entries}
        assert set(nodes) == {h for h, t in TIER.items() if t[0] == service}, service
        for name, entry in nodes.items():
            svc = entry["Service"]
            assert svc["Meta"]["cluster"] == "vc-lab" and svc["Address"] == address(name)
            assert "version=1.0.0" in svc["Tags"]
            checks = {c["Name"] for c in entry["Checks"] if c["ServiceID"]}
            assert "health" in checks
            if service == "tx-engine":
                assert svc["Port"] == 5432 and {"port 5432", "port 3306"} <= checks


def test_consul_inventory_finds_the_cluster(tmp_path):
    """The round trip: the consul inventory plugin reads back what the roles registered."""
    source = tmp_path / "lab.consul.yml"
    source.write_text(yaml.safe_dump({
        "plugin": "scratchbird.cluster.consul", "url": "http://" + forward("svc-1", 8500),
        "token": LAB_SERVICES["lab_consul_token"], "cluster_name": "vc-lab",
    }))
    out = subprocess.run(["ansible-inventory", "-i", str(source), "--list"], capture_output=True, text=True, check=True)
    inventory = json.loads(out.stdout)
    groups = {g: set(inventory.get(g, {}).get("hosts", [])) for g in ("tx_engines", "olap_shards", "clock_masters")}
    assert groups == {
        "tx_engines": set(TX),
        "olap_shards": set(RUNNER.get_hosts("olap_shards")),
        "clock_masters": set(RUNNER.get_hosts("clock_masters")),
    }
    hostvars = inventory["_meta"]["hostvars"]
    found = {h: hostvars[h]["ansible_host"] for h in TIER}
    assert {h: v.get("__ansible_unsafe", v) if isinstance(v, dict) else v for h, v in found.items()} == {h: address(h) for h in TIER}


def test_renewal_threshold_reissues_exactly_those_certificates():
    """A threshold above the TX certificates' remaining life: exactly they are reissued and
    exactly those daemons reload (same process); the next run changes nothing."""
    before = {h: (cert(h)[:2], health(h)["tls"]["reloads"], main_pid(h)) for h in TIER}
    result = playbook("converge.yml", "-e", "tx_engine_tls_renew_before=2200h")
    for name in OTHERS:
        assert " changed=0 " in recap(result, name)
    for name in TX:
        assert " changed=2 " in recap(result, name)  # the certificate, the reload handler
    for name in TIER:
        (sha, serial), reloads, pid = before[name]
        now = health(name)["tls"]
        if name in TX:
            assert cert(name)[1] != serial and now["cert_sha256"] == cert(name)[0] != sha
            assert now["reloads"] == reloads + 1
        else:
            assert cert(name)[:2] == (sha, serial) and now["reloads"] == reloads
        assert main_pid(name) == pid, f"{name}: the daemon was restarted, not reloaded"
    again = playbook("converge.yml")
    for name in TIER:
        assert " changed=0 " in recap(again, name)


def test_check_mode_reports_would_issue_and_issues_nothing():
    before = {h: cert(h)[:2] for h in TIER}
    result = playbook("converge.yml", "--check", "-e", "olap_shard_tls_renew_before=2200h")
    assert " changed=0 " not in recap(result, "olap-1")
    assert {h: cert(h)[:2] for h in TIER} == before


def test_vault_unreachable_fails_before_any_change():
    result = playbook("converge.yml", "-e", f"cluster_vault_url=http://{address('svc-1')}:8299", ok=False)
    assert f"Vault unreachable at http://{address('svc-1')}:8299" in result.stdout + result.stderr
    assert all(unchanged(result, name) for name in TIER)


def test_wrong_credentials_are_refused_without_printing_them():
    secret = "0d6e9b6e-0000-4000-8000-00000000bad1"
    result = playbook("converge.yml", "-e", f"cluster_vault_secret_id={secret}", ok=False)
    assert "refused the AppRole login" in result.stdout + result.stderr
    assert secret not in result.stdout + result.stderr
    assert all(unchanged(result, name) for name in TIER)


def test_pki_role_forbidding_a_name_shows_vault_error():
    result = playbook("converge.yml", "--limit", "olap-1", "-e", '{"cluster_vault_alt_names": ["db.evil.example"]}', ok=False)
    out = result.stdout + result.stderr
    assert "db.evil.example" in out and "not allowed" in out, out[-3000:]
    assert unchanged(result, "olap-1")


def test_consul_token_denied_fails_before_any_change():
    token = "11111111-2222-4333-8444-555555555555"
    result = playbook("converge.yml", "-e", f"cluster_consul_token={token}", ok=False)
    assert "denied cluster_consul_token" in result.stdout + result.stderr
    assert token not in result.stdout + result.stderr
    assert all(unchanged(result, name) for name in TIER)
