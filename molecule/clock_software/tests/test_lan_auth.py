"""gpsd_chrony_lan_auth on the converged pair and clients: symmetric keys, then NTS, with real
chronyd; a wrong key and an untrusted CA leave the client without a usable source. The scenario
is put back to gpsd_chrony_lan_auth=none at the end (also when a test fails)."""
import datetime
import ipaddress
import json
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lab_testinfra import RUNNER, address, host, playbook, selected_source, wait_for

MASTERS = RUNNER.get_hosts("clock_masters")
CLIENTS = RUNNER.get_hosts("tx_engines") + RUNNER.get_hosts("olap_shards")
ADDRESS = {h: address(h) for h in MASTERS + CLIENTS}
MASTER_ADDRESSES = {ADDRESS[m] for m in MASTERS}
KEY_ID = 7
KEY = "HEX:" + secrets.token_hex(16).upper()
WRONG_KEY = "HEX:" + secrets.token_hex(16).upper()
KEYFILE = "/etc/chrony/scratchbird.keys"
NTS_DIR = "/etc/chrony/scratchbird-nts"
SYNC_S = 60
SYNC_WAIT = "Wait until every host is within the uncertainty bound"


def converge(extra, *args, ok=True):
    return playbook("converge.yml", "-e", json.dumps(extra), *args, ok=ok)


def failed_in_sync_wait(result):
    """The run failed in the time tier's sync wait (the last task it ran; ansible-core 2.19
    writes the failure itself to stderr)."""
    tasks = [line[len("TASK ["):].split("]")[0] for line in result.stdout.splitlines() if line.startswith("TASK [")]
    return result.returncode != 0 and tasks[-1:] == [SYNC_WAIT] and "clock not synchronised" in result.stderr


def keys(value):
    return {"gpsd_chrony_lan_auth": "keys",
            "gpsd_chrony_lan_keys": [{"id": KEY_ID, "type": "AES128", "value": value}]}


def authdata(name):
    """chronyc authdata by source: mode (SK/NTS/-), key id, NTS-KE attempts and cookies."""
    rows = {}
    for line in host(name).check_output("chronyc -N -n -c authdata").splitlines():
        f = line.split(",")
        rows[f[0]] = {"mode": f[1], "key_id": int(f[2]), "attempts": int(f[6]), "cookies": int(f[8])}
    return rows


def ntpdata(name, source):
    out = host(name).check_output(f"chronyc -n ntpdata {source}")
    return dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines()) if v)


def reach(name):
    """{source: reach register (octal digits as chronyc prints them)} for the clock masters."""
    rows = [line.split(",") for line in host(name).check_output("chronyc -n -c sources").splitlines()]
    return {f[2]: f[5] for f in rows if f[2] in MASTER_ADDRESSES}


def authenticated_master(name, mode):
    """The clock master the host has selected when chronyd authenticated it with `mode`, else None."""
    source = selected_source(name)
    if not source or source[1] not in MASTER_ADDRESSES:
        return None
    row = authdata(name).get(source[1])
    if not row or row["mode"] != mode or ntpdata(name, source[1]).get("Authenticated") != "Yes":
        return None
    return source[1], row


@pytest.fixture(scope="module", autouse=True)
def restore_none():
    yield
    print(converge({"gpsd_chrony_lan_auth": "none"}).stdout[-600:])
    for name in CLIENTS:
        wait_for(lambda n=name: selected_source(n), SYNC_S, f"{name} selecting a master again")
        assert not host(name).file(KEYFILE).exists and not host(name).file(NTS_DIR).exists


@pytest.fixture(scope="module")
def with_keys():
    # --diff: the key file's change must not be shown (diff: false), chrony.conf's is.
    return converge(keys(KEY), "--diff")


def test_keys_never_show_in_the_output(with_keys):
    assert f"+keyfile {KEYFILE}" in with_keys.stdout, "no chrony.conf diff: --diff had no effect"
    assert KEY not in with_keys.stdout and KEY[4:] not in with_keys.stdout


@pytest.mark.parametrize("name", MASTERS + CLIENTS)
def test_key_file_is_private_to_chrony(with_keys, name):
    keyfile = host(name).file(KEYFILE)
    assert (keyfile.mode, keyfile.user, keyfile.group) == (0o640, "root", "_chrony")
    assert f"\n{KEY_ID} AES128 {KEY}\n" in keyfile.content_string
    assert f"\nkeyfile {KEYFILE}\n" in host(name).file("/etc/chrony/chrony.conf").content_string


@pytest.mark.parametrize("name", MASTERS)
def test_masters_peer_with_the_key(with_keys, name):
    other = next(m for m in MASTERS if m != name)
    assert f"peer {ADDRESS[other]} minpoll 0 maxpoll 1 maxsamples 8 key {KEY_ID}\n" in \
        host(name).file("/etc/chrony/chrony.conf").content_string
    assert authdata(name)[ADDRESS[other]]["mode"] == "SK"


@pytest.mark.parametrize("name", CLIENTS)
def test_client_selects_a_master_authenticated_by_key(with_keys, name):
    conf = host(name).file("/etc/chrony/chrony.conf").content_string
    assert conf.count(f" key {KEY_ID}") == 2
    (source, row), seconds = wait_for(lambda: authenticated_master(name, "SK"), SYNC_S,
                                      f"{name} selecting a master authenticated with key {KEY_ID}")
    print(f"{name}: {source} selected, authenticated with key {KEY_ID}, after {seconds:.1f} s")
    assert row["key_id"] == KEY_ID


