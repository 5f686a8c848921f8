# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Filters that read the cluster's shape from the inventory: host addresses, Kafka bootstrap, topics."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.scratchbird.cluster.plugins.module_utils.contract import DEFAULTS as _DEFAULTS
from ansible_collections.scratchbird.cluster.plugins.module_utils.contract import clock_bound_ns as _clock_bound_ns


def _address(host, hostvars):
    if host in hostvars:
        return str(hostvars[host].get("ansible_host", host))
    return str(host)


def _with_port(address, port):
    return "[%s]:%s" % (address, port) if ":" in address else "%s:%s" % (address, port)


def host_addresses(hosts, hostvars, port=None):
    """Each inventory host's address (its ansible_host, else its name), as host:port when port is given."""
    addresses = [_address(host, hostvars) for host in hosts or []]
    return addresses if port is None else [_with_port(a, port) for a in addresses]


def kafka_bootstrap(bootstrap, broker_hosts, hostvars, port=None):
    """The cluster's Kafka brokers as host:port: bootstrap (a list or "h:p,h:p") when set,
    else the broker hosts of the inventory on port (None: the contract's cluster_kafka_port)."""
    if bootstrap is None:
        return host_addresses(broker_hosts, hostvars, _DEFAULTS["cluster_kafka_port"] if port is None else port)
    if isinstance(bootstrap, string_types):
        bootstrap = bootstrap.split(",")
    if not isinstance(bootstrap, (list, tuple)):
        raise AnsibleFilterError(
            "cluster_kafka_bootstrap must be a list of host:port or a 'host:port,host:port' string, got %r" % (bootstrap,))
    return [str(entry).strip() for entry in bootstrap if str(entry).strip()]


def server_id(name):
    """A TX engine's default server id: a stable number 1..999999 from its inventory name in
    lower case (the same on every run and controller, for TX-1 and tx-1, independent of the
    host's place in the group)."""
    digest = hashlib.sha256(str(name).lower().encode("utf-8")).hexdigest()
    return int(digest[:12], 16) % 999999 + 1


def cluster_topics(tx_hosts, hostvars, prefix="db-changes-"):
    """The cluster's Kafka topics: <prefix><server_id> for each TX engine (its tx_engine_server_id
    when set, else server_id of its name)."""
    topics = []
    for host in tx_hosts or []:
        ident = hostvars[host].get("tx_engine_server_id") if host in hostvars else None
        topics.append("%s%s" % (prefix, server_id(host) if ident is None else ident))
    return topics


def clock_bound_ns(value):
    """cluster_max_acceptable_uncertainty_ns in nanoseconds: a number of ns or a duration with a
    unit (50ms); the contract's 50 ms when None or empty."""
    try:
        return _clock_bound_ns(value)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"host_addresses": host_addresses, "kafka_bootstrap": kafka_bootstrap, "server_id": server_id,
                "clock_bound_ns": clock_bound_ns,
                "cluster_topics": cluster_topics}
