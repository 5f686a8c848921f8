# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The contract lookup: the parts the roles and playbooks build their tier tables from."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.scratchbird.cluster.plugins.lookup.contract import LookupModule
from ansible_collections.scratchbird.cluster.plugins.module_utils import contract


def run(*terms):
    return LookupModule().run(list(terms), variables={})


def test_parts_are_the_contract():
    tiers, defaults, groups, engine_groups = run("tiers", "defaults", "groups", "engine_groups")
    assert tiers == contract.TIERS and defaults == contract.DEFAULTS
    assert groups == ["clock_masters", "kafka_brokers", "ingestion_engines", "olap_shards", "tx_engines"]
    assert engine_groups == ["ingestion_engines", "olap_shards", "tx_engines"]


def test_what_the_roles_and_playbooks_read():
    # roles/engine/vars/main.yml (__engine_tiers) builds on these.
    (tiers,) = run("tiers")
    by_unit = dict((tiers[g]["unit"], dict(tiers[g], group=g)) for g in contract.ENGINE_GROUPS + ("clock_masters",))
    assert sorted(by_unit) == ["clock-master", "ingestion-engine", "olap-shard", "tx-engine"]
    assert [(by_unit[u]["role"], by_unit[u]["config_file"], by_unit[u]["data_dir"], by_unit[u]["metrics_port"])
            for u in sorted(by_unit)] == [("clock_master", "", "clock-master", 9093),
                                          ("ingestion", "ingestion.yaml", "ingestion", 9091),
                                          ("olap_shard", "olap.yaml", "olap", 9092),
                                          ("tx_engine", "tx-engine.yaml", "tx-engine", 9090)]
    (defaults,) = run("defaults")
    assert (defaults["cluster_name"], defaults["cluster_kafka_port"]) == ("scratchbird", 9092)


def test_parts_are_copies():
    (tiers,) = run("tiers")
    tiers["tx_engines"]["metrics_port"] = 1
    assert run("tiers")[0]["tx_engines"]["metrics_port"] == 9090


def test_unknown_part():
    with pytest.raises(AnsibleLookupError, match="unknown part"):
        run("tiers", "ports")
