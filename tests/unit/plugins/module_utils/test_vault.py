# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/vault.py: durations, the subset comparison, the connection settings, error
messages (never with a token or secret_id in them), and the certificate decisions of vault_pki_cert
on certificates made here with cryptography."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import socket

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import vault

TOKEN = "hvs.secretTokenValue0123456789"
SECRET_ID = "5e3c1b2a-0000-4444-8888-secretidvalue"
UTC = datetime.timezone.utc


# durations

@pytest.mark.parametrize("value, seconds", [
    ("90d", 90 * 86400), ("2160h", 2160 * 3600), ("45m", 2700), ("30s", 30), ("1h30m", 5400), ("1d 2h", 93600),
    ("720H", 720 * 3600), (3600, 3600), ("3600", 3600), (" 15 ", 15), (0, 0), (7.0, 7),
])
def test_parse_duration(value, seconds):
    assert vault.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "h", "90x", "1.5h", "-5", "90 days", "2160h!", None, True, -1, "1h-30m"])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError, match="renew_before"):
        vault.parse_duration(value, "renew_before")


def test_format_duration():
    assert vault.format_duration(2160 * 3600 - 1) == "89d 23h"
    assert vault.format_duration(2700) == "45m"
    assert vault.format_duration(12) == "12s"
    assert vault.format_duration(0) == "0s"
    assert vault.format_duration(-3660) == "-1h 1m"


# subset comparison

@pytest.mark.parametrize("wanted, have", [
    ({"a": 1}, {"a": 1, "b": 2}),
    ({"a": {"x": [1, 2]}}, {"a": {"x": [1, 2], "y": 3}, "c": 1}),
    ({"ttl": "2160h"}, {"ttl": 7776000}),
    ({"ttl": "90d"}, {"ttl": "2160h"}),
    ({"ttl": 3600}, {"ttl": "1h"}),
    ({"n": "256"}, {"n": 256}),
    ({"n": 256}, {"n": "256.0"}),
    ({"flag": True}, {"flag": True}),
    ({"flag": "true"}, {"flag": True}),
    ({"flag": False}, {"flag": "false"}),
    ({"domains": "a.lab, b.lab"}, {"domains": ["a.lab", "b.lab"]}),
    ({"domains": ["a.lab", "b.lab"]}, {"domains": "a.lab,b.lab"}),
    ({"x": None}, {"x": None}),
    ({"version": "2"}, {"version": "2"}),
    ({}, {"anything": 1}),
])
def test_values_match(wanted, have):
    assert vault.values_match(wanted, have)
    assert vault.differing_keys(wanted, have) == []


@pytest.mark.parametrize("wanted, have, keys", [
    ({"a": 1}, {"a": 2}, ["a"]),
    ({"a": 1}, {}, ["a"]),
    ({"a": [1, 2]}, {"a": [2, 1]}, ["a"]),
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, ["a"]),
    ({"ttl": "2h"}, {"ttl": 3600}, ["ttl"]),
    ({"flag": True}, {"flag": 1}, ["flag"]),
    ({"flag": 1}, {"flag": True}, ["flag"]),
    ({"n": "256"}, {"n": "257"}, ["n"]),
    ({"d": {"x": 1}}, {"d": {"x": 1, "y": 2}, "e": 3}, []),
    ({"d": {"x": 1}}, {"d": "x=1"}, ["d"]),
    ({"s": "abc"}, {"s": "ABC"}, ["s"]),
    ({"b": 1, "a": 2}, None, ["a", "b"]),
])
def test_differing_keys(wanted, have, keys):
    assert vault.differing_keys(wanted, have) == keys


# connection settings

def test_auth_method_defaults_to_approle_with_a_role_id():
    settings = vault.connection_settings(dict(url="http://127.0.0.1:8200/", role_id="r", secret_id=SECRET_ID))
    assert settings["auth_method"] == "approle" and settings["url"] == "http://127.0.0.1:8200"
    assert "AppRole" in settings["credential"] and "r" not in settings["credential"].split()
    settings = vault.connection_settings(dict(url="https://vault:8200", token=TOKEN, ca_cert="/etc/ca.pem"))
    assert settings["auth_method"] == "token" and settings["verify"] == "/etc/ca.pem"
    assert TOKEN not in settings["credential"]
    assert vault.connection_settings(dict(url="https://vault", token=TOKEN, validate_certs=False))["verify"] is False


