#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_health
short_description: Judge the cluster's health from gathered readings and write the reports
version_added: 0.1.0
description:
  - Evaluates the health of every tier of the cluster from readings the play gathered before -
    M(scratchbird.cluster.chrony_info) on each host, the engines' C(/health) read with
    M(ansible.builtin.uri) and M(scratchbird.cluster.kafka_info). The module probes nothing itself;
    run it on the controller (C(localhost)).
  - "Each host is in one of these states: V(healthy); V(unhealthy) - its clock is not synchronised or
    over O(max_uncertainty_ns), or, on the engine tiers (C(tx_engines), C(ingestion_engines),
    C(olap_shards)), C(/health) did not answer HTTP 200 with C(status) C(ok) (an engine that is stopped);
    V(unreadable) - the host answered but its clock could not be read; V(unreachable) - the host could
    not be contacted (O(hosts[].error)); V(not_checked) - with the reason, for example outside
    C(--limit) or the run stopped before it (O(hosts[].not_checked)). A host not checked is no
    problem: it is listed as left out and not counted."
  - "A tier is V(healthy) when all its checked hosts are, V(degraded) - a loss within redundancy - while
    at least O(minimums) of them (and one) are healthy, else V(unhealthy); V(not_checked) when none was
    checked. A tier without hosts is unhealthy (except C(kafka_brokers) in C(external) mode, where the
    tier counts the brokers the cluster reports)."
  - The C(kafka_brokers) tier also takes the Kafka cluster's state - V(unhealthy) when the brokers cannot
    be read, a topic is missing, a partition is offline or has fewer in-sync replicas than
    C(kafka.min_insync_replicas), or no broker is registered; V(degraded) with under-replicated
    partitions that all keep enough in-sync replicas, or, in C(self_hosted) mode, fewer brokers
    registered than there are C(kafka_brokers) hosts.
  - The cluster's state (RV(state)) is the worst of its tiers'.
  - Returns the cluster summary in the contract's format (RV(summary)) and writes a JSON report
    (O(json_path)) and a self-contained HTML page (O(html_path)) - inline CSS and SVG, no script,
    no external reference - with a table per tier and a bar chart of the clock uncertainty of
    every host against the bound.
  - Fails when the cluster is V(UNHEALTHY) and O(fail_unhealthy) is true, after writing the reports;
    M(scratchbird.cluster.cluster_verdict) turns RV(state) into the run's exit status.
