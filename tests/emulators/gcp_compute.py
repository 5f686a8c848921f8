# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""A local emulator of the Compute Engine API v1 instances.aggregatedList and of Google's
OAuth 2.0 token endpoint (the JWT-bearer grant of service-account keys).

    with GcpComputeEmulator() as emu:
        emu.add_instance("proj", "europe-west1-b", "web-1", labels={"cluster": "prod"}, nat_ip="34.1.2.3")
        key_file = emu.service_account_file(tmp_path / "sa.json", "proj")
        # google-auth: Credentials.from_service_account_file(key_file, scopes=[...]) then
        # AuthorizedSession(creds).get(emu.url + "/compute/v1/projects/proj/aggregated/instances")

Behaviour of the real services kept on purpose:
- google-auth signs its assertion with aud = https://oauth2.googleapis.com/token whatever the
  key file's token_uri says; that audience (and the token_uri itself) is accepted.
- /token issues a token for any non-empty scope; the compute API answers 403
  (ACCESS_TOKEN_SCOPE_INSUFFICIENT) when no compute / cloud-platform scope was granted.
- Instances without labels have no "labels" key, nor "items" in tags / metadata when empty;
  instances without an external address have no accessConfigs.
- Every known zone of the project is a key of "items" on every page; zones without results
  on that page carry the NO_RESULTS_ON_PAGE warning.
