"""Secrets never leak: not into the output of a `--diff -vvv` bootstrap, not into a backup.

Runs after test_cluster.py (file order): one bootstrap with TLS from files made here, a Vault
token, a Kafka SASL password and a secret in an engine's tier file, all planted for the test
and looked for in the whole output; then a backup of that cluster, whose files must be private
(0700/0600) and hold no private key."""
import hashlib
import json
import os
import re
import stat
import subprocess
import tarfile

import pytest
import yaml

from lab_testinfra import host, playbook

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
SCENARIO = os.environ["MOLECULE_SCENARIO_NAME"]
BACKUPS = os.path.join(PROJECT, ".cache", "backups", SCENARIO)
ENGINES = ["ingest-1", "olap-1", "olap-2", "tx-1", "tx-2", "tx-3"]
PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----")
# A second private key, under a name that does not say so, for the backup test.
EXTRA_KEY = "/etc/db/lab-extra-credentials.pem"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """TLS files (a CA, one certificate and key for every engine) and the secrets to plant."""
    pki = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=sblab test CA", "-days", "2", cwd=pki)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=sblab", cwd=pki)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", cwd=pki)
    key = (pki / "server.key").read_text()
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    secrets = {
        "vault_token": "hvs.sectest" + tag,
        "kafka_password": "kafka-sectest-" + tag,
        "tier_secret": "olap-tiering-sectest-" + tag,
    }
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="sectest" password="%s";'
            % secrets["kafka_password"])
    extra = {
        "cluster_tls_enabled": True,
        "cluster_tls_ca_src": str(pki / "ca.crt"),
        "cluster_tls_cert_src": str(pki / "server.crt"),
        "cluster_tls_key_src": str(pki / "server.key"),
        # Passed to Vault's modules when a role takes its certificate from Vault.
        "cluster_vault_token": secrets["vault_token"],
        # The Kafka role's broker and admin-tool properties (sasl.jaas.config). The scenario's
        # Kafka is external (Tansu, PLAINTEXT: the kafka_external_sasl_* settings are refused
        # with it), so these stay unused here; the password must not show for all that.
        "kafka_server_properties": {"listener.name.client.plain.sasl.jaas.config": jaas},
        "kafka_admin_client_properties": {"sasl.jaas.config": jaas},
        # A secret in an engine's configuration (olap.yaml's free-form tiering section).
        "olap_shard_config": {"tiering": {"cold_store": {"secret_access_key": secrets["tier_secret"]}}},
    }
    path = pki / "extra-vars.json"
    path.write_text(json.dumps(extra))
    # The key's body: every base64 line between BEGIN and END.
    body = [line for line in key.splitlines() if line and not line.startswith("-----")]
    return {"extra_vars": str(path), "key_body": body, "key": key, **secrets}


def test_a_diff_run_with_verbose_output_prints_no_secret(planted):
    result = playbook("converge.yml", "--diff", "-vvv", "-e", "@" + planted["extra_vars"])
    out = result.stdout + result.stderr
    print("diff -vvv run: %d bytes of output" % len(out))
    # The secrets did reach the files the diff would have shown.
    assert planted["tier_secret"] in host("olap-1").file("/etc/db/olap.yaml").content_string
    assert host("tx-1").file("/etc/db/security/server.key").content_string == planted["key"]
    for name in ("vault_token", "kafka_password", "tier_secret"):
        assert planted[name] not in out, "%s printed: ...%s..." % (
            name, out[max(0, out.find(planted[name]) - 1500):out.find(planted[name]) + 200])
    for line in planted["key_body"]:
        assert line not in out, "a line of the TLS key printed: ...%s..." % (
            out[max(0, out.find(line) - 1500):out.find(line) + 200])


def _private_keys_in(path):
    """Names of the members (or the file itself) holding a PEM private key."""
    found = []
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                if member.isfile() and PRIVATE_KEY.search(archive.extractfile(member).read()):
                    found.append("%s:%s" % (path, member.name))
    with open(path, "rb") as handle:
        if PRIVATE_KEY.search(handle.read()):
            found.append(path)
    return found


def test_the_backup_is_private_and_holds_no_private_key(planted):
    tx2 = host("tx-2")
    tx2.check_output("install -m 0640 /dev/null %s && printf '%%s' '%s' > %s"
                     % (EXTRA_KEY, planted["key"].replace("'", ""), EXTRA_KEY))
    try:
        before = set(os.listdir(BACKUPS)) if os.path.isdir(BACKUPS) else set()
        playbook("backup_cluster.yml")
    finally:
        tx2.check_output("rm -f %s" % EXTRA_KEY)
    (name,) = set(os.listdir(BACKUPS)) - before
    root = os.path.join(BACKUPS, name)
    modes, keys = {}, []
    for top, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = os.path.join(top, entry)
            modes[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
        keys += [k for f in files for k in _private_keys_in(os.path.join(top, f))]
    modes["."] = stat.S_IMODE(os.stat(root).st_mode)
    wrong = {p: oct(m) for p, m in modes.items() if m != (0o700 if os.path.isdir(os.path.join(root, p)) else 0o600)}
    assert not wrong, wrong
    assert not keys, keys
    with open(os.path.join(root, "manifest.yaml")) as handle:
        manifest = yaml.safe_load(handle)
    for entry in manifest["files"]:
        with open(os.path.join(root, entry["path"]), "rb") as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert "tx-1/config.tar.gz" in [entry["path"] for entry in manifest["files"]]
    # Every host's TLS key left out and named, the extra key found by its content.
    configs = sorted(e["path"].split("/")[0] for e in manifest["files"] if e["path"].endswith("/config.tar.gz"))
    assert set(ENGINES) <= set(configs), configs
    assert manifest["excluded"] == {n: sorted(["/etc/db/security/server.key"] + ([EXTRA_KEY] if n == "tx-2" else []))
                                    for n in configs}, manifest["excluded"]
    with tarfile.open(os.path.join(root, "tx-2", "config.tar.gz")) as archive:
        names = archive.getnames()
    assert {"db/cluster.yaml", "db/security/server.crt", "db/security/ca.crt"} <= set(names), names
    assert "db/security/server.key" not in names and EXTRA_KEY[len("/etc/"):] not in names
