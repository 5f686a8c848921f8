# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The shared inventory base: tiers, hostnames, retries, and parse() end to end with a fake plugin."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import threading

import pytest
import yaml

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.doc_fragments import constructed, inventory_cache
from ansible.plugins.inventory import Constructable

from ansible_collections.scratchbird.cluster.plugins.doc_fragments import inventory as shared_fragment
from ansible_collections.scratchbird.cluster.plugins.plugin_utils.inventory import (
    DEFAULT_NAME_PATTERNS, DEFAULT_TIER_MAP, TIER_GROUPS, ClusterInventory, Hostnames, RetryableError,
    backoff_delay, call_with_retries, detect_tier, lookup_path, parse_retry_after, suggest)


def tier_map(user=None):
    """The map as ClusterInventory builds it: the defaults, updated with the user's tier_map."""
    merged = dict(DEFAULT_TIER_MAP)
    merged.update((k.lower(), v) for k, v in (user or {}).items())
    return merged


# --- detect_tier -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, labels, expected", [
    ("web-1", {"Tier": "olap"}, "olap_shards"),
    ("web-1", {"tier": "kafka"}, "kafka_brokers"),
    ("web-1", {"TIER": "clock"}, "clock_masters"),
    ("web-1", {"Tier": "Transaction"}, "tx_engines"),
    ("web-1", {"Tier": " INGESTION "}, "ingestion_engines"),
    ("web-1", {"Tier": "olap_shards"}, "olap_shards"),
    ("kafka-0", {"Tier": "olap"}, "olap_shards"),  # the tag wins over the name
    ("tx-engine-3", {"Tier": "frontend"}, "tx_engines"),  # unknown value: the name decides
    ("tx-engine-3", {"Tier": None}, "tx_engines"),
    ("tx-engine-3", {}, "tx_engines"),
    ("olap-shard-1", {}, "olap_shards"),
    ("clock-master-2", {}, "clock_masters"),
    ("kafka-0", {}, "kafka_brokers"),
    ("ingest-1", {}, "ingestion_engines"),
    ("web-1", {"Tier": "frontend"}, None),
    ("web-1", {"Name": "kafka"}, None),
    (None, {}, None),
])
def test_detect_tier_defaults(name, labels, expected):
    assert detect_tier(name, labels, "Tier", tier_map(), DEFAULT_NAME_PATTERNS) == expected


def test_detect_tier_custom_tier_key():
    assert detect_tier("web-1", {"Tier": "olap"}, "Role", tier_map(), {}) is None
    assert detect_tier("web-1", {"role": "olap"}, "Role", tier_map(), {}) == "olap_shards"


@pytest.mark.parametrize("value, expected", [
    ("stream", "kafka_brokers"),  # added by the user
    ("olap", "tx_engines"),  # a default overridden by the user
    ("clock", "clock_masters"),  # a default kept
])
def test_detect_tier_user_map_is_merged_over_the_defaults(value, expected):
    merged = tier_map({"stream": "kafka_brokers", "olap": "tx_engines"})
    assert detect_tier("web-1", {"Tier": value}, "Tier", merged, DEFAULT_NAME_PATTERNS) == expected


@pytest.mark.parametrize("value", ["stream", "Stream", "STREAM"])
def test_detect_tier_values_and_user_keys_are_case_insensitive(value):
    assert detect_tier("web-1", {"tier": value}, "Tier", tier_map({"Stream": "kafka_brokers"}), {}) == "kafka_brokers"
    assert detect_tier("web-1", {"Tier": "OLAP_SHARDS"}, "Tier", tier_map(), {}) == "olap_shards"


def test_detect_tier_empty_patterns_rely_on_tags_alone():
    assert detect_tier("tx-engine-3", {}, "Tier", tier_map(), {}) is None
    assert detect_tier("tx-engine-3", {"Tier": "kafka"}, "Tier", tier_map(), {}) == "kafka_brokers"


