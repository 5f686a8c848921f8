# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""A local emulator of Azure Resource Graph (POST /providers/Microsoft.ResourceGraph/resources)
and of the App Service managed-identity token endpoint azure-identity uses when
IDENTITY_ENDPOINT and IDENTITY_HEADER are set.

    with AzureResourceGraphEmulator() as emu:
        emu.add_vm(SUB, "rg-prod", "web-1", tags={"cluster": "prod"}, public_ip="20.1.2.3")
        os.environ.update(emu.identity_env())   # ManagedIdentityCredential() now gets tokens here
        client = ResourceGraphClient(ManagedIdentityCredential(), base_url=emu.url)
        client.resources(QueryRequest(...), enforce_https=False)   # or AzureResourceGraphEmulator(tls=True)

Wire details (azure-identity 1.27.0 through msal 1.39.0, App Service flavour):
    GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=https://management.azure.com
    headers X-IDENTITY-HEADER: <IDENTITY_HEADER>, Metadata: true
    -> {"access_token", "expires_on": "<epoch seconds, a string>", "resource", "token_type", "client_id"}
Resource Graph (azure-mgmt-resourcegraph 8.0.1 sends api-version=2021-03-01):
    {"subscriptions": [...], "query": "...", "options": {"$top": n, "$skip": n, "$skipToken": "...",
     "resultFormat": "objectArray", "allowPartialScopes": false}}
    -> {"totalRecords", "count", "resultTruncated", "$skipToken" (when more), "data", "facets"}

Behaviour of the real service kept on purpose: ``type``, ``location`` and ``resourceGroup``
come back lower-cased (``id`` keeps its casing), so ``type == 'Microsoft.Compute/...'`` matches
nothing while ``=~`` does; ``order by`` without a direction sorts descending (KQL); untagged
resources have ``tags: null``; subscriptions the identity cannot see are dropped silently, none
left is 400 NoValidSubscriptionsInQueryRequest; without ``id`` among the output columns there
is no $skipToken and a longer result is cut with resultTruncated "true".

Query subset (anything else is 400 InvalidQuery):
    Resources | where <cond> [and <cond>...] | project col, ... | order by col [asc|desc], ...
    cond: column[.key | ['key']]... (==|=~|!=|!~) 'string'  |  column (in|in~|!in|!in~) ('a', 'b', ...)
A missing tag or property matches no positive comparison and every negated one.
"""

import base64
import binascii
import collections
import datetime
import hashlib
import ipaddress
import json
import math
import re
import secrets
import threading
import time
import uuid

from .base import Emulator, Response, bulk

MSI_API_VERSION = "2019-08-01"
ARG_API_VERSIONS = ("2019-04-01", "2020-04-01-preview", "2021-03-01", "2021-06-01-preview", "2022-10-01", "2024-04-01")
# Audiences ARM accepts in a token.
ARM_AUDIENCES = ("https://management.azure.com", "https://management.azure.com/", "https://management.core.windows.net",
                 "https://management.core.windows.net/")
RESOURCE_COLUMNS = ("id", "name", "type", "tenantId", "kind", "location", "resourceGroup", "subscriptionId", "managedBy", "sku",
                    "plan", "properties", "tags", "identity", "zones", "extendedLocation")
DYNAMIC_COLUMNS = frozenset(("sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation"))
DEFAULT_TOP = 100
MAX_TOP = 1000
POWER_STATES = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated", "starting": "VM starting",
                "stopping": "VM stopping", "deallocating": "VM deallocating", "unknown": "VM status unknown"}
FAULT_CODES = {400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "NotFound", 429: "RateLimiting",
               500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
THROTTLED = ("Client application has been throttled and should not attempt to repeat the request until an amount of time "
             "has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.")
INVALID_QUERY = ("Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error "
                 "before retrying.")


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _support_message():
    return "Please provide below info when asking for support: timestamp = %s, correlationId = %s." % (
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z"), uuid.uuid4())


def arm_error(status, code, message, details=None, headers=None):
    """ARM's error body."""
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return Response(status, {"error": error}, headers)


def bad_request(code, message):
    return arm_error(400, "BadRequest", _support_message(), [{"code": code, "message": message}])


