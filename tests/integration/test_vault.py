# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The Vault plugins through ansible-playbook against a real Vault-API server: OpenBao's
``bao server -dev`` (openbao_server.py), in memory on a free loopback port.

- playbooks/vault_setup.yml twice (the second run changes nothing), then its result read back.
- vault_pki_cert and vault_write under two Python interpreters (the play's ansible_python_interpreter):
  ``venv``, this venv's Python (hvac 2.4, cryptography of requirements-dev.txt), and ``legacy``, what
  Debian 12 hosts have - /usr/bin/python3 with python3-hvac (hvac 0.11) and python3-cryptography (38) -
  or $VAULT_MODULE_PYTHON; without one, the ``legacy`` runs are skipped.
- The vault_kv lookup (on the controller, this venv), its errors, and one AppRole login per
  ansible-playbook run, counted in an OpenBao file audit log.

Everything is checked through OpenBao's API (hvac with the root token) or the files written, not
only through what the modules report.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from inventory_run import ansible_env as shared_ansible_env
from openbao_server import OpenBao, closed_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SETUP_PLAYBOOK = ROOT / "playbooks" / "vault_setup.yml"
SYSTEM_PYTHON = "/usr/bin/python3"
MODULE_PYTHON_ENV = "VAULT_MODULE_PYTHON"
TIERS = ["clock-master", "kafka", "ingestion-engine", "olap-shard", "tx-engine"]
PKI_ROLE = "scratchbird-tx-engine"  # the tests below issue as a TX engine
APPROLE = "scratchbird-tx-engine"
WRONG_TOKEN = "s.wrongTokenValue0123456789abcdef"


def library_versions(python):
    """{'hvac': ..., 'cryptography': ...} that ``python`` imports, or None."""
    code = ("import json, hvac, cryptography; from importlib.metadata import version; "
            "print(json.dumps(dict(hvac=version('hvac'), cryptography=cryptography.__version__)))")
    try:
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return json.loads(res.stdout) if res.returncode == 0 else None


@pytest.fixture(scope="module", params=["venv", "legacy"])
def module_python(request):
    """The interpreter vault_pki_cert and vault_write run under: {'python', 'hvac', 'cryptography'}."""
    if request.param == "venv":
        return dict(python=sys.executable, **library_versions(sys.executable))
    wanted = os.environ.get(MODULE_PYTHON_ENV)
    if wanted:
        versions = library_versions(wanted)
        if versions is None:
            pytest.fail(f"{MODULE_PYTHON_ENV}={wanted} is no Python interpreter that imports hvac and cryptography")
        return dict(python=wanted, **versions)
    versions = library_versions(SYSTEM_PYTHON)
    if versions is None:
        pytest.skip(f"no second hvac to run the modules with: {SYSTEM_PYTHON} lacks python3-hvac or "
                    f"python3-cryptography and {MODULE_PYTHON_ENV} is not set")
    return dict(python=SYSTEM_PYTHON, **versions)


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    with OpenBao(tmp_path_factory.mktemp("openbao")) as server:
        yield server


def ansible_env(**extra):
    return shared_ansible_env(ANSIBLE_CALLBACK_RESULT_FORMAT="json", **extra)


def run_playbook(tmp_path, playbook, *options, inventory="localhost,", extra_vars=None, env=None):
    """ansible-playbook -> CompletedProcess. Secrets go in through an extra-vars file, never in the playbook."""
    args = [str(BIN / "ansible-playbook"), "-i", inventory, *options]
    if extra_vars is not None:
        path = tmp_path / f"vars-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(extra_vars))
        path.chmod(0o600)
        args += ["-e", f"@{path}"]
    args.append(str(playbook))
    return subprocess.run(args, capture_output=True, text=True, env=env or ansible_env(), cwd=tmp_path,
                          timeout=600, check=False, stdin=subprocess.DEVNULL)


def recap(output, host="localhost"):
    match = re.search(r"^%s\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % re.escape(host), output, re.M)
    assert match, output
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def play(tmp_path, tasks, *options, python=None, conn=None):
    """Run ``tasks`` on localhost (connection local) -> (results of each task, ansible-playbook output).

    Each task is registered and may fail (ignore_errors); the results are written to a file. The Vault
    connection (``conn``: url, token, ...) is set with module_defaults from variables of an extra-vars
    file, so no secret is written in the playbook.
    """
    out = tmp_path / f"results-{time.monotonic_ns()}.json"
    body = [dict(task, register=f"r{index}", ignore_errors=True) for index, task in enumerate(tasks)]
    names = ", ".join(f"r{index}" for index in range(len(tasks)))
    save = {"content": "{{ [%s] | to_json }}" % names, "dest": str(out), "mode": "0600"}
    body.append({"name": "Save the results", "ansible.builtin.copy": save, "check_mode": False, "diff": False})
    conn = dict(conn or {})
    defaults = dict((key, "{{ vault_conn_%s }}" % key) for key in conn)
    playbook = [{
        "name": "Vault modules",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": python or sys.executable},
        "module_defaults": {"scratchbird.cluster.vault_pki_cert": defaults, "scratchbird.cluster.vault_write": defaults},
        "tasks": body,
    }]
    path = tmp_path / f"playbook-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    res = run_playbook(tmp_path, path, "-c", "local", *options,
                       extra_vars=dict(("vault_conn_%s" % k, v) for k, v in conn.items()))
    assert res.returncode == 0 and out.exists(), f"ansible-playbook failed:\n{res.stdout}\n{res.stderr}"
    return json.loads(out.read_text()), res.stdout + res.stderr


@pytest.fixture(scope="module")
def configured(bao, tmp_path_factory):
    """vault_setup.yml run twice against the server: {'first', 'second' (outputs), 'role_id', 'secret_id'}."""
    tmp = tmp_path_factory.mktemp("setup")
    credentials = tmp / "approles"
    secret_id_file = credentials / "tx-engine.secret-id"
    extra = dict(vault_setup_url=bao.url, vault_setup_token=bao.token, vault_setup_credentials_dir=str(credentials),
                 ansible_python_interpreter=sys.executable)
    checked = run_playbook(tmp, SETUP_PLAYBOOK, "--check", extra_vars=extra)
    assert checked.returncode == 0, f"vault_setup.yml --check failed:\n{checked.stdout}\n{checked.stderr}"
    after_check = dict(mounts=sorted(bao.api("GET", "sys/mounts")["data"]), auth=sorted(bao.api("GET", "sys/auth")["data"]),
                       secret_id_file=secret_id_file.exists())
    outputs = []
    for dummy in range(2):
        res = run_playbook(tmp, SETUP_PLAYBOOK, extra_vars=extra)
        assert res.returncode == 0, f"vault_setup.yml failed:\n{res.stdout}\n{res.stderr}"
        outputs.append(res.stdout)
    role_id = bao.api("GET", f"auth/approle/role/{APPROLE}/role-id")["data"]["role_id"]
    return dict(check=checked.stdout, after_check=after_check, first=outputs[0], second=outputs[1], role_id=role_id,
                secret_id=secret_id_file.read_text().strip(), secret_id_file=secret_id_file, credentials=credentials)


def token_conn(bao, token=None):
    return dict(url=bao.url, token=token or bao.token)


def approle_conn(bao, configured):
    return dict(url=bao.url, role_id=configured["role_id"], secret_id=configured["secret_id"])


def issued_serials(bao):
    """Serials of every certificate the PKI mount has issued (LIST pki/certs)."""
    answer = bao.api("LIST", "pki/certs", expect=(200, 404))
    return set((answer or {}).get("data", {}).get("keys", []))


def load_cert(path):
    from cryptography import x509
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def sans_of(cert):
    from cryptography import x509
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), set(str(ip) for ip in san.get_values_for_type(x509.IPAddress))