# --- lookup_path -----------------------------------------------------------------------------

RECORD = {
    "id": "i-1",
    "labels": {"Name": "web-1", "tier": "olap"},
    "vars": {"instance_id": "i-1", "placement": {"region": "eu-west-1", "zone": None}, "tags": ["a", "b"]},
}


@pytest.mark.parametrize("path, expected", [
    ("tag:Name", "web-1"),
    ("label:tier", "olap"),
    ("tag:tier", "olap"),
    ("tag:Missing", None),
    ("instance_id", "i-1"),
    ("placement.region", "eu-west-1"),
    ("placement.zone", None),
    ("placement.missing", None),
    ("missing.region", None),
    ("instance_id.more", None),  # a string in the middle
    ("tags.0", None),  # a list in the middle
    ("other:Name", None),  # only tag: and label: read labels
])
def test_lookup_path(path, expected):
    assert lookup_path(RECORD, path) == expected


# --- Hostnames -------------------------------------------------------------------------------

def record(id_, name=None, **hostvars):
    labels = {"Name": name} if name is not None else {}
    return {"id": id_, "name": name, "labels": labels, "vars": hostvars}


def test_hostnames_first_non_empty_preference_wins():
    names = Hostnames(["tag:Name", "dns", "ip"], "fallback")
    assert names.name(record("i-1", "web-1", dns="d1", ip="10.0.0.1")) == "web-1"
    assert names.name(record("i-2", "", dns="", ip="10.0.0.2")) == "10.0.0.2"
    assert names.name(record("i-3", None, dns=None, ip="10.0.0.3")) == "10.0.0.3"
    assert names.name(record("i-4", ip=7)) == "7"
    assert names.name(record("i-5")) == "i-5"
    assert names.collisions == []


def test_hostnames_fallback_takes_the_next_preference_then_the_id():
    names = Hostnames(["tag:Name", "dns"], "fallback")
    assert names.name(record("i-1", "web", dns="d1")) == "web"
    assert names.name(record("i-2", "web", dns="d2")) == "d2"
    assert names.name(record("i-3", "web", dns="d2")) == "i-3"
    assert names.name(record("i-4", "web")) == "i-4"
    assert names.collisions == [("web", "d2"), ("web", "i-3"), ("web", "i-4")]


def test_hostnames_same_record_keeps_its_name():
    names = Hostnames(["tag:Name", "dns"], "error")
    assert names.name(record("i-1", "web", dns="d1")) == "web"
    assert names.name(record("i-1", "web", dns="d1")) == "web"
    assert names.collisions == []


def test_hostnames_fallback_when_the_id_itself_is_taken():
    names = Hostnames(["tag:Name"], "fallback")
    assert names.name(record("i-1", "i-2")) == "i-2"  # an instance named after another's id
    assert names.name(record("i-2", "i-2")) == "i-2_2"
    assert names.name(record("i-3", "i-2")) == "i-3"
    assert names.name(record("i-2", "i-2")) == "i-2_2"  # named again: same name, no new warning
    assert names.collisions == [("i-2", "i-2_2"), ("i-2", "i-3")]


def test_hostnames_error_mode_names_both_instances():
    names = Hostnames(["tag:Name"], "error")
    names.name(record("i-1", "web"))
    with pytest.raises(AnsibleError, match=r"hostname 'web' is shared by i-1 and i-2"):
        names.name(record("i-2", "web"))


def test_hostnames_never_collapse_two_records():
    rng = random.Random(20240501)
    names = Hostnames(["tag:Name", "dns"], "fallback")
    records = [record("i-%03d" % i, rng.choice(["web", "db", "kafka", None, ""]), dns=rng.choice(["d1", "d2", "web", None]))
               for i in range(200)]
    given = [names.name(r) for r in records]
    assert len(set(given)) == len(records)
    assert set(r["vars"]["dns"] for r in records) - {None} <= set(given)
    # naming a record again (a second pass over the same data) gives it the same name
    assert [names.name(r) for r in records] == given


