# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The base of the collection's inventory plugins (aws_ec2, gcp_compute, azure_vm, consul).

A plugin names its sources (regions, projects, subscriptions, datacenters) and turns one
source into records; this base fetches the sources concurrently with retries, caches the
records, and adds the hosts: tier groups, hostnames without silent collapse, constructed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import fnmatch
import importlib
import os
import queue
import random
import re
import threading
import time
from collections.abc import Mapping

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display

display = Display()

# The collection's groups, and the tier values that map to them by default.
TIER_GROUPS = ("clock_masters", "tx_engines", "ingestion_engines", "olap_shards", "kafka_brokers")
DEFAULT_TIER_MAP = {
    "clock": "clock_masters",
    "transaction": "tx_engines",
    "ingestion": "ingestion_engines",
    "olap": "olap_shards",
    "kafka": "kafka_brokers",
}
DEFAULT_NAME_PATTERNS = {
    "clock_masters": ["clock-master-*", "clock-*"],
    "tx_engines": ["tx-engine-*", "tx-*"],
    "ingestion_engines": ["ingestion-*", "ingest-*"],
    "olap_shards": ["olap-shard-*", "olap-*"],
    "kafka_brokers": ["kafka-*"],
}


PLAIN_PATH = re.compile(r"^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*$")


class RetryableError(Exception):
    """A call failed in a way worth retrying (throttling, 5xx, a dropped connection)."""

    def __init__(self, message, retry_after=None):
        super(RetryableError, self).__init__(message)
        self.retry_after = retry_after


def require(plugin, module, package):
    """Import a client library when the plugin calls its API, with a clear error when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise AnsibleError("%s needs the Python package %s on the controller (%s)" % (plugin, package, to_native(exc)))


def suggest(value, choices):
    """' (did you mean ...?)' for a misspelt value, or ''."""
    close = difflib.get_close_matches(value, sorted(choices), n=2)
    return " (did you mean %s?)" % " or ".join(repr(c) for c in close) if close else ""


def backoff_delay(attempt, base, cap, retry_after=None, rand=random.uniform):
    """Full-jitter exponential backoff; a server's Retry-After is a floor."""
    delay = rand(0, min(cap, base * (2 ** attempt)))
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), cap))
    return delay


def parse_retry_after(value):
    """Seconds from a Retry-After header (delta-seconds; an HTTP date counts as unknown)."""
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def call_with_retries(call, classify, retries, base_delay, max_delay, sleep=time.sleep):
    """call(); classify(exc) turns a retryable failure into RetryableError (or returns None)."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:  # pylint: disable=broad-except
            retryable = exc if isinstance(exc, RetryableError) else classify(exc)
            if retryable is None:
                raise
            if attempt >= retries:
                raise AnsibleError("%s (gave up after %d retries)" % (retryable, retries))
            delay = backoff_delay(attempt, base_delay, max_delay, retryable.retry_after)
            display.vvv("retrying in %.2fs: %s" % (delay, retryable))
            sleep(delay)
            attempt += 1


def detect_tier(name, labels, tier_key, tier_map, name_patterns):
    """The collection group of a host: its tier tag/label (key and value case-insensitive; tier_map
    keys lower-case), else its name pattern."""
    wanted = tier_key.lower()
    for key, value in labels.items():
        if key.lower() == wanted and value is not None:
            value = str(value).strip().lower()
            group = tier_map.get(value) or (value if value in TIER_GROUPS else None)
            if group:
                return group
    for group, patterns in name_patterns.items():
        if name and any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return group
    return None


MISSING = object()


def dig(value, path):
    """The value at a dotted path inside nested mappings, or MISSING."""
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def lookup_path(record, path):
    """A hostname candidate: tag:KEY / label:KEY read the record's labels, a dotted path its vars."""
    prefix, _sep, key = path.partition(":")
    if _sep and prefix in ("tag", "label"):
        return record["labels"].get(key)
    value = dig(record["vars"], path)
    return None if value is MISSING else value