@pytest.mark.parametrize("params, message", [
    (dict(token=TOKEN), "no Vault address: set the url option or VAULT_ADDR"),
    (dict(url="vault:8200", token=TOKEN), "url must be an http:// or https:// address"),
    (dict(url="http://v"), "no Vault token: set the token option (or VAULT_TOKEN)"),
    (dict(url="http://v", auth_method="approle", secret_id=SECRET_ID), "auth_method=approle needs role_id"),
    (dict(url="http://v", token=TOKEN, timeout=0), "timeout must be greater than 0"),
])
def test_connection_settings_errors(params, message):
    with pytest.raises(vault.VaultError) as caught:
        vault.connection_settings(params)
    assert message in str(caught.value)
    assert SECRET_ID not in str(caught.value) and TOKEN not in str(caught.value)


# error messages

needs_hvac = pytest.mark.skipif(not vault.HAS_HVAC, reason="hvac is not installed")
needs_cryptography = pytest.mark.skipif(not vault.HAS_CRYPTOGRAPHY, reason="cryptography is not installed")


def client(**params):
    base = dict(url="http://127.0.0.1:8200", token=TOKEN, timeout=5)
    base.update(params)
    return vault.Vault(base)


@needs_hvac
def test_forbidden_names_the_credential_not_the_token():
    exc = client().status_error(403, ["permission denied"], "read the secret secret/x")
    text = str(exc)
    assert text == ("Vault at http://127.0.0.1:8200 denied permission to read the secret secret/x (403 permission denied) "
                    "for the token (token option or VAULT_TOKEN): the token is unknown or expired, or its policies "
                    "do not allow this")
    assert exc.denied and exc.status == 403


@needs_hvac
def test_forbidden_with_approle():
    vault_client = client(token=None, role_id="my-role", secret_id=SECRET_ID, approle_mount="nodes")
    text = str(vault_client.status_error(403, ["permission denied"], "issue a certificate from pki/issue/node"))
    assert "denied permission to issue a certificate from pki/issue/node (403 permission denied)" in text
    assert "the token of the AppRole login (role_id option, mount auth/nodes)" in text
    assert SECRET_ID not in text and "my-role" not in text


@needs_hvac
def test_vault_errors_reach_the_user_plainly():
    exc = client().status_error(400, ["1 error occurred:\n\t* subject alternate name x not allowed by this role\n\n"],
                                "issue a certificate from pki/issue/node")
    assert str(exc) == "Vault refused to issue a certificate from pki/issue/node: subject alternate name x not allowed by this role"
    assert exc.errors == ["subject alternate name x not allowed by this role"]
    assert str(client().status_error(500, [], "write x")) == "Vault refused to write x: HTTP 500"


@needs_hvac
def test_secrets_in_vault_errors_are_masked():
    vault_client = client(secret_id=SECRET_ID)
    exc = vault_client.status_error(400, ["invalid token %s or secret %s" % (TOKEN, SECRET_ID)], "write x")
    assert TOKEN not in str(exc) and SECRET_ID not in str(exc) and vault.MASK in str(exc)
    assert all(TOKEN not in e for e in exc.errors)


@needs_hvac
@pytest.mark.parametrize("exception, status", [
    ("Forbidden", 403), ("InvalidRequest", 400), ("InvalidPath", 404), ("InternalServerError", 500),
])
def test_hvac_exceptions_are_translated(exception, status):
    import hvac
    exception = getattr(hvac.exceptions, exception)
    exc = client().translate(exception(errors=["boom with %s" % TOKEN], method="get", url="/v1/x"), "read x")
    assert exc.status == status and TOKEN not in str(exc)
    if status == 403:
        assert "(403 permission denied)" in str(exc) and "the token (token option or VAULT_TOKEN)" in str(exc)
    else:
        assert str(exc).startswith("Vault refused to read x: boom with")


@needs_hvac
def test_a_connection_error_is_translated():
    import requests
    err = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /v1/sys/health?token=%s (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: "
        "[Errno 111] Connection refused'))" % TOKEN)
    exc = client(url="http://127.0.0.1:9").translate(err, "read x")
    assert str(exc) == "Vault unreachable at http://127.0.0.1:9: Connection refused"
    assert exc.status is None


def closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_hvac
def test_unreachable_vault_through_a_real_request():
    url = "http://127.0.0.1:%d" % closed_port()
    with pytest.raises(vault.VaultError) as caught:
        client(url=url).read("secret/data/x")
    assert str(caught.value) == "Vault unreachable at %s: Connection refused" % url