# -- the query language subset ---------------------------------------------------------------

class QueryError(ValueError):
    def __init__(self, message, text="", pos=0, token=""):
        super().__init__(message)
        self.line = text.count("\n", 0, pos) + 1
        self.column = pos - (text.rfind("\n", 0, pos) + 1)
        self.token = token


_KQL_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>@'[^'\n]*'|@"[^"\n]*"|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<op>!in~|!in\b|in~|=~|!~|==|!=)
  | (?P<punct>[|(),.\[\]])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
""", re.VERBOSE)
_POSITIVE = {"==": "==", "=~": "=~", "in": "==", "in~": "=~"}
_NEGATED = {"!=": "==", "!~": "=~", "!in": "==", "!in~": "=~"}
Token = collections.namedtuple("Token", "kind text pos")


def _string_value(text):
    if text[0] == "@":
        return text[2:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])


class _Parser:
    """Recursive descent over the token list; parse() returns the list of stages."""

    def __init__(self, text):
        self.text = text
        self.tokens = [Token(m.lastgroup, m.group(), m.start()) for m in _KQL_TOKEN.finditer(text) if m.lastgroup != "space"]
        self.index = 0

    def fail(self, message, token=None):
        token = token or self.peek() or Token("end", "", len(self.text))
        raise QueryError(message, self.text, token.pos, token.text)

    def peek(self):
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind, *texts):
        token = self.peek()
        if token is None or (kind and token.kind != kind) or (texts and token.text not in texts):
            self.fail("expected %s" % ("/".join("'%s'" % t for t in texts) if texts else kind or "more input"))
        self.index += 1
        return token

    def at(self, kind, *texts):
        token = self.peek()
        return token is not None and token.kind == kind and (not texts or token.text in texts)

    def parse(self):
        table = self.take("name")
        if table.text not in ("Resources", "resources"):
            self.fail("the emulator only knows the table Resources", table)
        columns, stages = list(RESOURCE_COLUMNS), []
        while self.peek():
            self.take("punct", "|")
            operator = self.take("name")
            if operator.text == "where":
                conditions = [self.condition(columns)]
                while self.at("name", "and"):
                    self.index += 1
                    conditions.append(self.condition(columns))
                stages.append(("where", conditions))
            elif operator.text == "project":
                columns = self.column_list(columns)
                stages.append(("project", columns))
            elif operator.text in ("order", "sort"):
                self.take("name", "by")
                stages.append(("order", self.sort_keys(columns)))
            else:
                self.fail("unsupported query operator '%s' (the emulator knows where, project, order by)" % operator.text,
                          operator)
            if self.peek() and not self.at("punct", "|"):
                self.fail("unexpected '%s'" % self.peek().text)
        return stages, columns

    def column(self, columns):
        token = self.take("name")
        if token.text not in columns:
            self.fail("Failed to resolve scalar expression named '%s'" % token.text, token)
        return token.text

    def condition(self, columns):
        column = self.column(columns)
        path = []
        while self.at("punct", ".", "["):
            if column not in DYNAMIC_COLUMNS:
                self.fail("'%s' is not a dynamic column" % column)
            if self.take("punct").text == ".":
                path.append(self.take("name").text)
            else:
                path.append(_string_value(self.take("string").text))
                self.take("punct", "]")
        token = self.peek()
        if token is None or not (token.kind == "op" or (token.kind == "name" and token.text == "in")):
            self.fail("expected a comparison (==, =~, !=, !~, in, in~, !in, !in~)")
        self.index += 1
        if token.text.endswith("in") or token.text.endswith("in~"):
            self.take("punct", "(")
            values = [_string_value(self.take("string").text)]
            while self.at("punct", ","):
                self.index += 1
                values.append(_string_value(self.take("string").text))
            self.take("punct", ")")
        else:
            values = [_string_value(self.take("string").text)]
        return column, tuple(path), token.text, tuple(values)

    def column_list(self, columns):
        chosen = [self.column(columns)]
        while self.at("punct", ","):
            self.index += 1
            chosen.append(self.column(columns))
        if self.at("other", "="):
            self.fail("column renames are not supported by the emulator")
        if len(set(chosen)) != len(chosen):
            self.fail("a column is projected twice")
        return chosen

    def sort_keys(self, columns):
        keys = []
        while True:
            column = self.column(columns)
            descending = True  # KQL's default
            if self.at("name", "asc", "desc"):
                descending = self.take("name").text == "desc"
            keys.append((column, descending))
            if not self.at("punct", ","):
                return keys
            self.index += 1


def parse_query(text):
    """(stages, output columns) of a query of the subset; QueryError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("the query is empty")
    return _Parser(text).parse()


