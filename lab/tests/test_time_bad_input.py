"""Bad input to the time roles fails with a clear message naming the variable, before the
host is changed (checked on a real lab host: chrony is still not installed afterwards)."""
from __future__ import annotations

import os

import pytest
from labtest import ROOT, on_host, one_host_lab, playbook

LAB = "it-bad"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

CASES = [
    ("unknown profile", "gpsd_chrony", {"gpsd_chrony_profile": "cloudy"},
     ["gpsd_chrony_profile", "auto, aws, gcp, azure, lan_client, ntp_server, gps_server, ptp"]),
    ("malformed CIDR", "gpsd_chrony", {"gpsd_chrony_profile": "aws", "gpsd_chrony_allow": ["10.213.0.0/33"]},
     ["gpsd_chrony_allow: not an address or CIDR: 10.213.0.0/33"]),
    ("lan_client without masters", "gpsd_chrony", {"gpsd_chrony_profile": "lan_client"},
     ["gpsd_chrony_lan_masters is empty"]),
    ("auto off cloud without masters", "gpsd_chrony", {"gpsd_chrony_profile": "auto"},
     ["resolved to lan_client but gpsd_chrony_lan_masters is empty"]),
    ("empty GPS device", "gpsd_chrony", {"gpsd_chrony_profile": "gps_server", "gpsd_chrony_gps_device": ""},
     ["gpsd_chrony_gps_device must name the GPS receiver"]),
    ("zero maxdistance", "gpsd_chrony", {"gpsd_chrony_profile": "aws", "gpsd_chrony_maxdistance": 0},
     ["gpsd_chrony_maxdistance must be a positive number"]),
    ("negative makestep", "gpsd_chrony", {"gpsd_chrony_profile": "aws", "gpsd_chrony_makestep_threshold": -1},
     ["gpsd_chrony_makestep_threshold must be > 0"]),
    ("zero minsources", "gpsd_chrony", {"gpsd_chrony_profile": "aws", "gpsd_chrony_minsources": 0},
     ["gpsd_chrony_minsources must be 1 or more"]),
    ("minsources above the sources", "gpsd_chrony",
     {"gpsd_chrony_profile": "lan_client", "gpsd_chrony_lan_masters": ["b1"], "gpsd_chrony_minsources": 2},
     ["gpsd_chrony_minsources is 2 but the profile lan_client has only 1 source(s)"]),
    ("bad PPS choice", "gpsd_chrony", {"gpsd_chrony_profile": "gps_server", "gpsd_chrony_pps": "maybe"},
     ["gpsd_chrony_pps", "none, shm, device"]),
    ("unknown LAN time authentication", "gpsd_chrony", {"gpsd_chrony_profile": "aws", "gpsd_chrony_lan_auth": "tls"},
     ["gpsd_chrony_lan_auth", "none, keys, nts", "tls"]),
    ("keys without keys", "gpsd_chrony", {"gpsd_chrony_profile": "aws", "gpsd_chrony_lan_auth": "keys"},
     ["gpsd_chrony_lan_auth is keys but there is no key"]),
    ("short AES key, value never printed", "gpsd_chrony",
     {"gpsd_chrony_profile": "aws", "gpsd_chrony_lan_auth": "keys",
      "gpsd_chrony_lan_keys": [{"id": 5, "type": "AES128", "value": "HEX:5EC4E7C0FFEE"}, {"id": 5, "type": "RSA", "value": "x"}]},
     ["gpsd_chrony_lan_keys: key 5: AES128 needs HEX: and 32 hex digits; key 5: id used twice; key 5: type must be one of"],
     "5EC4E7C0FFEE"),
    ("LAN key id not in the keys", "gpsd_chrony",
     {"gpsd_chrony_profile": "aws", "gpsd_chrony_lan_auth": "keys", "gpsd_chrony_lan_key_id": 9,
      "gpsd_chrony_lan_keys": [{"id": 1, "type": "SHA256", "value": "HEX:" + "ab" * 16}]},
     ["gpsd_chrony_lan_key_id 9 is not among the ids of gpsd_chrony_lan_keys (1)"]),
    ("NTS server without its certificate", "gpsd_chrony",
     {"gpsd_chrony_profile": "aws", "gpsd_chrony_lan_auth": "nts", "gpsd_chrony_allow": ["10.213.0.0/16"],
      "gpsd_chrony_lan_nts_cert_src": "", "gpsd_chrony_lan_nts_key_src": "", "gpsd_chrony_lan_nts_ca_src": ""},
     ["gpsd_chrony_lan_auth is nts but /etc/db/security/server.crt is not on the host and gpsd_chrony_lan_nts_cert_src is empty"]),
    ("clock master without cluster CIDR", "clock_master", {},
     ["clock_master_cluster_cidrs must list the cluster's networks"]),
    ("clock master with a bad CIDR", "clock_master", {"clock_master_cluster_cidrs": ["10.213.0.0/24", "lan"]},
     ["clock_master_cluster_cidrs must list the cluster's networks as CIDRs"]),
]


@pytest.fixture(scope="module")
def inventory():
    with one_host_lab(LAB, "b1") as path:
        yield path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_change(inventory, case):
    _name, role, extra, messages, *secret = case
    # Inventory variables the lab sets (cluster_cidr) are removed for the clock master cases.
    if role == "clock_master":
        extra = {"cluster_cidr": None, "clock_master_cluster_cidrs": [], **extra}
    res = playbook(inventory, ROOT / "lab/tests/playbooks/time_roles.yml", {"role_under_test": role, **extra}, timeout=180)
    output = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, output
    for message in messages:
        assert message in output, output
    for value in secret:
        assert value not in output, "a key's value was printed"
    installed = on_host(LAB, "b1", "dpkg-query -W -f '${Status}' chrony nftables", check=False)
    assert "install ok installed" not in installed.stdout, "the host was changed before the input was checked"
