# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/consul_service.py and plugins/module_utils/consul.py: the comparison of the
wanted service definition with the agent's, the option checks, and the module's runs against an
in-memory agent (FakeAgent, answering in the shapes Consul 1.8.7 answers in: checks with
``"Definition": {}``) with a fake clock. py-consul itself is replaced by a small stand-in, so
these tests run without it (tests/integration/test_consul_service.py runs the real one)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import socket

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils.consul import (
    NOTES_PREFIX,
    agent_check,
    check_notes,
    check_params,
    connection_reason,
    current_service,
    differences,
    diff_view,
    parse_duration,
    service_checks,
    wanted_service,
)
from ansible_collections.scratchbird.cluster.plugins.modules import consul_service
from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.module_args import (
    ExitJson, FailJson, patch_exits, patch_module_args)

URL = "http://127.0.0.1:8500"
TOKEN = "0f9e8d7c-secret-token"
CHECK_KEYS = "a check's keys are name, http, tcp, interval, timeout, tls_skip_verify, deregister_critical_service_after"


def params(**options):
    """The module's parameters as AnsibleModule has them (defaults applied)."""
    base = dict(url=URL, token=None, ca_path=None, validate_certs=True, state="present", name="web", id=None,
                address=None, port=None, tags=None, meta=None, checks=None, wait=False, wait_timeout=60)
    base.update(options)
    checks = []
    for check in base["checks"] or []:
        full = dict(name=None, http=None, tcp=None, interval="10s", timeout="5s", tls_skip_verify=False,
                    deregister_critical_service_after=None)
        full.update(check)
        checks.append(full)
    base["checks"] = checks or base["checks"]
    return base


# py-consul stand-in


class ConsulException(Exception):
    pass


class ACLPermissionDenied(ConsulException):
    pass


class ConsulTimeout(ConsulException):
    pass


class RequestsConnectionError(IOError):
    pass


class RequestsTimeout(IOError):
    pass


class FakeCheck(object):
    """py-consul's Check.http / Check.tcp (the same dict shapes)."""

    @classmethod
    def http(cls, url, interval, timeout=None, deregister=None, header=None):
        ret = {"http": url, "interval": interval}
        if timeout:
            ret["timeout"] = timeout
        if deregister:
            ret["DeregisterCriticalServiceAfter"] = deregister
        return ret

    @classmethod
    def tcp(cls, host, port, interval, timeout=None, deregister=None):
        ret = {"tcp": "%s:%d" % (host, port), "interval": interval}
        if timeout:
            ret["timeout"] = timeout
        if deregister:
            ret["DeregisterCriticalServiceAfter"] = deregister
        return ret


class FakeCB(object):
    @classmethod
    def json(cls):
        return lambda body: body