class Hostnames:
    """Names hosts from a preference list; a taken name falls back to the next preference and
    finally to the record's unique id, so no instance is ever collapsed into another."""

    def __init__(self, preferences, on_duplicate):
        self.preferences = preferences
        self.on_duplicate = on_duplicate
        self.owner = {}
        self.collisions = []

    def name(self, record):
        candidates = [lookup_path(record, p) for p in self.preferences]
        candidates = [str(c) for c in candidates if c not in (None, "")]
        if not candidates:
            candidates = [str(record["id"])]
        first = candidates[0]
        owner = self.owner.get(first)
        if owner is None or owner == record["id"]:
            self.owner[first] = record["id"]
            return first
        if self.on_duplicate == "error":
            raise AnsibleError("hostname %r is shared by %s and %s; choose other 'hostnames' or set hostname_duplicates: fallback"
                               % (first, owner, record["id"]))
        fallbacks = candidates[1:] + [str(record["id"])]
        fallbacks += ["%s_%d" % (fallbacks[-1], n) for n in range(2, len(self.owner) + 3)]
        for candidate in fallbacks:
            if self.owner.get(candidate) in (None, record["id"]):
                if self.owner.get(candidate) is None:
                    self.collisions.append((first, candidate))
                self.owner[candidate] = record["id"]
                return candidate
        raise AnsibleError("no unique hostname for %s" % record["id"])  # unreachable: the numbered names never all clash