def serial_of(cert):
    raw = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8, "big")
    return ":".join("%02x" % b for b in raw)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def cert_task(dest, name="certificate", **options):
    args = dict(role=PKI_ROLE, common_name="tx-1.lab", alt_names=["tx-1.lab.invalid", "localhost"], ip_sans=["127.0.0.1"],
                dest=str(dest))
    args.update(options)
    return {"name": name, "scratchbird.cluster.vault_pki_cert": args}


# vault_setup.yml

def test_setup_playbook_checks_then_configures_vault_idempotently(bao, configured):
    # Check mode on the fresh server: reports the changes, makes none.
    checked = recap(configured["check"])
    assert checked["failed"] == 0 and checked["changed"] >= 8, configured["check"]
    assert "pki/" not in configured["after_check"]["mounts"] and "approle/" not in configured["after_check"]["auth"]
    assert configured["after_check"]["secret_id_file"] is False
    first, second = recap(configured["first"]), recap(configured["second"])
    assert first["failed"] == 0 and first["changed"] >= 8, configured["first"]
    assert second == dict(second, changed=0, failed=0), configured["second"]
    assert "role_id %s" % configured["role_id"] in configured["second"]

    mounts = bao.api("GET", "sys/mounts")["data"]
    assert mounts["pki/"]["type"] == "pki"
    assert mounts["secret/"]["type"] == "kv" and mounts["secret/"]["options"]["version"] == "2"
    assert bao.api("GET", "sys/mounts/pki/tune")["data"]["max_lease_ttl"] == 87600 * 3600
    root = load_cert_text(bao.api("GET", "pki/issuer/root")["data"]["certificate"])
    assert root.subject.rfc4514_string() == "CN=scratchbird cluster CA"
    role = bao.api("GET", f"pki/roles/{PKI_ROLE}")["data"]
    assert role["allowed_domains"] == ["lab", "lab.invalid", "localhost"] and role["ou"] == ["tx-engine"]
    assert role["allow_subdomains"] and role["allow_bare_domains"] and role["allow_ip_sans"]
    assert role["ttl"] == 2160 * 3600 and role["max_ttl"] == 2160 * 3600 and role["key_type"] == "ec"
    policy = bao.api("GET", "sys/policies/acl/scratchbird-tx-engine")["data"]["policy"]
    assert re.findall(r'path "pki/issue/([^"]+)"', policy) == ["scratchbird-tx-engine"]  # its own tier's role only
    for path, capability in (("pki/issue/scratchbird-tx-engine", '"update"'), ("pki/ca/pem", '"read"'), ("pki/cert/ca", '"read"'),
                             ("secret/data/scratchbird/*", '"read"')):
        block = re.search(r'path "%s" \{(.*?)\}' % re.escape(path), policy, re.S)
        assert block and capability in block.group(1), policy
    assert bao.api("GET", "sys/auth")["data"]["approle/"]["type"] == "approle"
    approle = bao.api("GET", f"auth/approle/role/{APPROLE}")["data"]
    assert approle["token_policies"] == ["scratchbird-tx-engine"] and approle["token_ttl"] == 3600
    # One PKI role, policy and AppRole per tier; the credentials files: private, and a working AppRole login.
    for tier in TIERS:
        assert bao.api("GET", f"pki/roles/scratchbird-{tier}")["data"]["ou"] == [tier]
        assert bao.api("GET", f"auth/approle/role/scratchbird-{tier}")["data"]["token_policies"] == [f"scratchbird-{tier}"]
        for kind in ("role-id", "secret-id"):
            assert mode_of(configured["credentials"] / f"{tier}.{kind}") == 0o600
    assert mode_of(configured["credentials"]) == 0o700
    assert (configured["credentials"] / "tx-engine.role-id").read_text().strip() == configured["role_id"]
    login = bao.api("POST", "auth/approle/login", {"role_id": configured["role_id"], "secret_id": configured["secret_id"]})
    assert "scratchbird-tx-engine" in login["auth"]["policies"]


