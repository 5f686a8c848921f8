#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kafka_info
short_description: Read a Kafka cluster's brokers, controller and topics
version_added: 0.1.0
description:
  - Returns the brokers of a Kafka cluster, its controller and cluster id, and for each topic
    its partition count, replication factor, under-replicated partitions and whether it is
    internal.
  - A partition is under-replicated when its in-sync replica set (ISR) is smaller than its
    replica set; RV(under_replicated_partitions) adds them up over the topics returned.
  - Read-only; never reports a change.
author: scratchbird.cluster contributors (@scratchbird)
options:
  topics:
    description:
      - Only these topics. Topics that do not exist are listed in RV(missing_topics).
      - All topics, the internal ones included, when omitted.
    type: list
    elements: str
extends_documentation_fragment:
  - scratchbird.cluster.kafka
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only reads; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
requirements:
  - kafka-python 2.0.2 or later, where the module runs (C(kafka-python==3.0.12) and C(2.0.2) tested);
    Debian's C(python3-kafka) works.
seealso:
  - module: scratchbird.cluster.kafka_topic
"""

EXAMPLES = r"""
- name: Read the Kafka cluster
  scratchbird.cluster.kafka_info:
    bootstrap_servers: [kafka-1:9092, kafka-2:9092]
  register: kafka

- name: Every partition fully replicated
  ansible.builtin.assert:
    that: kafka.under_replicated_partitions == 0
    fail_msg: >-
      under-replicated: {{ kafka.topics | dict2items | selectattr('value.under_replicated_partitions')
      | map(attribute='key') | list }}

- name: The ingestion topics exist with 12 partitions
  scratchbird.cluster.kafka_info:
    bootstrap_servers: [kafka-1:9092]
    topics: [ingest.events, ingest.dead-letter]
  register: ingest
  failed_when: ingest.missing_topics or ingest.topics['ingest.events'].partitions != 12
"""

RETURN = r"""
cluster_id:
  description: The cluster id.
  returned: success
  type: str
  sample: 4L6g3nShT-eMCtK--X86sw
controller_id:
  description: Broker id of the active controller; null when the cluster reports none.
  returned: success
  type: int
  sample: 1
brokers:
  description: The brokers, by id.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Broker id.
      type: int
      sample: 1
    host:
      description: Advertised host.
      type: str
      sample: kafka-1
    port:
      description: Advertised port.
      type: int
      sample: 9092
    rack:
      description: Rack (C(broker.rack)); null when not set.
      type: str
      sample: rack-a
topics:
  description: The topics, by name.
  returned: success
  type: dict
  sample:
    ingest.events:
      partitions: 12
      replication_factor: 3
      under_replicated_partitions: 0
      min_isr: 3
      offline_partitions: 0
      internal: false
  contains:
    partitions:
      description: Number of partitions.
      type: int
    replication_factor:
      description: Replicas of a partition (the largest replica set; null without partitions).
      type: int
    under_replicated_partitions:
      description: Partitions whose ISR is smaller than their replica set.
      type: int
    min_isr:
      description: The smallest in-sync replica set of the topic's partitions (null without partitions).
      type: int
    offline_partitions:
      description: Partitions without a leader.
      type: int
    internal:
      description: Whether Kafka marks it internal (for example C(__consumer_offsets)).
      type: bool
under_replicated_partitions:
  description: Under-replicated partitions of all the topics returned.
  returned: success
  type: int
  sample: 0
missing_topics:
  description: Topics of O(topics) that do not exist; empty without O(topics).
  returned: success
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.scratchbird.cluster.plugins.module_utils.kafka import (
    KAFKA_REQUIRED_IF,
    KafkaModuleError,
    close,
    cluster_info,
    connect,
    describe_topics,
    kafka_argument_spec,
)


def gather(admin, names=None):
    result = cluster_info(admin)
    found, missing = describe_topics(admin, names)
    topics = {}
    for name in sorted(found):
        summary = dict(found[name])
        summary.pop("name", None)
        topics[name] = summary
    result.update(
        topics=topics,
        under_replicated_partitions=sum(t["under_replicated_partitions"] for t in topics.values()),
        missing_topics=missing,
    )
    return result


def main():
    module = AnsibleModule(
        argument_spec=kafka_argument_spec(topics=dict(type="list", elements="str")),
        required_if=KAFKA_REQUIRED_IF,
        supports_check_mode=True,
    )
    names = module.params["topics"]
    if names is not None:
        names = list(dict.fromkeys(n.strip() for n in names))
        if any(not n for n in names):
            module.fail_json(msg="topics has an empty name")
    admin = connect(module)
    try:
        result = gather(admin, names)
    except KafkaModuleError as exc:
        close(admin)
        module.fail_json(msg=str(exc), **exc.details)
    close(admin)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
