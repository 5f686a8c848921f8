# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""gpsd_chrony_lan_keys_vault_path against a real Vault-API server (OpenBao dev): the role's checks
read the LAN time keys from KV v2 with the vault_kv lookup and the cluster_vault_* settings, the
key file is rendered from them, and a bad key in Vault fails by its id, never printing a value."""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from inventory_run import ansible_env
from openbao_server import OpenBao

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "roles" / "gpsd_chrony" / "templates" / "chrony.keys.j2"
SECRET = "scratchbird/chrony"


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    with OpenBao(tmp_path_factory.mktemp("openbao")) as server:
        yield server


def put_keys(bao, keys):
    # JSON text in the field, as `bao kv put secret/scratchbird/chrony keys='[...]'` stores it.
    bao.api("POST", f"secret/data/{SECRET}", {"data": {"keys": json.dumps(keys)}})


def run(tmp_path, bao):
    """The role's checks (tasks_from: validate) on localhost, then the key file rendered."""
    keyfile = tmp_path / "scratchbird.keys"
    playbook = [{
        "name": "LAN time keys from Vault",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable, "gpsd_chrony_profile": "ntp_server",
                 "gpsd_chrony_lan_auth": "keys", "gpsd_chrony_lan_keys_vault_path": SECRET},
        "tasks": [
            {"name": "Check",
             "ansible.builtin.include_role": {"name": "scratchbird.cluster.gpsd_chrony", "tasks_from": "validate", "public": True}},
            {"name": "Render the key file", "ansible.builtin.template": {"src": str(TEMPLATE), "dest": str(keyfile), "mode": "0600"},
             "vars": {"__gpsd_chrony_group": "root"}, "diff": False},
        ],
    }]
    path = tmp_path / f"play-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    conn = tmp_path / "conn.json"
    conn.write_text(json.dumps({"cluster_vault_url": bao.url, "cluster_vault_token": bao.token}))
    conn.chmod(0o600)
    res = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"@{conn}", str(path)],
                         capture_output=True, text=True, env=ansible_env(), cwd=tmp_path, timeout=600, check=False,
                         stdin=subprocess.DEVNULL)
    return res, keyfile


def test_keys_come_from_vault(bao, tmp_path):
    keys = [{"id": 3, "type": "AES128", "value": "HEX:" + secrets.token_hex(16).upper()},
            {"id": 4, "type": "SHA3-256", "value": "HEX:" + secrets.token_hex(32).upper()}]
    put_keys(bao, keys)
    res, keyfile = run(tmp_path, bao)
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    lines = [line for line in keyfile.read_text().splitlines() if not line.startswith("#")]
    assert lines == [f"{k['id']} {k['type']} {k['value']}" for k in keys]
    for key in keys:
        assert key["value"][4:] not in output


def test_a_bad_key_in_vault_fails_by_its_id_only(bao, tmp_path):
    short = "HEX:" + secrets.token_hex(6).upper()
    put_keys(bao, [{"id": 8, "type": "AES256", "value": short}])
    res, keyfile = run(tmp_path, bao)
    output = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0 and not keyfile.exists(), output
    assert "gpsd_chrony_lan_keys: key 8: AES256 needs HEX: and 64 hex digits" in output, output
    assert short[4:] not in output
