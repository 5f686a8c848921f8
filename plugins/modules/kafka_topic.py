#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kafka_topic
short_description: Create, grow, configure and delete a Kafka topic
version_added: 0.1.0
description:
  - Makes a Kafka topic exist with a number of partitions, a replication factor and topic
    configs, or makes it absent.
  - Creates a missing topic with O(partitions), O(replication_factor) and O(config).
  - On an existing topic, adds partitions up to O(partitions) (CreatePartitions) and sets the
    O(config) keys whose value differs from the broker's (only those keys; configs not listed
    are left alone).
  - Fails, changing nothing, when asked for fewer partitions than the topic has (Kafka cannot
    remove partitions), for another replication factor than the topic has (that needs a
    partition reassignment), for a replication factor above the number of brokers, or to add
    partitions on a broker without CreatePartitions.
  - Reports a change only when it changes something. In check mode it reports what it would
    do and changes nothing.
author: scratchbird.cluster contributors (@scratchbird)
options:
  name:
    description:
      - Topic name. Letters, digits, C(.), C(_) and C(-), at most 249 characters.
    type: str
    required: true
  state:
    description: Whether the topic should exist. V(absent) deletes it, with its messages.
    type: str
    choices: [present, absent]
    default: present
  partitions:
    description:
      - Number of partitions. Required to create a topic.
      - On an existing topic, a larger number adds partitions; a smaller one fails.
        Note that adding partitions changes which partition a key maps to.
      - When omitted the existing topic's partitions are left as they are.
    type: int
  replication_factor:
    description:
      - Replicas of each partition, at most the number of brokers.
      - When creating and omitted, the broker's C(default.replication.factor) applies.
      - On an existing topic it must equal the topic's replication factor (changing it needs a
        partition reassignment, which this module does not do); when omitted it is not checked.
    type: int
  config:
    description:
      - Topic configs to set, for example C(retention.ms), C(cleanup.policy),
        C(compression.type) or C(min.insync.replicas).
      - Values are sent as strings; booleans as C(true)/C(false), lists joined with commas.
      - Keys not listed are left as they are (they are not reset to the defaults).
      - On an existing topic the broker's values are read (DescribeConfigs) and only the keys
        that differ are changed. When the broker does not report the topic's configs, they
        cannot be compared - the module then changes none, says so in a warning, and applies
        O(config) only when it creates the topic.
    type: dict
extends_documentation_fragment:
  - scratchbird.cluster.kafka
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the topic and reports what would change; changes nothing.
  diff_mode:
    support: full
    details: Shows the topic's state, partitions, replication factor and the O(config) keys before and after.
  platform:
    support: full
    platforms: posix
requirements:
  - kafka-python 2.0.2 or later, where the module runs (C(kafka-python==3.0.12) and C(2.0.2) tested);
    Debian's C(python3-kafka) works.
notes:
  - With kafka-python 2.x, on a broker without IncrementalAlterConfigs (before Kafka 2.3), O(config)
    changes go through AlterConfigs, which replaces all of a topic's configs; the module then sends
    the configs set on the topic (read just before) along with the changed ones.
  - The replication factor of an existing topic is the largest replica set of its partitions.
  - Deleting a topic needs C(delete.topic.enable=true) on the brokers (the default).
seealso:
  - module: scratchbird.cluster.kafka_info
"""

EXAMPLES = r"""
- name: Ingestion topic, 12 partitions on 3 replicas
  scratchbird.cluster.kafka_topic:
    bootstrap_servers: [kafka-1:9092, kafka-2:9092]
    name: ingest.events
    partitions: 12
    replication_factor: 3
    config:
      min.insync.replicas: 2
      retention.ms: 604800000
      compression.type: zstd
      cleanup.policy: [delete]

- name: Grow it to 24 partitions (check the diff first with --check --diff)
  scratchbird.cluster.kafka_topic:
    bootstrap_servers: [kafka-1:9092]
    name: ingest.events
    partitions: 24

