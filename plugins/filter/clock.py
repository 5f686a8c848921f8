# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the time roles: cloud platform detection and network checks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

# (platform, DMI field, substring) — the first match wins.
_DMI_SIGNS = (
    ("aws", "system_vendor", "amazon"),
    ("aws", "bios_vendor", "amazon"),
    ("aws", "bios_version", "amazon"),
    ("gcp", "system_vendor", "google"),
    ("gcp", "product_name", "google compute engine"),
    ("azure", "chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77"),
)


def clock_platform(facts):
    """The cloud a host runs on ('aws', 'gcp', 'azure') from its DMI facts, else None."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError("clock_platform expects the host's facts (a dict), got %s" % type(facts).__name__)

    def field(name):
        value = facts.get(name, facts.get("ansible_" + name, ""))
        return value.lower() if isinstance(value, string_types) else ""

    for platform, name, sign in _DMI_SIGNS:
        if sign in field(name):
            return platform
    if "microsoft" in field("system_vendor") and "virtual machine" in field("product_name"):
        return "azure"
    return None


def invalid_networks(values):
    """The entries of a list that are not an IPv4/IPv6 address or network (CIDR)."""
    if isinstance(values, string_types):
        values = [values]
    bad = []
    for value in values or []:
        try:
            ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            bad.append(value)
    return bad


def chrony_sources(entries, hostvars=None, options="", nts=False, prefer_first=False):
    """chrony source lines from strings ("host [options]") or dicts {host, options, pool, nts}.

    With hostvars, entries are inventory hosts and are addressed by their ansible_host.
    """
    lines = []
    for index, entry in enumerate(entries or []):
        if isinstance(entry, dict):
            if not entry.get("host"):
                raise AnsibleFilterError("chrony source %r has no 'host'" % (entry,))
            kind = "pool" if entry.get("pool") else "server"
            host, opts, use_nts = entry["host"], entry.get("options", options), entry.get("nts", nts)
        elif isinstance(entry, string_types) and entry.strip():
            kind, use_nts = "server", nts
            host, _sep, opts = entry.strip().partition(" ")
            opts = opts or options
        else:
            raise AnsibleFilterError("chrony source must be a host string or a dict, got %r" % (entry,))
        if hostvars is not None:
            host = hostvars[host].get("ansible_host", host) if host in hostvars else host
        words = [kind, str(host)] + str(opts or "").split()
        if use_nts and "nts" not in words:
            words.append("nts")
        if prefer_first and index == 0 and "prefer" not in words:
            words.append("prefer")
        lines.append(" ".join(words))
    return lines


class FilterModule(object):
    def filters(self):
        return {"clock_platform": clock_platform, "invalid_networks": invalid_networks,
                "chrony_sources": chrony_sources}
