# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.scratchbird.cluster.plugins.filter.clock import clock_platform, invalid_networks


@pytest.mark.parametrize("facts,expected", [
    ({"system_vendor": "Amazon EC2", "product_name": "m6i.large"}, "aws"),
    ({"system_vendor": "Xen", "bios_version": "4.11.amazon"}, "aws"),
    ({"ansible_bios_vendor": "Amazon EC2"}, "aws"),
    ({"system_vendor": "Google", "product_name": "Google Compute Engine"}, "gcp"),
    ({"system_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
      "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77"}, "azure"),
    ({"system_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"}, "azure"),
    ({"system_vendor": "Microsoft Corporation", "product_name": "Surface Laptop"}, None),
    ({"system_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, None),
    ({"system_vendor": "NA"}, None),
    ({}, None),
])
def test_clock_platform(facts, expected):
    assert clock_platform(facts) == expected


def test_clock_platform_needs_a_dict():
    with pytest.raises(AnsibleFilterError, match="expects the host's facts"):
        clock_platform("aws")


@pytest.mark.parametrize("values,expected", [
    (["10.213.0.0/24", "10.0.0.1", "fd00::/8", "10.213.0.5/24"], []),
    (["10.213.0.0/33", "nonsense", "10.1.0.0/16", ""], ["10.213.0.0/33", "nonsense", ""]),
    ("300.1.1.1", ["300.1.1.1"]),
    (None, []),
])
def test_invalid_networks(values, expected):
    assert invalid_networks(values) == expected


def test_chrony_sources_from_strings_and_dicts():
    from ansible_collections.scratchbird.cluster.plugins.filter.clock import chrony_sources
    entries = ["a.example", "b.example iburst maxpoll 6",
               {"host": "pool.example", "pool": True, "options": "iburst maxsources 3"},
               {"host": "c.example", "nts": False}]
    assert chrony_sources(entries, options="iburst", nts=True) == [
        "server a.example iburst nts",
        "server b.example iburst maxpoll 6 nts",
        "pool pool.example iburst maxsources 3 nts",
        "server c.example iburst",
    ]


def test_chrony_sources_for_inventory_hosts():
    from ansible_collections.scratchbird.cluster.plugins.filter.clock import chrony_sources
    hostvars = {"clock-1": {"ansible_host": "10.0.0.11"}, "clock-2": {}}
    assert chrony_sources(["clock-1", "clock-2"], hostvars=hostvars, options="iburst minpoll 0",
                          prefer_first=True) == ["server 10.0.0.11 iburst minpoll 0 prefer",
                                                 "server clock-2 iburst minpoll 0"]


@pytest.mark.parametrize("entry", [{"options": "iburst"}, "", 5])
def test_chrony_sources_rejects_bad_entries(entry):
    from ansible_collections.scratchbird.cluster.plugins.filter.clock import chrony_sources
    with pytest.raises(AnsibleFilterError):
        chrony_sources([entry])
