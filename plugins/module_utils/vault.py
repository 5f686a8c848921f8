# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Shared code of the Vault plugins (vault_pki_cert, vault_write, the vault_kv lookup).

- The connection options (the ``scratchbird.cluster.vault`` doc fragment documents them) and
  a :class:`Vault` client built from them: an hvac client that logs in with a token or with
  AppRole and sends its requests through hvac's adapter (``client.adapter``) with the plain
  HTTP API paths, which are the same for hvac 0.11 (Debian 12's python3-hvac) up to 2.4.
- Error translation: every failure becomes a :class:`VaultError` with a message that names
  the Vault address, what was asked and which credential was used, never a token or a
  secret_id (those values are also masked in any text that passes through).
- Durations (``90d``, ``2160h``, ``45m``, ``30s``, seconds) and the subset comparison
  of vault_write.
- Certificates (vault_pki_cert): reading them with cryptography 38 (Debian 12's
  python3-cryptography) or later, and the pure decision of whether to issue a new one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import ipaddress
import re
import traceback

from ansible.module_utils.basic import env_fallback

try:
    import hvac
    import requests
except ImportError:
    hvac = requests = None
    HAS_HVAC = False
    HVAC_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_HVAC = True
    HVAC_IMPORT_ERROR = None

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID
except ImportError:
    x509 = serialization = NameOID = None
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

AUTH_METHODS = ("token", "approle")

VAULT_CONNECTION_SPEC = dict(
    url=dict(type="str", fallback=(env_fallback, ["VAULT_ADDR"])),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_TOKEN"])),
    auth_method=dict(type="str", choices=list(AUTH_METHODS)),
    role_id=dict(type="str"),
    secret_id=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_SECRET_ID"])),
    approle_mount=dict(type="str", default="approle"),
    ca_cert=dict(type="path", fallback=(env_fallback, ["VAULT_CACERT"])),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=30),
)

# The option names, for the lookup (which reads them with get_option).
CONNECTION_OPTIONS = tuple(VAULT_CONNECTION_SPEC)

MASK = "********"

UTC = datetime.timezone.utc


class VaultError(Exception):
    """A failure with a message fit for the user (no secrets in it).

    ``status`` is the HTTP status when Vault answered (None when it could not be reached or
    the problem is local), ``errors`` Vault's own error texts.
    """

    def __init__(self, msg, status=None, errors=None):
        super(VaultError, self).__init__(msg)
        self.status = status
        self.errors = list(errors or [])

    @property
    def denied(self):
        return self.status in (401, 403)


def vault_argument_spec(**module_options):
    """The connection options plus a module's own."""
    spec = dict((k, dict(v)) for k, v in VAULT_CONNECTION_SPEC.items())
    spec.update(module_options)
    return spec


# Durations

_DURATION_PART = re.compile(r"(\d+)\s*(d|h|m|s)", re.IGNORECASE)
_DURATION_FULL = re.compile(r"^\s*(?:\d+\s*[dhms]\s*)+$", re.IGNORECASE)
_UNIT_SECONDS = dict(d=86400, h=3600, m=60, s=1)


def parse_duration(value, option="duration"):
    """``90d``, ``2160h``, ``45m``, ``30s``, combinations such as ``1h30m``, or whole seconds
    (an int or a string of digits) -> seconds (int). ValueError names ``option`` when malformed."""
    if isinstance(value, bool):
        raise ValueError("%s: %r is not a duration (use 90d, 2160h, 45m, 30s or seconds)" % (option, value))
    if isinstance(value, int):
        if value < 0:
            raise ValueError("%s: %d is negative" % (option, value))
        return value
    if isinstance(value, float) and value >= 0 and value == int(value):
        return int(value)
    text = str(value).strip() if value is not None else ""
    if text.isdigit():
        return int(text)
    if not _DURATION_FULL.match(text):
        raise ValueError("%s: %r is not a duration (use 90d, 2160h, 45m, 30s or seconds)" % (option, value))
    return sum(int(n) * _UNIT_SECONDS[unit.lower()] for n, unit in _DURATION_PART.findall(text))


