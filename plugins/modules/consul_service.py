#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: consul_service
short_description: Register a service and its health checks with the local Consul agent
version_added: 0.1.0
description:
  - Registers a service, with its address, port, tags, meta and HTTP or TCP health checks, with
    the Consul agent of the host the module runs on (its HTTP API at O(url)), or deregisters it.
  - Reads the agent's definition of the service (C(GET /v1/agent/service/<id>)) and its checks
    and registers only when the name, address, port, tags (in any order), meta or the set of
    checks differ. Registering replaces the service's checks (C(replace-existing-checks)), so a
    check removed from O(checks) is removed from the agent.
  - Each check gets the explicit, stable id C(service:<id>:<check name>).
  - Reports a change only when it changes something. In check mode it reports what it would
    do and changes nothing.
  - With O(wait), waits after registering until every check of the service passes.
author: scratchbird.cluster contributors (@scratchbird)
options:
  url:
    description:
      - Address of the local Consul agent's HTTP API, C(http://host:port) or C(https://host:port).
      - When not set, the C(CONSUL_HTTP_ADDR) environment variable of the managed host (C(host:port)
        without a scheme means C(http)), else C(http://127.0.0.1:8500).
    type: str
    default: http://127.0.0.1:8500
  token:
    description:
      - ACL token. It needs C(service:write) on O(name).
      - When not set, the C(CONSUL_HTTP_TOKEN) environment variable of the managed host.
    type: str
  ca_path:
    description: CA bundle to verify the agent's certificate with, for an C(https) O(url).
    type: path
  validate_certs:
    description: Verify the agent's TLS certificate for an C(https) O(url).
    type: bool
    default: true
  state:
    description: Whether the service should be registered. V(absent) deregisters it, with its checks.
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Service name.
    type: str
    required: true
  id:
    description:
      - Service id, unique on the agent. Defaults to O(name).
      - The service is found, compared and deregistered by this id.
    type: str
  address:
    description: Address of the service. When not set, the agent's node address applies.
    type: str
  port:
    description: Port of the service.
    type: int
  tags:
    description: Tags of the service. Their order is not compared.
    type: list
    elements: str
  meta:
    description:
      - Service meta, string keys and values (other values are sent as strings, booleans as
        C(true)/C(false)).
      - Consul allows at most 64 keys of letters, digits, C(-) and C(_), not starting with C(consul-).
    type: dict
  checks:
    description:
      - Health checks of the service, each with exactly one of O(checks[].http) or O(checks[].tcp).
      - The set of checks is compared with the agent's; checks not listed are removed when the
        service is registered.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the check, unique among the service's checks. Required.
          - The check's id is C(service:<id>:<name>).
        type: str
      http:
        description: URL to GET; the check passes on a 2xx answer (429 is a warning).
        type: str
      tcp:
        description: C(host:port) to connect to (C([address]:port) for IPv6); the check passes when it connects.
        type: str
      interval:
        description: How often the check runs, a duration such as C(10s) or C(1m).
        type: str
        default: 10s
      timeout:
        description: Time the check may take, a duration.
        type: str
        default: 5s
      tls_skip_verify:
        description: For an C(https) O(checks[].http), do not verify the certificate.
        type: bool
        default: false
      deregister_critical_service_after:
        description: Consul deregisters the service when this check has been critical this long (a duration).
        type: str
  wait:
    description:
      - After registering (or finding the service registered as wanted), wait until every check
        of the service passes.
      - Fails after O(wait_timeout) seconds, naming the checks that do not pass and their output.
      - A check runs first within one O(checks[].interval) of its registration.
      - Not done in check mode.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait).
    type: int
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the agent's definition and reports what would change; changes nothing.
  diff_mode:
    support: full
    details: Shows the service definition (id, name, address, port, tags, meta, checks) before and after.
  platform:
    support: full
    platforms: posix
requirements:
  - py-consul (C(consul)), where the module runs (C(py-consul==1.8.0) tested, against Consul 1.8.7).
