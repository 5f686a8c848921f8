# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_kv
short_description: Read secrets from a Vault KV version 2 engine
version_added: 0.1.0
description:
  - Returns, for each term, the data of the secret at that path of the KV v2 engine at O(mount)
    (its latest version, or O(version)), or only its O(field).
  - "One login per run: with AppRole, the token of the first login is kept for the rest of the
    C(ansible-playbook) run - for every lookup, host and forked worker - in a file only the
    user can read (mode 0600) inside Ansible's temporary directory of that run (which Ansible
    removes when the run ends), and used while its TTL lasts. Concurrent workers wait for one
    another's login (a file lock), so a run logs in once. When Vault no longer accepts the token,
    the lookup logs in again."
  - With O(auth_method=token) the token is used as it is; nothing is stored.
author: scratchbird.cluster contributors (@scratchbird)
options:
  _terms:
    description: Paths of the secrets, relative to O(mount) (for example C(scratchbird/kafka)).
    required: true
    type: list
    elements: str
  mount:
    description: Mount path of the KV version 2 secrets engine.
    type: str
    default: secret
  version:
    description: Version of the secrets to read; the latest when omitted.
    type: int
  field:
    description:
      - Return only this key of each secret's data. Fails when a secret has no such key (the error lists
        the keys it has, not their values).
    type: str
extends_documentation_fragment:
  - scratchbird.cluster.vault.lookup
notes:
  - The token needs C(read) on C(<mount>/data/<path>).
  - The token obtained by the AppRole login is not revoked at the end of the run; it expires with its TTL.
seealso:
  - module: scratchbird.cluster.vault_write
"""

EXAMPLES = r"""
- name: The Kafka password of the cluster, with the nodes' AppRole
  ansible.builtin.set_fact:
    kafka_password: "{{ lookup('scratchbird.cluster.vault_kv', 'scratchbird/kafka', field='password',
                        url='https://vault.internal:8200', role_id=vault_role_id, secret_id=vault_secret_id) }}"
  no_log: true

- name: Two whole secrets, with VAULT_ADDR and VAULT_TOKEN from the environment
  ansible.builtin.debug:
    msg: "{{ query('scratchbird.cluster.vault_kv', 'scratchbird/kafka', 'scratchbird/s3') | map(attribute='user') }}"

- name: An earlier version of a secret
  ansible.builtin.set_fact:
    previous_key: "{{ lookup('scratchbird.cluster.vault_kv', 'scratchbird/backup', field='key', version=3) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description:
    - One item per term - the secret's data (a dict), or with O(field) the value of that key.
  type: list
  elements: raw