# --- backoff and retries ---------------------------------------------------------------------

def top(low, high):
    return high


def bottom(low, high):
    return low


def test_backoff_grows_exponentially_up_to_the_cap():
    assert [backoff_delay(n, 0.5, 4, rand=top) for n in range(7)] == [0.5, 1, 2, 4, 4, 4, 4]
    assert [backoff_delay(n, 0.5, 4, rand=bottom) for n in range(3)] == [0, 0, 0]


def test_backoff_jitters_between_zero_and_the_ceiling():
    calls = []
    backoff_delay(3, 0.25, 30, rand=lambda low, high: calls.append((low, high)) or 0)
    assert calls == [(0, 2.0)]


@pytest.mark.parametrize("retry_after, rand, expected", [
    (3, bottom, 3.0),  # a floor over the jitter
    ("3", bottom, 3.0),
    (1, top, 4.0),  # the jitter above the floor stays
    (100, bottom, 30),  # capped by the max delay
    (0.0, bottom, 0.0),
])
def test_backoff_retry_after_is_a_capped_floor(retry_after, rand, expected):
    assert backoff_delay(3, 0.5, 30, retry_after=retry_after, rand=rand) == expected


@pytest.mark.parametrize("value, expected", [
    ("3", 3.0), ("0.5", 0.5), ("-1", 0.0), (7, 7.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("", None), (None, None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


class Flaky:
    """A call that fails `failures` times with `error`, then returns 'ok'."""

    def __init__(self, failures, error):
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


class Throttled(Exception):
    pass


def classify_throttled(exc):
    return RetryableError("throttled: %s" % exc) if isinstance(exc, Throttled) else None


def test_call_with_retries_succeeds_after_retryable_failures():
    call, delays = Flaky(4, Throttled("slow down")), []
    assert call_with_retries(call, classify_throttled, 6, 0.5, 3, sleep=delays.append) == "ok"
    assert call.calls == 5
    assert len(delays) == 4
    assert all(0 <= d <= min(3, 0.5 * 2 ** n) for n, d in enumerate(delays))


def test_call_with_retries_honours_retry_after():
    call, delays = Flaky(2, RetryableError("429", retry_after=2.5)), []
    call_with_retries(call, classify_throttled, 6, 0.01, 30, sleep=delays.append)
    assert len(delays) == 2 and all(d >= 2.5 for d in delays)


def test_call_with_retries_reraises_what_classify_rejects():
    error, delays = ValueError("bad request"), []
    call = Flaky(1, error)
    with pytest.raises(ValueError) as raised:
        call_with_retries(call, classify_throttled, 6, 0.5, 3, sleep=delays.append)
    assert raised.value is error
    assert call.calls == 1 and delays == []


def test_call_with_retries_retries_a_retryable_error_raised_directly():
    call, delays = Flaky(2, RetryableError("connection reset")), []
    assert call_with_retries(call, lambda exc: None, 6, 0.5, 3, sleep=delays.append) == "ok"
    assert call.calls == 3 and len(delays) == 2


@pytest.mark.parametrize("retries", [0, 3])
def test_call_with_retries_gives_up(retries):
    call, delays = Flaky(100, Throttled("slow down")), []
    with pytest.raises(AnsibleError, match=r"throttled: slow down \(gave up after %d retries\)" % retries):
        call_with_retries(call, classify_throttled, retries, 0.5, 3, sleep=delays.append)
    assert call.calls == retries + 1 and len(delays) == retries


@pytest.mark.parametrize("value, choices, expected", [
    ("hostname", ["hostnames", "hostvars", "ansible_host"], " (did you mean 'hostnames' or 'hostvars'?)"),
    ("eu-west-9", {"eu-west-1", "ap-south-2"}, " (did you mean 'eu-west-1'?)"),
    ("zzz", ["hostnames"], ""),
])
def test_suggest(value, choices, expected):
    assert suggest(value, choices) == expected


# --- ClusterInventory.parse end to end -------------------------------------------------------

FAKE = "scratchbird.cluster.fake"
FAKE_OPTIONS = """
plugin:
  description: The name of this plugin.
  required: true
  choices: [scratchbird.cluster.fake]
hostnames:
  description: Hostname preferences.
  type: list
  elements: str
  default: ['tag:Name', id]
ansible_host:
  description: Variables to take ansible_host from.
  type: list
  elements: str
  default: [private_ip, public_ip]
hostvars:
  description: Variables to set.
  type: list
  elements: str
  default: [zone, tags]
"""


def define_fake_options():
    """Register the fake plugin's option definitions with Ansible's config manager, as the plugin
    loader does from a plugin's DOCUMENTATION and its doc fragments when it loads the plugin. The
    fake is not in any plugin path, so the loader never sees it; and a plain pytest run has no
    collection loader to resolve the scratchbird.cluster.inventory fragment, so the fragments'
    DOCUMENTATION is read directly. Everything after this (set_options from the config file,
    get_option, defaults, type checks) is ansible-core's own code."""
    if C.config.has_configuration_definition("inventory", FAKE):
        return
    options = {}
    for fragment in (shared_fragment, constructed, inventory_cache):
        options.update(yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(yaml.safe_load(FAKE_OPTIONS))
    C.config.initialize_plugin_configuration_definitions("inventory", FAKE, options)


class FakeInventory(ClusterInventory):
    """Sources and pages come from `pages`: {source: [page, ...]}, where a page is a list of
    records, an exception to raise, or a callable returning a list of records."""

    NAME = FAKE
    VARIABLES = ("id", "zone", "private_ip", "public_ip", "tags", "secret")  # what host() gives a record
    # Ansible takes the plugin type from the class name (InventoryModule -> 'inventory').
    plugin_type = "inventory"

    def __init__(self, pages):
        super(FakeInventory, self).__init__()
        # what the plugin loader sets on a plugin it loads by name
        self._load_name = self.ansible_name = FAKE
        self.pages = pages
        self.fetched = []
        self.setups = 0

    def _setup(self):
        self.setups += 1

    def _sources(self):
        return list(self.pages)

    def _fetch(self, source):
        self.fetched.append(source)
        for page in self.pages[source]:
            if isinstance(page, Exception):
                raise page
            yield page() if callable(page) else page


class MergingInventory(FakeInventory):
    """Like the Consul plugin: records with the same id (from any source) are one host."""

    MERGES = True

    def _merge(self, records):
        merged = {}
        for rec in records:
            known = merged.setdefault(rec["id"], dict(rec, labels={}, groups=[]))
            known["labels"] = dict(known["labels"], **rec["labels"])
            known["groups"] = known["groups"] + list(rec.get("groups", []))
        return list(merged.values())


def host(id_, name, tier=None, cluster="prod", zone="z1", private_ip=None, public_ip=None, groups=None):
    """A record as a plugin's _fetch yields it: the instance's tags and all its variables."""
    labels = {"Name": name, "Cluster": cluster}
    if tier:
        labels["Tier"] = tier
    hostvars = {"id": id_, "zone": zone, "private_ip": private_ip, "public_ip": public_ip, "tags": labels, "secret": "s3cr3t"}
    return {"id": id_, "name": name, "labels": labels, "vars": hostvars, "groups": groups or []}


PAGES = {
    "a": [[host("i-1", "tx-engine-1", private_ip="10.0.0.1", public_ip="203.0.113.1"),
           host("i-2", "db-1", tier="olap", zone="z2", private_ip="10.0.0.2")],
          [host("i-3", "kafka-0", private_ip="10.0.0.3")]],
    "b": [[host("i-4", "misc", public_ip="203.0.113.4")]],
}


@pytest.fixture
def parse(tmp_path):
    """parse(config, pages or plugin, cache=True) -> (InventoryData, plugin)."""
    define_fake_options()
    path = tmp_path / "test.fake.yml"

    def run(config=None, pages=None, plugin=None, cache=True):
        config = dict(config or {}, plugin=FAKE)
        path.write_text(yaml.safe_dump(config))
        plugin = plugin or FakeInventory(PAGES if pages is None else pages)
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        return inventory, plugin

    return run


def members(inventory, prefix=""):
    """{group: sorted host names} of the groups whose names start with prefix."""
    return {name: sorted(h.name for h in group.get_hosts())
            for name, group in inventory.groups.items() if name.startswith(prefix) and name not in ("all", "ungrouped")}


def hostvars(inventory, name):
    """The variables the plugin set on a host (InventoryData itself adds inventory_file and inventory_dir)."""
    return {k: v for k, v in inventory.get_host(name).vars.items() if k not in ("inventory_file", "inventory_dir")}


def test_parse_adds_hosts_of_every_source_in_source_order(parse):
    inventory, plugin = parse()
    assert list(inventory.hosts) == ["tx-engine-1", "db-1", "kafka-0", "misc"]
    assert sorted(plugin.fetched) == ["a", "b"] and plugin.setups == 1
    assert members(inventory) == {
        "clock_masters": [], "ingestion_engines": [],  # created even when empty
        "tx_engines": ["tx-engine-1"], "olap_shards": ["db-1"], "kafka_brokers": ["kafka-0"],
    }
    assert set(TIER_GROUPS) <= set(inventory.groups)


def test_parse_sets_tier_address_and_only_the_listed_hostvars(parse):
    inventory, _plugin = parse()
    assert hostvars(inventory, "tx-engine-1") == {
        "ansible_host": "10.0.0.1", "scratchbird_tier": "tx_engines", "zone": "z1",
        "tags": {"Name": "tx-engine-1", "Cluster": "prod"},
    }
    misc = hostvars(inventory, "misc")
    assert misc["ansible_host"] == "203.0.113.4" and misc["scratchbird_tier"] is None
    inventory, _plugin = parse({"hostvars": ["secret"], "ansible_host": ["public_ip"]})
    db = hostvars(inventory, "db-1")
    assert db["secret"] == "s3cr3t" and "zone" not in db and "tags" not in db
    assert "ansible_host" not in db and db["scratchbird_tier"] == "olap_shards"


def test_parse_compose_and_groups_see_every_record_variable(parse):
    inventory, _plugin = parse({"compose": {"ansible_user": "'admin'", "where": "zone ~ '/' ~ secret"},
                                "groups": {"zone_two": "zone == 'z2'"}})
    assert hostvars(inventory, "db-1")["ansible_user"] == "admin"
    assert hostvars(inventory, "db-1")["where"] == "z2/s3cr3t"
    assert members(inventory, "zone_two") == {"zone_two": ["db-1"]}


@pytest.fixture
def templar_calls(monkeypatch):
    """Counts the keys that go to Constructable._compose (the templar) instead of the fast path."""
    calls = []
    original = Constructable._compose

    def counting(self, template, variables, disable_lookups=Ellipsis):
        calls.append(template)
        return original(self, template, variables)

    monkeypatch.setattr(Constructable, "_compose", counting)
    return calls


def test_keyed_groups_plain_path_is_read_directly_and_matches_the_templar(parse, templar_calls):
    tiered = {"a": [[host("i-%d" % n, "h%d" % n, tier=tier, zone="z%d" % (n % 2)) for n, tier in enumerate(["olap", "kafka", "olap"])]]}
    plain, _plugin = parse({"keyed_groups": [{"key": "tags.Tier", "prefix": "tier"}, {"key": "zone", "prefix": "at"}]}, tiered)
    assert templar_calls == []
    jinja, _plugin = parse({"keyed_groups": [{"key": "tags['Tier']", "prefix": "tier"}, {"key": "zone | string", "prefix": "at"}]}, tiered)
    assert len(templar_calls) == 6
    assert members(plain, "tier_") == members(jinja, "tier_") == {"tier_olap": ["h0", "h2"], "tier_kafka": ["h1"]}
    assert members(plain, "at_") == members(jinja, "at_") == {"at_z0": ["h0", "h2"], "at_z1": ["h1"]}


def test_keyed_groups_unresolved_plain_path_goes_to_the_templar(parse, templar_calls):
    inventory, _plugin = parse({"keyed_groups": [{"key": "tags.Tier", "prefix": "tier"}]})
    assert len(templar_calls) == 3  # tx-engine-1, kafka-0 and misc have no Tier tag: undefined, no group
    assert members(inventory, "tier_") == {"tier_olap": ["db-1"]}


@pytest.mark.parametrize("cluster_key", ["Cluster", "cluster"])
def test_parse_drops_records_of_other_clusters(parse, cluster_key):
    pages = {"a": [[host("i-1", "tx-1"), host("i-2", "tx-2", cluster="stage")]], "b": [[host("i-3", "tx-3", cluster="prod")]]}
    inventory, _plugin = parse({"cluster_name": "prod", "cluster_key": cluster_key}, pages)
    assert sorted(inventory.hosts) == ["tx-1", "tx-3"]
    inventory, _plugin = parse({}, pages)
    assert sorted(inventory.hosts) == ["tx-1", "tx-2", "tx-3"]


def test_parse_keeps_instances_with_the_same_name(parse):
    pages = {"a": [[host("i-1", "web")]], "b": [[host("i-2", "web")]]}
    inventory, _plugin = parse({}, pages)
    assert list(inventory.hosts) == ["web", "i-2"]
    with pytest.raises(AnsibleError, match="hostname 'web' is shared by i-1 and i-2"):
        parse({"hostname_duplicates": "error"}, pages)


@pytest.mark.parametrize("error, message", [
    (RuntimeError("boom"), r"^source b: RuntimeError: boom$"),
    (AnsibleError("access denied"), r"^source b: access denied$"),
])
def test_an_error_in_one_source_names_the_source(parse, error, message):
    pages = {"a": PAGES["a"], "b": [[host("i-9", "tx-9")], error]}
    with pytest.raises(AnsibleError, match=message):
        parse({}, pages)


def test_host_order_does_not_depend_on_which_source_finishes_first(parse):
    b_done = threading.Event()
    finished = []

    def slow_a():
        assert b_done.wait(10), "source b never finished"
        finished.append("a")
        return [host("i-1", "tx-1"), host("i-2", "tx-2")]

    def fast_b():
        finished.append("b")
        return [host("i-3", "tx-3")]

    def b_finished():
        b_done.set()
        return []

    inventory, _plugin = parse({}, {"a": [slow_a], "b": [fast_b, b_finished]})
    assert finished == ["b", "a"]
    assert list(inventory.hosts) == ["tx-1", "tx-2", "tx-3"]


def test_merging_plugin_adds_hosts_once_all_records_are_merged(parse):
    # n-1 has no Name in source a: its host is named by its id unless b's Name is merged in first
    pages = {"a": [[host("n-1", None, tier="kafka", groups=["kafka"]), host("n-2", "kafka-2", groups=["kafka"])]],
             "b": [[host("n-1", "kafka-1", groups=["zookeeper"])]]}
    inventory, _plugin = parse({}, plugin=MergingInventory(pages))
    assert list(inventory.hosts) == ["kafka-1", "kafka-2"]
    assert members(inventory, "kafka") == {"kafka": ["kafka-1", "kafka-2"], "kafka_brokers": ["kafka-1", "kafka-2"]}
    assert members(inventory, "zoo") == {"zookeeper": ["kafka-1"]}


def dump(inventory):
    return {name: hostvars(inventory, name) for name in inventory.hosts}, members(inventory)


def test_cache_repopulates_without_fetching(parse, tmp_path):
    config = {"cache": True, "cache_plugin": "jsonfile", "cache_connection": str(tmp_path / "cache"),
              "keyed_groups": [{"key": "zone", "prefix": "zone"}]}
    fetched, plugin = parse(config)
    plugin.update_cache_if_changed()  # what InventoryManager does after parse()
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the records went through JSON on disk

    cached, plugin = parse(config, pages={"a": [RuntimeError("called")], "b": []})
    assert plugin.fetched == [] and plugin.setups == 0
    assert dump(cached) == dump(fetched)

    refreshed, plugin = parse(config, pages={"a": [[host("i-7", "olap-7")]]}, cache=False)  # --flush-cache
    assert plugin.fetched == ["a"] and list(refreshed.hosts) == ["olap-7"]


def test_cache_off_always_fetches(parse):
    _inventory, plugin = parse({"cache": False})
    _inventory, plugin = parse({"cache": False}, plugin=plugin)
    assert sorted(plugin.fetched) == ["a", "a", "b", "b"]


def test_unknown_option_is_an_error_with_a_hint(parse):
    with pytest.raises(AnsibleError, match=r"unknown option 'hostname' \(did you mean 'hostnames'.*\) in scratchbird.cluster.fake"):
        parse({"hostname": ["tag:Name"]})


@pytest.mark.parametrize("config, message", [
    ({"hostvars": ["zones"]}, r"hostvars: 'zones' is not a host variable of scratchbird.cluster.fake \(did you mean 'zone'\?\); it has id, zone"),
    ({"hostnames": ["tag:Name", "zone.name", "ip"]}, r"hostnames: 'ip' is not a host variable"),
    ({"ansible_host": ["label:x", "address"]}, r"ansible_host: 'address' is not a host variable"),
])
def test_unknown_host_variables_are_errors(parse, config, message):
    with pytest.raises(AnsibleError, match=message):
        parse(config)


@pytest.mark.parametrize("config, message", [
    ({"tier_map": {"web": "webservers"}}, r"tier_map maps to unknown groups \(web: webservers\)"),
    ({"tier_map": {"olap": "olap_shard"}}, r"tier_map maps to unknown groups \(olap: olap_shard\)"),
    ({"tier_name_patterns": {"kafka": ["kafka-*"]}}, r"tier_name_patterns has unknown groups \(kafka\)"),
])
def test_bad_tier_options_are_errors(parse, config, message):
    plugin = FakeInventory(PAGES)
    with pytest.raises(AnsibleError, match=message):
        parse(config, plugin=plugin)
    assert plugin.fetched == []


def test_user_tier_options_are_applied(parse):
    inventory, _plugin = parse({"tier_map": {"olap": "kafka_brokers"}, "tier_name_patterns": {"clock_masters": ["tx-*"]}})
    assert members(inventory)["kafka_brokers"] == ["db-1"]
    assert members(inventory)["clock_masters"] == ["tx-engine-1"]
    assert hostvars(inventory, "kafka-0")["scratchbird_tier"] is None


@pytest.mark.parametrize("filename, expected", [
    ("fake.yml", True), ("prod.fake.yaml", True), ("prod_fake.yml", True),
    ("notfake.yml", False), ("prod.fake.json", False), ("prod.aws_ec2.yml", False),
])
def test_verify_file(tmp_path, filename, expected):
    define_fake_options()
    path = tmp_path / filename
    path.write_text("plugin: %s\n" % FAKE)
    assert FakeInventory({}).verify_file(str(path)) is expected
    assert FakeInventory({}).verify_file(str(tmp_path / "missing.fake.yml")) is False