@needs_hvac
def test_approle_login_needs_no_token_from_the_environment(monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    vault_client = vault.Vault(dict(url="http://127.0.0.1:1", role_id="r", secret_id=SECRET_ID))
    assert not vault_client.client.token


class FakeResponse(object):
    def __init__(self, status, body):
        self.status_code = status
        self.text = body if isinstance(body, str) else json.dumps(body)

    def json(self):
        return json.loads(self.text)


def replying(status, body):
    """A Vault client whose adapter answers every request with (status, body)."""
    vault_client = client()
    calls = []

    def request(method, url, **kwargs):
        calls.append((method, url, kwargs))
        return body if status == 200 and isinstance(body, dict) else FakeResponse(status, body)
    vault_client.client.adapter.request = request
    vault_client.calls = calls
    return vault_client


@needs_hvac
@pytest.mark.parametrize("status, errors", [
    (404, []), (400, ["No secret engine mount at pki/"]), (400, ["No auth engine at approle/"]),
    (400, ['cannot fetch sysview for path "pki/"']), (400, ["no default issuer currently configured"]),
    (405, ["1 error occurred:\n\t* unsupported operation\n\n"]),
])
def test_read_of_nothing_is_none(status, errors):
    vault_client = replying(status, {"errors": errors})
    assert vault_client.read("/sys/mounts/pki/") is None
    method, url, kwargs = vault_client.calls[0]
    assert (method, url, kwargs["raise_exception"]) == ("get", "/v1/sys/mounts/pki", False)


@needs_hvac
@pytest.mark.parametrize("status, errors, message", [
    (400, ["invalid key_type nonsense"], "Vault refused to read pki/roles/x: invalid key_type nonsense"),
    (403, ["permission denied"], "denied permission to read pki/roles/x (403 permission denied)"),
    (500, ["internal error"], "Vault refused to read pki/roles/x: internal error"),
])
def test_read_errors(status, errors, message):
    with pytest.raises(vault.VaultError) as caught:
        replying(status, {"errors": errors}).read("pki/roles/x")
    assert message in str(caught.value) and caught.value.status == status


@needs_hvac
def test_answers():
    assert replying(200, {"data": {"a": 1}}).read("x") == {"data": {"a": 1}}
    assert replying(200, "-----BEGIN CERTIFICATE-----\n").read("pki/ca/pem") == "-----BEGIN CERTIFICATE-----\n"
    assert replying(204, "").write("x", {"a": 1}) is None
    vault_client = replying(200, {"data": {"keys": ["a", "b"]}})
    assert vault_client.list("pki/certs") == ["a", "b"] and vault_client.calls[0][0] == "list"


@needs_hvac
def test_approle_login_uses_the_new_token():
    vault_client = vault.Vault(dict(url="http://127.0.0.1:1", role_id="r", secret_id=SECRET_ID, approle_mount="nodes"))
    calls = []

    def request(method, url, **kwargs):
        calls.append((method, url, kwargs.get("json")))
        return {"auth": {"client_token": "s.new", "lease_duration": 3600}}
    vault_client.client.adapter.request = request
    auth = vault_client.login()
    assert auth["lease_duration"] == 3600 and vault_client.client.token == "s.new"
    assert calls == [("post", "/v1/auth/nodes/login", {"role_id": "r", "secret_id": SECRET_ID})]
    assert vault_client.redact("token s.new") == "token " + vault.MASK


def test_answer_data():
    assert vault.answer_data({"data": {"a": 1}, "request_id": "x"}) == {"a": 1}
    assert vault.answer_data({"data": None}) is None
    assert vault.answer_data({"type": "kv", "request_id": "x", "lease_id": ""}) == {"type": "kv"}
    assert vault.answer_data(" -----BEGIN CERTIFICATE-----\n") == "-----BEGIN CERTIFICATE-----"
    assert vault.answer_data(None) is None and vault.answer_data("") is None and vault.answer_data({"data": {}}) is None


def test_clean_errors():
    assert vault.clean_errors(["2 errors occurred:\n\t* first\n\t* second\n\n", "plain"]) == ["first", "second", "plain"]
    assert vault.clean_errors(None) == []


# certificates

if vault.HAS_CRYPTOGRAPHY:
    from cryptography import x509


def make_ca(name="test CA", key_id=True):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if key_id:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def make_leaf(ca, ca_key, cn="tx-1.lab", dns=("tx-1.lab", "tx-1"), ips=("10.0.0.1",), days=90, key_id=True):
    import ipaddress
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(0x3a1f0c)
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.SubjectAlternativeName(names), critical=False))
    if key_id:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert, key_pem


def pem(cert):
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki():
    ca, ca_key = make_ca()
    leaf, key_pem = make_leaf(ca, ca_key)
    return dict(ca=ca, ca_key=ca_key, leaf=leaf, key=key_pem)


WANTED = ({"tx-1.lab", "tx-1"}, {"10.0.0.1"})
RENEW = 30 * 86400


def reasons(pki, cert=None, key_ok=True, ca_present=True, ca=None, wanted=WANTED, renew_before=RENEW, now=None, force=False):
    return vault.renewal_reasons(cert if cert is not None else pki["leaf"], key_ok, ca_present, ca or pki["ca"], wanted[0], wanted[1],
                                 renew_before, now=now, force=force)


@needs_cryptography
def test_a_good_certificate_needs_nothing(pki):
    assert reasons(pki) == []
    assert vault.key_matches(pki["leaf"], pki["key"]) is True


