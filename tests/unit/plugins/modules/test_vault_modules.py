# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The pure parts of vault_pki_cert (modes, owners, PEM comparison) and vault_write (when to write)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.scratchbird.cluster.plugins.modules import vault_pki_cert, vault_write


@pytest.mark.parametrize("value, mode", [("0600", 0o600), ("644", 0o644), ("0o640", 0o640), (0o600, 0o600), ("2750", 0o2750)])
def test_parse_mode(value, mode):
    assert vault_pki_cert.parse_mode(value, "key_mode") == mode


@pytest.mark.parametrize("value", ["u=rw", "0999", "60", "", "rw-------"])
def test_parse_mode_rejects(value):
    with pytest.raises(ValueError, match="key_mode must be an octal mode"):
        vault_pki_cert.parse_mode(value, "key_mode")


def test_resolve_owner():
    assert vault_pki_cert.resolve_owner(str(os.getuid()), str(os.getgid())) == (os.getuid(), os.getgid())
    with pytest.raises(ValueError, match="owner no-such-user-here does not exist on this host"):
        vault_pki_cert.resolve_owner("no-such-user-here", "0")
    with pytest.raises(ValueError, match="group no-such-group-here does not exist"):
        vault_pki_cert.resolve_owner("0", "no-such-group-here")


def test_same_pem():
    text = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    assert vault_pki_cert.same_pem((text + "\n").encode(), text)
    assert vault_pki_cert.same_pem(text.replace("\n", "\r\n"), text + "\n\n")
    assert not vault_pki_cert.same_pem(None, text)
    assert not vault_pki_cert.same_pem(text.replace("AAAA", "AAAB"), text)


def test_read_file(tmp_path):
    path = tmp_path / "f"
    assert vault_pki_cert.read_file(str(path)) == (False, None)
    path.write_bytes(b"x")
    assert vault_pki_cert.read_file(str(path)) == (True, b"x")
    with pytest.raises(OSError):
        vault_pki_cert.read_file(str(tmp_path))  # a directory: not "absent"


@pytest.mark.parametrize("data, current, create_only, expected", [
    ({"type": "pki"}, None, True, (True, ["type"])),
    ({"type": "pki"}, {"type": "kv"}, True, (False, [])),  # create_only never compares
    ({}, None, True, (True, [])),  # a write-only endpoint (secret-id): always written
    ({"ttl": "1h"}, {"ttl": 3600, "other": 1}, False, (False, [])),
    ({"ttl": "2h", "a": 1}, {"ttl": 3600, "a": 1}, False, (True, ["ttl"])),
    ({"ttl": "1h"}, None, False, (True, ["ttl"])),
    ({}, None, False, (False, [])),  # nothing wanted, nothing there: only a read
    ({}, {"role_id": "x"}, False, (False, [])),
    ({"policy": "x"}, "a PEM text", False, (True, ["policy"])),
])
def test_vault_write_decide(data, current, create_only, expected):
    assert vault_write.decide(data, current, create_only) == expected