author: scratchbird.cluster contributors (@scratchbird)
options:
  hosts:
    description:
      - The hosts to judge, one item per host and tier; a host in several tiers has one item in each.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Inventory name of the host.
        type: str
        required: true
      tier:
        description: The tier (inventory group) the item is judged in.
        type: str
        required: true
        choices: [clock_masters, tx_engines, ingestion_engines, olap_shards, kafka_brokers]
      not_checked:
        description:
          - Why the host was not checked, for example C(outside --limit); the host is then left out.
        type: str
      clock_error:
        description: Why the clock could not be read (with O(hosts[].clock) null); the host is V(unreadable).
        type: str
      clock:
        description:
          - The result of M(scratchbird.cluster.chrony_info) on the host. Used are C(synchronised),
            C(uncertainty_ns), C(offset_ns), C(reference_name), C(reference_id),
            C(local_reference) and C(stratum).
          - Null or omitted when the clock could not be read; the host is then V(unreadable).
        type: dict
      health:
        description:
          - "On the engine tiers: the result of an M(ansible.builtin.uri) C(GET) of the engine's
            C(/health) - C(status) (HTTP status, C(-1) or missing when the engine could not be
            reached), C(json) (the parsed body, its C(status) and C(version) are used) and C(msg)
            (the error text)."
          - Register the C(uri) task with C(status_code) including C(503) or with C(failed_when)
            false so that failing engines still give a result.
          - Null or omitted on an engine tier means C(/health) was not checked (unhealthy).
          - Ignored on C(clock_masters) and C(kafka_brokers).
        type: dict
      error:
        description:
          - Why the host could not be contacted, for example the connection's error. The host is
            V(unreachable) and this text is its only problem.
        type: str
  kafka:
    description:
      - "The Kafka cluster, a dict with the keys C(mode) (C(self_hosted), the default, or
        C(external)), C(bootstrap) (list of C(host:port)), C(brokers) (the C(brokers) list of
        M(scratchbird.cluster.kafka_info) - C(id), C(host) and C(port); null or missing when Kafka could not be read),
        C(under_replicated_partitions) (int), C(missing_topics) (list of topic names) and
        C(error) (why Kafka could not be read), C(topics) (the C(topics) of
        M(scratchbird.cluster.kafka_info) - C(min_isr), C(offline_partitions) and
        C(under_replicated_partitions) per topic are used) and C(min_insync_replicas) (null or missing - the
        collection's broker default for the brokers read, min(3, brokers) - 1, at least 1)."
      - Other keys are ignored, so a registered M(scratchbird.cluster.kafka_info) result can be
        combined with C(mode) and C(bootstrap).
      - Empty, with no C(kafka_brokers) hosts either, makes the C(kafka_brokers) tier unhealthy.
    type: dict
    default: {}
  minimums:
    description:
      - Healthy hosts a tier needs, per inventory group, to be V(degraded) rather than V(unhealthy) after
        a loss.
      - The default is 1 for C(clock_masters) (the clients fail over to the other clock master) and
        C(kafka_brokers) (the in-sync replicas decide), and the contract's minimum size for the
        engine tiers (4 TX engines, 2 ingestion engines, 4 OLAP shards).
    type: dict
    default: {}
  max_uncertainty_ns:
    description:
      - Largest acceptable clock uncertainty, in nanoseconds. Must be greater than 0.
      - The default is the cluster's C(max_acceptable_uncertainty_ns), 50 ms.
    type: int
    default: 50000000
  cluster_name:
    description: Name of the cluster, shown in the reports.
    type: str
    default: ""
  json_path:
    description:
      - Write the JSON report (RV(report)) to this file. Its directory is created when missing;
        the file is replaced atomically with mode C(0644).
      - Not written when omitted.
    type: path
  html_path:
    description:
      - Write the HTML page to this file, the same way as O(json_path).
      - Not written when omitted.
    type: path
  fail_unhealthy:
    description:
      - Fail when the cluster is V(UNHEALTHY), with RV(summary) as the message, so that the play's
        exit status reflects the cluster's health. The reports are written first and every
        return value is in the failed result too.
      - When false the module returns normally with RV(healthy) false.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Evaluates the same and writes nothing; C(changed) tells whether a report would be written.
      - Still fails on an unhealthy cluster when O(fail_unhealthy) is true.
  diff_mode:
    support: none
    details: The reports are generated files; no diff is returned.
  platform:
    support: full
    platforms: posix
notes:
  - The reports hold their generation time (RV(report.generated_at)), so a report file given in
    O(json_path) or O(html_path) is rewritten, and C(changed) is true, on every run in practice;
    C(changed) is false only when nothing would differ (no report path, or identical content).
seealso:
  - module: scratchbird.cluster.chrony_info
  - module: scratchbird.cluster.kafka_info
  - module: ansible.builtin.uri
  - module: scratchbird.cluster.cluster_verdict
"""

EXAMPLES = r"""
# The playbook scratchbird.cluster.cluster_health gathers the inputs (chrony_info and the
# engines' /health on every host, kafka_info) and calls this module; the gist of it:
- name: Judge the cluster and write the reports
  scratchbird.cluster.cluster_health:
    cluster_name: prod-eu
    max_uncertainty_ns: 50000000
    hosts:
      - {name: clock-1, tier: clock_masters, clock: "{{ hostvars['clock-1'].health_clock }}"}
      - name: tx-1
        tier: tx_engines
        clock: "{{ hostvars['tx-1'].health_clock }}"
        health: "{{ hostvars['tx-1'].health_engine }}"
      - {name: kafka-1, tier: kafka_brokers, error: not reachable}
    kafka:
      mode: self_hosted
      brokers: "{{ health_kafka.brokers | default(none) }}"
      under_replicated_partitions: "{{ health_kafka.under_replicated_partitions | default(0) }}"
      missing_topics: "{{ health_kafka.missing_topics | default([]) }}"
    json_path: /var/tmp/cluster-health/cluster-health.json
    html_path: /var/tmp/cluster-health/cluster-health.html
  register: health

- name: Print the summary
  ansible.builtin.debug:
    msg: "{{ health.summary.split('\\n') }}"

- name: Report only, never fail on an unhealthy cluster
  scratchbird.cluster.cluster_health:
    hosts: "{{ health_items }}"
    fail_unhealthy: false
  register: health
"""

RETURN = r"""
state:
  description: The cluster's state, V(HEALTHY), V(DEGRADED) or V(UNHEALTHY) - the worst of its tiers.
  returned: always
  type: str
  sample: DEGRADED
healthy:
  description: Whether the state is V(HEALTHY).
  returned: always
  type: bool
  sample: false
left_out:
  description: The hosts not checked, by name, each with its C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "tx-2", "reason": "outside --limit"}]