def is_duration(value):
    """True for a string such as ``2160h`` or ``1h30m`` (digits alone are not counted here)."""
    return isinstance(value, str) and bool(_DURATION_FULL.match(value))


def format_duration(seconds):
    """Seconds -> a short human text (``89d 23h``, ``45m``, ``12s``; negative with a minus)."""
    seconds = int(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append("%d%s" % (seconds // size, unit))
            seconds %= size
        if len(parts) == 2:
            break
    return sign + " ".join(parts)


# Subset comparison (vault_write)

_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    return None


def _seconds(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return None
    return None


def values_match(wanted, have):
    """Whether ``have`` (from Vault) holds ``wanted``: dicts as recursive subsets, lists as
    lists (same length and order, items compared the same way), booleans also against
    ``"true"``/``"false"``, numbers against numeric strings, durations (``2160h``) against
    seconds, and a comma-separated string against a list."""
    if isinstance(wanted, dict):
        return isinstance(have, dict) and all(k in have and values_match(v, have[k]) for k, v in wanted.items())
    if isinstance(wanted, (list, tuple)):
        if isinstance(have, str):
            have = [item.strip() for item in have.split(",")] if have else []
        if not isinstance(have, (list, tuple)) or len(have) != len(wanted):
            return False
        return all(values_match(w, h) for w, h in zip(wanted, have))
    if isinstance(wanted, bool):
        if isinstance(have, bool):
            return have is wanted
        return isinstance(have, str) and have.strip().lower() == ("true" if wanted else "false")
    if wanted is None:
        return have is None
    if isinstance(have, bool):
        return isinstance(wanted, str) and wanted.strip().lower() == ("true" if have else "false")
    if wanted == have:
        return True
    if isinstance(wanted, str) and isinstance(have, (list, tuple)):
        return values_match([item.strip() for item in wanted.split(",")] if wanted else [], have)
    wanted_number, have_number = _number(wanted), _number(have)
    if wanted_number is not None and have_number is not None:
        return float(wanted_number) == float(have_number)
    if is_duration(wanted) or is_duration(have):
        wanted_s, have_s = _seconds(wanted), _seconds(have)
        return wanted_s is not None and wanted_s == have_s
    return False


def differing_keys(wanted, have):
    """The top-level keys of ``wanted`` that ``have`` does not hold (sorted)."""
    have = have if isinstance(have, dict) else {}
    return sorted(k for k, v in (wanted or {}).items() if k not in have or not values_match(v, have[k]))


# Connection and errors

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"\)\]]+)")
_MULTI_ERROR = re.compile(r"^\s*\d+ errors? occurred:\s*", re.IGNORECASE)
# 400 answers that mean "there is nothing at this path" (a mount or issuer that does not exist).
# ("cannot fetch sysview" is the answer of sys/mounts/<path>/tune for a mount that does not exist.)
_ABSENT = re.compile(r"no (secret engine|auth engine|handler for route|default issuer)|not found|does not exist|"
                     r"no such|unsupported path|unsupported operation|cannot fetch sysview", re.IGNORECASE)


def clean_errors(errors):
    """Vault's error texts, with Go's multierror framing ("1 error occurred: * x") removed."""
    cleaned = []
    for error in errors or []:
        text = _MULTI_ERROR.sub("", str(error))
        parts = [p.strip() for p in re.split(r"\n\s*\*\s*", "\n" + text) if p.strip()]
        cleaned.extend(parts or [text.strip()])
    return [e for e in cleaned if e]


def connection_settings(params):
    """Check the connection options -> a dict of the settings. Raises VaultError."""
    url = (params.get("url") or "").strip()
    if not url:
        raise VaultError("no Vault address: set the url option or VAULT_ADDR")
    if not re.match(r"^https?://[^/\s]+", url):
        raise VaultError("url must be an http:// or https:// address of Vault, got %r" % url)
    method = params.get("auth_method") or ("approle" if params.get("role_id") else "token")
    if method not in AUTH_METHODS:
        raise VaultError("auth_method must be one of %s, got %r" % (", ".join(AUTH_METHODS), method))
    mount = (params.get("approle_mount") or "approle").strip("/")
    if method == "token" and not params.get("token"):
        raise VaultError("no Vault token: set the token option (or VAULT_TOKEN), or role_id and secret_id to log in with AppRole")
    if method == "approle" and not params.get("role_id"):
        raise VaultError("auth_method=approle needs role_id (and secret_id, unless the role does not bind one)")
    timeout = params.get("timeout")
    timeout = 30 if timeout is None else timeout
    if timeout <= 0:
        raise VaultError("timeout must be greater than 0, got %s" % timeout)
    if params.get("ca_cert"):
        verify = params["ca_cert"]
    else:
        verify = params.get("validate_certs") is not False
    if method == "token":
        credential = "the token (token option or VAULT_TOKEN)"
    else:
        credential = "the token of the AppRole login (role_id option, mount auth/%s)" % mount
    return dict(url=url.rstrip("/"), auth_method=method, approle_mount=mount, token=params.get("token"),
                role_id=params.get("role_id"), secret_id=params.get("secret_id"), verify=verify, timeout=timeout,
                credential=credential)


def unreachable_reason(exc, timeout=None):
    """A short reason for a requests exception (no URL query, no headers)."""
    text = str(exc)
    if requests is not None:
        if isinstance(exc, requests.exceptions.SSLError):
            match = re.search(r"(certificate verify failed[^'\"\)]*|wrong version number|[A-Z_]+SSL[^'\"\)]*)", text)
            return "TLS error: %s (set ca_cert to the CA bundle that signed Vault's certificate)" % (
                match.group(1).strip() if match else "handshake failed")
        if isinstance(exc, requests.exceptions.Timeout):
            return "no answer within %s s" % timeout if timeout else "timed out"
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip().rstrip(".")
    if "Connection aborted" in text or "RemoteDisconnected" in text:
        return "the connection was closed without an answer"
    return "%s: %s" % (type(exc).__name__, text[:300])


class Vault:
    """An hvac client for the connection options: ``login()``, then ``read``/``write``/``list``.

    ``params`` holds the connection options (a module's params or the lookup's options).
    Every failure raises VaultError with a message that contains no token and no secret_id.
    """

    def __init__(self, params):
        if not HAS_HVAC:
            raise VaultError("the Python library hvac is needed where this runs (pip install hvac, "
                             "or Debian's python3-hvac)")
        self.settings = connection_settings(params)
        self.url = self.settings["url"]
        self.credential = self.settings["credential"]
        self._secrets = set(s for s in (self.settings["token"], self.settings["secret_id"]) if s)
        # token="" keeps hvac from taking VAULT_TOKEN or ~/.vault-token on its own.
        self.client = hvac.Client(url=self.url, token="", verify=self.settings["verify"],
                                  timeout=self.settings["timeout"])
        self.login_auth = None

    # secrets

    def redact(self, text):
        text = "" if text is None else str(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def add_secret(self, value):
        if value:
            self._secrets.add(value)

    # authentication

    @property
    def auth_method(self):
        return self.settings["auth_method"]

    def set_token(self, token):
        self.add_secret(token)
        self.client.token = token

    def login(self):
        """Token auth: use the token. AppRole: log in -> the ``auth`` dict of the login answer
        (client_token, lease_duration, ...); the client uses the new token from then on."""
        if self.auth_method == "token":
            self.set_token(self.settings["token"])
            return None
        mount = self.settings["approle_mount"]
        body = dict(role_id=self.settings["role_id"])
        if self.settings["secret_id"]:
            body["secret_id"] = self.settings["secret_id"]
        self.client.token = ""
        path = "auth/%s/login" % mount
        status, answer = self.request("POST", path, "log in with AppRole at %s" % path, data=body, login=True)
        auth = (answer or {}).get("auth") if isinstance(answer, dict) else None
        if not auth or not auth.get("client_token"):
            raise VaultError("Vault's answer to the AppRole login at %s %s has no token" % (self.url, path), status=status)
        self.set_token(auth["client_token"])
        self.login_auth = auth
        return auth

    def token_is_valid(self):
        """Whether Vault accepts the client's token (auth/token/lookup-self)."""
        try:
            self.request("GET", "auth/token/lookup-self", "look up the token")
        except VaultError as exc:
            if exc.denied:
                return False
            raise
        return True

    # requests

    def request(self, method, path, what, data=None, params=None, login=False):
        """One API call -> (status, answer): a dict for JSON, the text otherwise, None when empty.

        Raises VaultError for an unreachable Vault and for every status >= 400.
        """
        url = "/v1/" + path.lstrip("/")
        kwargs = {}
        if data is not None:
            kwargs["json"] = data
        if params:
            kwargs["params"] = params
        try:
            reply = self.client.adapter.request(method.lower(), url, raise_exception=False, **kwargs)
        except requests.exceptions.RequestException as exc:
            raise VaultError(self.redact("Vault unreachable at %s: %s" % (self.url, unreachable_reason(exc, self.settings["timeout"]))))
        if isinstance(reply, dict):  # hvac's JSONAdapter: a 200 answer with a JSON body
            return 200, reply
        status = reply.status_code
        answer = None
        text = reply.text or ""
        if text.strip():
            try:
                answer = reply.json()
            except ValueError:
                answer = text
        if status >= 400:
            errors = answer.get("errors") if isinstance(answer, dict) else None
            if errors is None and isinstance(answer, str):
                errors = [answer.strip()[:500]]
            raise self.status_error(status, errors, what, login=login)
        return status, answer

    def status_error(self, status, errors, what, login=False):
        """The VaultError for an HTTP error answer."""
        errors = clean_errors(errors)
        if status in (401, 403) and not login:
            label = "403 permission denied" if status == 403 else "401 unauthorized"
            msg = ("Vault at %s denied permission to %s (%s) for %s: the token is unknown or expired, "
                   "or its policies do not allow this" % (self.url, what, label, self.credential))
            extra = [e for e in errors if e.lower() != "permission denied"]
            if extra:
                msg += " (%s)" % "; ".join(extra)
        elif status in (401, 403):
            msg = ("Vault at %s denied the AppRole login at auth/%s (%d permission denied): check role_id and "
                   "secret_id" % (self.url, self.settings["approle_mount"], status))
        else:
            detail = "; ".join(errors) if errors else "HTTP %d" % status
            msg = "Vault refused to %s: %s" % (what, detail)
            if login and status == 400:
                msg += " (check role_id and secret_id)"
        return VaultError(self.redact(msg), status=status, errors=[self.redact(e) for e in errors])

    def translate(self, exc, what):
        """An exception of hvac or requests -> VaultError (for callers of hvac's own API)."""
        if isinstance(exc, VaultError):
            return exc
        if requests is not None and isinstance(exc, requests.exceptions.RequestException):
            return VaultError(self.redact("Vault unreachable at %s: %s" % (self.url, unreachable_reason(exc, self.settings["timeout"]))))
        if hvac is not None and isinstance(exc, hvac.exceptions.VaultError):
            status = _EXCEPTION_STATUS.get(type(exc).__name__, 500)
            return self.status_error(status, getattr(exc, "errors", None) or [exc.args[0] if exc.args else ""], what)
        return VaultError(self.redact("Vault request to %s failed: %s" % (what, exc)))

    def capabilities(self, path):
        """The token's capabilities on a path (sys/capabilities-self), or None when Vault does not tell."""
        path = path.strip("/")
        try:
            dummy, answer = self.request("POST", "sys/capabilities-self", "look up the token's capabilities",
                                         data=dict(paths=[path]))
        except VaultError:
            return None
        answer = answer if isinstance(answer, dict) else {}
        found = answer.get(path, (answer.get("data") or {}).get(path))
        return list(found) if isinstance(found, list) else None

    def read(self, path, what=None, params=None):
        """GET a path -> its answer (dict or text), or None when Vault has nothing there (404, an empty
        answer, or a 400/405 that says the mount, route or issuer does not exist)."""
        path = path.strip("/")
        try:
            dummy, answer = self.request("GET", path, what or "read %s" % path, params=params)
        except VaultError as exc:
            if exc.status == 404 or (exc.status in (400, 405) and any(_ABSENT.search(e) for e in exc.errors)):
                return None
            raise
        return answer

    def write(self, path, data, what=None, method="POST"):
        """POST (or PUT) data to a path -> the answer (dict, or None for 204)."""
        path = path.strip("/")
        dummy, answer = self.request(method, path, what or "write %s" % path, data=data or {})
        return answer

    def list(self, path, what=None):
        """LIST a path -> its keys ([] when there is nothing)."""
        path = path.strip("/")
        try:
            dummy, answer = self.request("LIST", path, what or "list %s" % path)
        except VaultError as exc:
            if exc.status == 404:
                return []
            raise
        return list(((answer or {}).get("data") or {}).get("keys") or [])


_EXCEPTION_STATUS = dict(InvalidRequest=400, Unauthorized=401, Forbidden=403, InvalidPath=404, UnsupportedOperation=405,
                         PreconditionFailed=412, RateLimitExceeded=429, InternalServerError=500,
                         VaultNotInitialized=501, BadGateway=502, VaultDown=503)


def answer_data(answer):
    """The ``data`` of a Vault answer, or the answer without its envelope, or a text answer (such as a
    PEM); None when empty."""
    if isinstance(answer, str):
        return answer.strip() or None
    if not isinstance(answer, dict):
        return None
    if isinstance(answer.get("data"), dict):
        data = answer["data"]
    elif "data" in answer and answer["data"] is None:
        data = None
    else:
        envelope = ("request_id", "lease_id", "renewable", "lease_duration", "wrap_info", "warnings", "auth", "mount_type")
        data = dict((k, v) for k, v in answer.items() if k not in envelope)
    return data or None


def fail_module(module, exc):
    """fail_json for a VaultError (the message holds no secret)."""
    details = {}
    if getattr(exc, "status", None):
        details["status"] = exc.status
    module.fail_json(msg=str(exc), **details)


def module_vault(module):
    """A logged-in Vault for a module's params; fails the module with a clear message."""
    from ansible.module_utils.basic import missing_required_lib
    if not HAS_HVAC:
        module.fail_json(msg=missing_required_lib("hvac"), exception=HVAC_IMPORT_ERROR)
    vault = None
    try:
        vault = Vault(module.params)
        vault.login()
    except VaultError as exc:
        fail_module(module, exc)
    if vault.login_auth:
        module.no_log_values.add(vault.login_auth["client_token"])
    return vault


# Certificates (vault_pki_cert)

def utc_now():
    return datetime.datetime.now(UTC)


def load_certificate(data):
    """The first PEM certificate of ``data`` (bytes or text) -> x509.Certificate, or None."""
    if not data:
        return None
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    match = re.search(br"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.DOTALL)
    if not match:
        return None
    try:
        return x509.load_pem_x509_certificate(match.group(0) + b"\n")
    except Exception:  # pylint: disable=broad-except
        return None


def _utc(value):
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def not_after(cert):
    """The certificate's notAfter as an aware UTC datetime (cryptography 38 has no *_utc)."""
    value = getattr(cert, "not_valid_after_utc", None)
    return _utc(value if value is not None else cert.not_valid_after)


def not_before(cert):
    value = getattr(cert, "not_valid_before_utc", None)
    return _utc(value if value is not None else cert.not_valid_before)


def iso_utc(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serial_text(cert):
    """The serial as Vault writes it: lower-case hex bytes joined by colons."""
    number = cert.serial_number
    raw = number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")
    return ":".join("%02x" % b for b in bytearray(raw))


def _extension(cert, kind):
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def cert_sans(cert):
    """(DNS names lower-cased, IP addresses as text) of the certificate's SAN extension, as sets."""
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is None:
        return set(), set()
    dns = set(name.lower() for name in san.get_values_for_type(x509.DNSName))
    ips = set(str(address) for address in san.get_values_for_type(x509.IPAddress))
    return dns, ips


def common_name(cert):
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else None


def wanted_sans(common, alt_names, ip_sans):
    """The SANs a certificate for these options has: (DNS names incl. the common name, IPs) as sets.

    Vault adds the common name to the DNS SANs (an e-mail address goes to the e-mail SANs instead, which
    are not compared). Raises ValueError for a malformed IP address."""
    dns = set(n.strip().lower() for n in list(alt_names or []) + [common] if n and n.strip() and "@" not in n)
    ips = set()
    for text in ip_sans or []:
        try:
            ips.add(str(ipaddress.ip_address(str(text).strip())))
        except ValueError:
            raise ValueError("ip_sans: %r is not an IP address" % (text,))
    return dns, ips


def public_key_bytes(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert, key_pem):
    """Whether the PEM private key ``key_pem`` belongs to ``cert``. Never raises, never echoes the key."""
    if cert is None or not key_pem:
        return False
    try:
        key = serialization.load_pem_private_key(key_pem if isinstance(key_pem, bytes) else key_pem.encode(), password=None)
        return public_key_bytes(key.public_key()) == public_key_bytes(cert.public_key())
    except Exception:  # pylint: disable=broad-except
        return False


def issued_by(cert, ca):
    """Whether ``cert`` was issued by ``ca``: its Authority Key Identifier is the CA's Subject Key
    Identifier; when either is missing, its issuer name is the CA's subject."""
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    ski = _extension(ca, x509.SubjectKeyIdentifier)
    if aki is not None and aki.key_identifier and ski is not None:
        return aki.key_identifier == ski.digest
    return cert.issuer == ca.subject


REASONS = ("missing", "expiring", "sans_changed", "issuer_changed", "forced")


def renewal_reasons(cert, key_ok, ca_present, current_ca, dns_names, ip_addresses, renew_before, now=None, force=False):
    """Why a new certificate is needed (a list, in the order of REASONS; empty: keep the one there is).

    ``cert`` the certificate on the host (None when absent or unreadable), ``key_ok`` whether the key
    file holds its private key, ``ca_present`` whether the CA file exists, ``current_ca`` the mount's
    current CA certificate, ``dns_names``/``ip_addresses`` the wanted SANs (sets), ``renew_before`` in
    seconds.
    """
    now = now or utc_now()
    reasons = []
    if cert is None or not key_ok or not ca_present:
        reasons.append("missing")
    if cert is not None:
        if not_after(cert) - now < datetime.timedelta(seconds=renew_before):
            reasons.append("expiring")
        if cert_sans(cert) != (set(dns_names), set(ip_addresses)):
            reasons.append("sans_changed")
        if current_ca is not None and not issued_by(cert, current_ca):
            reasons.append("issuer_changed")
    if force:
        reasons.append("forced")
    return reasons


def name_text(name):
    try:
        return name.rfc4514_string()
    except Exception:  # pylint: disable=broad-except
        return str(name)


def cert_facts(cert):
    """The public facts of a certificate that the module returns."""
    dns, ips = cert_sans(cert)
    return dict(serial=serial_text(cert), not_after=iso_utc(not_after(cert)), common_name=common_name(cert),
                sans=sorted(dns) + sorted(ips, key=_ip_key), issuer=name_text(cert.issuer),
                subject=name_text(cert.subject))


def _ip_key(text):
    address = ipaddress.ip_address(text)
    return (address.version, int(address))


def cert_summary(cert):
    """A short text summary of a certificate for diffs (no key material)."""
    if cert is None:
        return "absent\n"
    facts = cert_facts(cert)
    return ("subject: %s\nsans: %s\nissuer: %s\nserial: %s\nnot_after: %s\n"
            % (facts["subject"], ", ".join(facts["sans"]) or "-", facts["issuer"], facts["serial"], facts["not_after"]))