notes:
  - Consul 1.8 does not report the definition of a check (URL, address, interval, timeout) on its
    agent API. The module writes each check's definition into the check's C(Notes) and compares
    through them; a check registered by other means (without these notes) is re-registered once.
    Where the agent reports a check's definition, that is compared.
  - A service in maintenance mode stays in maintenance mode when the module registers it again
    (with the same reason). Its maintenance check is not one of the compared checks, but O(wait)
    does not end while it is critical.
  - Registering or deregistering is done through the agent of the host; the agent syncs the catalog.
seealso:
  - plugin: scratchbird.cluster.consul
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Register the transaction engine with the local agent and wait for its checks
  scratchbird.cluster.consul_service:
    name: tx-engine
    port: 7400
    tags:
      - tier=tx_engines
      - version=1.0.0
    meta:
      cluster: prod
      tier: tx_engines
      version: 1.0.0
    checks:
      - name: health
        http: http://127.0.0.1:7480/health
        interval: 5s
      - name: port
        tcp: 127.0.0.1:7400
    wait: true
    wait_timeout: 120

- name: Through TLS with an ACL token
  scratchbird.cluster.consul_service:
    url: https://127.0.0.1:8501
    ca_path: /etc/consul.d/ca.pem
    token: "{{ vault_consul_service_token }}"
    name: olap-shard
    id: olap-shard-2
    port: 7600

- name: Remove the service
  scratchbird.cluster.consul_service:
    name: tx-engine
    state: absent
"""

RETURN = r"""
service:
  description:
    - The service definition as registered (or as it would be, in check mode); null with O(state=absent).
  returned: success
  type: dict
  contains:
    id:
      description: Service id.
      type: str
      sample: tx-engine
    name:
      description: Service name.
      type: str
      sample: tx-engine
    address:
      description: Service address; null when the node's address applies.
      type: str
      sample: 10.213.0.20
    port:
      description: Service port; null when none.
      type: int
      sample: 7400
    tags:
      description: Tags.
      type: list
      elements: str
      sample: ["tier=tx_engines", "version=1.0.0"]
    meta:
      description: Service meta.
      type: dict
      sample: {"cluster": "prod", "tier": "tx_engines", "version": "1.0.0"}
    checks:
      description:
        - The checks, each with C(id), C(name), C(http) or C(tcp), C(interval), C(timeout),
          C(tls_skip_verify) and C(deregister_critical_service_after).
      type: list
      elements: dict
      sample:
        - id: "service:tx-engine:health"
          name: health
          http: http://127.0.0.1:7480/health
          interval: 5s
          timeout: 5s
          tls_skip_verify: false
          deregister_critical_service_after: null
checks:
  description:
    - Status (C(passing), C(warning), C(critical)) of each check of the service by check id, as the
      agent reports them at the end of the run (after the wait with O(wait)). In check mode, the
      checks the agent has now.
    - Includes the C(_service_maintenance:<id>) check while the service is in maintenance mode.
  returned: O(state=present)
  type: dict
  sample: {"service:tx-engine:health": "passing", "service:tx-engine:port": "passing"}
actions:
  description: What the module did (or would do, in check mode), one line each; empty when nothing.
  returned: always
  type: list
  elements: str
  sample: ["register service tx-engine (tags, checks differ)"]
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six.moves.urllib.parse import urlparse

from ansible_collections.scratchbird.cluster.plugins.module_utils.consul import (
    check_notes,
    check_params,
    check_statuses,
    connection_reason,
    current_service,
    describe_not_passing,
    diff_view,
    differences,
    not_passing,
    service_checks,
    split_host_port,
    wanted_service,
)

try:
    import consul
    import requests
    from consul.callback import CB
except ImportError:
    consul = requests = CB = None
    HAS_CONSUL = False
    CONSUL_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CONSUL = True
    CONSUL_IMPORT_ERROR = None