summary:
  description:
    - The cluster summary in the contract's format, one line per tier and an C(Overall) line,
      joined with newlines. Labels are padded to 19 columns.
    - A tier line gives C(✓) or C(✗), the healthy and total hosts, the largest clock uncertainty
      (on the Kafka line the under-replicated partitions instead) and the first two problems,
      with C(…) when there are more.
  returned: always
  type: str
  sample: |-
    Clock Masters:     ✓ 2/2 healthy (max uncertainty: 0.412 ms)
    TX Engines:        ✓ 3/3 healthy (max uncertainty: 1.020 ms)
    Ingestion Engines: ✓ 1/1 healthy (max uncertainty: 0.900 ms)
    OLAP Shards:       ✗ 1/2 healthy (max uncertainty: 0.950 ms; olap-2: /health 503 failing)
    Kafka Brokers:     ✓ 1/1 healthy (under-replicated partitions: 0)
    Overall:           ✗ UNHEALTHY (1 problem; bound 50.0 ms)
tiers:
  description:
    - The evaluated tiers, keyed by inventory group - C(clock_masters), C(tx_engines),
      C(ingestion_engines), C(olap_shards) and C(kafka_brokers), always all five.
  returned: always
  type: dict
  contains:
    label:
      description: The tier's name in the summary.
      type: str
      sample: OLAP Shards
    state:
      description: V(healthy), V(degraded), V(unhealthy) or V(not_checked).
      type: str
      sample: degraded
    healthy:
      description: Whether the state is V(healthy) or V(not_checked).
      type: bool
      sample: false
    minimum:
      description: Healthy hosts the tier needs to be V(degraded) rather than V(unhealthy).
      type: int
      sample: 4
    left_out:
      description: The tier's hosts that were not checked.
      type: list
      elements: str
      sample: []
    healthy_hosts:
      description:
        - Healthy hosts of the tier.
        - On C(kafka_brokers) in C(self_hosted) mode at most the number of brokers registered; in
          C(external) mode the brokers the cluster reports when the Kafka check passes, else 0.
      type: int
      sample: 1
    total:
      description: Checked hosts of the tier; on C(kafka_brokers) in C(external) mode the brokers reported.
      type: int
      sample: 2
    max_uncertainty_ns:
      description: Largest clock uncertainty of the tier's hosts, ns; null when no clock was read.
      type: int
      sample: 950000
    problems:
      description:
        - "The tier's problems: C(<host>: <problem>) for each problem of each host, C(no hosts), and
          on C(kafka_brokers) the Kafka cluster's problems first (C(kafka: ...))."
      type: list
      elements: str
      sample: ["olap-2: /health 503 failing"]
    hosts:
      description: The tier's hosts, by name.
      type: list
      elements: dict
      contains:
        name:
          description: Inventory name.
          type: str
          sample: olap-2
        state:
          description: V(healthy), V(unhealthy), V(unreadable), V(unreachable) or V(not_checked).
          type: str
          sample: unhealthy
        healthy:
          description: Whether the state is V(healthy).
          type: bool
          sample: false
        reason:
          description: Why the host was not checked; null when it was.
          type: str
          sample: outside --limit
        synchronised:
          description: chrony_info's C(synchronised); null when the clock was not read.
          type: bool
          sample: true
        uncertainty_ns:
          description: Clock uncertainty, ns; null when the clock was not read.
          type: int
          sample: 950000
        offset_ns:
          description: Clock offset, ns; null when the clock was not read.
          type: int
          sample: -12000
        reference:
          description: The clock's reference (C(reference_name), C(local) or C(reference_id)); null when not read.
          type: str
          sample: 10.213.10.11
        stratum:
          description: The clock's stratum; null when not read.
          type: int
          sample: 3
        health_status:
          description: HTTP status of C(/health) on the engine tiers (C(-1) when unreachable); null elsewhere.
          type: int
          sample: 503
        version:
          description: Engine version from the C(/health) body; null when there is none.
          type: str
          sample: 1.0.0
        problems:
          description:
            - "Short descriptions, for example C(clock not synchronised), C(uncertainty 62.1 ms > bound 50.0 ms),
              C(clock could not be read), C(/health 503 failing), C(/health unreachable: <msg>) or the host's error."
          type: list
          elements: str
          sample: ["/health 503 failing"]
