# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The vault_kv lookup's token cache: one login for concurrent workers, reuse while the TTL lasts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import multiprocessing
import os
import stat
import time

import pytest

from ansible_collections.scratchbird.cluster.plugins.lookup import vault_kv

SETTINGS = dict(url="http://127.0.0.1:8200", approle_mount="approle", role_id="role", secret_id="secret")


def test_cache_key_depends_on_every_login_setting():
    keys = set([vault_kv.cache_key(SETTINGS)])
    for name in ("url", "approle_mount", "role_id", "secret_id"):
        keys.add(vault_kv.cache_key(dict(SETTINGS, **{name: "other"})))
    assert len(keys) == 5
    assert "secret" not in vault_kv.cache_key(SETTINGS)


def test_token_usable():
    now = 1000000.0
    assert vault_kv.token_usable(dict(token="t", ttl=3600, expires=now + 100), now) is True
    assert vault_kv.token_usable(dict(token="t", ttl=3600, expires=now + 20), now) is False  # within 30 s of its end
    assert vault_kv.token_usable(dict(token="t", ttl=60, expires=now + 10), now) is True  # margin 10 % of 60 s
    assert vault_kv.token_usable(dict(token="t", ttl=0, expires=None), now) is True  # no expiry
    assert vault_kv.token_usable(dict(token="", expires=None), now) is False
    assert vault_kv.token_usable(None, now) is False


class Logins(object):
    """A login() that counts its calls in a file (shared by processes)."""

    def __init__(self, path, ttl=3600):
        self.path = path
        self.ttl = ttl

    def __call__(self):
        with open(self.path, "a") as handle:
            handle.write("x")
        count = os.path.getsize(self.path)
        time.sleep(0.2)  # a slow login: the other workers must wait for it, not log in too
        return dict(client_token="token-%d" % count, lease_duration=self.ttl)

    @property
    def count(self):
        return os.path.getsize(self.path) if os.path.exists(self.path) else 0


def worker(directory, counter, queue):
    queue.put(vault_kv.TokenCache(SETTINGS, directory).token(Logins(counter)))


def test_one_login_for_concurrent_workers(tmp_path):
    counter = str(tmp_path / "logins")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=worker, args=(str(tmp_path), counter, queue)) for dummy in range(6)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(30)
    tokens = [queue.get(timeout=5) for dummy in workers]
    assert tokens == ["token-1"] * 6
    assert Logins(counter).count == 1
    files = [p for p in tmp_path.iterdir() if p.name.startswith(vault_kv.CACHE_PREFIX) and not p.name.endswith(".lock")]
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert "secret" not in files[0].name


def test_a_stale_or_expired_token_means_a_new_login(tmp_path):
    logins = Logins(str(tmp_path / "logins"), ttl=1)
    cache = vault_kv.TokenCache(SETTINGS, str(tmp_path))
    first = cache.token(logins)
    assert cache.token(logins) == first and logins.count == 1
    assert cache.token(logins, stale=first) == "token-2" and logins.count == 2
    time.sleep(1.1)
    assert cache.token(logins) == "token-3"


def test_without_a_directory_every_call_logs_in(tmp_path):
    logins = Logins(str(tmp_path / "logins"))
    cache = vault_kv.TokenCache(SETTINGS, None)
    cache.token(logins)
    cache.token(logins)
    assert logins.count == 2


@pytest.mark.parametrize("tmp_dir_exists", [True, False])
def test_run_tmp_dir(monkeypatch, tmp_path, tmp_dir_exists):
    from ansible import constants as C
    path = tmp_path / "ansible-local-x"
    if tmp_dir_exists:
        path.mkdir()
    monkeypatch.setattr(C, "DEFAULT_LOCAL_TMP", str(path), raising=False)
    assert vault_kv.run_tmp_dir() == (str(path) if tmp_dir_exists else None)