"""

import errno
import hashlib
import json
import os
import tempfile
import time

try:
    import fcntl
except ImportError:  # not on POSIX: no sharing of the token between workers
    fcntl = None

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.scratchbird.cluster.plugins.module_utils.vault import (
    CONNECTION_OPTIONS,
    Vault,
    VaultError,
)

display = Display()

CACHE_PREFIX = "scratchbird-vault-token-"
# A cached token is used only while more than this part of its TTL (at most 30 s) is left.
EXPIRY_MARGIN_RATIO = 0.1
EXPIRY_MARGIN_MAX = 30


def run_tmp_dir():
    """Ansible's temporary directory of this run (created per ansible-playbook process, shared with
    its forked workers, removed at exit), or None when it is not there."""
    from ansible import constants as C
    path = getattr(C, "DEFAULT_LOCAL_TMP", None)
    if path and os.path.isdir(path):
        return path
    return None


def cache_key(settings):
    material = "\0".join(str(settings.get(k) or "") for k in ("url", "approle_mount", "role_id", "secret_id"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def token_usable(entry, now=None):
    """Whether a cached login (dict with token and expires, an epoch or None) may still be used."""
    if not isinstance(entry, dict) or not entry.get("token"):
        return False
    expires = entry.get("expires")
    if expires is None:
        return True
    ttl = entry.get("ttl") or 0
    margin = min(EXPIRY_MARGIN_MAX, ttl * EXPIRY_MARGIN_RATIO)
    return (now or time.time()) < expires - margin


class TokenCache:
    """The AppRole token of this run, in a 0600 file of the run's temporary directory, under a lock."""

    def __init__(self, settings, directory):
        self.directory = directory
        self.path = os.path.join(directory, CACHE_PREFIX + cache_key(settings)) if directory else None

    def _read(self):
        try:
            with open(self.path) as handle:
                return json.load(handle)
        except (IOError, OSError, ValueError):
            return None

    def _store(self, entry):
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".vault-token.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(entry, handle)
            os.rename(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def token(self, login, stale=None):
        """The cached token, or a new one from ``login()`` (-> Vault's auth dict) stored for the others.

        ``stale``: a token Vault refused; it is not taken from the cache again.
        """
        if self.path is None or fcntl is None:
            return login()["client_token"]
        lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            entry = self._read()
            if token_usable(entry) and entry["token"] != stale:
                return entry["token"]
            auth = login()
            ttl = int(auth.get("lease_duration") or 0)
            now = time.time()
            self._store(dict(token=auth["client_token"], ttl=ttl, expires=now + ttl if ttl else None, created=now))
            return auth["client_token"]
        finally:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(lock_fd)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        params = dict((name, self.get_option(name)) for name in CONNECTION_OPTIONS)
        mount = (self.get_option("mount") or "secret").strip("/")
        version = self.get_option("version")
        field = self.get_option("field")
        try:
            vault = Vault(params)
            cache = None
            if vault.auth_method == "approle":
                cache = TokenCache(vault.settings, run_tmp_dir())
                vault.set_token(self._token(cache, vault))
            else:
                vault.login()
            return [self._one(vault, cache, mount, term, version, field) for term in terms]
        except VaultError as exc:
            raise AnsibleLookupError(str(exc))
        except (IOError, OSError) as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOSPC):
                raise AnsibleLookupError("vault_kv: cannot keep the run's Vault token in %s: %s"
                                         % (run_tmp_dir(), exc.strerror))
            raise

    @staticmethod
    def _token(cache, vault, stale=None):
        def login():
            display.vvv("vault_kv: AppRole login at %s/v1/auth/%s/login" % (vault.url, vault.settings["approle_mount"]))
            return vault.login()
        return cache.token(login, stale=stale)

    def _one(self, vault, cache, mount, term, version, field):
        path = str(term).strip().strip("/")
        if not path:
            raise VaultError("vault_kv: an empty secret path was given")
        try:
            secret = read_secret(vault, mount, path, version)
        except VaultError as exc:
            # A cached AppRole token that Vault no longer accepts (revoked, expired): log in again, once.
            if not exc.denied or cache is None or vault.token_is_valid():
                raise
            vault.set_token(self._token(cache, vault, stale=vault.client.token))
            secret = read_secret(vault, mount, path, version)
        if field is None:
            return secret
        if field not in secret:
            raise VaultError("the secret at %s/%s has no field %r (its fields: %s)"
                             % (mount, path, field, ", ".join(sorted(secret)) or "none"))
        return secret[field]


def read_secret(vault, mount, path, version=None):
    """The data dict of a KV v2 secret. VaultError when there is none (or the version is deleted)."""
    params = {"version": int(version)} if version is not None else None
    which = "%s/%s%s" % (mount, path, " version %d" % version if version is not None else "")
    answer = vault.read("%s/data/%s" % (mount, path), what="read the secret %s" % which, params=params)
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise VaultError("no secret at %s (Vault at %s)" % (which, vault.url))
    metadata = data.get("metadata") or {}
    if data.get("data") is None:
        if metadata.get("destroyed"):
            state = "destroyed"
        elif metadata.get("deletion_time"):
            state = "deleted on %s" % metadata["deletion_time"]
        else:
            state = "empty"
        raise VaultError("no secret at %s: version %s is %s (Vault at %s)"
                         % (which, metadata.get("version", "?"), state, vault.url))
    return data["data"]