@needs_cryptography
def test_missing_pieces(pki):
    assert vault.renewal_reasons(None, False, True, pki["ca"], set(), set(), RENEW) == ["missing"]
    assert reasons(pki, key_ok=False) == ["missing"]
    assert reasons(pki, ca_present=False) == ["missing"]
    other, dummy = make_leaf(pki["ca"], pki["ca_key"])
    dummy, other_key = make_leaf(pki["ca"], pki["ca_key"])
    assert vault.key_matches(pki["leaf"], other_key) is False
    assert vault.key_matches(pki["leaf"], b"not a key") is False
    assert vault.key_matches(None, pki["key"]) is False


@needs_cryptography
def test_expiring(pki):
    assert reasons(pki, renew_before=91 * 86400) == ["expiring"]
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=61)
    assert reasons(pki, now=later) == ["expiring"]
    assert reasons(pki, now=later - datetime.timedelta(days=2)) == []


@needs_cryptography
def test_sans_changed(pki):
    assert reasons(pki, wanted=({"tx-1.lab"}, {"10.0.0.1"})) == ["sans_changed"]
    assert reasons(pki, wanted=({"tx-1.lab", "tx-1"}, set())) == ["sans_changed"]
    assert vault.wanted_sans("TX-1.lab", ["tx-1", " tx-1.lab "], ["10.0.0.1"]) == WANTED
    assert vault.wanted_sans("a.lab", [], ["::0:1", "fe80:0::1"]) == ({"a.lab"}, {"::1", "fe80::1"})
    assert vault.wanted_sans("ops@a.lab", ["b.lab"], []) == ({"b.lab"}, set())  # an e-mail SAN, not compared
    assert vault.wanted_sans("10.0.0.1", [], []) == ({"10.0.0.1"}, set())  # Vault makes an IP common name a DNS SAN
    with pytest.raises(ValueError, match="ip_sans: 'nope' is not an IP address"):
        vault.wanted_sans("a.lab", [], ["nope"])


@needs_cryptography
def test_issuer_changed(pki):
    other_ca, dummy = make_ca("test CA")  # same name, other key: told apart by the key identifiers
    assert reasons(pki, ca=other_ca) == ["issuer_changed"]
    assert vault.issued_by(pki["leaf"], pki["ca"]) is True


@needs_cryptography
def test_issuer_by_name_without_key_identifiers():
    ca, ca_key = make_ca("named CA", key_id=False)
    leaf, dummy = make_leaf(ca, ca_key, key_id=False)
    assert vault.issued_by(leaf, ca) is True
    assert vault.issued_by(leaf, make_ca("another CA", key_id=False)[0]) is False


@needs_cryptography
def test_forced_and_several_reasons(pki):
    assert reasons(pki, force=True) == ["forced"]
    other_ca, dummy = make_ca()
    assert reasons(pki, key_ok=False, ca=other_ca, wanted=({"x.lab"}, set()), renew_before=100 * 86400, force=True) == [
        "missing", "expiring", "sans_changed", "issuer_changed", "forced"]


@needs_cryptography
def test_facts_and_summary(pki):
    facts = vault.cert_facts(pki["leaf"])
    assert facts["serial"] == "3a:1f:0c" and facts["common_name"] == "tx-1.lab"
    assert facts["sans"] == ["tx-1", "tx-1.lab", "10.0.0.1"] and facts["issuer"] == "CN=test CA"
    assert facts["not_after"].endswith("Z") and len(facts["not_after"]) == 20
    summary = vault.cert_summary(pki["leaf"])
    assert "serial: 3a:1f:0c" in summary and "sans: tx-1, tx-1.lab, 10.0.0.1" in summary
    assert vault.cert_summary(None) == "absent\n"


@needs_cryptography
def test_not_after_is_utc_with_any_cryptography(pki):
    moment = vault.not_after(pki["leaf"])
    assert moment.tzinfo is not None and moment.utcoffset() == datetime.timedelta(0)

    class Old(object):  # cryptography 38: no not_valid_after_utc, a naive datetime in UTC
        not_valid_after = datetime.datetime(2030, 1, 2, 3, 4, 5)
    assert vault.not_after(Old()) == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert vault.iso_utc(vault.not_after(Old())) == "2030-01-02T03:04:05Z"


@needs_cryptography
def test_load_certificate(pki):
    chain = pem(pki["leaf"]) + pem(pki["ca"])
    assert vault.load_certificate(chain).serial_number == pki["leaf"].serial_number
    assert vault.load_certificate(chain.decode()).serial_number == pki["leaf"].serial_number
    assert vault.load_certificate(b"garbage") is None and vault.load_certificate(None) is None
    assert vault.load_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is None