- name: Through SASL/SCRAM over TLS, with the connection set once for the Kafka modules
  module_defaults:
    group/scratchbird.cluster.cluster:
      bootstrap_servers: [kafka-1:9093]
      security_protocol: SASL_SSL
      ssl_cafile: /etc/scratchbird/kafka-ca.pem
      sasl_mechanism: SCRAM-SHA-512
      sasl_username: admin
      sasl_password: "{{ vault_kafka_admin_password }}"
  block:
    - name: A compacted topic
      scratchbird.cluster.kafka_topic:
        name: engine.state
        partitions: 6
        replication_factor: 3
        config:
          cleanup.policy: compact

- name: Remove a scratch topic
  scratchbird.cluster.kafka_topic:
    bootstrap_servers: [kafka-1:9092]
    name: scratch.tmp
    state: absent
"""

RETURN = r"""
topic:
  description: The topic after the run (as it would be, in check mode).
  returned: success
  type: dict
  contains:
    name:
      description: Topic name.
      type: str
      sample: ingest.events
    exists:
      description: Whether the topic exists.
      type: bool
      sample: true
    partitions:
      description: Number of partitions; null when the topic does not exist.
      type: int
      sample: 12
    replication_factor:
      description:
        - Replication factor; null when the topic does not exist, or when the topic is to be
          created in check mode with the broker's default.
      type: int
      sample: 3
    config:
      description:
        - Topic configs as far as known, values as strings - as the broker reports them (a
          Kafka broker reports all, defaults included), or the O(config) the module created
          the topic with when the broker reports none. Null when unknown.
      type: dict
      sample: {"retention.ms": "604800000", "cleanup.policy": "delete"}
    config_source:
      description:
        - Where RV(topic.config) comes from - C(broker) (DescribeConfigs), C(requested) (what
          the module created the topic with; the broker did not report its configs), or null.
      type: str
      sample: broker
actions:
  description: What the module did (or would do, in check mode), one line each; empty when nothing.
  returned: success
  type: list
  elements: str
  sample:
    - "partitions 12 -> 24"
    - "config retention.ms: 604800000 -> 86400000"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.scratchbird.cluster.plugins.module_utils.kafka import (
    KAFKA_REQUIRED_IF,
    TOPIC_NAME_RE,
    UNKNOWN_TOPIC_OR_PARTITION,
    KafkaModuleError,
    alter_topic_config,
    close,
    cluster_info,
    config_value,
    connect,
    create_partitions,
    create_topic,
    delete_topic,
    describe_failure,
    describe_topic,
    error_text,
    is_unsupported,
    kafka_argument_spec,
    read_topic_config,
    supports_api,
    wait_until,
)


def check_params(params):
    """Errors in the module's own options, found before connecting."""
    errors = []
    name = params["name"]
    if not TOPIC_NAME_RE.match(name) or name in (".", ".."):
        errors.append("name %r is not a legal Kafka topic name (letters, digits, '.', '_' and '-', "
                      "1 to 249 characters, not '.' or '..')" % name)
    for option in ("partitions", "replication_factor"):
        if params[option] is not None and params[option] < 1:
            errors.append("%s must be at least 1, got %d" % (option, params[option]))
    for key, value in (params["config"] or {}).items():
        if not key or not str(key).strip():
            errors.append("config has an empty key")
        elif value is None:
            errors.append("config %s has no value" % key)
    return errors


def show(value):
    return "unset" if value is None else value