kafka:
  description: The evaluated Kafka cluster check (without the hosts' clocks).
  returned: always
  type: dict
  contains:
    mode:
      description: C(self_hosted) or C(external).
      type: str
      sample: self_hosted
    bootstrap:
      description: The bootstrap servers given.
      type: list
      elements: str
      sample: ["kafka-1:9092"]
    brokers:
      description: The brokers given (C(id), C(host), C(port)); null when Kafka could not be read.
      type: list
      elements: dict
    broker_count:
      description: Number of brokers; null when Kafka could not be read.
      type: int
      sample: 3
    under_replicated_partitions:
      description: Under-replicated partitions given; null when unknown.
      type: int
      sample: 0
    missing_topics:
      description: Missing topics given.
      type: list
      elements: str
      sample: []
    error:
      description: Why Kafka could not be read; null when it could.
      type: str
    state:
      description: V(healthy), V(degraded) or V(unhealthy).
      type: str
      sample: healthy
    min_insync_replicas:
      description: The C(min.insync.replicas) the in-sync replicas were judged against.
      type: int
      sample: 2
    healthy:
      description: Whether the Kafka cluster check found nothing.
      type: bool
      sample: true
    problems:
      description: The cluster check's problems.
      type: list
      elements: str
      sample: ["kafka: 2 under-replicated partitions"]
report:
  description:
    - The JSON report, as written to O(json_path) (keys sorted, indented by 2).
  returned: always
  type: dict
  contains:
    generated_at:
      description: Generation time, UTC, ISO 8601.
      type: str
      sample: "2025-01-31T12:00:00Z"
    cluster_name:
      description: O(cluster_name).
      type: str
      sample: prod-eu
    max_uncertainty_ns:
      description: The bound, O(max_uncertainty_ns).
      type: int
      sample: 50000000
    state:
      description: Same as RV(state).
      type: str
    healthy:
      description: Same as RV(healthy).
      type: bool
    left_out:
      description: Same as RV(left_out).
      type: list
      elements: dict
    tiers:
      description: Same as RV(tiers).
      type: dict
    kafka:
      description: Same as RV(kafka).
      type: dict
    summary:
      description: Same as RV(summary).
      type: str
json_path:
  description: The JSON report's path (also in check mode, where nothing is written).
  returned: when O(json_path) is set
  type: str
  sample: /srv/reports/cluster-health.json
html_path:
  description: The HTML page's path (also in check mode, where nothing is written).
  returned: when O(html_path) is set
  type: str
  sample: /srv/reports/cluster-health.html
changed:
  description:
    - True when a report file was written with content different from what it held; in check mode,
      when one would be written. Since the reports hold their generation time this is true on every
      run that writes a report, in practice.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.scratchbird.cluster.plugins.module_utils.health import (
    DEFAULT_BOUND_NS,
    TIER_NAMES,
    HealthInputError,
    build_report,
    render_html,
    render_json,
    write_if_changed,
)


def argument_spec():
    return dict(
        hosts=dict(
            type="list", elements="dict", required=True,
            options=dict(
                name=dict(type="str", required=True),
                tier=dict(type="str", required=True, choices=list(TIER_NAMES)),
                clock=dict(type="dict"),
                clock_error=dict(type="str"),
                health=dict(type="dict"),
                error=dict(type="str"),
                not_checked=dict(type="str"),
            ),
        ),
        kafka=dict(type="dict", default={}),
        minimums=dict(type="dict", default={}),
        max_uncertainty_ns=dict(type="int", default=DEFAULT_BOUND_NS),
        cluster_name=dict(type="str", default=""),
        json_path=dict(type="path"),
        html_path=dict(type="path"),
        fail_unhealthy=dict(type="bool", default=True),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["max_uncertainty_ns"] <= 0:
        module.fail_json(msg="max_uncertainty_ns must be greater than 0, got %d" % params["max_uncertainty_ns"])
    try:
        unknown = sorted(set(params["minimums"]) - set(TIER_NAMES))
        if unknown:
            raise HealthInputError("minimums has unknown tiers %s; the tiers are %s" % (", ".join(unknown), ", ".join(TIER_NAMES)))
        report = build_report(params["hosts"], params["kafka"], params["max_uncertainty_ns"], params["cluster_name"],
                              params["minimums"])
    except HealthInputError as exc:
        module.fail_json(msg=to_native(exc))

    result = dict(
        changed=False,
        state=report["state"],
        healthy=report["healthy"],
        left_out=report["left_out"],
        summary=report["summary"],
        tiers=report["tiers"],
        kafka=report["kafka"],
        report=report,
    )
    for option, render in (("json_path", render_json), ("html_path", render_html)):
        path = params[option]
        if not path:
            continue
        result[option] = path
        try:
            if write_if_changed(path, render(report), check_mode=module.check_mode):
                result["changed"] = True
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot write the %s report %s: %s" % (option[:-5].upper(), path, to_native(exc)), **result)

    if report["state"] == "UNHEALTHY" and params["fail_unhealthy"]:
        module.fail_json(msg=report["summary"], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