def _scalar(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def condition_matches(condition, row):
    column, path, op, values = condition
    value = row.get(column)
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    value = _scalar(value)
    negated = op in _NEGATED
    if value is None:
        return negated
    if (_NEGATED if negated else _POSITIVE)[op] == "=~":
        hit = value.lower() in [v.lower() for v in values]
    else:
        hit = value in values
    return hit != negated


def run_query(stages, rows):
    """Apply the stages to rows (dicts), in order."""
    for kind, arg in stages:
        if kind == "where":
            rows = [row for row in rows if all(condition_matches(c, row) for c in arg)]
        elif kind == "project":
            rows = [{column: row.get(column) for column in arg} for row in rows]
        else:
            rows = list(rows)
            for column, descending in reversed(arg):  # stable sorts, last key first
                # asc: nulls first, desc: nulls last (KQL's defaults)
                rows.sort(key=lambda row, c=column: (row.get(c) is not None, _scalar(row.get(c)) or ""), reverse=descending)
    return rows


# -- the emulator --------------------------------------------------------------------------

class AzureResourceGraphEmulator(Emulator):
    """Resource Graph resources query and the App Service managed-identity token endpoint.

    Routes: ``msi_token`` (GET /msi/token, not faulted unless named) and ``resources``
    (POST /providers/Microsoft.ResourceGraph/resources, path case-insensitive as ARM's).
    """

    # Environment that would make azure-identity pick another managed-identity flavour or
    # another identity (client_env() leaves them out).
    CONFLICTING_ENV = ("IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_CLIENT_ID",
                       "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME",
                       "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "AZURE_TOKEN_CREDENTIALS",
                       "AZURE_POD_IDENTITY_AUTHORITY_HOST")

    def __init__(self, seed=0, token_lifetime=86400, tls=False):
        super().__init__(seed=seed, tls=tls)
        self.token_lifetime = token_lifetime
        self.identity_header = secrets.token_hex(16)
        self.tenant_id = str(self._uuid())
        self.client_id = str(self._uuid())  # of the system-assigned identity
        self.principal_id = str(self._uuid())
        self.tokens = {}  # access token -> {"resource", "expires"}
        self.msi_requests = []  # query parameters of every token request
        self.quota = 15  # ARG's per-user quota: 15 requests per 5 s window
        self.quota_window = 5.0
        self.enforce_quota = False  # True: answer 429 past the quota, as ARG does
        self._quota_hits = collections.deque()
        self._subscriptions = {}  # lower-cased id -> id as registered
        self._resources = {}  # lower-cased resource id -> row
        self._version = 0
        self._cache = {}
        self._data_lock = threading.RLock()
        self.route("GET", r"/msi/token", "msi_token", self._msi_token, api=False)
        self.route("POST", r"/providers/Microsoft\.ResourceGraph/resources", "resources", self._resources_query, flags=re.IGNORECASE)

    def _uuid(self):
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # -- credentials -------------------------------------------------------------------

    def identity_env(self):
        """Environment for azure-identity's App Service managed identity against this emulator."""
        return {"IDENTITY_ENDPOINT": self.url + "/msi/token", "IDENTITY_HEADER": self.identity_header}

    def client_env(self, base=None):
        """The base environment plus identity_env() (see Emulator.client_env)."""
        env = super().client_env(base)
        env.update(self.identity_env())
        return env

    def issue_token(self, resource="https://management.azure.com", lifetime=None):
        """An access token without the managed-identity flow (for benchmarks); a JWT-shaped string."""
        now = int(time.time())
        expires = now + (self.token_lifetime if lifetime is None else lifetime)
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % self.tenant_id, "iat": now, "nbf": now, "exp": expires,
                  "appid": self.client_id, "oid": self.principal_id, "sub": self.principal_id, "tid": self.tenant_id,
                  "idtyp": "app", "xms_mirid": "/subscriptions/emulator/providers/Microsoft.Web/sites/emulator"}
        token = ".".join((_b64url(b'{"typ":"JWT","alg":"RS256","kid":"emulator"}'),
                          _b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8")), _b64url(secrets.token_bytes(64))))
        with self._data_lock:
            self.tokens[token] = {"resource": resource, "expires": expires}
        return token

    def expire_tokens(self):
        with self._data_lock:
            for entry in self.tokens.values():
                entry["expires"] = 0

    def _msi_error(self, status, message):
        return Response(status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())})

    def _msi_token(self, req):
        with self._data_lock:
            self.msi_requests.append(dict(req.query))
        if req.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return self._msi_error(401, "The X-IDENTITY-HEADER header is missing or does not match.")
        if req.query.get("api-version") != MSI_API_VERSION:
            return self._msi_error(400, "The api-version '%s' is not supported; use %s."
                                   % (req.query.get("api-version", ""), MSI_API_VERSION))
        resource = req.query.get("resource")
        if not resource:
            return self._msi_error(400, "The resource parameter is required.")
        for key, expected in (("client_id", self.client_id), ("object_id", self.principal_id), ("principal_id", self.principal_id)):
            if key in req.query and req.query[key].lower() != expected:
                return self._msi_error(400, "Unable to load the proper Managed Identity.")
        if "mi_res_id" in req.query:
            return self._msi_error(400, "Unable to load the proper Managed Identity.")
        token = self.issue_token(resource)
        return Response(200, {"access_token": token, "expires_on": str(self.tokens[token]["expires"]), "resource": resource,
                              "token_type": "Bearer", "client_id": self.client_id})

    def _authorize(self, req):
        token = req.bearer()
        if not token:
            return self._unauthorized("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                                      "The authentication failed because of missing 'Authorization' header.")
        with self._data_lock:
            entry = self.tokens.get(token)
        if entry is None:
            return self._unauthorized("InvalidAuthenticationToken", "The access token is invalid.", "The access token is invalid.")
        if entry["expires"] <= time.time():
            now = datetime.datetime.now(datetime.timezone.utc)
            expired = datetime.datetime.fromtimestamp(entry["expires"], datetime.timezone.utc)
            return self._unauthorized("ExpiredAuthenticationToken", "The access token expiry UTC time '%s' is earlier than current "
                                      "UTC time '%s'." % (expired.strftime("%m/%d/%Y %H:%M:%S"), now.strftime("%m/%d/%Y %H:%M:%S")),
                                      "The access token expired.")
        if entry["resource"] not in ARM_AUDIENCES:
            return self._unauthorized("InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or "
                                      "resource '%s'. It should exactly match with one of the allowed audiences '%s'."
                                      % (entry["resource"], "','".join(ARM_AUDIENCES)), "The access token has the wrong audience.")
        return None

    def _unauthorized(self, code, message, description):
        challenge = ('Bearer authorization_uri="https://login.windows.net/%s", error="invalid_token", error_description="%s"'
                     % (self.tenant_id, description))
        return arm_error(401, code, message, headers={"WWW-Authenticate": challenge})

    # -- data --------------------------------------------------------------------------

    def add_subscription(self, subscription):
        with self._data_lock:
            self._subscriptions.setdefault(subscription.lower(), subscription)

    def add_resource(self, subscription, resource_group, resource_type, name, location="westeurope", properties=None, tags=None,
                     **columns):
        """Add (or replace) any resource; ``columns`` sets others (sku, zones, kind...). Returns its row."""
        resource_id = "/subscriptions/%s/resourceGroups/%s/providers/%s/%s" % (subscription, resource_group, resource_type, name)
        row = {"id": resource_id, "name": name, "type": resource_type.lower(), "tenantId": self.tenant_id, "kind": "",
               "location": location.lower(), "resourceGroup": resource_group.lower(), "subscriptionId": subscription,
               "managedBy": "", "sku": None, "plan": None, "properties": properties or {}, "tags": dict(tags) if tags else None,
               "identity": None, "zones": None, "extendedLocation": None}
        unknown = set(columns).difference(RESOURCE_COLUMNS) if columns else None
        if unknown:
            raise ValueError("unknown columns: %s" % ", ".join(sorted(unknown)))
        row.update(columns)
        with self._data_lock:
            self.add_subscription(subscription)
            self._resources[resource_id.lower()] = row
            self._version += 1
        return row

    def add_vm(self, subscription, resource_group, name, location="westeurope", tags=None, private_ips=("10.0.0.4",), public_ip=None,
               vm_size="Standard_D4s_v5", power_state="PowerState/running", computer_name=None, tag_network=True):
        """Add a Linux VM with its NIC (one ipConfiguration per private IP) and, with public_ip, its public IP.

        The NIC and public IP carry the VM's tags unless tag_network is False. Returns the VM's row.
        """
        if not power_state.startswith("PowerState/"):
            power_state = "PowerState/" + power_state
        state = power_state.split("/", 1)[1]
        rg_id = "/subscriptions/%s/resourceGroups/%s" % (subscription, resource_group)
        vm_id = rg_id + "/providers/Microsoft.Compute/virtualMachines/" + name
        nic_id = rg_id + "/providers/Microsoft.Network/networkInterfaces/%s-nic" % name
        pip_id = rg_id + "/providers/Microsoft.Network/publicIPAddresses/%s-ip" % name
        subnet_id = rg_id + "/providers/Microsoft.Network/virtualNetworks/%s-vnet/subnets/default" % resource_group
        net_tags = tags if tag_network else None
        created = "2024-01-%02dT%02d:%02d:00.0000000Z" % (self.rng.randrange(1, 29), self.rng.randrange(24), self.rng.randrange(60))
        with self._data_lock:
            configs = []
            for index, address in enumerate(private_ips):
                config_props = {"provisioningState": "Succeeded", "privateIPAddress": address, "privateIPAllocationMethod": "Dynamic",
                                "privateIPAddressVersion": "IPv4", "subnet": {"id": subnet_id}, "primary": index == 0}
                if public_ip and index == 0:
                    config_props["publicIPAddress"] = {"id": pip_id}
                configs.append({"name": "ipconfig%d" % (index + 1), "id": "%s/ipConfigurations/ipconfig%d" % (nic_id, index + 1),
                                "type": "Microsoft.Network/networkInterfaces/ipConfigurations", "properties": config_props})
            mac = "00-0D-3A-%02X-%02X-%02X" % tuple(self.rng.getrandbits(24).to_bytes(3, "big"))
            self.add_resource(subscription, resource_group, "Microsoft.Network/networkInterfaces", name + "-nic", location, {
                "provisioningState": "Succeeded", "resourceGuid": str(self._uuid()), "ipConfigurations": configs,
                "dnsSettings": {"dnsServers": [], "appliedDnsServers": []}, "macAddress": mac, "enableAcceleratedNetworking": True,
                "enableIPForwarding": False, "primary": True, "virtualMachine": {"id": vm_id}, "nicType": "Standard",
                "hostedWorkloads": [], "tapConfigurations": [], "vnetEncryptionSupported": False}, net_tags)
            if public_ip:
                self.add_resource(subscription, resource_group, "Microsoft.Network/publicIPAddresses", name + "-ip", location, {
                    "provisioningState": "Succeeded", "resourceGuid": str(self._uuid()), "ipAddress": public_ip,
                    "publicIPAddressVersion": "IPv4", "publicIPAllocationMethod": "Static", "idleTimeoutInMinutes": 4, "ipTags": [],
                    "ipConfiguration": {"id": configs[0]["id"]}}, net_tags, sku={"name": "Standard", "tier": "Regional"})
            else:
                self._resources.pop(pip_id.lower(), None)
            return self.add_resource(subscription, resource_group, "Microsoft.Compute/virtualMachines", name, location, {
                "vmId": str(self._uuid()),
                "hardwareProfile": {"vmSize": vm_size},
                "storageProfile": {
                    "imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                                       "version": "latest", "exactVersion": "22.04.202401090"},
                    "osDisk": {"osType": "Linux", "name": "%s_OsDisk_1_%s" % (name, self._uuid().hex), "createOption": "FromImage",
                               "caching": "ReadWrite", "deleteOption": "Delete", "diskSizeGB": 30,
                               "managedDisk": {"storageAccountType": "Premium_LRS",
                                               "id": rg_id + "/providers/Microsoft.Compute/disks/%s_OsDisk_1" % name}},
                    "dataDisks": []},
                "osProfile": {"computerName": computer_name or name, "adminUsername": "azureuser", "secrets": [],
                              "allowExtensionOperations": True, "requireGuestProvisionSignal": True,
                              "linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True,
                                                     "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"}}},
                "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
                "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
                "provisioningState": "Succeeded",
                "timeCreated": created,
                "extended": {"instanceView": {"computerName": computer_name or name, "osName": "ubuntu", "osVersion": "22.04",
                                              "hyperVGeneration": "V2",
                                              "powerState": {"code": power_state, "level": "Info",
                                                             "displayStatus": POWER_STATES.get(state, "VM " + state)}}},
            }, tags)

    def add_vms(self, subscription, resource_group, count, name_format="vm-{:05d}", location="westeurope", tags_fn=None,
                public_ips=False, vm_size="Standard_D4s_v5", power_state="PowerState/running", start=0):
        """Add ``count`` VMs named ``name_format.format(i)``, private IP 10.0.0.4 + i, with public_ips 20.0.0.0 + i.

        tags_fn(i) gives the tags. Returns the names.
        """
        names = []
        private, public = int(ipaddress.IPv4Address("10.0.0.4")), int(ipaddress.IPv4Address("20.0.0.0"))
        with self._data_lock, bulk():
            for i in range(start, start + count):
                name = name_format.format(i)
                self.add_vm(subscription, resource_group, name, location=location, tags=tags_fn(i) if tags_fn else None,
                            private_ips=(str(ipaddress.IPv4Address(private + i)),),
                            public_ip=str(ipaddress.IPv4Address(public + i)) if public_ips else None,
                            vm_size=vm_size, power_state=power_state)
                names.append(name)
        return names

    def resources(self):
        """Every row, ordered by id."""
        with self._data_lock:
            return [row for _key, row in sorted(self._resources.items())]

    # -- API ---------------------------------------------------------------------------

    def error_response(self, route, status, message):
        if route == "msi_token":
            return self._msi_error(status, message)
        code = FAULT_CODES.get(status, "InternalServerError")
        if status == 429:
            return arm_error(429, "RateLimiting", _support_message(), [{"code": "RateLimiting", "message": THROTTLED}],
                             headers={"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:05"})
        return arm_error(status, code, "%s. Diagnostic information: timestamp '%s', tracking id '%s'." % (
            message, datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4()))

    def _take_quota(self):
        """(allowed, remaining, seconds until the window resets)."""
        now = time.monotonic()
        with self._data_lock:
            hits = self._quota_hits
            while hits and hits[0] <= now - self.quota_window:
                hits.popleft()
            if self.enforce_quota and len(hits) >= self.quota:
                return False, 0, hits[0] + self.quota_window - now
            hits.append(now)
            return True, max(self.quota - len(hits), 0), hits[0] + self.quota_window - now

    def _resources_query(self, req):
        denied = self._authorize(req)
        if denied:
            return denied
        api_version = req.query.get("api-version")
        if not api_version:
            return arm_error(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all "
                                                                "requests.")
        if api_version not in ARG_API_VERSIONS:
            return arm_error(400, "InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are '%s'."
                             % (api_version, "','".join(ARG_API_VERSIONS)))
        allowed, remaining, resets = self._take_quota()
        quota_headers = {"x-ms-user-quota-remaining": str(remaining),
                         "x-ms-user-quota-resets-after": time.strftime("%H:%M:%S", time.gmtime(math.ceil(resets)))}
        if not allowed:
            quota_headers["Retry-After"] = str(math.ceil(resets))
            return arm_error(429, "RateLimiting", _support_message(), [{"code": "RateLimiting", "message": THROTTLED}], quota_headers)
        try:
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            return arm_error(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: %s" % exc)
        response = self._query(body)
        response.headers.update(quota_headers)
        response.headers["x-ms-request-id"] = str(uuid.uuid4())
        return response

    def _query(self, body):
        if body.get("managementGroups"):
            return bad_request("UnsupportedScope", "The emulator answers subscription-scoped queries only.")
        options = body.get("options") or {}
        top, skip = options.get("$top"), options.get("$skip")
        if top is not None and (not isinstance(top, int) or not 1 <= top <= MAX_TOP):
            return bad_request("InvalidQueryOptions", "The value of $top must be an integer between 1 and %d." % MAX_TOP)
        if skip is not None and (not isinstance(skip, int) or skip < 0):
            return bad_request("InvalidQueryOptions", "The value of $skip must be a non-negative integer.")
        result_format = options.get("resultFormat", "objectArray")
        if result_format not in ("objectArray", "table"):
            return bad_request("InvalidQueryOptions", "resultFormat must be 'table' or 'objectArray'.")
        requested = body.get("subscriptions") or []
        if not isinstance(requested, list):
            return arm_error(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                                                           "'subscriptions' must be an array.")
        with self._data_lock:
            known = self._subscriptions
            subscriptions = [known[s.lower()] for s in requested if isinstance(s, str) and s.lower() in known] if requested \
                else sorted(known.values())
        if not subscriptions:
            return bad_request("NoValidSubscriptionsInQueryRequest", "There must be at least one subscription that is eligible to "
                                                                     "contain resources. Given: '%s'." % ",".join(map(str, requested)))
        query = body.get("query")
        try:
            rows, columns = self._evaluate(query, subscriptions)
        except QueryError as exc:
            return arm_error(400, "BadRequest", _support_message(), [
                {"code": "InvalidQuery", "message": INVALID_QUERY},
                {"code": "ParserFailure", "message": str(exc), "line": exc.line, "characterPositionInLine": exc.column,
                 "token": exc.token}])
        fingerprint = hashlib.sha256(json.dumps([query, subscriptions]).encode("utf-8")).hexdigest()[:16]
        offset, size = skip or 0, top or DEFAULT_TOP
        if options.get("$skipToken"):
            state = self._decode_skip_token(options["$skipToken"], fingerprint)
            if state is None:
                return bad_request("InvalidSkipToken", "The $skipToken is invalid or was issued for another query or scope.")
            offset = state[0] if skip is None else skip  # $top / $skip override the token's
            size = state[1] if top is None else top
        page = rows[offset:offset + size]
        more = offset + size < len(rows)
        body = {"totalRecords": len(rows), "count": len(page), "resultTruncated": "true" if more and "id" not in columns else "false"}
        if more and "id" in columns:
            body["$skipToken"] = self._skip_token(offset + size, size, fingerprint)
        if result_format == "table":
            page = {"columns": [{"name": c, "type": "object" if c in DYNAMIC_COLUMNS else "string"} for c in columns],
                    "rows": [[row.get(c) for c in columns] for row in page]}
        body.update({"data": page, "facets": []})
        return Response(200, body)

    def _evaluate(self, query, subscriptions):
        """(rows, columns) of a query over the subscriptions, cached per data version."""
        key = (query, tuple(subscriptions))
        with self._data_lock:
            cached = self._cache.get(key)
            if cached and cached[0] == self._version:
                return cached[1]
            stages, columns = parse_query(query)
            scope = {s.lower() for s in subscriptions}
            table = [row for _key, row in sorted(self._resources.items()) if row["subscriptionId"].lower() in scope]
            result = (run_query(stages, table), columns)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (self._version, result)
            return result

    @staticmethod
    def _skip_token(offset, size, fingerprint):
        # Shaped like ARG's own: base64 of a small JSON document.
        state = {"$id": "1", "MaxRows": size, "RowsToSkip": offset, "QueryHash": fingerprint}
        return base64.b64encode(json.dumps(state).encode("utf-8")).decode("ascii")

    @staticmethod
    def _decode_skip_token(token, fingerprint):
        try:
            state = json.loads(base64.b64decode(token, validate=True))
            offset, size = int(state["RowsToSkip"]), int(state["MaxRows"])
        except (ValueError, TypeError, KeyError, binascii.Error):
            return None
        if state.get("QueryHash") != fingerprint or offset < 0 or not 1 <= size <= MAX_TOP:
            return None
        return offset, size
