# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The cloud API emulators of tests/emulators against the real client libraries.

google-auth (service-account key, JWT-bearer grant, AuthorizedSession) for Compute Engine;
azure-identity (App Service managed identity) and azure-mgmt-resourcegraph for Resource Graph.
Nothing leaves the host: sockets may only connect to loopback addresses and name lookups
only resolve loopback names; the clients also get the emulator as their HTTP(S) proxy, whose
egress trap refuses (and records) any request for a real endpoint.
"""

import ipaddress
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.emulators.azure_resource_graph import AzureResourceGraphEmulator  # noqa: E402 pylint: disable=wrong-import-position
from tests.emulators.gcp_compute import GcpComputeEmulator  # noqa: E402 pylint: disable=wrong-import-position

COMPUTE_RO = "https://www.googleapis.com/auth/compute.readonly"
PROJECT = "scratchbird-it"
SUB = "6f1c2a9e-3b7d-4c1e-9a55-0d2b8e7f4a10"
OTHER_SUB = "0b7e5d2c-9f41-4a8e-b6d3-71c2e9a0f5b8"
ARG_QUERY = """Resources
| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.network/networkinterfaces',
                  'microsoft.network/publicipaddresses')
| project id, name, type, location, resourceGroup, subscriptionId, tags, properties
| order by id asc"""
ARM_SCOPE = "https://management.azure.com/.default"


# -- no traffic off the host ---------------------------------------------------------------

def _loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Refuse connections and name lookups for anything but loopback, in every thread."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(str(address[0])):
            raise OSError("test network guard: connection to %s refused" % (address,))
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else str(host)):
            raise socket.gaierror(socket.EAI_NONAME, "test network guard: no lookup of %s" % (host,))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    # google-auth looks its Regional Access Boundary up in a background thread: let it end
    # while the guard is still in place.
    for thread in threading.enumerate():
        if type(thread).__name__ == "_RegionalAccessBoundaryRefreshThread":
            thread.join(10)


def client_env(monkeypatch, emu):
    """The test process as a client of ``emu``: see Emulator.client_env."""
    for name in emu.CONFLICTING_ENV:
        monkeypatch.delenv(name, raising=False)
    for key, value in emu.client_env({}).items():
        monkeypatch.setenv(key, value)


# -- Compute Engine ------------------------------------------------------------------------

@pytest.fixture(name="gcp")
def gcp_emulator(monkeypatch):
    with GcpComputeEmulator() as emu:
        client_env(monkeypatch, emu)
        yield emu


def gcp_session(emu, tmp_path, project=PROJECT, scopes=(COMPUTE_RO,)):
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import service_account

    key_file = emu.service_account_file(tmp_path / "sa.json", project)
    credentials = service_account.Credentials.from_service_account_file(str(key_file), scopes=list(scopes))
    return AuthorizedSession(credentials)


def aggregated_url(emu, project=PROJECT):
    return "%s/compute/v1/projects/%s/aggregated/instances" % (emu.url, project)


def list_all(session, url, **params):
    """Every page of an aggregated list: (instances in order, pages)."""
    instances, pages = [], []
    while True:
        response = session.get(url, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        for scope in page["items"].values():
            instances.extend(scope.get("instances", []))
        if "nextPageToken" not in page:
            return instances, pages
        params["pageToken"] = page["nextPageToken"]


def test_gcp_service_account_token_flow(gcp, tmp_path):
    import json

    gcp.add_instance(PROJECT, "europe-west1-b", "web-1", labels={"cluster": "prod"}, nat_ip="34.1.2.3", tags=["web"],
                     metadata={"role": "kafka"})
    session = gcp_session(gcp, tmp_path)
    info = json.loads((tmp_path / "sa.json").read_text())
    assert info["type"] == "service_account" and info["token_uri"] == gcp.url + "/token"
    assert info["client_email"] == "inventory@%s.iam.gserviceaccount.com" % PROJECT
    assert (tmp_path / "sa.json").stat().st_mode & 0o777 == 0o600

    first = session.get(aggregated_url(gcp))
    second = session.get(aggregated_url(gcp))
    assert first.status_code == second.status_code == 200
    assert gcp.calls["token"] == 1 and gcp.calls["aggregated_instances"] == 2  # the token is reused
    (token, entry), = gcp.tokens.items()
    assert token.startswith("ya29.") and entry["email"] == info["client_email"] and COMPUTE_RO in entry["scopes"]

    body = first.json()
    assert body["kind"] == "compute#instanceAggregatedList" and body["id"] == "projects/%s/aggregated/instances" % PROJECT
    assert body["selfLink"] == "https://www.googleapis.com/compute/v1/projects/%s/aggregated/instances" % PROJECT
    instance, = body["items"]["zones/europe-west1-b"]["instances"]
    zone_url = "https://www.googleapis.com/compute/v1/projects/%s/zones/europe-west1-b" % PROJECT
    assert instance["kind"] == "compute#instance" and instance["id"].isdigit() and instance["name"] == "web-1"
    assert instance["zone"] == zone_url and instance["selfLink"] == zone_url + "/instances/web-1"
    assert instance["machineType"] == zone_url + "/machineTypes/e2-standard-4"
    assert instance["labels"] == {"cluster": "prod"} and instance["tags"]["items"] == ["web"]
    assert instance["metadata"]["items"] == [{"key": "role", "value": "kafka"}]
    nic, = instance["networkInterfaces"]
    assert nic["name"] == "nic0" and nic["networkIP"].startswith("10.")
    assert nic["accessConfigs"] == [{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT", "name": "External NAT",
                                     "natIP": "34.1.2.3", "networkTier": "PREMIUM"}]
    assert body["items"]["zones/us-central1-a"] == {"warning": {
        "code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope 'zones/us-central1-a' on this page.",
        "data": [{"key": "scope", "value": "zones/us-central1-a"}]}}
    # Only google-auth's Regional Access Boundary lookup tried to leave, and hit the trap.
    assert all(target.startswith("iamcredentials.googleapis.com:") for target in gcp.egress)


def test_gcp_expired_token_is_refreshed(gcp, tmp_path):
    session = gcp_session(gcp, tmp_path)
    assert session.get(aggregated_url(gcp)).status_code == 200
    gcp.expire_tokens()
    assert session.get(aggregated_url(gcp)).status_code == 200  # 401, refresh, retry
    assert gcp.calls["token"] == 2
    assert [entry.status for entry in gcp.log if entry.route == "aggregated_instances"] == [200, 401, 200]


def test_gcp_paging_is_lossless(gcp, tmp_path):
    zones = ["europe-west1-b", "europe-west1-d", "us-central1-a", "us-central1-c"]
    for index, zone in enumerate(zones):
        count = 1234 // 4 + (1 if index < 1234 % 4 else 0)
        gcp.add_instances(PROJECT, zone, count, name_format="node-%d-{:04d}" % index, start=index)
    session = gcp_session(gcp, tmp_path)

    instances, pages = list_all(session, aggregated_url(gcp), maxResults=100)
    keys = [(i["zone"].rsplit("/", 1)[1], i["name"]) for i in instances]
    assert len(keys) == len(set(keys)) == 1234
    assert keys == sorted(keys)  # zone, then name
    assert len(pages) == 13 and all(len(p["items"]) == 6 for p in pages)  # every known zone on every page
    assert sum(1 for p in pages for scope in p["items"].values() if "warning" in scope) > 0

    default, default_pages = list_all(session, aggregated_url(gcp))
    assert len(default_pages) == 3 and [i["id"] for i in default] == [i["id"] for i in instances]


def test_gcp_filter(gcp, tmp_path):
    statuses = ["RUNNING", "RUNNING", "TERMINATED"]
    for i in range(30):
        gcp.add_instance(PROJECT, "europe-west1-b", "vm-%02d" % i, labels={"cluster": "prod" if i % 2 else "dev"} if i < 27 else None,
                         status=statuses[i % 3])
    session = gcp_session(gcp, tmp_path)
    url = aggregated_url(gcp)

    def names(text):
        return [i["name"] for i in list_all(session, url, filter=text, maxResults=7)[0]]

    prod_running = ["vm-%02d" % i for i in range(27) if i % 2 and i % 3 != 2]
    assert names('(labels.cluster = "prod") (status = "RUNNING")') == prod_running
    assert names("(labels.cluster = prod) AND (status = RUNNING)") == prod_running
    assert names("labels.cluster != prod") == ["vm-%02d" % i for i in range(30) if not i % 2 or i >= 27]
    assert names("name = vm-07") == ["vm-07"]
    assert names("(status = 'TERMINATED')") == ["vm-%02d" % i for i in range(30) if i % 3 == 2]
    assert names('labels.cluster = "nope"') == []
    # OR binds tighter than AND (the plugin's states option sends such a group).
    prod_any = ["vm-%02d" % i for i in range(27) if i % 2]
    assert names('(status = RUNNING OR status = TERMINATED) (labels.cluster = "prod")') == prod_any
    assert names("(name = vm-01) OR (name = vm-02) AND (status = RUNNING)") == ["vm-01"]
    unlabelled = session.get(url, params={"filter": "name = vm-29"}).json()["items"]["zones/europe-west1-b"]["instances"][0]
    assert "labels" not in unlabelled and "accessConfigs" not in unlabelled["networkInterfaces"][0]

    for bad in ["labels.cluster:*", "bogus = 1", "(name = x", "name = a status = b", "(name = a status = b)", "NOT (name = a)",
                "(name = a) OR", "name eq vm-.*"]:
        response = session.get(url, params={"filter": bad})
        assert response.status_code == 400, bad
        error = response.json()["error"]
        assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and error["errors"][0]["reason"] == "invalid"
        assert "filter" in error["message"]


def test_gcp_errors(gcp, tmp_path):
    gcp.add_project(PROJECT)
    response = requests.get(aggregated_url(gcp), timeout=10)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["errors"][0]["domain"] == "global" and error["errors"][0]["reason"] == "required"
    response = requests.get(aggregated_url(gcp), headers={"Authorization": "Bearer ya29.forged"}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["errors"][0]["reason"] == "authError"

    storage_only = gcp.issue_token(scopes=["https://www.googleapis.com/auth/devstorage.read_only"])
    response = requests.get(aggregated_url(gcp), headers={"Authorization": "Bearer " + storage_only}, timeout=10)
    assert response.status_code == 403 and response.json()["error"]["status"] == "PERMISSION_DENIED"

    session = gcp_session(gcp, tmp_path)
    response = session.get(aggregated_url(gcp, "no-such-project"))
    error = response.json()["error"]
    assert response.status_code == 404 and error["status"] == "NOT_FOUND" and error["errors"][0]["reason"] == "notFound"
    assert "projects/no-such-project" in error["message"]
    for params in ({"maxResults": 501}, {"maxResults": "x"}, {"pageToken": "garbage"}, {"returnPartialSuccess": "maybe"},
                   {"bogus": "1"}):
        response = session.get(aggregated_url(gcp), params=params)
        assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT", params
    assert session.get(aggregated_url(gcp), params={"returnPartialSuccess": "true", "maxResults": 500}).status_code == 200


def test_gcp_token_endpoint_rejects_bad_assertions(gcp, tmp_path):
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.auth import crypt, jwt

    gcp_session(gcp, tmp_path)  # registers the key
    info = json.loads((tmp_path / "sa.json").read_text())
    signer = crypt.RSASigner.from_service_account_info(info)
    now = int(time.time())
    good = {"iss": info["client_email"], "aud": "https://oauth2.googleapis.com/token", "iat": now, "exp": now + 3600,
            "scope": COMPUTE_RO}

    def grant(claims, signer=signer, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer"):
        assertion = jwt.encode(signer, claims).decode()
        return requests.post(gcp.url + "/token", data={"grant_type": grant_type, "assertion": assertion}, timeout=10)

    response = grant(good)
    assert response.status_code == 200 and response.json()["expires_in"] == 3600 and response.json()["token_type"] == "Bearer"
    assert grant(dict(good, aud=gcp.url + "/token")).status_code == 200

    # A key this emulator never saw, presented under the registered key id.
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cases = [
        (dict(good, aud="https://example.com/token"), signer, "invalid_grant"),
        (dict(good, iat=now - 7200, exp=now - 3600), signer, "invalid_grant"),
        (dict(good, iss="stranger@%s.iam.gserviceaccount.com" % PROJECT), signer, "invalid_grant"),
        (good, crypt.RSASigner.from_string(foreign, info["private_key_id"]), "invalid_grant"),
        (dict(good, scope=""), signer, "invalid_scope"),
    ]
    for claims, key, error in cases:
        response = grant(claims, key)
        assert response.status_code == 400 and response.json()["error"] == error, (claims, response.text)
        assert response.json()["error_description"]
    response = grant(good, grant_type="client_credentials")
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    response = requests.post(gcp.url + "/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                                       "assertion": "not.a.jwt"}, timeout=10)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_gcp_injected_faults(gcp, tmp_path):
    gcp.add_instance(PROJECT, "europe-west1-b", "web-1")
    session = gcp_session(gcp, tmp_path)
    gcp.inject(429, retry_after=2)
    gcp.inject(500)
    first = session.get(aggregated_url(gcp))  # the token request before it is not faulted
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    error = first.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and error["errors"][0]["reason"] == "rateLimitExceeded"
    second = session.get(aggregated_url(gcp))
    assert second.status_code == 500 and second.json()["error"]["status"] == "INTERNAL" and "Retry-After" not in second.headers
    assert session.get(aggregated_url(gcp)).status_code == 200
    assert not gcp.pending_faults
    assert [(e.route, e.status) for e in gcp.log] == [("token", 200), ("aggregated_instances", 429),
                                                      ("aggregated_instances", 500), ("aggregated_instances", 200)]
    assert gcp.requests[0] == ("POST", "/token")


def test_gcp_intercepts_only_the_named_host(monkeypatch, tmp_path):
    with GcpComputeEmulator() as emu:
        emu.intercept("www.googleapis.com")
        client_env(monkeypatch, emu)  # proxy + the certificate naming www.googleapis.com
        emu.add_instance(PROJECT, "europe-west1-b", "web-1")
        session = gcp_session(emu, tmp_path)
        url = "https://www.googleapis.com/compute/v1/projects/%s/aggregated/instances" % PROJECT
        instances, _pages = list_all(session, url)
        assert [i["name"] for i in instances] == ["web-1"]
        with pytest.raises(requests.exceptions.ProxyError, match="403"):
            requests.get("https://compute.googleapis.com/compute/v1/projects/%s/aggregated/instances" % PROJECT, timeout=10)
    assert "compute.googleapis.com:443" in emu.egress


def test_gcp_token_endpoint_fault_is_retried_by_google_auth(gcp, tmp_path):
    session = gcp_session(gcp, tmp_path)
    gcp.inject(503, route="token")
    gcp.add_project(PROJECT)
    assert session.get(aggregated_url(gcp)).status_code == 200  # google-auth retries its token request
    assert [(e.route, e.status) for e in gcp.log] == [("token", 503), ("token", 200), ("aggregated_instances", 200)]


# -- Azure Resource Graph ------------------------------------------------------------------

@pytest.fixture(name="azure")
def azure_emulator(monkeypatch):
    with AzureResourceGraphEmulator() as emu:
        client_env(monkeypatch, emu)
        yield emu


def arg_client(emu, credential=None, **kwargs):
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.resourcegraph import ResourceGraphClient

    return ResourceGraphClient(credential or ManagedIdentityCredential(), base_url=emu.url, **kwargs)


def arg_query(client, query, subscriptions=(SUB,), **options):
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    request = QueryRequest(subscriptions=list(subscriptions), query=query, options=QueryRequestOptions(**options))
    return client.resources(request, enforce_https=False)  # the emulator speaks plain HTTP


def arg_all(client, query, subscriptions=(SUB,), top=None):
    rows, pages, skip_token = [], 0, None
    while True:
        response = arg_query(client, query, subscriptions, top=top, skip_token=skip_token)
        rows.extend(response.data)
        pages += 1
        skip_token = response.skip_token
        if not skip_token:
            return rows, pages, response


def test_azure_managed_identity_credential(azure):
    from azure.identity import ManagedIdentityCredential

    token = ManagedIdentityCredential().get_token(ARM_SCOPE)
    assert azure.tokens[token.token]["resource"] == "https://management.azure.com"
    assert abs(token.expires_on - (time.time() + 86400)) < 60
    assert azure.msi_requests == [{"api-version": "2019-08-01", "resource": "https://management.azure.com"}]
    assert azure.requests == [("GET", "/msi/token")] and not azure.egress


def test_azure_default_credential_uses_the_emulator(azure):
    from azure.identity import DefaultAzureCredential

    # Everything but managed identity is excluded: environment / workload identity (to Entra ID),
    # shared cache, VS Code, CLI, PowerShell, azd (tools and their caches), the broker.
    credential = DefaultAzureCredential(exclude_environment_credential=True, exclude_workload_identity_credential=True,
                                        exclude_shared_token_cache_credential=True, exclude_visual_studio_code_credential=True,
                                        exclude_cli_credential=True, exclude_powershell_credential=True,
                                        exclude_developer_cli_credential=True, exclude_interactive_browser_credential=True,
                                        exclude_broker_credential=True)
    token = credential.get_token(ARM_SCOPE)
    assert token.token in azure.tokens and azure.calls["msi_token"] == 1 and not azure.egress
    azure.add_vm(SUB, "rg-a", "vm-1")
    response = arg_query(arg_client(azure, credential), ARG_QUERY)
    assert response.total_records == 2 and azure.calls["msi_token"] == 1  # the cached token


def test_azure_msi_endpoint_checks_the_identity_header(azure, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ManagedIdentityCredential

    url = azure.identity_env()["IDENTITY_ENDPOINT"]
    params = {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    for headers in ({}, {"X-IDENTITY-HEADER": "wrong"}):
        response = requests.get(url, params=params, headers=headers, timeout=10)
        assert response.status_code == 401 and response.json()["statusCode"] == 401 and response.json()["message"]
    response = requests.get(url, params={"resource": "x"}, headers={"X-IDENTITY-HEADER": azure.identity_header}, timeout=10)
    assert response.status_code == 400
    response = requests.get(url, params=params, headers={"X-IDENTITY-HEADER": azure.identity_header}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["expires_on"].isdigit() and body["token_type"] == "Bearer"
    assert body["resource"] == "https://management.azure.com" and body["client_id"] == azure.client_id

    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(ARM_SCOPE)


def test_azure_paging_is_lossless(azure):
    groups = ["rg-a", "RG-B", "rg-c"]
    for index, group in enumerate(groups):
        count = 1234 // 3 + (1 if index < 1234 % 3 else 0)
        azure.add_vms(SUB, group, count, name_format="vm-%d-{:04d}" % index, public_ips=index == 1,
                      tags_fn=lambda i: {"cluster": "prod" if i % 2 else "dev"}, start=index * 1000)
    azure.add_resource(SUB, "rg-a", "Microsoft.Storage/storageAccounts", "st1")  # not asked for
    client = arg_client(azure, retry_total=0)

    rows, pages, last = arg_all(client, ARG_QUERY, top=100)
    ids = [row["id"] for row in rows]
    public = 1234 // 3
    assert len(ids) == len(set(ids)) == 1234 * 2 + public == last.total_records
    assert ids == sorted(ids) and pages == (len(ids) + 99) // 100 and last.result_truncated == "false"
    types = {"microsoft.compute/virtualmachines", "microsoft.network/networkinterfaces", "microsoft.network/publicipaddresses"}
    assert {row["type"] for row in rows} == types
    assert set(rows[0]) == {"id", "name", "type", "location", "resourceGroup", "subscriptionId", "tags", "properties"}
    assert {row["resourceGroup"] for row in rows} == {"rg-a", "rg-b", "rg-c"}
    assert any("/resourceGroups/RG-B/" in i for i in ids)  # ids keep their casing

    vm = next(row for row in rows if row["name"] == "vm-1-1000")
    nic = next(row for row in rows if row["id"] == vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"])
    pip = next(row for row in rows if row["id"] == nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"])
    assert vm["properties"]["extended"]["instanceView"]["powerState"] == {"code": "PowerState/running", "level": "Info",
                                                                          "displayStatus": "VM running"}
    assert vm["properties"]["hardwareProfile"]["vmSize"] == "Standard_D4s_v5" and vm["properties"]["osProfile"]["computerName"]
    assert nic["properties"]["virtualMachine"]["id"] == vm["id"] and pip["properties"]["ipAddress"].startswith("20.")
    assert nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"].startswith("10.")

    default_rows, default_pages, _last = arg_all(client, ARG_QUERY)  # $top defaults to 100
    assert default_pages == pages and [r["id"] for r in default_rows] == ids
    big_rows, big_pages, _last = arg_all(client, ARG_QUERY, top=1000)
    assert big_pages == 3 and [r["id"] for r in big_rows] == ids


def test_azure_query_subset(azure):
    from azure.core.exceptions import HttpResponseError

    for i in range(10):
        azure.add_vm(SUB, "rg-a", "vm-%d" % i, tags={"Cluster": "Prod" if i < 4 else "dev"} if i < 8 else None,
                     power_state="running" if i % 2 else "deallocated")
    client = arg_client(azure, retry_total=0)

    def names(query):
        return [row["name"] for row in arg_all(client, query)[0]]

    vms = "Resources | where type =~ 'Microsoft.Compute/virtualMachines'"
    assert names(vms + " | order by name asc") == ["vm-%d" % i for i in range(10)]
    assert names(vms + " | order by name") == ["vm-%d" % i for i in reversed(range(10))]  # KQL: desc by default
    assert names("Resources | where type == 'Microsoft.Compute/virtualMachines'") == []  # type is lower-cased
    assert names(vms + " | where tags['Cluster'] =~ 'prod' | order by name asc") == ["vm-0", "vm-1", "vm-2", "vm-3"]
    assert names(vms + " | where tags.Cluster == 'Prod' | project name | order by name asc") == ["vm-0", "vm-1", "vm-2", "vm-3"]
    assert names(vms + " | where tags['cluster'] =~ 'prod'") == []  # tag keys are case-sensitive
    assert names(vms + " and properties.extended.instanceView.powerState.code =~ 'PowerState/running' | order by name asc"
                 ) == ["vm-1", "vm-3", "vm-5", "vm-7", "vm-9"]
    assert len(names("resources\n| where type !in~ ('microsoft.compute/virtualmachines')\n| order by id asc")) == 10  # the NICs

    response = arg_query(client, vms + " | project name", top=3)  # no id: no paging, truncated
    assert response.result_truncated == "true" and response.skip_token is None and response.count == 3
    table = arg_query(client, vms + " | project id, name | order by name asc", result_format="table", top=2).data
    assert table["columns"] == [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}]
    assert [row[1] for row in table["rows"]] == ["vm-0", "vm-1"]

    for bad in ["Resources | take 5", "Resources | where type = 'x'", "Resources | where foo =~ 'x'", "ResourceContainers",
                "Resources | where type =~ 'a' or type =~ 'b'", "Resources | project id | where name =~ 'x'",
                "Resources | summarize count() by type", "Resources | where type in~ ('a'"]:
        with pytest.raises(HttpResponseError) as info:
            arg_query(client, bad)
        assert info.value.status_code == 400, bad
        error = info.value.response.json()["error"]
        assert error["code"] == "BadRequest" and error["details"][0]["code"] == "InvalidQuery", bad
        assert info.value.error.code == "BadRequest"


def test_azure_authentication_and_scope(azure):
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    azure.add_vm(SUB, "rg-a", "vm-1")
    url = azure.url + "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"
    body = {"subscriptions": [SUB], "query": ARG_QUERY}
    response = requests.post(url, json=body, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "AuthenticationFailed"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    response = requests.post(url, json=body, headers={"Authorization": "Bearer forged"}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "InvalidAuthenticationToken"
    vault = azure.issue_token("https://vault.azure.net")
    response = requests.post(url, json=body, headers={"Authorization": "Bearer " + vault}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    arm = azure.issue_token()
    response = requests.post(url.replace("2021-03-01", "1999-01-01"), json=body, headers={"Authorization": "Bearer " + arm},
                             timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "InvalidApiVersionParameter"
    response = requests.post(url.lower(), json=body, headers={"Authorization": "Bearer " + arm}, timeout=10)
    assert response.status_code == 200 and int(response.headers["x-ms-user-quota-remaining"]) >= 0

    client = arg_client(azure, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        arg_query(client, ARG_QUERY, subscriptions=[OTHER_SUB])
    assert info.value.status_code == 400
    assert info.value.response.json()["error"]["details"][0]["code"] == "NoValidSubscriptionsInQueryRequest"
    assert arg_query(client, ARG_QUERY, subscriptions=[SUB, OTHER_SUB]).total_records == 2  # the unknown one is dropped

    azure.expire_tokens()
    with pytest.raises(ClientAuthenticationError) as info:
        arg_query(client, ARG_QUERY)
    assert info.value.status_code == 401 and info.value.response.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_azure_injected_faults(azure):
    from azure.core.exceptions import HttpResponseError

    azure.add_vm(SUB, "rg-a", "vm-1")
    client = arg_client(azure, retry_total=0)
    azure.inject(429, retry_after=3)
    azure.inject(500)
    with pytest.raises(HttpResponseError) as info:
        arg_query(client, ARG_QUERY)
    assert info.value.status_code == 429 and info.value.response.headers["Retry-After"] == "3"
    assert info.value.error.code == "RateLimiting" and info.value.response.json()["error"]["details"][0]["code"] == "RateLimiting"
    with pytest.raises(HttpResponseError) as info:
        arg_query(client, ARG_QUERY)
    assert info.value.status_code == 500 and info.value.error.code == "InternalServerError"
    assert arg_query(client, ARG_QUERY).total_records == 2
    assert [(e.route, e.status) for e in azure.log] == [
        ("msi_token", 200), ("resources", 429), ("resources", 500), ("resources", 200)]

    # The SDK's own retry policy honours Retry-After and hides the fault.
    azure.reset_log()
    azure.inject(429, retry_after=1)
    started = time.monotonic()
    assert arg_query(arg_client(azure), ARG_QUERY).total_records == 2
    assert time.monotonic() - started >= 1 and azure.calls["resources"] == 2

    # ARG's own quota, when enforced: 429 with Retry-After once the window's quota is spent.
    azure.enforce_quota, azure.quota = True, 2
    azure._quota_hits.clear()  # pylint: disable=protected-access
    arg_query(client, ARG_QUERY)
    arg_query(client, ARG_QUERY)
    with pytest.raises(HttpResponseError) as info:
        arg_query(client, ARG_QUERY)
    assert info.value.status_code == 429 and int(info.value.response.headers["Retry-After"]) >= 1
    assert info.value.response.headers["x-ms-user-quota-remaining"] == "0"


def test_azure_over_tls_without_enforce_https_override(monkeypatch):
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.resourcegraph.models import QueryRequest

    with AzureResourceGraphEmulator(tls=True) as emu:
        client_env(monkeypatch, emu)  # REQUESTS_CA_BUNDLE trusts the emulator's certificate
        assert emu.url.startswith("https://127.0.0.1:") and emu.identity_env()["IDENTITY_ENDPOINT"].startswith("https://")
        emu.add_vm(SUB, "rg-a", "vm-1")
        client = arg_client(emu, ManagedIdentityCredential())
        assert client.resources(QueryRequest(subscriptions=[SUB], query=ARG_QUERY)).total_records == 2
        assert emu.calls["msi_token"] == 1 and not emu.egress
        with pytest.raises(requests.exceptions.ProxyError):  # the egress trap works over TLS too
            requests.get("https://management.azure.com/subscriptions", timeout=10)
        assert emu.egress == ["management.azure.com:443"]


# -- the shared machinery ------------------------------------------------------------------

def test_base_machinery(monkeypatch):
    with GcpComputeEmulator() as emu:
        url = emu.url
        emu.latency = 0.05
        started = time.monotonic()
        assert requests.get(url + "/nowhere", timeout=10).status_code == 404
        assert requests.get(url + "/token", timeout=10).status_code == 405
        assert time.monotonic() - started >= 0.1
        assert emu.requests == [("GET", "/nowhere"), ("GET", "/token")] and emu.calls[None] == 2
        with pytest.raises(ValueError):
            emu.inject(500, route="no-such-route")
        emu.inject(503, count=2, route="token")
        assert len(emu.pending_faults) == 2
        emu.clear_faults()
        assert not emu.pending_faults

        # The egress trap: a proxied request for a real endpoint is refused and recorded.
        emu.latency = 0.0
        client_env(monkeypatch, emu)
        with pytest.raises(requests.exceptions.ProxyError):
            requests.get("https://compute.googleapis.com/compute/v1/projects/x/aggregated/instances", timeout=10)
        response = requests.get("http://169.254.169.254/metadata/identity/oauth2/token", timeout=10)
        assert response.status_code == 403
        assert emu.egress == ["compute.googleapis.com:443", "http://169.254.169.254/metadata/identity/oauth2/token"]
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/token", timeout=2)  # stopped