Emulator limits: the filter subset of parse_filter(), orderBy only "name" (the default order:
zone, name), no partial responses (``fields`` is ignored), never any unreachable zone.
"""

import base64
import binascii
import bisect
import datetime
import ipaddress
import json
import os
import re
import secrets
import threading
import time
import zlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .base import Emulator, Response, bulk

API_ROOT = "https://www.googleapis.com/compute/v1/"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Audiences Google's token endpoint accepts (google-auth always sends the first one).
TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token",
                   "https://accounts.google.com/o/oauth2/token")
# Scopes that allow compute.instances.aggregatedList.
COMPUTE_SCOPES = frozenset("https://www.googleapis.com/auth/" + s for s in
                           ("compute", "compute.readonly", "cloud-platform", "cloud-platform.read-only"))
DEFAULT_ZONES = ("europe-west1-b", "europe-west1-c", "europe-west1-d", "us-central1-a", "us-central1-b", "us-central1-c")
STATUSES = ("PROVISIONING", "STAGING", "RUNNING", "STOPPING", "SUSPENDING", "SUSPENDED", "REPAIRING", "TERMINATED")
MAX_RESULTS = 500
QUERY_PARAMS = frozenset(("maxResults", "pageToken", "filter", "orderBy", "returnPartialSuccess", "includeAllScopes",
                          "serviceProjectNumber",
                          # system parameters of every Google API
                          "alt", "fields", "prettyPrint", "quotaUser", "userIp", "key", "access_token", "$.xgafv"))
GRPC_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
               429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
               504: "DEADLINE_EXCEEDED"}
FAULT_ERRORS = {
    429: ("usageLimits", "rateLimitExceeded", "Quota exceeded for quota metric 'Read requests' and limit "
          "'Read requests per minute' of service 'compute.googleapis.com'."),
    500: ("global", "backendError", "Internal error. Please try again or contact Google Support."),
    503: ("global", "backendError", "The service is currently unavailable."),
}
# OAuth error codes of the token endpoint for injected faults.
TOKEN_FAULT_ERRORS = {429: "rate_limit_exceeded", 500: "internal_failure", 503: "temporarily_unavailable"}
AUTH_HEADER = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
_CREATED = datetime.datetime(2024, 1, 8, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-8)))


class FilterError(ValueError):
    pass


class _GrantError(Exception):
    def __init__(self, error, description, status=400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _b64url_decode(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def google_error(code, message, reason, domain="global", headers=None, details=None):
    """Google's JSON error body (the shape compute v1 answers)."""
    error = {"code": code, "message": message, "errors": [{"message": message, "domain": domain, "reason": reason}],
             "status": GRPC_STATUS.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return Response(code, {"error": error}, headers)


def oauth_error(status, error, description):
    return Response(status, {"error": error, "error_description": description})


# -- filter expressions ------------------------------------------------------------------

_FILTER_TOKEN = re.compile(r'\s*(\(|\)|!=|=|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[^\s()=!"\']+|\S)')
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*")
# Top-level fields of an instance a filter may name.
FILTER_FIELDS = frozenset(("name", "status", "labels", "id", "description", "zone", "machineType", "cpuPlatform", "canIpForward",
                           "creationTimestamp", "hostname", "deletionProtection", "scheduling", "selfLink", "startRestricted",
                           "lastStartTimestamp", "lastStopTimestamp", "fingerprint", "labelFingerprint", "tags"))


def _unquote(token):
    if token[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def parse_filter(text):
    """Parse the supported filter subset; None (everything) or a tree of
    ("cmp", field, op, value), ("and", [nodes]) and ("or", [nodes]).

    One bare ``field op value``, or parenthesised expressions joined by AND, OR or blanks
    (AND); inside parentheses, comparisons joined by AND / OR. OR binds tighter than AND,
    as in Google's filter syntax (AIP-160). op is = or !=; value quoted ("..." or '...') or
    bare. Anything else (NOT, -, :, regular expressions, ...) raises FilterError.
    """
    tokens = _FILTER_TOKEN.findall(text)
    if not tokens:
        return None
    if tokens[0] != "(":
        return _comparison(tokens)
    parser = _FilterParser(tokens)
    node = parser.conjunction(top=True)
    if parser.peek() is not None:
        raise FilterError("unexpected %r" % parser.peek())
    return node


class _FilterParser:
    def __init__(self, tokens):
        self.tokens, self.pos = tokens, 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def conjunction(self, top):
        nodes = [self.disjunction(top)]
        while self.peek() not in (None, ")"):
            if self.peek() == "AND":
                self.pos += 1
            elif self.peek() != "(":
                raise FilterError("expected AND, OR or '(' at %r" % self.peek())
            nodes.append(self.disjunction(top))
        return nodes[0] if len(nodes) == 1 else ("and", nodes)

    def disjunction(self, top):
        nodes = [self.item(top)]
        while self.peek() == "OR":
            self.pos += 1
            nodes.append(self.item(top))
        return nodes[0] if len(nodes) == 1 else ("or", nodes)

    def item(self, top):
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        if token == "(":
            self.pos += 1
            node = self.conjunction(top=False)
            if self.peek() != ")":
                raise FilterError("unbalanced parentheses")
            self.pos += 1
            return node
        if token in ("NOT", "-"):
            raise FilterError("%s is not supported by the emulator" % token)
        if top:
            raise FilterError("each expression of a filter with several must be in parentheses")
        node = _comparison(self.tokens[self.pos:self.pos + 3])
        self.pos += 3
        return node


def _comparison(tokens):
    if len(tokens) != 3 or tokens[1] not in ("=", "!="):
        raise FilterError("expected 'field = value' or 'field != value', got %r" % " ".join(tokens))
    field, op, value = tokens
    if not _FIELD.fullmatch(field) or field.split(".")[0] not in FILTER_FIELDS:
        raise FilterError("invalid field name %r" % field)
    unterminated = value[0] in "\"'" and (len(value) < 2 or value[-1] != value[0])
    if field == "labels" or value in ("(", ")", "=", "!=") or unterminated:
        raise FilterError("invalid comparison %r" % " ".join(tokens))
    return "cmp", field, op, _unquote(value)


def _field_value(instance, field):
    parts = field.split(".")
    if parts[0] == "labels":
        return instance.get("labels", {}).get(".".join(parts[1:]))
    value = instance
    for part in parts:
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def filter_matches(node, instance):
    if node is None:
        return True
    if node[0] == "and":
        return all(filter_matches(n, instance) for n in node[1])
    if node[0] == "or":
        return any(filter_matches(n, instance) for n in node[1])
    _cmp, field, op, expected = node
    return (_field_value(instance, field) == expected) == (op == "=")


# -- the emulator --------------------------------------------------------------------------

class GcpComputeEmulator(Emulator):
    """Compute Engine v1 aggregated instance list and the OAuth 2.0 token endpoint.

    Routes: ``token`` (POST /token, not faulted unless named) and ``aggregated_instances``
    (GET /compute/v1/projects/{project}/aggregated/instances).
    """

    # Environment that would make google-auth use other credentials or endpoints.
    CONFLICTING_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "GCE_METADATA_ROOT", "GCE_METADATA_IP",
                       "GOOGLE_API_USE_CLIENT_CERTIFICATE", "GOOGLE_API_CERTIFICATE_CONFIG")

    def __init__(self, seed=0, token_lifetime=3600, zones=DEFAULT_ZONES, tls=False):
        super().__init__(seed=seed, tls=tls)
        self.token_lifetime = token_lifetime
        self.default_zones = tuple(zones)
        self.accounts = {}  # client_email -> {"key_id", "public_key", "project"}
        self.tokens = {}  # access token -> {"email", "scopes", "expires"}
        self._projects = {}
        self._cache = {}
        self._data_lock = threading.RLock()
        self.route("POST", r"/token", "token", self._token, api=False)
        self.route("GET", r"/compute/v1/projects/(?P<project>[^/]+)/aggregated/instances", "aggregated_instances", self._aggregated)

    # -- data --------------------------------------------------------------------------

    def add_project(self, project, zones=None, number=None):
        """Register a project (its zones default to the emulator's); returns its record."""
        with self._data_lock:
            if project not in self._projects:
                self._projects[project] = {"number": str(number or self.rng.randrange(10 ** 11, 10 ** 12)),
                                           "zones": set(zones or self.default_zones), "instances": {}, "version": 0,
                                           "next_ip": int(ipaddress.IPv4Address("10.128.0.2"))}
            elif zones:
                self._projects[project]["zones"].update(zones)
            return self._projects[project]

    def add_instance(self, project, zone, name, labels=None, status="RUNNING", network_ip=None, nat_ip=None,
                     machine_type="e2-standard-4", tags=None, metadata=None):
        """Add (or replace) an instance; returns its compute#instance resource."""
        if status not in STATUSES:
            raise ValueError("status must be one of %s" % ", ".join(STATUSES))
        with self._data_lock:
            record = self.add_project(project)
            record["zones"].add(zone)
            if network_ip is None:
                network_ip = str(ipaddress.IPv4Address(record["next_ip"]))
                record["next_ip"] += 1
            instance = self._instance(project, record["number"], zone, name, labels, status, network_ip, nat_ip, machine_type,
                                      tags, metadata)
            record["instances"][(zone, name)] = instance
            record["version"] += 1
            return instance

    def add_instances(self, project, zone, count, name_format="instance-{:05d}", labels_fn=None, status="RUNNING",
                      machine_type="e2-standard-4", nat_ips=False, start=0):
        """Add ``count`` instances named ``name_format.format(i)``; labels_fn(i) gives their labels.

        With nat_ips, each gets an external address 34.(i / 65536).(i / 256 % 256).(i % 256). Returns the names.
        """
        names = []
        with self._data_lock, bulk():
            for i in range(start, start + count):
                nat_ip = str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("34.0.0.0")) + i)) if nat_ips else None
                name = name_format.format(i)
                self.add_instance(project, zone, name, labels=labels_fn(i) if labels_fn else None, status=status,
                                  nat_ip=nat_ip, machine_type=machine_type)
                names.append(name)
        return names

    def instances(self, project):
        """All instances of a project, ordered by zone then name."""
        with self._data_lock:
            return [inst for _key, inst in sorted(self._projects[project]["instances"].items())]

    def _fingerprint(self):
        return base64.b64encode(self.rng.getrandbits(64).to_bytes(8, "big")).decode("ascii")

    def _instance(self, project, number, zone, name, labels, status, network_ip, nat_ip, machine_type, tags, metadata):
        project_url = API_ROOT + "projects/" + project
        zone_url = project_url + "/zones/" + zone
        region = zone.rsplit("-", 1)[0]
        created = _CREATED + datetime.timedelta(seconds=self.rng.randrange(86400 * 90), milliseconds=self.rng.randrange(1000))
        stamp = created.isoformat(timespec="milliseconds")
        nic = {"kind": "compute#networkInterface", "network": project_url + "/global/networks/default",
               "subnetwork": "%s/regions/%s/subnetworks/default" % (project_url, region),
               "networkIP": network_ip, "name": "nic0", "fingerprint": self._fingerprint(), "stackType": "IPV4_ONLY"}
        if nat_ip:
            nic["accessConfigs"] = [{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT", "name": "External NAT",
                                     "natIP": nat_ip, "networkTier": "PREMIUM"}]
        tags_field = {"fingerprint": self._fingerprint()}
        if tags:
            tags_field = {"items": sorted(tags), "fingerprint": tags_field["fingerprint"]}
        metadata_field = {"kind": "compute#metadata", "fingerprint": self._fingerprint()}
        if metadata:
            metadata_field["items"] = [{"key": k, "value": v} for k, v in metadata.items()]
        instance = {
            "kind": "compute#instance",
            "id": str(self.rng.randrange(10 ** 18, 9 * 10 ** 18)),
            "creationTimestamp": stamp,
            "name": name,
            "description": "",
            "tags": tags_field,
            "machineType": zone_url + "/machineTypes/" + machine_type,
            "status": status,
            "zone": zone_url,
            "canIpForward": False,
            "networkInterfaces": [nic],
            "disks": [{"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                       "source": zone_url + "/disks/" + name, "deviceName": "persistent-disk-0", "index": 0, "boot": True,
                       "autoDelete": True, "interface": "SCSI", "diskSizeGb": "20", "architecture": "X86_64",
                       "licenses": ["https://www.googleapis.com/compute/v1/projects/debian-cloud/global/licenses/debian-12-bookworm"],
                       "guestOsFeatures": [{"type": "UEFI_COMPATIBLE"}, {"type": "VIRTIO_SCSI_MULTIQUEUE"}, {"type": "GVNIC"}]}],
            "metadata": metadata_field,
            "serviceAccounts": [{"email": number + "-compute@developer.gserviceaccount.com",
                                 "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
            "selfLink": zone_url + "/instances/" + name,
            "scheduling": {"onHostMaintenance": "MIGRATE", "automaticRestart": True, "preemptible": False,
                           "provisioningModel": "STANDARD"},
            "cpuPlatform": "Intel Broadwell" if status == "RUNNING" else "Unknown CPU Platform",
        }
        if labels:
            instance["labels"] = dict(labels)
        instance.update({
            "labelFingerprint": self._fingerprint(),
            "startRestricted": False,
            "deletionProtection": False,
            "shieldedInstanceConfig": {"enableSecureBoot": False, "enableVtpm": True, "enableIntegrityMonitoring": True},
            "shieldedInstanceIntegrityPolicy": {"updateAutoLearnPolicy": True},
            "fingerprint": self._fingerprint(),
        })
        if status not in ("PROVISIONING", "STAGING"):
            instance["lastStartTimestamp"] = stamp
        if status == "TERMINATED":
            instance["lastStopTimestamp"] = stamp
        return instance

    # -- credentials -------------------------------------------------------------------

    def service_account_info(self, project, name="inventory"):
        """A new service-account key (RSA 2048) as the JSON Google issues, registered here."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = "%s@%s.iam.gserviceaccount.com" % (name, project)
        key_id = secrets.token_hex(20)
        with self._data_lock:
            self.add_project(project)
            self.accounts[email] = {"key_id": key_id, "public_key": key.public_key(), "project": project}
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": key_id,
            "private_key": pem.decode("ascii"),
            "client_email": email,
            "client_id": str(self.rng.randrange(10 ** 20, 10 ** 21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.url + "/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }

    def service_account_file(self, path, project, name="inventory"):
        """Write a new service-account key file (mode 0600) to ``path``; returns the path."""
        info = self.service_account_info(project, name)
        with open(os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            json.dump(info, out, indent=2)
        return path

    def issue_token(self, email="emulator@localhost", scopes=("https://www.googleapis.com/auth/compute.readonly",), lifetime=None):
        """An access token without the OAuth flow (for benchmarks)."""
        token = "ya29.emu-" + secrets.token_urlsafe(48)
        with self._data_lock:
            self.tokens[token] = {"email": email, "scopes": frozenset(scopes),
                                  "expires": time.time() + (self.token_lifetime if lifetime is None else lifetime)}
        return token

    def expire_tokens(self):
        """Make every issued access token expired (clients must refresh)."""
        with self._data_lock:
            for entry in self.tokens.values():
                entry["expires"] = 0

    def _token(self, req):
        form = req.form()
        if form.get("grant_type") != JWT_GRANT:
            return oauth_error(400, "unsupported_grant_type", "Invalid grant_type: %s" % form.get("grant_type", ""))
        try:
            claims = self._verify_assertion(form.get("assertion", ""))
        except _GrantError as exc:
            return oauth_error(exc.status, exc.error, exc.description)
        token = self.issue_token(claims["iss"], claims["scope"].split())
        return Response(200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"},
                        {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"})

    def _verify_assertion(self, assertion):
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(payload_b64))
            signature = _b64url_decode(signature_b64)
        except (ValueError, binascii.Error):
            raise _GrantError("invalid_grant", "Invalid JWT: the assertion is not a signed JWT.") from None
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            raise _GrantError("invalid_grant", "Invalid JWT: only RS256-signed JWTs are accepted.")
        account = self.accounts.get(claims.get("iss"))
        if account is None:
            raise _GrantError("invalid_grant", "Invalid grant: account not found")
        if header.get("kid") not in (None, account["key_id"]):
            raise _GrantError("invalid_grant", "Invalid JWT Signature.")
        try:
            account["public_key"].verify(signature, (header_b64 + "." + payload_b64).encode("ascii"), padding.PKCS1v15(),
                                         hashes.SHA256())
        except InvalidSignature:
            raise _GrantError("invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("aud") not in TOKEN_AUDIENCES + (self.url + "/token",):
            raise _GrantError("invalid_grant", "Invalid JWT: Failed audience check. The right audience is %s" % TOKEN_AUDIENCES[0])
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)) or exp <= now or iat > now + 300 or exp - iat > 3600:
            raise _GrantError("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                                               "timeframe. Check your iat and exp values in the JWT claim.")
        if claims.get("sub") not in (None, claims["iss"]):
            raise _GrantError("unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client "
                                                     "not authorized for any of the scopes requested.", 401)
        if not isinstance(claims.get("scope"), str) or not claims["scope"].split():
            raise _GrantError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        return claims

    def _authorize(self, req):
        """None when the request carries a valid token with a compute scope, else the error answer."""
        token = req.bearer() or req.query.get("access_token")
        if not token:
            message = ("Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or "
                       "other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
            return google_error(401, message, "required", headers=AUTH_HEADER)
        entry = self.tokens.get(token)
        if entry is None or entry["expires"] <= time.time():
            message = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
                       "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
            return google_error(401, message, "authError", headers=AUTH_HEADER)
        if not entry["scopes"] & COMPUTE_SCOPES:
            headers = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="insufficient_scope", '
                                           'scope="https://www.googleapis.com/auth/compute.readonly"'}
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                        "domain": "googleapis.com", "metadata": {"service": "compute.googleapis.com",
                                                                 "method": "compute.v1.InstancesService.AggregatedList"}}]
            return google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions",
                                headers=headers, details=details)
        return None

    # -- API ---------------------------------------------------------------------------

    def error_response(self, route, status, message):
        if route == "token":
            return oauth_error(status, TOKEN_FAULT_ERRORS.get(status, "invalid_request"), message)
        reasons = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound", 405: "httpMethodNotAllowed"}
        domain, reason, text = FAULT_ERRORS.get(status, ("global", reasons.get(status, "backendError"), message))
        return google_error(status, text, reason, domain=domain)

    @staticmethod
    def _invalid(message, reason="invalid"):
        return google_error(400, message, reason)

    def _aggregated(self, req):
        denied = self._authorize(req)
        if denied:
            return denied
        project = req.params["project"]
        with self._data_lock:
            record = self._projects.get(project)
        if record is None:
            return google_error(404, "The resource 'projects/%s' was not found" % project, "notFound")
        query = req.query
        for name in query:
            if name not in QUERY_PARAMS:
                return self._invalid('Invalid JSON payload received. Unknown name "%s": Cannot bind query parameter. '
                                     "Field '%s' could not be found in request message." % (name, name))
        for name in ("returnPartialSuccess", "includeAllScopes"):
            if query.get(name, "false") not in ("true", "false"):
                return self._invalid("Invalid value at '%s' (TYPE_BOOL), \"%s\"" % (name, query[name]))
        if query.get("orderBy", "name") != "name":
            return self._invalid("Invalid value for field 'orderBy': '%s'. The emulator sorts by name only." % query["orderBy"])
        try:
            max_results = int(query.get("maxResults") or MAX_RESULTS)
            if max_results < 0:
                raise ValueError
        except ValueError:
            return self._invalid("Invalid value at 'max_results' (TYPE_UINT32), \"%s\"" % query["maxResults"])
        if max_results > MAX_RESULTS:
            return self._invalid("Invalid value for field 'maxResults': '%d'. Must be less than or equal to %d"
                                 % (max_results, MAX_RESULTS))
        max_results = max_results or MAX_RESULTS
        filter_text = query.get("filter", "")
        try:
            tree = parse_filter(filter_text)
        except FilterError as exc:
            return self._invalid("Invalid value for field 'filter': '%s'. Invalid list filter expression (%s)." % (filter_text, exc))
        keys, rows, zones = self._selection(project, record, filter_text, tree)
        start = 0
        if query.get("pageToken"):
            after = self._decode_page_token(query["pageToken"], filter_text)
            if after is None:
                return self._invalid("Invalid value for field 'pageToken': '%s'. Invalid page token." % query["pageToken"])
            start = bisect.bisect_right(keys, after)
        page = rows[start:start + max_results]
        items = {}
        for zone in zones:
            scope = "zones/" + zone
            items[scope] = {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope '%s' on this page." % scope,
                                        "data": [{"key": "scope", "value": scope}]}}
        for zone, instance in page:
            items["zones/" + zone].setdefault("instances", []).append(instance)
            items["zones/" + zone].pop("warning", None)
        body = {"kind": "compute#instanceAggregatedList", "id": "projects/%s/aggregated/instances" % project, "items": items}
        if start + max_results < len(rows):
            last_zone, last = page[-1]
            body["nextPageToken"] = self._page_token((last_zone, last["name"]), filter_text)
        body["selfLink"] = API_ROOT + "projects/%s/aggregated/instances" % project
        return Response(200, body)

    def _selection(self, project, record, filter_text, tree):
        """(sorted keys, [(zone, instance)], zones) of the instances matching a filter, cached per data version."""
        with self._data_lock:
            cached = self._cache.get((project, filter_text))
            if cached and cached[0] == record["version"]:
                return cached[1]
            items = sorted(record["instances"].items())
            rows = [(key[0], inst) for key, inst in items if filter_matches(tree, inst)]
            result = ([(zone, inst["name"]) for zone, inst in rows], rows, sorted(record["zones"]))
            self._cache[(project, filter_text)] = (record["version"], result)
            return result

    @staticmethod
    def _page_token(after, filter_text):
        # Opaque to clients: the last (zone, name) served and a checksum of the filter.
        return _b64url_encode(json.dumps([after[0], after[1], zlib.crc32(filter_text.encode("utf-8"))]).encode("utf-8"))

    @staticmethod
    def _decode_page_token(token, filter_text):
        try:
            zone, name, crc = json.loads(_b64url_decode(token))
        except (ValueError, TypeError, binascii.Error):
            return None
        if crc != zlib.crc32(filter_text.encode("utf-8")) or not isinstance(zone, str) or not isinstance(name, str):
            return None
        return (zone, name)