# How often the agent's checks are read while waiting for them to pass.
POLL_S = 0.5


class ConsulServiceError(Exception):
    """A failure to report with ``fail_json(msg=str(exc), **exc.details)``."""

    def __init__(self, msg, **details):
        super(ConsulServiceError, self).__init__(msg)
        self.details = details


def agent_url(url):
    """(scheme, host, port) of the url option; CONSUL_HTTP_ADDR may come without a scheme."""
    text = (url or "").strip()
    if "://" not in text:
        text = "http://" + text
    parsed = urlparse(text)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1:
        raise ConsulServiceError("url %r is not an http(s)://host:port address" % url)
    return parsed.scheme, parsed.hostname, port or (443 if parsed.scheme == "https" else 8500)


def client(module):
    """A py-consul client for the agent at the url option."""
    scheme, host, port = agent_url(module.params["url"])
    verify = module.params["ca_path"] or module.params["validate_certs"]
    token = module.params["token"]
    agent = consul.Consul(host=host, port=port, scheme=scheme, verify=verify, token=token)
    # py-consul prefers CONSUL_HTTP_TOKEN from the environment over its token argument: the
    # token option (which falls back to that variable itself) decides.
    agent.token = token
    return agent


def check_payload(check):
    """The body of one check in a service registration (py-consul's Check helpers, plus the
    explicit CheckID, the Name, TLSSkipVerify and the Notes that carry the definition)."""
    deregister = check["deregister_critical_service_after"]
    if check.get("http"):
        payload = consul.Check.http(check["http"], check["interval"], timeout=check["timeout"], deregister=deregister)
        payload["TLSSkipVerify"] = check["tls_skip_verify"]
    else:
        host, port = split_host_port(check["tcp"])
        payload = consul.Check.tcp(host, port, check["interval"], timeout=check["timeout"], deregister=deregister)
    payload.update(CheckID=check["id"], Name=check["name"], Notes=check_notes(check))
    return payload


class ServiceRun:
    def __init__(self, module, agent):
        self.module = module
        self.agent = agent
        self.params = module.params
        self.check_mode = module.check_mode
        self.wanted = wanted_service(module.params)
        self.service_id = self.wanted["id"]
        self.actions = []

    # Reading the agent

    def read_service(self):
        # py-consul's agent.service_definition() sends no ACL token (1.8.0): the same GET
        # /v1/agent/service/<id> through the client's own http object, with the token header.
        return self.agent.http.get(CB.json(), "/v1/agent/service/%s" % self.service_id,
                                   headers=self.agent.prepare_headers())

    def read_checks(self):
        # All of the agent's checks, filtered here by ServiceID (no filter expression to quote).
        return self.agent.agent.checks() or {}

    def current(self):
        service = self.read_service()
        if not service:
            return None, None
        checks, maintenance = service_checks(self.service_id, self.read_checks())
        return current_service(service, checks), maintenance

    # state=present

    def register(self, maintenance):
        checks = [check_payload(c) for c in self.wanted["checks"]]
        extra = dict(check=checks[0], extra_checks=checks[1:]) if checks else {}
        self.agent.agent.service.register(
            self.wanted["name"], service_id=self.service_id, address=self.wanted["address"], port=self.wanted["port"],
            tags=self.wanted["tags"], meta=self.wanted["meta"], replace_existing_checks=True, **extra)
        if maintenance is not None:
            # Registering with replace-existing-checks drops the maintenance check: set it again.
            self.agent.agent.service.maintenance(self.service_id, True, reason=maintenance.get("Notes") or None)

    def wait(self):
        deadline = time.monotonic() + self.params["wait_timeout"]
        while True:
            checks = self.read_checks()
            failing = not_passing(self.service_id, checks)
            if not failing:
                return check_statuses(self.service_id, checks)
            if time.monotonic() >= deadline:
                raise ConsulServiceError(
                    "service %s: %d check(s) not passing after %ds: %s" % (
                        self.service_id, len(failing), self.params["wait_timeout"], describe_not_passing(failing)),
                    checks=check_statuses(self.service_id, checks), changed=bool(self.actions), service=self.wanted)
            time.sleep(min(POLL_S, max(deadline - time.monotonic(), 0.01)))

    def present(self):
        current, maintenance = self.current()
        changed_fields = differences(current, self.wanted)
        if current is None:
            self.actions.append("register service %s" % self.service_id)
        elif changed_fields:
            self.actions.append("register service %s (%s differ)" % (self.service_id, ", ".join(changed_fields)))
        if self.actions and not self.check_mode:
            self.register(maintenance)
        result = dict(service=self.wanted)
        if self.check_mode:
            result["checks"] = check_statuses(self.service_id, self.read_checks()) if current is not None else {}
        elif self.params["wait"]:
            result["checks"] = self.wait()
        else:
            result["checks"] = check_statuses(self.service_id, self.read_checks())
        return bool(self.actions), result, dict(before=diff_view(current), after=diff_view(self.wanted))

    # state=absent

    def absent(self):
        current, dummy = self.current()
        if current is not None:
            self.actions.append("deregister service %s" % self.service_id)
            if not self.check_mode:
                self.agent.agent.service.deregister(self.service_id)
        return current is not None, dict(service=None), dict(before=diff_view(current), after=diff_view(None))