class ClusterInventory(BaseInventoryPlugin, Constructable, Cacheable):
    """Subclasses set NAME and implement _sources() and _fetch(source)."""

    NAME = None
    SOURCE = "source"  # what a source is called in messages: region, project, ...
    MERGES = False  # True when _merge combines records, so hosts are added once all are in
    VARIABLES = ()  # the host variables the plugin's records carry (hostvars, hostnames, ansible_host name them)

    def verify_file(self, path):
        suffix = self.NAME.split(".")[-1]
        return super(ClusterInventory, self).verify_file(path) and re.search(
            r"(^|[._])%s\.ya?ml$" % re.escape(suffix), os.path.basename(path)) is not None

    # --- for subclasses -------------------------------------------------------------------
    def _setup(self):
        """Check options and build clients before any call; raise AnsibleError on bad input."""

    def _sources(self):
        raise NotImplementedError

    def _fetch(self, source):
        """Yield lists of records for one source: {"id", "name", "labels", "vars"}."""
        raise NotImplementedError

    def _merge(self, records):
        """Combine records of the same host (the Consul plugin's services of one node)."""
        return records

    # --- shared machinery ---------------------------------------------------------------------
    def _compose(self, template, variables, disable_lookups=Ellipsis):
        """A plain variable path (tags.Tier, placement.region) is read directly: Ansible compiles
        every expression anew for every host, which dominates large inventories. Anything else,
        or a path that does not resolve, goes to the templar as usual."""
        match = PLAIN_PATH.match(template) if isinstance(template, str) else None
        # A part named like a dict method (items, keys) means that method to Jinja: templar.
        if match and self._direct_paths and not any(hasattr(dict, part) for part in match.group(1).split(".")):
            value = dig(variables, match.group(1))
            if value is not MISSING:
                return value
        return super(ClusterInventory, self)._compose(template, variables)

    def retry(self, call, classify):
        return call_with_retries(call, classify, self.get_option("retries"),
                                 self.get_option("retry_base_delay"), self.get_option("retry_max_delay"))

    def parse(self, inventory, loader, path, cache=True):
        super(ClusterInventory, self).parse(inventory, loader, path, cache)
        config = self._read_config_data(path)
        self._check_option_names(config)
        self._check_variable_names()
        self._check_tier_options()
        cache_key = self.get_cache_key(path)
        if self.get_option("cache") and cache and cache_key in self._cache:
            self._populate(self._cache[cache_key])
            return
        self._setup()
        records = self._fetch_and_populate()
        if self.get_option("cache"):
            self._cache[cache_key] = records

    def _check_option_names(self, config):
        """Ansible ignores unknown keys in a plugin's file; a misspelt option should not pass silently."""
        known = set(self.get_options())
        unknown = sorted(set(config or {}) - known)
        if unknown:
            raise AnsibleError("unknown option %r%s in %s" % (unknown[0], suggest(unknown[0], known), self.NAME))

    def _check_variable_names(self):
        """hostvars, hostnames and ansible_host name the plugin's variables (tag:/label: entries aside)."""
        for option in ("hostvars", "hostnames", "ansible_host"):
            for entry in self.get_option(option) or []:
                prefix, sep, _key = entry.partition(":")
                head = entry.split(".")[0]
                if not (sep and prefix in ("tag", "label")) and head not in self.VARIABLES:
                    raise AnsibleError("%s: %r is not a host variable of %s%s; it has %s"
                                       % (option, entry, self.NAME, suggest(head, self.VARIABLES), ", ".join(self.VARIABLES)))

    def _check_tier_options(self):
        tier_map = self.get_option("tier_map") or {}
        wrong = sorted("%s: %s" % (k, v) for k, v in tier_map.items() if v not in TIER_GROUPS)
        if wrong:
            raise AnsibleError("tier_map maps to unknown groups (%s); allowed: %s" % (", ".join(wrong), ", ".join(TIER_GROUPS)))
        patterns = self.get_option("tier_name_patterns")
        wrong = sorted(set(patterns or {}) - set(TIER_GROUPS))
        if wrong:
            raise AnsibleError("tier_name_patterns has unknown groups (%s); allowed: %s" % (", ".join(wrong), ", ".join(TIER_GROUPS)))

    def _fetch_and_populate(self):
        """Fetch every source on a thread pool; add hosts in source order as pages arrive, so
        Ansible's work overlaps the remaining calls and the result does not depend on timing."""
        sources = list(self._sources())
        self._cluster = (self.get_option("cluster_name"), self.get_option("cluster_key").lower())
        pages = [queue.Queue() for source in sources]
        slots = threading.Semaphore(max(1, self.get_option("max_workers")))
        done = object()

        def worker(index, source):
            with slots:
                try:
                    for page in self._fetch(source):
                        pages[index].put([r for r in page if self._in_cluster(r)])
                    pages[index].put(done)
                except Exception as exc:  # pylint: disable=broad-except
                    pages[index].put(exc)

        threads = [threading.Thread(target=worker, args=(i, s), daemon=True) for i, s in enumerate(sources)]
        for thread in threads:
            thread.start()
        records = []
        self._start_population()
        for index, source in enumerate(sources):
            while True:
                page = pages[index].get()
                if page is done:
                    break
                if isinstance(page, Exception):
                    if isinstance(page, AnsibleError):
                        raise AnsibleError("%s %s: %s" % (self.SOURCE, source, to_native(page)))
                    raise AnsibleError("%s %s: %s: %s" % (self.SOURCE, source, type(page).__name__, to_native(page)))
                records.extend(page)
                if not self.MERGES:
                    self._add_records(page)
        if self.MERGES:
            records = self._merge(records)
            self._add_records(records)
        self._finish_population()
        return records

    def _in_cluster(self, record):
        """Every plugin checks the cluster tag or label here, also where the API filtered already."""
        wanted, key = self._cluster
        return not wanted or any(k.lower() == key and v == wanted for k, v in record["labels"].items())

    def _populate(self, records):
        self._start_population()
        self._add_records(records)
        self._finish_population()

    def _start_population(self):
        self._hostnames = Hostnames(self.get_option("hostnames"), self.get_option("hostname_duplicates"))
        tier_map = dict(DEFAULT_TIER_MAP)
        tier_map.update((str(k).lower(), v) for k, v in (self.get_option("tier_map") or {}).items())
        self._tier_args = (self.get_option("tier_key"), tier_map, self.get_option("tier_name_patterns") or {})
        self._constructed = (self.get_option("compose"), self.get_option("groups"), self.get_option("keyed_groups"))
        self._strict = self.get_option("strict")
        self._direct_paths = not self.get_option("use_extra_vars")
        self._address_keys = self.get_option("ansible_host")
        self._set_vars = ["ansible_host", "scratchbird_tier"] + self.get_option("hostvars")
        self._untiered = []
        for group in TIER_GROUPS:
            self.inventory.add_group(group)

    def _add_records(self, records):
        inventory = self.inventory
        compose, groups, keyed_groups = self._constructed
        for record in records:
            host = self._hostnames.name(record)
            inventory.add_host(host)
            hostvars = dict(record["vars"])
            address = next((a for a in (lookup_path(record, k) for k in self._address_keys) if a), None)
            if address:
                hostvars["ansible_host"] = address
            tier = detect_tier(record["name"], record["labels"], *self._tier_args)
            hostvars["scratchbird_tier"] = tier
            for key in self._set_vars:
                if key in hostvars:
                    inventory.set_variable(host, key, hostvars[key])
            for group in record.get("groups", ()):
                inventory.add_child(inventory.add_group(self._sanitize_group_name(group)), host)
            if tier:
                inventory.add_child(tier, host)
            else:
                self._untiered.append(host)
            if compose:
                self._set_composite_vars(compose, hostvars, host, self._strict)
            if groups:
                self._add_host_to_composed_groups(groups, hostvars, host, self._strict)
            if keyed_groups:
                self._add_host_to_keyed_groups(keyed_groups, hostvars, host, self._strict)

    def _finish_population(self):
        for first, used in self._hostnames.collisions:
            display.warning("%s: hostname %r is taken by another instance; this one is %r" % (self.NAME, first, used))
        if self._untiered:
            display.vvv("%s: %d hosts without a tier: %s" % (self.NAME, len(self._untiered), ", ".join(self._untiered[:20])))