def test_a_wrong_key_leaves_the_client_without_a_source(with_keys):
    name = CLIENTS[0]
    result = converge(keys(WRONG_KEY), "--limit", name, "-e", "cluster_clock_sync_timeout=10", ok=False)
    assert failed_in_sync_wait(result), result.stdout[-2000:] + result.stderr[-2000:]
    # chronyd keeps asking both masters; no answer passes the key check.
    sent = {m: 0 for m in MASTER_ADDRESSES}

    def asked_enough():
        for m in MASTER_ADDRESSES:
            sent[m] = int(ntpdata(name, m)["Total TX"])
        return min(sent.values()) >= 4
    wait_for(asked_enough, SYNC_S, f"{name} sending requests to both masters")
    for m in MASTER_ADDRESSES:
        data = ntpdata(name, m)
        assert data["Total valid RX"] == "0" and data["Authenticated"] == "No", (m, data)
    assert set(reach(name).values()) == {"0"}
    assert selected_source(name) is None


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(directory, name):
    """A CA (ca.crt) and, for each clock master, a certificate with its name and address."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])

    def valid(builder):
        return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
    ca = valid(x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)).sign(ca_key, hashes.SHA256())
    directory.mkdir()
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for master in MASTERS:
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName(master), x509.IPAddress(ipaddress.ip_address(ADDRESS[master]))]
        cert = valid(x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, master)]))
                     .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                     .add_extension(x509.SubjectAlternativeName(sans), critical=False)).sign(ca_key, hashes.SHA256())
        (directory / f"{master}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{master}.key").write_bytes(_pem_key(key))
    return directory


def nts(directory):
    return {"gpsd_chrony_lan_auth": "nts",
            "gpsd_chrony_lan_nts_cert_src": f"{directory}/{{{{ inventory_hostname }}}}.crt",
            "gpsd_chrony_lan_nts_key_src": f"{directory}/{{{{ inventory_hostname }}}}.key",
            "gpsd_chrony_lan_nts_ca_src": f"{directory}/ca.crt"}


@pytest.fixture(scope="module")
def with_nts(tmp_path_factory):
    directory = make_ca(tmp_path_factory.mktemp("nts") / "cluster", "lan-auth test CA")
    return converge(nts(directory))


@pytest.mark.parametrize("name", MASTERS)
def test_masters_serve_nts_ke_to_the_cluster_only(with_nts, name):
    h = host(name)
    key = h.file(f"{NTS_DIR}/server.key")
    assert (key.mode, key.user, key.group) == (0o640, "root", "_chrony")
    conf = h.file("/etc/chrony/chrony.conf").content_string
    assert f"ntsserverkey {NTS_DIR}/server.key\n" in conf and "ntsport 4460\n" in conf
    other = next(m for m in MASTERS if m != name)
    # NTS has no symmetric mode: the masters poll each other as servers.
    assert f"server {ADDRESS[other]} minpoll 0 maxpoll 1 maxsamples 8 nts certset 1\n" in conf
    assert "\npeer " not in conf
    assert h.socket("tcp://0.0.0.0:4460").is_listening
    # The live table (not only the file) opens NTS-KE to the cluster CIDR.
    ruleset = h.check_output("nft list table inet scratchbird_clock_master")
    assert "ip saddr 10.213.0.0/16 tcp dport 4460 accept" in ruleset and "tcp dport 4460 drop" in ruleset


@pytest.mark.parametrize("name", CLIENTS)
def test_client_selects_a_master_authenticated_by_nts(with_nts, name):
    conf = host(name).file("/etc/chrony/chrony.conf").content_string
    assert conf.count(" nts certset 1") == 2 and f"ntstrustedcerts 1 {NTS_DIR}/ca.crt\n" in conf
    assert not host(name).file(f"{NTS_DIR}/server.key").exists and not host(name).file(KEYFILE).exists
    (source, row), seconds = wait_for(lambda: authenticated_master(name, "NTS"), SYNC_S,
                                      f"{name} selecting a master authenticated with NTS")
    print(f"{name}: {source} selected over NTS ({row['cookies']} cookies) after {seconds:.1f} s")
    assert row["cookies"] > 0


def test_an_untrusted_ca_leaves_the_client_without_a_source(with_nts, tmp_path_factory):
    name = CLIENTS[0]
    other = make_ca(tmp_path_factory.mktemp("nts") / "other", "some other CA")
    extra = dict(nts(other), gpsd_chrony_lan_nts_ca_src=f"{other}/ca.crt")
    result = converge(extra, "--limit", name, "-e", "cluster_clock_sync_timeout=10", ok=False)
    assert failed_in_sync_wait(result), result.stdout[-2000:] + result.stderr[-2000:]
    # chronyd refuses both masters' certificates in the TLS handshake of NTS-KE.
    invocation = host(name).check_output("systemctl show -p InvocationID --value chrony.service")

    def refused():
        log = host(name).check_output(f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation}")
        return all(f"TLS handshake with {m}:4460" in log and "certificate is NOT trusted" in log for m in MASTER_ADDRESSES)
    wait_for(refused, SYNC_S, f"{name} refusing the masters' certificates")
    rows = {s: r for s, r in authdata(name).items() if s in MASTER_ADDRESSES}
    assert {r["mode"] for r in rows.values()} == {"NTS"} and {r["cookies"] for r in rows.values()} == {0}, rows
    assert set(reach(name).values()) == {"0"}
    assert selected_source(name) is None