def argument_spec():
    check_options = dict(
        name=dict(type="str"),
        http=dict(type="str"),
        tcp=dict(type="str"),
        interval=dict(type="str", default="10s"),
        timeout=dict(type="str", default="5s"),
        tls_skip_verify=dict(type="bool", default=False),
        deregister_critical_service_after=dict(type="str"),
    )
    return dict(
        url=dict(type="str", default="http://127.0.0.1:8500", fallback=(env_fallback, ["CONSUL_HTTP_ADDR"])),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["CONSUL_HTTP_TOKEN"])),
        ca_path=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        name=dict(type="str", required=True),
        id=dict(type="str"),
        address=dict(type="str"),
        port=dict(type="int"),
        tags=dict(type="list", elements="str"),
        meta=dict(type="dict"),
        # Exactly one of http/tcp and the name are checked by check_params, whose messages
        # name the item (checks[i]); Ansible's own would not.
        checks=dict(type="list", elements="dict", options=check_options),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=60),
    )


def scrub(text, token):
    return text.replace(token, "********") if token else text


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    errors = check_params(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    if not HAS_CONSUL:
        module.fail_json(msg=missing_required_lib("py-consul"), exception=CONSUL_IMPORT_ERROR)
    params = module.params
    token = params["token"]
    service_id = params["id"] or params["name"]
    verb = "registering" if params["state"] == "present" else "deregistering"
    run = None
    try:
        run = ServiceRun(module, client(module))
        if params["state"] == "absent":
            changed, result, diff = run.absent()
        else:
            changed, result, diff = run.present()
    except ConsulServiceError as exc:
        details = dict(actions=run.actions if run else [])
        details.update(exc.details)
        module.fail_json(msg=scrub(to_native(exc), token), **details)
    except consul.ACLPermissionDenied as exc:
        module.fail_json(
            msg=scrub("Consul denied %s service %s (403 ACL permission denied); the token needs service:write on %s "
                      "(Consul: %s)" % (verb, service_id, params["name"], to_native(exc).strip() or "Permission denied"), token),
            actions=run.actions if run else [])
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, consul.Timeout) as exc:
        module.fail_json(msg=scrub("Consul agent unreachable at %s: %s" % (params["url"], connection_reason(exc)), token),
                         actions=run.actions if run else [])
    except consul.ConsulException as exc:
        module.fail_json(msg=scrub("Consul agent at %s failed %s service %s: %s" % (params["url"], verb, service_id, to_native(exc)),
                                   token), actions=run.actions if run else [])
    result.update(changed=changed, actions=run.actions)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