class TopicRun:
    def __init__(self, module, admin):
        self.module = module
        self.admin = admin
        self.params = module.params
        self.name = module.params["name"]
        self.check_mode = module.check_mode
        self.timeout = module.params["request_timeout_ms"] / 1000.0
        self.wanted_config = dict((str(k), config_value(v)) for k, v in (module.params["config"] or {}).items())
        self.actions = []
        self.done = []

    def fail(self, msg):
        raise KafkaModuleError(msg, actions=self.done)

    def wait_for_partitions(self, count):
        topic = wait_until(lambda: self._visible(count), self.timeout)
        if not topic:
            self.module.warn("topic %s does not show %d partitions in the metadata yet (waited %g s)"
                             % (self.name, count, self.timeout))
        return topic

    def _visible(self, count):
        topic = describe_topic(self.admin, self.name)
        return topic if topic and topic["partitions"] >= count else None

    # state=absent

    def absent(self):
        current = describe_topic(self.admin, self.name)
        result = dict(topic=dict(name=self.name, exists=False, partitions=None, replication_factor=None,
                                 config=None, config_source=None))
        if current is None:
            return False, result, dict(before=dict(state="absent"), after=dict(state="absent"))
        count = current["partitions"]
        self.actions.append("delete topic %s (%d partition%s)" % (self.name, count, "" if count == 1 else "s"))
        if not self.check_mode:
            failures = [f for f in delete_topic(self.admin, self.name) if f[1] != UNKNOWN_TOPIC_OR_PARTITION]
            if failures:
                self.fail("cannot delete topic %s: %s" % (self.name, describe_failure(failures[0])))
            if wait_until(lambda: describe_topic(self.admin, self.name) is None, self.timeout) is False:
                self.module.warn("topic %s is still in the metadata %g s after its deletion" % (self.name, self.timeout))
        before = dict(state="present", partitions=current["partitions"], replication_factor=current["replication_factor"])
        return True, result, dict(before=before, after=dict(state="absent"))

    # state=present

    def create(self):
        partitions, replication = self.params["partitions"], self.params["replication_factor"]
        if partitions is None:
            self.fail("partitions is required to create topic %s" % self.name)
        if replication is not None:
            brokers = cluster_info(self.admin)["brokers"]
            if replication > len(brokers):
                self.fail("replication_factor %d is larger than the number of brokers (%d: %s); topic %s not created"
                          % (replication, len(brokers), ", ".join(str(b["id"]) for b in brokers), self.name))
        line = "create topic %s with %d partitions, replication factor %s" % (
            self.name, partitions, replication if replication is not None else "of the broker default")
        if self.wanted_config:
            line += ", config %s" % ", ".join("%s=%s" % kv for kv in sorted(self.wanted_config.items()))
        self.actions.append(line)
        topic = dict(name=self.name, exists=True, partitions=partitions, replication_factor=replication,
                     config=dict(self.wanted_config), config_source="requested")
        if not self.check_mode:
            failures = create_topic(self.admin, self.name, partitions, replication if replication is not None else -1,
                                    self.wanted_config)
            if failures:
                self.fail("cannot create topic %s: %s" % (self.name, describe_failure(failures[0])))
            self.done.append(line)
            visible = self.wait_for_partitions(partitions)
            if visible:
                topic.update(partitions=visible["partitions"], replication_factor=visible["replication_factor"])
            config, dummy = self._read_config_quietly()
            if config is not None:
                topic.update(config=config, config_source="broker")
        after = dict(state="present", partitions=partitions, replication_factor=topic["replication_factor"])
        if self.wanted_config:
            after["config"] = dict(self.wanted_config)
        return True, dict(topic=topic), dict(before=dict(state="absent"), after=after)

    def _read_config_quietly(self):
        try:
            return read_topic_config(self.admin, self.name)
        except KafkaModuleError as exc:
            return None, str(exc)

    def update(self, current):
        partitions, replication = self.params["partitions"], self.params["replication_factor"]
        errors = []
        if partitions is not None and partitions < current["partitions"]:
            errors.append("cannot decrease the partitions of topic %s from %d to %d: Kafka cannot remove partitions "
                          "(delete and recreate the topic to have fewer, losing its messages)"
                          % (self.name, current["partitions"], partitions))
        if replication is not None and current["replication_factor"] is not None and replication != current["replication_factor"]:
            errors.append("topic %s has replication factor %d, requested %d: changing it needs a partition "
                          "reassignment (kafka-reassign-partitions), which this module does not do"
                          % (self.name, current["replication_factor"], replication))
        if errors:
            self.fail("; ".join(errors))

        # Configs: compare with the broker's, change only the differences.
        changes = {}
        compared = True
        if self.wanted_config:
            config, reason = read_topic_config(self.admin, self.name)
            if config is None:
                compared = False
                self.module.warn(
                    "the configs of existing topic %s could not be read: %s. config (%s) was neither compared nor "
                    "applied; this module applies config to a topic only when it creates it on such a broker"
                    % (self.name, reason, ", ".join(sorted(self.wanted_config))))
            else:
                changes = dict((k, v) for k, v in self.wanted_config.items() if config.get(k) != v)
        else:
            config, dummy = self._read_config_quietly()
        for key in sorted(changes):
            self.actions.append("config %s: %s -> %s" % (key, show(config.get(key)), changes[key]))

        grow = partitions is not None and partitions > current["partitions"]
        if grow:
            if supports_api(self.admin, "CreatePartitions") is False:
                self.fail("the Kafka broker does not support CreatePartitions: cannot increase the partitions of topic "
                          "%s from %d to %d" % (self.name, current["partitions"], partitions))
            self.actions.append("partitions %d -> %d" % (current["partitions"], partitions))

        if not self.check_mode:
            if changes:
                alter_topic_config(self.admin, self.name, changes)
                self.done.extend(a for a in self.actions if a.startswith("config "))
            if grow:
                self._add_partitions(current["partitions"], partitions)

        topic = dict(name=self.name, exists=True, partitions=max(current["partitions"], partitions or 0),
                     replication_factor=current["replication_factor"], config=None, config_source=None)
        if config is not None:
            known = dict(config)
            known.update(changes)
            topic.update(config=known, config_source="broker")
        before = dict(state="present", partitions=current["partitions"], replication_factor=current["replication_factor"])
        after = dict(before, partitions=topic["partitions"])
        if compared and self.wanted_config:
            before["config"] = dict((k, config.get(k)) for k in self.wanted_config)
            after["config"] = dict(self.wanted_config)
        return bool(self.actions), dict(topic=topic), dict(before=before, after=after)

    def _add_partitions(self, have, want):
        what = "increase the partitions of topic %s from %d to %d" % (self.name, have, want)
        try:
            failures = create_partitions(self.admin, self.name, want)
        except Exception as exc:  # pylint: disable=broad-except
            if is_unsupported(exc):
                self.fail("the Kafka broker does not support CreatePartitions: cannot %s" % what)
            self.fail("cannot %s: %s" % (what, error_text(exc)))
        if failures:
            self.fail("cannot %s: %s" % (what, describe_failure(failures[0])))
        self.done.append("partitions %d -> %d" % (have, want))
        self.wait_for_partitions(want)

    def present(self):
        current = describe_topic(self.admin, self.name)
        if current is None:
            return self.create()
        return self.update(current)


def main():
    module = AnsibleModule(
        argument_spec=kafka_argument_spec(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            partitions=dict(type="int"),
            replication_factor=dict(type="int"),
            config=dict(type="dict"),
        ),
        required_if=KAFKA_REQUIRED_IF,
        supports_check_mode=True,
    )
    errors = check_params(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    admin = connect(module)
    run = TopicRun(module, admin)
    try:
        if module.params["state"] == "absent":
            changed, result, diff = run.absent()
        else:
            changed, result, diff = run.present()
    except KafkaModuleError as exc:
        close(admin)
        details = dict(actions=run.done)
        details.update(exc.details)
        module.fail_json(msg=str(exc), **details)
    close(admin)
    result.update(changed=changed, actions=run.actions)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