def test_a_node_cannot_obtain_another_tiers_certificate(bao, configured):
    login = bao.api("POST", "auth/approle/login", {"role_id": configured["role_id"], "secret_id": configured["secret_id"]})
    token = login["auth"]["client_token"]
    request = {"common_name": "tx-1.lab", "ttl": "1h"}
    own = bao.api("POST", "pki/issue/scratchbird-tx-engine", request, token=token)
    from cryptography.x509.oid import NameOID
    subject = load_cert_text(own["data"]["certificate"]).subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == ["tx-engine"]
    for tier in TIERS:
        if tier != "tx-engine":
            bao.api("POST", f"pki/issue/scratchbird-{tier}", request, token=token, expect=(403,))


def load_cert_text(pem):
    from cryptography import x509
    return x509.load_pem_x509_certificate(pem.encode())


def test_setup_playbook_fails_clearly_when_vault_is_unreachable(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    extra = dict(vault_setup_url=url, vault_setup_token="t", ansible_python_interpreter=sys.executable)
    res = run_playbook(tmp_path, SETUP_PLAYBOOK, extra_vars=extra)
    assert res.returncode != 0
    assert f"Vault unreachable at vault_setup_url={url}" in res.stdout, res.stdout


# vault_pki_cert

def test_modules_run_under_the_chosen_interpreter(module_python, tmp_path):
    code = "import hvac, cryptography; from importlib.metadata import version; print(version('hvac'), cryptography.__version__)"
    tasks = [{"name": "versions", "ansible.builtin.command": {"argv": ["{{ ansible_python_interpreter }}", "-c", code]}}]
    (versions,), dummy = play(tmp_path, tasks, python=module_python["python"])
    assert versions["stdout"] == "%s %s" % (module_python["hvac"], module_python["cryptography"]), versions


def test_issue_then_nothing_to_do(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    before = issued_serials(bao)
    owner = dict(owner=str(os.getuid()), group=str(os.getgid()))
    (first, second), output = play(tmp_path, [cert_task(dest, **owner), cert_task(dest, **owner)],
                                   python=module_python["python"], conn=token_conn(bao))
    assert not first.get("failed"), first
    assert first["changed"] is True and first["issued"] is True and first["reasons"] == ["missing"]
    cert_path, key_path, ca_path = dest / "server.crt", dest / "server.key", dest / "ca.crt"
    assert (first["cert_path"], first["key_path"], first["ca_path"]) == (str(cert_path), str(key_path), str(ca_path))
    assert mode_of(key_path) == 0o600 and mode_of(cert_path) == 0o644 and mode_of(ca_path) == 0o644
    cert, ca = load_cert(cert_path), load_cert(ca_path)
    cert.verify_directly_issued_by(ca)
    assert ca.public_bytes(serialization_pem()) == bao.api("GET", "pki/ca/pem").strip().encode() + b"\n"
    assert sans_of(cert) == ({"tx-1.lab", "tx-1.lab.invalid", "localhost"}, {"127.0.0.1"})
    assert first["serial"] == serial_of(cert) and first["common_name"] == "tx-1.lab"
    assert first["sans"] == ["localhost", "tx-1.lab", "tx-1.lab.invalid", "127.0.0.1"]
    assert first["issuer"] == ca.subject.rfc4514_string()
    not_after = datetime.datetime.strptime(first["not_after"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((not_after - datetime.datetime.now(datetime.timezone.utc)).total_seconds() - 2160 * 3600) < 600
    assert issued_serials(bao) - before == {first["serial"]}
    # The same again: nothing to do, no new certificate.
    assert not second.get("failed") and second["changed"] is False and second["issued"] is False, second
    assert second["reasons"] == [] and second["serial"] == first["serial"] and second["actions"] == []
    assert issued_serials(bao) - before == {first["serial"]}
    # The key matches the certificate.
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    key = load_pem_private_key(key_path.read_bytes(), password=None)
    assert public_der(key.public_key()) == public_der(cert.public_key())


def serialization_pem():
    from cryptography.hazmat.primitives import serialization
    return serialization.Encoding.PEM


def public_der(key):
    from cryptography.hazmat.primitives import serialization
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_check_mode_on_a_missing_directory_writes_and_issues_nothing(bao, configured, module_python, tmp_path):
    dest = tmp_path / "not" / "there"
    before = issued_serials(bao)
    (result,), output = play(tmp_path, [cert_task(dest)], "--check", "--diff", python=module_python["python"],
                             conn=token_conn(bao))
    assert not result.get("failed"), result
    assert result["changed"] is True and result["issued"] is True and result["reasons"] == ["missing"]
    assert result["serial"] is None and result["actions"] == ["issue a certificate from pki/issue/scratchbird-tx-engine (missing)"]
    assert not (tmp_path / "not").exists()
    assert issued_serials(bao) == before
    assert "+a new certificate from pki/issue/scratchbird-tx-engine" in output
    # A token that may not issue: check mode says the real run would fail.
    weak = bao.api("POST", "auth/token/create", {"policies": ["default"], "ttl": "10m"})["auth"]["client_token"]
    (weakly,), output = play(tmp_path, [cert_task(dest)], "--check", python=module_python["python"], conn=token_conn(bao, weak))
    warned = [w for w in weakly.get("warnings", []) if "the token may not issue from pki/issue/scratchbird-tx-engine" in w]
    assert weakly["changed"] is True and warned, weakly
    assert weak not in output and issued_serials(bao) == before


def test_check_mode_on_an_expiring_certificate(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    (first,), dummy = play(tmp_path, [cert_task(dest)], python=module_python["python"], conn=token_conn(bao))
    before = issued_serials(bao)
    content = (dest / "server.crt").read_bytes()
    (checked,), dummy = play(tmp_path, [cert_task(dest, renew_before="2200h")], "--check", python=module_python["python"],
                             conn=token_conn(bao))
    assert checked["changed"] is True and checked["reasons"] == ["expiring"] and checked["serial"] == first["serial"]
    assert (dest / "server.crt").read_bytes() == content and issued_serials(bao) == before


def test_renew_before_longer_than_the_remaining_life_reissues(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    tasks = [cert_task(dest), cert_task(dest, renew_before="2200h"), cert_task(dest, renew_before="2159h")]
    (first, renewed, kept), dummy = play(tmp_path, tasks, python=module_python["python"], conn=token_conn(bao))
    assert first["issued"], first
    assert renewed["changed"] is True and renewed["issued"] is True and renewed["reasons"] == ["expiring"], renewed
    assert renewed["serial"] != first["serial"] and renewed["serial"] == serial_of(load_cert(dest / "server.crt"))
    assert any("is not shorter than ttl" in w for w in renewed.get("warnings", [])), renewed
    assert kept["changed"] is False and kept["serial"] == renewed["serial"]  # 2159h left: not less than renew_before


def test_san_change_reissues(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    tasks = [cert_task(dest), cert_task(dest, alt_names=["tx-1.lab.invalid", "engine.lab"], ip_sans=["127.0.0.1", "::1"]),
             cert_task(dest, alt_names=["engine.lab", "tx-1.lab.invalid"], ip_sans=["0:0::1", "127.0.0.1"])]
    (first, changed, same), dummy = play(tmp_path, tasks, python=module_python["python"], conn=token_conn(bao))
    assert changed["issued"] and changed["reasons"] == ["sans_changed"] and changed["serial"] != first["serial"], changed
    assert sans_of(load_cert(dest / "server.crt")) == ({"tx-1.lab", "tx-1.lab.invalid", "engine.lab"}, {"127.0.0.1", "::1"})
    assert same["changed"] is False, same  # the same names in another order and spelling


def test_tampered_ca_file_and_modes_are_fixed_without_reissue(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    (first,), dummy = play(tmp_path, [cert_task(dest)], python=module_python["python"], conn=token_conn(bao))
    before = issued_serials(bao)
    (dest / "ca.crt").write_text(other_ca_pem())
    os.chmod(dest / "server.key", 0o644)
    (fixed, again), output = play(tmp_path, [cert_task(dest), cert_task(dest)], "--diff", python=module_python["python"],
                                  conn=token_conn(bao))
    assert fixed["changed"] is True and fixed["issued"] is False and fixed["reasons"] == [], fixed
    assert fixed["serial"] == first["serial"] and issued_serials(bao) == before
    assert (dest / "ca.crt").read_text().strip() == bao.api("GET", "pki/ca/pem").strip()
    assert mode_of(dest / "server.key") == 0o600
    assert any(a.startswith("write %s (the current CA of pki" % (dest / "ca.crt")) for a in fixed["actions"]), fixed
    assert any(a.startswith("set %s to " % (dest / "server.key")) for a in fixed["actions"]), fixed
    assert "(not the current CA)" in fixed["diff"]["before"] and "0644" in fixed["diff"]["before"]
    assert again["changed"] is False


def other_ca_pem():
    """A self-signed CA certificate that is not the mount's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some other CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_approle_login_issues_with_the_nodes_policy(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    (result,), dummy = play(tmp_path, [cert_task(dest)], python=module_python["python"], conn=approle_conn(bao, configured))
    assert not result.get("failed") and result["issued"], result
    load_cert(dest / "server.crt").verify_directly_issued_by(load_cert(dest / "ca.crt"))


def test_a_role_max_ttl_below_renew_before_is_warned_about(bao, configured, module_python, tmp_path):
    bao.api("POST", "pki/roles/short", {"allowed_domains": ["lab"], "allow_subdomains": True, "max_ttl": "2h"})
    (result,), dummy = play(tmp_path, [cert_task(tmp_path / "s", role="short", alt_names=[], ip_sans=[], ttl="24h", renew_before="3h")],
                            python=module_python["python"], conn=token_conn(bao))
    assert result["issued"], result
    assert any("every run will issue a new one" in w for w in result.get("warnings", [])), result


def test_a_forbidden_san_fails_with_vaults_error(bao, configured, module_python, tmp_path):
    bao.api("POST", "pki/roles/strict", {"allowed_domains": ["strict.lab"], "allow_subdomains": True, "ttl": "1h"})
    dest = tmp_path / "security"
    (result,), dummy = play(tmp_path, [cert_task(dest, role="strict", common_name="a.strict.lab", alt_names=["evil.example"],
                                                 ip_sans=[])], python=module_python["python"], conn=token_conn(bao))
    assert result["failed"] and result["changed"] is False
    assert result["msg"] == ("Vault refused to issue a certificate from pki/issue/strict: "
                             "subject alternate name evil.example not allowed by this role"), result
    assert not dest.exists() or not any(dest.iterdir())


def test_a_wrong_token_is_denied_without_showing_it(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    (result,), output = play(tmp_path, [cert_task(dest)], "-vvv", python=module_python["python"],
                             conn=token_conn(bao, WRONG_TOKEN))
    assert result["failed"], result
    assert "403" in result["msg"] and "permission denied" in result["msg"], result
    # pki/ca/pem needs no token: the issue is what Vault denies.
    assert result["msg"].startswith(f"Vault at {bao.url} denied permission to issue a certificate from "
                                    "pki/issue/scratchbird-tx-engine (403 permission denied)"), result
    assert "the token (token option or VAULT_TOKEN)" in result["msg"]
    assert WRONG_TOKEN not in result["msg"] and WRONG_TOKEN not in output


def test_a_wrong_secret_id_fails_without_showing_it(bao, configured, module_python, tmp_path):
    wrong = "0f0e0d0c-0000-1111-2222-333344445555"
    conn = dict(approle_conn(bao, configured), secret_id=wrong)
    (result,), output = play(tmp_path, [cert_task(tmp_path / "s")], "-vvv", python=module_python["python"], conn=conn)
    assert result["failed"] and "AppRole" in result["msg"] and "auth/approle/login" in result["msg"], result
    assert wrong not in output


def test_unreachable_vault(module_python, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    (result,), dummy = play(tmp_path, [cert_task(tmp_path / "s")], python=module_python["python"],
                            conn=dict(url=url, token=WRONG_TOKEN, timeout=5))
    assert result["failed"] and result["msg"].startswith(f"Vault unreachable at {url}: "), result
    assert "refused" in result["msg"].lower() and WRONG_TOKEN not in result["msg"]


def test_the_private_key_never_shows(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    tasks = [cert_task(dest), cert_task(dest, force=True), cert_task(dest, force=True, alt_names=["bad.example"])]
    (first, forced, failed), output = play(tmp_path, tasks, "-vvv", "--diff", python=module_python["python"],
                                           conn=token_conn(bao))
    assert first["issued"] and forced["issued"] and forced["reasons"] == ["forced"] and failed["failed"], (forced, failed)
    lines = [line for line in (dest / "server.key").read_text().splitlines() if line and not line.startswith("-----")]
    assert lines
    for line in lines:
        assert line not in output
    results = (tmp_path).glob("results-*.json")
    for path in results:
        assert not any(line in path.read_text() for line in lines)


def test_issuer_rotation_reissues(bao, configured, module_python, tmp_path):
    dest = tmp_path / "security"
    (first,), dummy = play(tmp_path, [cert_task(dest)], python=module_python["python"], conn=token_conn(bao))
    old_ca = load_cert(dest / "ca.crt")
    # A new root CA as the mount's default issuer (what a CA rotation does).
    name = "rotated-%s" % module_python["python"].replace("/", "-")
    issuer = bao.api("POST", "pki/root/rotate/internal", {"common_name": "scratchbird rotated CA", "issuer_name": name,
                                                          "ttl": "8760h", "key_type": "ec"})["data"]["issuer_id"]
    bao.api("POST", "pki/config/issuers", {"default": issuer})
    try:
        (rotated, again), dummy = play(tmp_path, [cert_task(dest), cert_task(dest)], python=module_python["python"],
                                       conn=token_conn(bao))
        assert rotated["issued"] and rotated["reasons"] == ["issuer_changed"], rotated
        assert rotated["serial"] != first["serial"] and rotated["issuer"] == "CN=scratchbird rotated CA"
        new_ca = load_cert(dest / "ca.crt")
        assert new_ca.subject != old_ca.subject
        load_cert(dest / "server.crt").verify_directly_issued_by(new_ca)
        assert again["changed"] is False
    finally:
        bao.api("POST", "pki/config/issuers", {"default": "root"})


# vault_write

def role_task(name, data, **options):
    return {"name": f"role {name}", "scratchbird.cluster.vault_write": dict(path=f"pki/roles/{name}", data=data, **options)}


def test_vault_write_compares_a_subset(bao, configured, module_python, tmp_path):
    name = "w-%d" % time.monotonic_ns()
    base = {"allowed_domains": ["a.lab", "b.lab"], "allow_subdomains": True, "ttl": "1h", "key_bits": 256, "key_type": "ec"}
    tasks = [role_task(name, base),
             role_task(name, base),
             role_task(name, dict(base, ttl="3600", key_bits="256", allow_subdomains="true")),
             role_task(name, dict(base, ttl="2h")),
             role_task(name, dict(base, ttl="2h", allowed_domains=["b.lab", "a.lab"]))]
    results, output = play(tmp_path, tasks, "--diff", python=module_python["python"], conn=token_conn(bao))
    created, same, spelled, longer, reordered = results
    assert created["changed"] is True and created["before"] is None, created
    assert same["changed"] is False and same["before"]["ttl"] == 3600, same
    assert spelled["changed"] is False, spelled
    assert longer["changed"] is True and longer["differences"] == ["ttl"], longer
    assert longer["diff"] == {"before": {k: same["before"][k] for k in base}, "after": dict(base, ttl="2h"),
                              "before_header": f"pki/roles/{name}", "after_header": f"pki/roles/{name}"}
    assert reordered["changed"] is True and reordered["differences"] == ["allowed_domains"]  # lists keep their order
    role = bao.api("GET", f"pki/roles/{name}")["data"]
    assert role["ttl"] == 7200 and role["allowed_domains"] == ["b.lab", "a.lab"]


def test_vault_write_create_only(bao, configured, module_python, tmp_path):
    mount = "kv-%d" % time.monotonic_ns()
    tasks = [{"name": "mount", "scratchbird.cluster.vault_write": dict(path=f"sys/mounts/{mount}", data={"type": "kv"}, create_only=True)},
             {"name": "again", "scratchbird.cluster.vault_write": dict(path=f"sys/mounts/{mount}",
                                                                       data={"type": "kv", "description": "other"}, create_only=True)}]
    (created, again), dummy = play(tmp_path, tasks, python=module_python["python"], conn=token_conn(bao))
    assert created["changed"] is True and created["before"] is None and created["response"] is None, created
    assert again["changed"] is False and again["before"]["type"] == "kv", again
    assert bao.api("GET", f"sys/mounts/{mount}")["data"]["description"] == ""


def test_vault_write_check_mode_writes_nothing(bao, configured, module_python, tmp_path):
    name = "c-%d" % time.monotonic_ns()
    (checked,), output = play(tmp_path, [role_task(name, {"allowed_domains": ["c.lab"], "ttl": "1h"})], "--check", "--diff",
                              python=module_python["python"], conn=token_conn(bao))
    assert checked["changed"] is True and checked["response"] is None and checked["differences"] == ["allowed_domains", "ttl"]
    assert checked["diff"]["before"] == {} and checked["diff"]["after"] == {"allowed_domains": ["c.lab"], "ttl": "1h"}
    with pytest.raises(Exception, match="404"):
        bao.api("GET", f"pki/roles/{name}")


def test_vault_write_returns_the_answer_and_vaults_errors(bao, configured, module_python, tmp_path):
    tasks = [{"name": "issue", "scratchbird.cluster.vault_write": dict(path="pki/issue/scratchbird-tx-engine", read_path="sys/nothing-here",
                                                                       data={"common_name": "x.lab", "ttl": "1h"}, create_only=True)},
             {"name": "bad", "scratchbird.cluster.vault_write": dict(path="pki/roles/bad", data={"key_type": "nonsense"})}]
    (issued, bad), dummy = play(tmp_path, tasks, python=module_python["python"], conn=token_conn(bao))
    assert issued["changed"] and issued["response"]["serial_number"] in issued_serials(bao), issued
    assert bad["failed"] and bad["msg"].startswith("Vault refused to write pki/roles/bad: "), bad
    assert "nonsense" in bad["msg"]


# the vault_kv lookup

@pytest.fixture(scope="module")
def secrets(bao, configured):
    bao.api("POST", "secret/data/scratchbird/kafka", {"data": {"user": "engine", "password": "first-password"}})
    bao.api("POST", "secret/data/scratchbird/kafka", {"data": {"user": "engine", "password": "second-password"}})
    bao.api("POST", "secret/data/scratchbird/s3", {"data": {"access_key": "AK", "secret_key": "SK"}})
    bao.api("POST", "secret/data/elsewhere/x", {"data": {"k": "v"}})
    return bao


def lookup_play(tmp_path, expressions, *options, conn, inventory="localhost,", hosts="localhost", env=None):
    """Evaluate each expression (a lookup) in a set_fact on ``hosts`` -> ({host: [values or errors]}, output).

    The lookup's options come in as variables (vault_url, vault_token, vault_role_id, vault_secret_id) from
    an extra-vars file. A failing expression gives {'error': message}.
    """
    out = tmp_path / f"lookups-{time.monotonic_ns()}"
    out.mkdir()
    tasks = []
    for index, expression in enumerate(expressions):
        tasks.append({"name": f"lookup {index}", "ansible.builtin.set_fact": {f"v{index}": "{{ %s }}" % expression},
                      "register": f"s{index}", "ignore_errors": True})
    value = "[%s]" % ", ".join("{'value': v%d} if v%d is defined else {'error': s%d.msg}" % (i, i, i) for i in range(len(expressions)))
    tasks.append({"name": "save", "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % value,
                                                           "dest": str(out) + "/{{ inventory_hostname }}.json", "mode": "0600"}})
    playbook = [{"name": "lookups", "hosts": hosts, "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable, "ansible_connection": "local"}, "tasks": tasks}]
    path = tmp_path / f"lookups-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    res = run_playbook(tmp_path, path, *options, inventory=inventory, extra_vars=dict(("vault_%s" % k, v) for k, v in conn.items()),
                       env=env)
    assert res.returncode == 0, f"ansible-playbook failed:\n{res.stdout}\n{res.stderr}"
    return dict((p.stem, json.loads(p.read_text())) for p in out.glob("*.json")), res.stdout + res.stderr


KV = "'scratchbird.cluster.vault_kv'"
TOKEN_OPTS = "url=vault_url, token=vault_token"
APPROLE_OPTS = "url=vault_url, role_id=vault_role_id, secret_id=vault_secret_id"


def test_vault_kv_with_a_token(secrets, tmp_path):
    expressions = [f"lookup({KV}, 'scratchbird/kafka', {TOKEN_OPTS})",
                   f"lookup({KV}, 'scratchbird/kafka', field='password', {TOKEN_OPTS})",
                   f"lookup({KV}, 'scratchbird/kafka', field='password', version=1, {TOKEN_OPTS})",
                   f"query({KV}, 'scratchbird/kafka', 'scratchbird/s3', field='user', {TOKEN_OPTS})",
                   f"query({KV}, 'scratchbird/kafka', '/scratchbird/s3/', {TOKEN_OPTS})",
                   f"lookup({KV}, 'scratchbird/missing', {TOKEN_OPTS})",
                   f"lookup({KV}, 'scratchbird/kafka', field='nope', {TOKEN_OPTS})",
                   f"lookup({KV}, 'scratchbird/kafka', version=9, {TOKEN_OPTS})",
                   f"lookup({KV}, 'x/kafka', mount='nomount', {TOKEN_OPTS})"]
    results, output = lookup_play(tmp_path, expressions, conn=dict(url=secrets.url, token=secrets.token))
    whole, field, old, users, two, missing, nofield, noversion, nomount = results["localhost"]
    assert whole == {"value": {"user": "engine", "password": "second-password"}}
    assert field == {"value": "second-password"} and old == {"value": "first-password"}
    assert "error" in users and "has no field 'user'" in users["error"] and "access_key, secret_key" in users["error"]
    assert two == {"value": [{"user": "engine", "password": "second-password"}, {"access_key": "AK", "secret_key": "SK"}]}
    assert "no secret at secret/scratchbird/missing" in missing["error"], missing
    assert "the secret at secret/scratchbird/kafka has no field 'nope' (its fields: password, user)" in nofield["error"]
    assert "second-password" not in nofield["error"]
    assert "no secret at secret/scratchbird/kafka version 9" in noversion["error"], noversion
    assert "no secret at nomount/x/kafka" in nomount["error"], nomount
    assert secrets.token not in output


def test_vault_kv_with_the_token_from_the_environment(secrets, tmp_path):
    results, dummy = lookup_play(tmp_path, [f"lookup({KV}, 'scratchbird/s3', field='access_key')"], conn={},
                                 env=ansible_env(VAULT_ADDR=secrets.url, VAULT_TOKEN=secrets.token))
    assert results["localhost"] == [{"value": "AK"}]


def test_vault_kv_denied_and_unreachable(secrets, tmp_path):
    weak = secrets.api("POST", "auth/token/create", {"policies": ["default"], "ttl": "10m"})["auth"]["client_token"]
    url = f"http://127.0.0.1:{closed_port()}"
    expressions = [f"lookup({KV}, 'scratchbird/kafka', {TOKEN_OPTS})",
                   f"lookup({KV}, 'scratchbird/kafka', url='{url}', token=vault_token)"]
    results, output = lookup_play(tmp_path, expressions, "-vvv", conn=dict(url=secrets.url, token=weak))
    denied, unreachable = results["localhost"]
    assert "403 permission denied" in denied["error"] and "read the secret secret/scratchbird/kafka" in denied["error"], denied
    assert f"Vault unreachable at {url}: " in unreachable["error"], unreachable
    assert weak not in output


def test_vault_kv_with_approle(secrets, configured, tmp_path):
    expressions = [f"lookup({KV}, 'scratchbird/kafka', field='user', {APPROLE_OPTS})",
                   f"lookup({KV}, 'elsewhere/x', {APPROLE_OPTS})"]
    results, output = lookup_play(tmp_path, expressions, "-vvv", conn=approle_conn(secrets, configured))
    allowed, outside = results["localhost"]
    assert allowed == {"value": "engine"}
    assert "403 permission denied" in outside["error"] and "AppRole" in outside["error"], outside
    assert configured["secret_id"] not in output


def audited_logins(log):
    count = 0
    if not log.exists():
        return 0
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("type") == "response" and entry.get("request", {}).get("path") == "auth/approle/login":
            count += 1
    return count


@pytest.fixture(scope="module")
def audit_log(secrets, tmp_path_factory):
    log = tmp_path_factory.mktemp("audit") / "audit.log"
    secrets.enable_file_audit(log, name="it-file")
    return log


def test_one_approle_login_per_run(secrets, configured, audit_log, tmp_path):
    hosts = [f"node{i}" for i in range(8)]
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[nodes]\n" + "".join(f"{h} ansible_connection=local\n" for h in hosts))
    expressions = [f"lookup({KV}, 'scratchbird/kafka', field='user', {APPROLE_OPTS})",
                   f"lookup({KV}, 'scratchbird/kafka', field='password', {APPROLE_OPTS})",
                   f"query({KV}, 'scratchbird/kafka', 'scratchbird/s3', {APPROLE_OPTS}) | length",
                   f"lookup({KV}, 'scratchbird/s3', field='secret_key', {APPROLE_OPTS})"]
    start = audited_logins(audit_log)
    results, dummy = lookup_play(tmp_path, expressions, "-f", "8", conn=approle_conn(secrets, configured),
                                 inventory=str(inventory), hosts="nodes")
    assert sorted(results) == hosts
    for host in hosts:
        assert results[host] == [{"value": "engine"}, {"value": "second-password"}, {"value": 2}, {"value": "SK"}], results[host]
    assert audited_logins(audit_log) - start == 1
    # A new run logs in again, once.
    results, dummy = lookup_play(tmp_path, expressions, "-f", "8", conn=approle_conn(secrets, configured),
                                 inventory=str(inventory), hosts="nodes")
    assert all(results[h][0] == {"value": "engine"} for h in hosts)
    assert audited_logins(audit_log) - start == 2


def test_a_revoked_token_means_a_new_login(secrets, configured, audit_log, tmp_path):
    read = f"lookup({KV}, 'scratchbird/kafka', field='user', {APPROLE_OPTS})"
    # Between the two lookups every token from AppRole logins is revoked (with the root token).
    script = tmp_path / "revoke.py"
    script.write_text("import urllib.request as u\n"
                      "r = u.urlopen(u.Request(%r, method='PUT', headers={'X-Vault-Token': %r}))\n"
                      "print(r.status)\n" % (f"{secrets.url}/v1/sys/leases/revoke-prefix/auth/approle", secrets.token))
    revoke = "lookup('ansible.builtin.pipe', '%s %s')" % (sys.executable, script)
    start = audited_logins(audit_log)
    results, dummy = lookup_play(tmp_path, [read, revoke, read], conn=approle_conn(secrets, configured))
    first, revoked, again = results["localhost"]
    assert first == {"value": "engine"} and revoked["value"] in ("204", 204) and again == {"value": "engine"}, results
    assert audited_logins(audit_log) - start == 2


# TLS: ca_cert, validate_certs

@pytest.fixture(scope="module")
def tls_bao(tmp_path_factory):
    with OpenBao(tmp_path_factory.mktemp("openbao-tls"), tls=True) as server:
        yield server


def test_tls_with_ca_cert(tls_bao, module_python, tmp_path):
    def read(name, **options):
        args = dict(path="sys/mounts/secret", data={"type": "kv"}, create_only=True, **options)
        return {"name": name, "scratchbird.cluster.vault_write": args}

    tasks = [read("verified", ca_cert=str(tls_bao.ca_cert)), read("system CAs"), read("not verified", validate_certs=False)]
    (verified, unknown_ca, unverified), output = play(tmp_path, tasks, python=module_python["python"], conn=token_conn(tls_bao))
    assert not verified.get("failed") and verified["changed"] is False and verified["before"]["type"] == "kv", verified
    assert unknown_ca["failed"] and unknown_ca["msg"].startswith(f"Vault unreachable at {tls_bao.url}: TLS error: "), unknown_ca
    assert "certificate verify failed" in unknown_ca["msg"] and "ca_cert" in unknown_ca["msg"]
    assert not unverified.get("failed"), unverified
    assert tls_bao.token not in output


def test_vault_kv_over_tls(tls_bao, tmp_path):
    tls_bao.api("POST", "secret/data/scratchbird/tls", {"data": {"k": "v"}})
    results, dummy = lookup_play(tmp_path, [f"lookup({KV}, 'scratchbird/tls', field='k', {TOKEN_OPTS})",
                                            f"lookup({KV}, 'scratchbird/tls', field='k', {TOKEN_OPTS}, ca_cert=vault_ca)"],
                                 conn=dict(url=tls_bao.url, token=tls_bao.token, ca=str(tls_bao.ca_cert)),
                                 env=ansible_env(VAULT_CACERT=str(tls_bao.ca_cert)))
    assert results["localhost"] == [{"value": "v"}, {"value": "v"}]