class FakeAgent(object):
    """The local agent: services and checks as /v1/agent/service/<id> and /v1/agent/checks return them."""

    def __init__(self, services=None, checks=None, deny=(), unreachable=False):
        self.services = dict(services or {})
        self.checks = dict(checks or {})
        self.deny = set(deny)  # "read", "write"
        self.unreachable = unreachable
        self.writes = []
        self.tokens = []
        self.on_poll = None

    def gate(self, kind, token):
        self.tokens.append(token)
        if self.unreachable:
            inner = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
            outer = RequestsConnectionError("HTTPConnectionPool(host='127.0.0.1', port=8500): Max retries exceeded")
            outer.__cause__ = inner
            raise outer
        if kind in self.deny:
            raise ACLPermissionDenied("Permission denied: Missing service:write on web (token %s)" % token)

    def register(self, body, replace):
        service_id = body["service_id"] or body["name"]
        self.services[service_id] = {
            "ID": service_id, "Service": body["name"], "Tags": list(body["tags"] or []), "Meta": dict(body["meta"] or {}),
            "Port": body["port"] or 0, "Address": body["address"] or "", "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False, "ContentHash": "0"}
        payloads = ([body["check"]] + list(body["extra_checks"] or [])) if body.get("check") else []
        if replace:
            for cid in [c for c, v in self.checks.items() if v["ServiceID"] == service_id]:
                del self.checks[cid]
        for payload in payloads:
            self.checks[payload["CheckID"]] = agent_check_entry(service_id, body["name"], payload)


def agent_check_entry(service_id, service_name, payload, status="critical", output=""):
    """A check as Consul 1.8.7's /v1/agent/checks shows it (no definition)."""
    return {"Node": "agent-node", "CheckID": payload["CheckID"], "Name": payload["Name"], "Status": status,
            "Notes": payload.get("Notes", ""), "Output": output, "ServiceID": service_id, "ServiceName": service_name,
            "ServiceTags": [], "Type": "http" if "http" in payload else "tcp", "Definition": {},
            "CreateIndex": 0, "ModifyIndex": 0}


class FakeClient(object):
    """consul.Consul: .http.get, .prepare_headers, .agent.checks, .agent.service.register/deregister/maintenance."""

    def __init__(self, state, token=None):
        self.state = state
        self.token = token
        client = self

        class Http(object):
            def get(self, callback, path, params=None, headers=None):
                client.state.gate("read", (headers or {}).get("X-Consul-Token"))
                assert path.startswith("/v1/agent/service/")
                return callback(client.state.services.get(path[len("/v1/agent/service/"):]))

        class Service(object):
            def register(self, name, service_id=None, address=None, port=None, tags=None, check=None, token=None,
                         meta=None, extra_checks=None, replace_existing_checks=False):
                client.state.gate("write", token or client.token)
                client.state.writes.append(("register", dict(name=name, service_id=service_id, address=address, port=port,
                                                             tags=tags, meta=meta, check=check, extra_checks=extra_checks)))
                client.state.register(client.state.writes[-1][1], replace_existing_checks)
                return True

            def deregister(self, service_id, token=None):
                client.state.gate("write", token or client.token)
                client.state.writes.append(("deregister", service_id))
                client.state.services.pop(service_id, None)
                for cid in [c for c, v in client.state.checks.items() if v["ServiceID"] == service_id]:
                    del client.state.checks[cid]
                return True

            def maintenance(self, service_id, enable, reason=None, token=None):
                client.state.gate("write", token or client.token)
                client.state.writes.append(("maintenance", service_id, enable, reason))
                client.state.checks["_service_maintenance:" + service_id] = {
                    "CheckID": "_service_maintenance:" + service_id, "Name": "Service Maintenance Mode", "Status": "critical",
                    "Notes": reason or "", "Output": "", "ServiceID": service_id, "Type": "maintenance", "Definition": {}}
                return True

        class AgentAPI(object):
            service = Service()

            def checks(self, filter_expr=None, token=None):
                client.state.gate("checks", token or client.token)
                if client.state.on_poll:
                    client.state.on_poll(client.state)
                return json.loads(json.dumps(client.state.checks))

        self.http = Http()
        self.agent = AgentAPI()

    def prepare_headers(self, token=None):
        token = token or self.token
        return {"X-Consul-Token": token} if token else {}


class FakeConsulModule(object):
    Check = FakeCheck
    ConsulException = ConsulException
    ACLPermissionDenied = ACLPermissionDenied
    Timeout = ConsulTimeout

    def __init__(self, state):
        self.state = state
        self.made = []

    def Consul(self, host=None, port=None, scheme=None, verify=None, token=None):  # noqa: N802 - py-consul's name
        self.made.append(dict(host=host, port=port, scheme=scheme, verify=verify, token=token))
        return FakeClient(self.state, token="from-the-environment")  # as py-consul does with CONSUL_HTTP_TOKEN set


class FakeRequests(object):
    class exceptions(object):  # noqa: N801 - requests' name
        ConnectionError = RequestsConnectionError
        Timeout = RequestsTimeout


class FakeTime(object):
    """monotonic() and sleep() of the module: sleeping advances the clock, nothing waits."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def run(monkeypatch):
    """run(args, state, check_mode=False, diff=False) -> (result, failed, fake py-consul)."""
    patch_exits(monkeypatch)
    clock = FakeTime()
    monkeypatch.setattr(consul_service, "time", clock)
    monkeypatch.setattr(consul_service, "CB", FakeCB)
    monkeypatch.setattr(consul_service, "requests", FakeRequests)
    monkeypatch.setattr(consul_service, "HAS_CONSUL", True)

    def runner(args, state, check_mode=False, diff=False):
        fake = FakeConsulModule(state)
        fake.clock = clock
        monkeypatch.setattr(consul_service, "consul", fake)
        args = dict(args)
        args.setdefault("url", URL)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        with patch_module_args(args):
            try:
                consul_service.main()
            except ExitJson as exc:
                return exc.args[0], False, fake
            except FailJson as exc:
                return exc.args[0], True, fake
        raise AssertionError("module returned without exit_json or fail_json")

    return runner


def registered(args):
    """A FakeAgent that has the service of ``args`` registered as the module registers it."""
    state = FakeAgent()
    wanted = wanted_service(params(**args))
    payloads = [consul_service_payload(c) for c in wanted["checks"]]
    body = dict(name=wanted["name"], service_id=wanted["id"], address=wanted["address"], port=wanted["port"],
                tags=wanted["tags"], meta=wanted["meta"], check=payloads[0] if payloads else None, extra_checks=payloads[1:])
    state.register(body, True)
    return state


def consul_service_payload(check):
    payload = {"http": check["http"]} if check.get("http") else {"tcp": check["tcp"]}
    payload.update(CheckID=check["id"], Name=check["name"], Notes=check_notes(check))
    return payload


WEB = dict(name="web", port=8080, address="10.0.0.5", tags=["b", "a"], meta={"cluster": "prod"},
           checks=[dict(name="health", http="http://127.0.0.1:8080/health"), dict(name="port", tcp="127.0.0.1:8080")])


def web(**change):
    """WEB with some options changed."""
    merged = dict(WEB)
    merged.update(change)
    return merged


# Durations


@pytest.mark.parametrize("text, seconds", [("10s", 10), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("1h0m0s", 3600),
                                           ("0", 0), ("0s", 0), ("1.5s", 1.5), ("90m", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "s", "ten seconds", "1x", "", "1s2", "--1s"])
def test_not_durations(text):
    assert parse_duration(text) is None


# Option checks


def test_good_options_have_no_errors():
    assert check_params(params(**WEB)) == []


def test_check_items_name_their_index_and_the_allowed_keys():
    errors = check_params(params(checks=[dict(name="a", http="http://x/h"), dict(name="b", http="http://x/h", tcp="x:1"),
                                         dict(name="c")]))
    assert errors == [
        "checks[1] has both http and tcp: give exactly one of http (a URL) or tcp (host:port); " + CHECK_KEYS,
        "checks[2] has neither http nor tcp: give exactly one of http (a URL) or tcp (host:port); " + CHECK_KEYS]


def test_check_values_are_checked():
    errors = check_params(params(checks=[dict(http="http://x/h"), dict(name="u", http="ftp://x"), dict(name="t", tcp="x"),
                                         dict(name="p", tcp="x:70000"), dict(name="d", tcp="[::1]:80", interval="10"),
                                         dict(name="d", tcp="x:1", deregister_critical_service_after="1 day"),
                                         dict(name="s/s", tcp="x:1")]))
    assert errors == [
        "checks[0] has no name: every check needs a name (its CheckID is service:<id>:<name>); " + CHECK_KEYS,
        "checks[1].http 'ftp://x' is not an http:// or https:// URL",
        "checks[2].tcp 'x' is not host:port (a port from 1 to 65535; [address]:port for IPv6)",
        "checks[3].tcp 'x:70000' is not host:port (a port from 1 to 65535; [address]:port for IPv6)",
        "checks[4].interval '10' is not a duration such as 10s, 1m30s or 500ms",
        "checks[5].name 'd' is the name of checks[4] too: check names must be unique",
        "checks[5].deregister_critical_service_after '1 day' is not a duration such as 10s, 1m30s or 500ms",
        "checks[6].name 's/s' must not contain '/'"]


def test_unknown_check_keys_and_other_options():
    raw = params()
    raw.update(checks=[{"name": "a", "http": "http://x/", "script": "rm -rf"}, "text"], id="a/b", port=70000, wait_timeout=0)
    assert check_params(raw) == [
        "id 'a/b' must not contain '/' (it is part of the agent API's paths)",
        "port must be between 0 and 65535, got 70000",
        "wait_timeout must be at least 1 (seconds), got 0",
        "checks[0] has unknown key(s) script: " + CHECK_KEYS,
        "checks[1] is not a dict: " + CHECK_KEYS]


# The wanted definition and the agent's


def test_wanted_definition():
    wanted = wanted_service(params(name="web", meta={"n": 3, "on": True, "s": "x"}, tags=["b", "a"],
                                   checks=[dict(name="h", http="http://x/h", tls_skip_verify=True),
                                           dict(name="t", tcp="x:1", interval="1m", deregister_critical_service_after="90m")]))
    assert wanted == {
        "id": "web", "name": "web", "address": None, "port": None, "tags": ["b", "a"],
        "meta": {"n": "3", "on": "true", "s": "x"},
        "checks": [
            {"id": "service:web:h", "name": "h", "http": "http://x/h", "interval": "10s", "timeout": "5s",
             "tls_skip_verify": True, "deregister_critical_service_after": None},
            {"id": "service:web:t", "name": "t", "tcp": "x:1", "interval": "1m", "timeout": "5s",
             "tls_skip_verify": False, "deregister_critical_service_after": "90m"}]}
    assert wanted_service(params(name="web", id="web-2"))["checks"] == []
    assert wanted_service(params(name="web", id="web-2", checks=[dict(name="h", http="http://x/")]))["checks"][0]["id"] == \
        "service:web-2:h"


def test_notes_carry_the_definition_back():
    wanted = wanted_service(params(**WEB))
    check = wanted["checks"][0]
    notes = check_notes(check)
    assert notes.startswith(NOTES_PREFIX) and "health" not in notes[len(NOTES_PREFIX):].split('"http"')[0]
    entry = agent_check_entry("web", "web", dict(http=check["http"], CheckID=check["id"], Name="health", Notes=notes))
    assert agent_check(entry) == dict(check, definition="notes")


def test_a_check_without_our_notes_is_unknown():
    entry = agent_check_entry("web", "web", dict(http="http://x/", CheckID="service:web:health", Name="health", Notes=""))
    assert agent_check(entry) == {"id": "service:web:health", "name": "health", "type": "http", "definition": "unknown"}
    # Notes that say http on a check the agent runs as tcp are not believed either.
    check = wanted_service(params(**WEB))["checks"][0]
    entry = agent_check_entry("web", "web", dict(tcp="x:1", CheckID=check["id"], Name="health", Notes=check_notes(check)))
    assert agent_check(entry)["definition"] == "unknown"


def test_an_agent_that_reports_the_definition_is_believed():
    """Consul versions after 1.8 fill Definition in; durations come back as Go prints them."""
    wanted = wanted_service(params(name="web", checks=[dict(name="h", http="http://x/h", interval="60s", timeout="5s")]))
    entry = agent_check_entry("web", "web", dict(http="http://x/h", CheckID="service:web:h", Name="h", Notes=""))
    entry["Definition"] = {"HTTP": "http://x/h", "TCP": "", "Interval": "1m0s", "Timeout": "5s", "TLSSkipVerify": False,
                           "DeregisterCriticalServiceAfter": "0s"}
    current = current_service({"ID": "web", "Service": "web", "Tags": [], "Meta": {}, "Port": 0, "Address": ""}, [entry])
    assert current["checks"][0]["definition"] == "agent"
    assert differences(current, wanted) == []
    entry["Definition"]["Interval"] = "30s"
    current = current_service({"ID": "web", "Service": "web", "Tags": [], "Meta": {}, "Port": 0, "Address": ""}, [entry])
    assert differences(current, wanted) == ["checks"]


def current_of(state, service_id="web"):
    checks, dummy = service_checks(service_id, state.checks)
    return current_service(state.services.get(service_id), checks)


def test_same_definition_has_no_differences_whatever_the_tag_order():
    state = registered(WEB)
    assert differences(current_of(state), wanted_service(params(**web(tags=["a", "b"])))) == []


@pytest.mark.parametrize("change, fields", [
    (dict(id="web", name="web2"), ["name"]),
    (dict(address="10.0.0.6"), ["address"]),
    (dict(address=None), ["address"]),
    (dict(port=8081), ["port"]),
    (dict(port=None), ["port"]),
    (dict(tags=["a"]), ["tags"]),
    (dict(tags=["a", "b", "c"]), ["tags"]),
    (dict(meta={"cluster": "prod", "x": "1"}), ["meta"]),
    (dict(meta={"cluster": "staging"}), ["meta"]),
    (dict(meta=None), ["meta"]),
    (dict(port=1, tags=["z"]), ["port", "tags"]),
    (dict(checks=WEB["checks"][:1]), ["checks"]),
    (dict(checks=WEB["checks"] + [dict(name="more", tcp="127.0.0.1:9")]), ["checks"]),
    (dict(checks=[dict(name="health", http="http://127.0.0.1:8080/other"), WEB["checks"][1]]), ["checks"]),
    (dict(checks=[dict(name="health", http="http://127.0.0.1:8080/health", interval="5s"), WEB["checks"][1]]), ["checks"]),
    (dict(checks=[dict(name="health", http="http://127.0.0.1:8080/health", timeout="1s"), WEB["checks"][1]]), ["checks"]),
    (dict(checks=[dict(name="health", http="http://127.0.0.1:8080/health", tls_skip_verify=True), WEB["checks"][1]]), ["checks"]),
    (dict(checks=[WEB["checks"][0], dict(name="port", tcp="127.0.0.1:8080", deregister_critical_service_after="1h")]), ["checks"]),
    (dict(checks=[WEB["checks"][0], dict(name="renamed", tcp="127.0.0.1:8080")]), ["checks"]),
    (dict(checks=[WEB["checks"][0], dict(name="port", http="http://127.0.0.1:8080/")]), ["checks"]),
])
def test_each_difference_is_found(change, fields):
    state = registered(WEB)
    assert differences(current_of(state), wanted_service(params(**web(**change)))) == fields


def test_equal_durations_written_differently_are_the_same():
    state = registered(web(checks=[dict(name="port", tcp="127.0.0.1:8080", interval="60s")]))
    assert differences(current_of(state), wanted_service(params(**web(checks=[
        dict(name="port", tcp="127.0.0.1:8080", interval="1m")])))) == []


def test_a_missing_service_differs_as_a_whole():
    assert differences(None, wanted_service(params(**WEB))) == ["service"]


def test_other_services_and_maintenance_are_not_its_checks():
    state = registered(WEB)
    other = registered(web(id="web-2"))
    state.checks.update(other.checks)
    state.checks["_service_maintenance:web"] = {"CheckID": "_service_maintenance:web", "ServiceID": "web",
                                                "Type": "maintenance", "Status": "critical", "Notes": "patching"}
    checks, maintenance = service_checks("web", state.checks)
    assert [c["CheckID"] for c in checks] == ["service:web:health", "service:web:port"]
    assert maintenance["Notes"] == "patching"
    assert differences(current_of(state), wanted_service(params(**WEB))) == []


def test_diff_view():
    wanted = wanted_service(params(**WEB))
    view = diff_view(wanted)
    assert view["state"] == "present" and view["tags"] == ["a", "b"] and wanted["tags"] == ["b", "a"]
    assert diff_view(None) == {"state": "absent"}
    assert all("definition" not in c for c in diff_view(current_of(registered(WEB)))["checks"])


def test_connection_reason_is_the_innermost_os_error():
    inner = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    middle = OSError("<urllib3.connection.HTTPConnection object at 0x7f00>: Failed to establish a new connection")
    middle.__context__ = inner
    outer = RequestsConnectionError("Max retries exceeded")
    outer.reason = middle
    assert connection_reason(outer) == "[Errno %d] Connection refused" % errno.ECONNREFUSED
    bare = RequestsConnectionError("<urllib3.connection.HTTPConnection object at 0x7f00>: Read timed out")
    assert connection_reason(bare) == "Read timed out"
    assert connection_reason(socket.timeout("timed out")) == "timed out"


# The module


def test_registers_a_new_service(run):
    state = FakeAgent()
    result, failed, fake = run(web(), state)
    assert not failed, result
    assert result["changed"] is True and result["actions"] == ["register service web"]
    (kind, body), = state.writes
    assert kind == "register" and body["service_id"] == "web" and body["tags"] == ["b", "a"]
    assert [body["check"]["CheckID"]] + [c["CheckID"] for c in body["extra_checks"]] == ["service:web:health", "service:web:port"]
    assert body["check"] == {"http": "http://127.0.0.1:8080/health", "interval": "10s", "timeout": "5s", "TLSSkipVerify": False,
                             "CheckID": "service:web:health", "Name": "health", "Notes": check_notes(result["service"]["checks"][0])}
    assert body["extra_checks"][0]["tcp"] == "127.0.0.1:8080"
    assert result["checks"] == {"service:web:health": "critical", "service:web:port": "critical"}
    assert fake.made == [dict(host="127.0.0.1", port=8500, scheme="http", verify=True, token=None)]


def test_rerun_changes_nothing(run):
    state = registered(WEB)
    result, failed, dummy = run(web(tags=["a", "b"]), state)
    assert not failed and result["changed"] is False and result["actions"] == [] and state.writes == []


def test_a_change_registers_again_and_replaces_the_checks(run):
    state = registered(WEB)
    result, failed, dummy = run(web(port=9090, checks=WEB["checks"][:1]), state, diff=True)
    assert not failed and result["changed"] is True
    assert result["actions"] == ["register service web (port, checks differ)"]
    assert state.services["web"]["Port"] == 9090 and list(state.checks) == ["service:web:health"]
    assert result["diff"]["before"]["port"] == 8080 and result["diff"]["after"]["port"] == 9090
    assert [c["id"] for c in result["diff"]["before"]["checks"]] == ["service:web:health", "service:web:port"]


def test_check_mode_writes_nothing(run):
    state = registered(WEB)
    result, failed, dummy = run(web(meta={"cluster": "qa"}), state, check_mode=True)
    assert not failed and result["changed"] is True and result["actions"] == ["register service web (meta differ)"]
    assert result["service"]["meta"] == {"cluster": "qa"} and state.writes == []
    result, failed, dummy = run(web(), FakeAgent(), check_mode=True)
    assert not failed and result["changed"] is True and result["checks"] == {}
    result, failed, dummy = run(dict(name="web", state="absent"), state, check_mode=True)
    assert not failed and result["changed"] is True and state.writes == [] and "web" in state.services


def test_absent(run):
    state = registered(WEB)
    result, failed, dummy = run(dict(name="web", state="absent"), state, diff=True)
    assert not failed and result["changed"] is True and result["actions"] == ["deregister service web"]
    assert state.services == {} and state.checks == {} and result["service"] is None
    assert result["diff"]["after"] == {"state": "absent"} and result["diff"]["before"]["port"] == 8080
    result, failed, dummy = run(dict(name="web", state="absent"), state)
    assert not failed and result["changed"] is False and state.writes == [("deregister", "web")]


def test_the_token_option_decides_and_is_sent(run):
    state = FakeAgent()
    result, failed, fake = run(web(token=TOKEN), state)
    assert not failed
    assert fake.made[0]["token"] == TOKEN and set(state.tokens) == {TOKEN}  # not py-consul's environment token


def test_acl_denied_says_which_permission_and_never_the_token(run):
    for deny, verb, args in (({"write"}, "registering", web()), ({"read"}, "registering", web()),
                             ({"write"}, "deregistering", dict(name="web", state="absent"))):
        state = registered(WEB) if verb == "deregistering" or deny == {"read"} else FakeAgent()
        state.deny = deny
        result, failed, dummy = run(dict(args, token=TOKEN), state)
        assert failed
        assert result["msg"].startswith("Consul denied %s service web (403 ACL permission denied); "
                                        "the token needs service:write on web (Consul: Permission denied" % verb), result["msg"]
        assert TOKEN not in json.dumps(result)


def test_unreachable_agent(run):
    result, failed, dummy = run(web(url="http://127.0.0.1:9"), FakeAgent(unreachable=True))
    assert failed and result["msg"] == "Consul agent unreachable at http://127.0.0.1:9: [Errno %d] Connection refused" % errno.ECONNREFUSED


def test_other_agent_errors(run):
    state = FakeAgent()

    def bad(body, replace):
        raise ConsulException("400 Invalid check: TTL must be > 0 for TTL checks")
    state.register = bad
    result, failed, dummy = run(web(), state)
    assert failed and result["msg"] == ("Consul agent at http://127.0.0.1:8500 failed registering service web: "
                                        "400 Invalid check: TTL must be > 0 for TTL checks")


@pytest.mark.parametrize("url, made", [
    ("https://consul.local", dict(host="consul.local", port=443, scheme="https")),
    ("127.0.0.1:8501", dict(host="127.0.0.1", port=8501, scheme="http")),
    ("http://[::1]:8500", dict(host="::1", port=8500, scheme="http")),
])
def test_urls(run, url, made):
    result, failed, fake = run(web(url=url, ca_path="/etc/ca.pem"), FakeAgent())
    assert not failed, result
    assert fake.made[0] == dict(made, verify="/etc/ca.pem", token=None)


@pytest.mark.parametrize("url", ["unix:///var/run/consul.sock", "http://", "http://host:99999"])
def test_bad_urls(run, url):
    result, failed, fake = run(web(url=url), FakeAgent())
    assert failed and result["msg"] == "url %r is not an http(s)://host:port address" % url and fake.made == []


def test_argument_errors_come_before_any_connection(run):
    result, failed, fake = run(dict(name="web", checks=[dict(name="x", http="http://x/", tcp="x:1")]), FakeAgent())
    assert failed and result["msg"].startswith("checks[0] has both http and tcp") and fake.made == []


def test_missing_py_consul(run, monkeypatch):
    monkeypatch.setattr(consul_service, "HAS_CONSUL", False)
    result, failed, dummy = run(web(), FakeAgent())
    assert failed and "py-consul" in result["msg"]


def test_wait_until_the_checks_pass(run):
    state = FakeAgent()
    polls = []

    def progress(agent):
        polls.append(1)
        if len(polls) >= 4:
            for check in agent.checks.values():
                check.update(Status="passing", Output="HTTP GET ...: 200 OK")
    state.on_poll = progress
    result, failed, fake = run(web(wait=True, wait_timeout=30), state)
    assert not failed, result
    assert result["checks"] == {"service:web:health": "passing", "service:web:port": "passing"}
    assert fake.clock.sleeps == [consul_service.POLL_S] * 3


def test_wait_fails_after_the_timeout_naming_the_failing_checks(run):
    state = FakeAgent()

    def progress(agent):
        agent.checks["service:web:health"].update(Status="passing")
        agent.checks["service:web:port"].update(Output="dial tcp 127.0.0.1:8080: connect: connection refused")
    state.on_poll = progress
    result, failed, fake = run(web(wait=True, wait_timeout=5), state)
    assert failed and result["changed"] is True
    assert result["msg"] == ("service web: 1 check(s) not passing after 5s: service:web:port (port) critical: "
                             "dial tcp 127.0.0.1:8080: connect: connection refused")
    assert result["checks"] == {"service:web:health": "passing", "service:web:port": "critical"}
    assert sum(fake.clock.sleeps) == pytest.approx(5)


def test_wait_on_an_unchanged_service_and_not_in_check_mode(run):
    state = registered(WEB)
    for check in state.checks.values():
        check["Status"] = "passing"
    result, failed, dummy = run(web(wait=True), state)
    assert not failed and result["changed"] is False and result["checks"]["service:web:port"] == "passing"
    for check in state.checks.values():
        check["Status"] = "critical"
    result, failed, fake = run(web(wait=True, wait_timeout=1), state, check_mode=True)
    assert not failed and fake.clock.sleeps == []


def test_maintenance_is_set_again_after_registering(run):
    state = registered(WEB)
    state.checks["_service_maintenance:web"] = {"CheckID": "_service_maintenance:web", "Name": "Service Maintenance Mode",
                                                "ServiceID": "web", "Type": "maintenance", "Status": "critical",
                                                "Notes": "patching", "Output": ""}
    result, failed, dummy = run(web(), state)
    assert not failed and result["changed"] is False and state.writes == []
    result, failed, dummy = run(web(port=1), state)
    assert not failed and result["changed"] is True
    assert state.writes[-1] == ("maintenance", "web", True, "patching")
    assert result["checks"]["_service_maintenance:web"] == "critical"
