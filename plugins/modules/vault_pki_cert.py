#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vault_pki_cert
short_description: Keep a node's TLS certificate, key and CA file issued from a Vault PKI role
version_added: 0.1.0
description:
  - Runs on the managed host. Reads the certificate, private key and CA files in O(dest) and the
    current CA of the PKI mount O(mount) (C(GET /v1/<mount>/ca/pem)), and issues a new certificate
    from the role O(role) (C(POST <mount>/issue/<role>)) only when one is needed.
  - "A new certificate is issued when (RV(reasons)): V(missing) - one of the three files is absent, the
    certificate cannot be read, or the key is not the certificate's key; V(expiring) - it expires in
    less than O(renew_before); V(sans_changed) - its DNS names (including O(common_name)) or IP addresses
    differ from O(common_name), O(alt_names) and O(ip_sans); V(issuer_changed) - it was not issued by
    the mount's current CA (its Authority Key Identifier is not the CA's Subject Key Identifier, or
    without those, its issuer is not the CA's subject); V(forced) - O(force=true)."
  - The certificate (the leaf), the private key and the issuing CA are each written atomically (a
    temporary file in O(dest), renamed over the old one). The key's temporary file is created with mode
    C(0600) and owned as O(owner) and O(group) before it gets O(key_mode) and takes the key file's place,
    so the key is never readable beyond O(key_mode), not even for a moment.
  - When no new certificate is needed, a CA file that differs from the mount's current CA is
    rewritten, and owner, group and modes are corrected; each is a change.
  - The private key never appears in the module's results, diff, warnings or errors.
author: scratchbird.cluster contributors (@scratchbird)
options:
  mount:
    description: Mount path of the PKI secrets engine.
    type: str
    default: pki
  role:
    description: PKI role to issue from (C(<mount>/issue/<role>)). Its policy decides the allowed names.
    type: str
    required: true
  common_name:
    description:
      - Common name of the certificate, a DNS name (for example the node's FQDN).
      - Vault also puts it in the DNS subject alternative names.
    type: str
    required: true
  alt_names:
    description: Further DNS subject alternative names.
    type: list
    elements: str
    default: []
  ip_sans:
    description: IP address subject alternative names.
    type: list
    elements: str
    default: []
  ttl:
    description:
      - Lifetime asked for a new certificate, as V(90d), V(2160h), V(45m), V(30s) or seconds. The role's
        and the mount's maximum TTL may shorten it.
    type: str
    default: 2160h
  renew_before:
    description:
      - Issue a new certificate when the current one expires in less than this (same forms as O(ttl)).
      - A value not shorter than O(ttl) makes every run issue a new certificate (the module warns).
    type: str
    default: 720h
  dest:
    description:
      - Directory of the three files. Created (mode C(0755)) when missing; an existing directory is
        left as it is.
    type: path
    default: /etc/db/security
  cert_file:
    description: File name of the certificate in O(dest) (an absolute path is used as it is).
    type: str
    default: server.crt
  key_file:
    description: File name of the private key in O(dest) (an absolute path is used as it is).
    type: str
    default: server.key
  ca_file:
    description: File name of the issuing CA certificate in O(dest) (an absolute path is used as it is).
    type: str
    default: ca.crt
  owner:
    description: Owner (name or uid) of the three files, typically the user of the service that reads the key.
    type: str
    default: root
  group:
    description: Group (name or gid) of the three files.
    type: str
    default: root
  cert_mode:
    description: Mode of the certificate and CA files, in octal (quote it in YAML, for example V('0644')).
    type: raw
    default: '0644'
  key_mode:
    description: Mode of the private key file, in octal (quote it in YAML).
    type: raw
    default: '0600'
  force:
    description: Issue a new certificate even when the current one is fine.
    type: bool
    default: false
extends_documentation_fragment:
  - scratchbird.cluster.vault
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the files and the mount's CA (logging in to Vault) and reports what it would do and why;
        issues nothing and writes nothing.
  diff_mode:
    support: full
    details:
      - Shows a text summary of the certificate before and after (subject, SANs, issuer, serial, expiry),
        the CA file and the files' owner, group and mode; never key material.
  platform:
    support: full
    platforms: posix
requirements:
  - cryptography 38 or later, where the module runs (Debian 12's C(python3-cryptography) works).
notes:
  - The Vault token needs C(update) on C(<mount>/issue/<role>) (C(<mount>/ca/pem) is readable without a token).
  - Setting O(owner) and O(group) to another user than the one running the module needs root (C(become=true)).
  - When the role's or the mount's maximum TTL is shorter than O(ttl), Vault issues a shorter-lived certificate;
    keep O(renew_before) well below that maximum, or every run issues a new certificate (the module warns).
  - O(common_name) and O(alt_names) are DNS names; IP addresses belong in O(ip_sans).
  - Each issue makes a new private key; the old certificate stays valid until it expires (it is not revoked).
  - The service using the files must reload them itself; notify a handler from this task (it reports C(changed) when it wrote a file).
seealso:
  - module: scratchbird.cluster.vault_write
"""

EXAMPLES = r"""
- name: Node certificate from the cluster's PKI, readable by the engine's user
  scratchbird.cluster.vault_pki_cert:
    url: https://vault.internal:8200
    role_id: "{{ vault_role_id }}"
    secret_id: "{{ vault_secret_id }}"
    ca_cert: /usr/local/share/ca-certificates/vault-ca.crt
    role: scratchbird-tx-engine
    common_name: "{{ inventory_hostname }}.lab"
    alt_names: ["{{ inventory_hostname }}"]
    ip_sans: ["{{ ansible_host }}"]
    owner: dbengine
    group: dbengine
  register: node_cert
  notify: Reload the engine

- name: Renew every certificate that expires within 60 days, with a token from the environment
  scratchbird.cluster.vault_pki_cert:
    role: scratchbird-tx-engine
    common_name: "{{ inventory_hostname }}.lab"
    renew_before: 60d
  environment:
    VAULT_ADDR: https://vault.internal:8200
    VAULT_TOKEN: "{{ vault_node_token }}"
"""

RETURN = r"""
issued:
  description: Whether a new certificate was issued (in check mode, whether one would be).
  returned: success
  type: bool
  sample: true
reasons:
  description:
    - Why a new certificate was (or would be) issued, in this order - V(missing), V(expiring), V(sans_changed),
      V(issuer_changed), V(forced). Empty when the certificate was kept.
  returned: success
  type: list
  elements: str
  sample: [expiring]
serial:
  description:
    - Serial number of the certificate in O(cert_file) after the run, as Vault writes it (hex bytes with
      colons). In check mode, of the certificate there is now; null when there is none.
  returned: success
  type: str
  sample: "3a:1f:0c:88:5e:6b:0d:52:94:07:2e:6d:1b:5c:59:0a:b4:37:19:de"
not_after:
  description: Expiry of that certificate, ISO 8601 in UTC; null when there is none.
  returned: success
  type: str
  sample: "2026-03-01T12:00:00Z"
common_name:
  description: Common name of that certificate; null when there is none.
  returned: success
  type: str
  sample: tx-1.lab
sans:
  description: Its subject alternative names, the DNS names (sorted) then the IP addresses; empty when there is none.
  returned: success
  type: list
  elements: str
  sample: [tx-1, tx-1.lab, 10.213.0.21]
issuer:
  description: Its issuer's distinguished name; null when there is none.
  returned: success
  type: str
  sample: CN=scratchbird cluster CA
cert_path:
  description: Path of the certificate file.
  returned: success
  type: str
  sample: /etc/db/security/server.crt
key_path:
  description: Path of the private key file.
  returned: success
  type: str
  sample: /etc/db/security/server.key
ca_path:
  description: Path of the CA file.
  returned: success
  type: str
  sample: /etc/db/security/ca.crt
actions:
  description: What the module did (or would do, in check mode), one line each; empty when nothing.
  returned: success
  type: list
  elements: str
  sample: ["issue a certificate from pki/issue/scratchbird-tx-engine (expiring)"]
"""

import grp
import inspect
import os
import pwd
import re
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.scratchbird.cluster.plugins.module_utils.vault import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    VaultError,
    cert_facts,
    cert_summary,
    fail_module,
    format_duration,
    key_matches,
    load_certificate,
    module_vault,
    name_text,
    not_after,
    parse_duration,
    renewal_reasons,
    utc_now,
    vault_argument_spec,
    wanted_sans,
)

_OCTAL = re.compile(r"^0?[0-7]{3,4}$")


def parse_mode(value, option):
    """An octal mode (int, or a string such as '0644') -> int. ValueError when not octal."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.startswith("0o"):
        text = text[2:]
    if not _OCTAL.match(text):
        raise ValueError("%s must be an octal mode such as '0644', got %r" % (option, value))
    return int(text, 8)


def resolve_owner(owner, group):
    """(uid, gid) of the owner and group names or numbers. ValueError when unknown."""
    try:
        uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ValueError("owner %s does not exist on this host" % owner)
    try:
        gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError("group %s does not exist on this host" % group)
    return uid, gid


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def attr_text(uid, gid, mode):
    return "%s:%s %04o" % (user_name(uid), group_name(gid), mode)


def read_file(path):
    """(exists, content bytes or None). Raises OSError other than 'no such file'."""
    try:
        with open(path, "rb") as handle:
            return True, handle.read()
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return False, None
        raise


def file_attrs(path):
    """(uid, gid, mode) of an existing file, or None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def same_pem(left, right):
    def norm(value):
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value.strip().replace("\r\n", "\n")
    return norm(left) is not None and norm(left) == norm(right)


class CertRun:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.actions = []
        p = module.params
        try:
            self.ttl = parse_duration(p["ttl"], "ttl")
            self.renew_before = parse_duration(p["renew_before"], "renew_before")
            self.cert_mode = parse_mode(p["cert_mode"], "cert_mode")
            self.key_mode = parse_mode(p["key_mode"], "key_mode")
            self.dns, self.ips = wanted_sans(p["common_name"], p["alt_names"], p["ip_sans"])
            self.uid, self.gid = resolve_owner(p["owner"], p["group"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        if not (p["common_name"] or "").strip():
            module.fail_json(msg="common_name must not be empty")
        self.mount = p["mount"].strip("/")
        self.role = p["role"].strip("/")
        self.dest = p["dest"]
        self.paths = dict((kind, os.path.join(self.dest, p["%s_file" % kind])) for kind in ("cert", "key", "ca"))
        if len(set(self.paths.values())) != 3:
            module.fail_json(msg="cert_file, key_file and ca_file must be three different files")
        if self.renew_before >= self.ttl:
            module.warn("renew_before (%s) is not shorter than ttl (%s): a new certificate will be issued on every run"
                        % (format_duration(self.renew_before), format_duration(self.ttl)))

    # the host's files

    def read_local(self):
        state = {}
        for kind, path in self.paths.items():
            try:
                exists, content = read_file(path)
            except (IOError, OSError) as exc:
                self.module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror or exc))
            state[kind] = dict(exists=exists, content=content, attrs=file_attrs(path) if exists else None)
        cert = load_certificate(state["cert"]["content"]) if state["cert"]["exists"] else None
        state["cert"]["parsed"] = cert
        state["key_ok"] = key_matches(cert, state["key"]["content"]) if state["key"]["exists"] else False
        state["key"]["content"] = None  # not kept
        state["ca"]["parsed"] = load_certificate(state["ca"]["content"]) if state["ca"]["exists"] else None
        return state

    def wanted_attrs(self, kind):
        return self.uid, self.gid, self.key_mode if kind == "key" else self.cert_mode

    # Vault

    def current_ca(self, vault):
        path = "%s/ca/pem" % self.mount
        try:
            answer = vault.read(path, what="read the CA of the PKI mount %s (%s)" % (self.mount, path))
        except VaultError as exc:
            fail_module(self.module, exc)
        ca = load_certificate(answer) if isinstance(answer, str) else None
        if ca is None:
            self.module.fail_json(msg="Vault at %s has no CA certificate at %s: generate or import the mount's CA first"
                                  % (vault.url, path))
        return answer.strip() + "\n", ca

    def issue(self, vault):
        path = "%s/issue/%s" % (self.mount, self.role)
        body = dict(common_name=self.params["common_name"], ttl="%ds" % self.ttl)
        if self.params["alt_names"]:
            body["alt_names"] = ",".join(self.params["alt_names"])
        if self.params["ip_sans"]:
            body["ip_sans"] = ",".join(self.params["ip_sans"])
        try:
            answer = vault.write(path, body, what="issue a certificate from %s" % path)
        except VaultError as exc:
            fail_module(self.module, exc)
        data = (answer or {}).get("data") or {}
        for warning in (answer or {}).get("warnings") or []:
            self.module.warn("Vault, issuing from %s: %s" % (path, warning))
        key = data.get("private_key")
        if key:
            self.module.no_log_values.add(key)
        cert_pem = data.get("certificate")
        ca_pem = data.get("issuing_ca")
        if not (key and cert_pem and ca_pem) or load_certificate(cert_pem) is None:
            self.module.fail_json(msg="Vault's answer to %s lacks the certificate, the issuing CA or the private key" % path)
        return cert_pem, key, ca_pem

    # writing

    def write(self, kind, content):
        path = self.paths[kind]
        uid, gid, mode = self.wanted_attrs(kind)
        directory = os.path.dirname(path) or "."
        data = content.strip().encode("utf-8") + b"\n"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path), suffix=".tmp")  # mode 0600
        try:
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chown(tmp, uid, gid)
                os.chmod(tmp, mode)
            except (IOError, OSError) as exc:
                self.module.fail_json(msg="cannot write %s: %s" % (path, exc.strerror or exc))
            # atomic_move chmods a file it creates to 0666 & ~umask: a umask of 077 keeps that 0600.
            old_umask = os.umask(0o077)
            try:
                if "keep_dest_attrs" in inspect.signature(self.module.atomic_move).parameters:
                    self.module.atomic_move(tmp, path, keep_dest_attrs=False)
                else:
                    self.module.atomic_move(tmp, path)
            except Exception as exc:  # pylint: disable=broad-except
                self.module.fail_json(msg="cannot replace %s: %s" % (path, exc))
            finally:
                os.umask(old_umask)
            try:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
            except (IOError, OSError) as exc:
                self.module.fail_json(msg="cannot set owner and mode of %s: %s" % (path, exc.strerror or exc))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def fix_attrs(self, kind, attrs):
        """Correct owner, group and mode of an existing file -> whether anything differed."""
        path = self.paths[kind]
        wanted = self.wanted_attrs(kind)
        if attrs == wanted:
            return False
        self.actions.append("set %s to %s (was %s)" % (path, attr_text(*wanted), attr_text(*attrs)))
        if not self.check_mode:
            try:
                if attrs[:2] != wanted[:2]:
                    os.chown(path, wanted[0], wanted[1])
                os.chmod(path, wanted[2])
            except (IOError, OSError) as exc:
                self.module.fail_json(msg="cannot set owner and mode of %s: %s" % (path, exc.strerror or exc))
        return True

    # the run

    def describe_files(self, state, ca_current=None):
        lines = []
        for kind in ("cert", "key", "ca"):
            attrs = state[kind]["attrs"]
            lines.append("%s: %s" % (os.path.basename(self.paths[kind]), attr_text(*attrs) if attrs else "absent"))
        ca = state["ca"]["parsed"]
        if ca is not None:
            mark = "" if ca_current is None else (" (the current CA)" if ca_current else " (not the current CA)")
            lines.append("ca: %s%s" % (name_text(ca.subject), mark))
        return "\n".join(lines) + "\n"

    def wanted_files(self):
        lines = ["%s: %s" % (os.path.basename(self.paths[kind]), attr_text(*self.wanted_attrs(kind)))
                 for kind in ("cert", "key", "ca")]
        return "\n".join(lines) + "\n"

    def run(self):
        state = self.read_local()
        vault = module_vault(self.module)
        ca_pem, ca = self.current_ca(vault)
        cert = state["cert"]["parsed"]
        reasons = renewal_reasons(cert, state["key_ok"], state["ca"]["exists"], ca, self.dns, self.ips,
                                  self.renew_before, force=self.params["force"])
        ca_is_current = same_pem(state["ca"]["content"], ca_pem)
        before = cert_summary(cert) + self.describe_files(state, ca_is_current if state["ca"]["exists"] else None)
        result = dict(issued=bool(reasons), reasons=reasons, cert_path=self.paths["cert"], key_path=self.paths["key"],
                      ca_path=self.paths["ca"])
        final_cert = cert
        changed = False
        if reasons:
            changed = True
            path = "%s/issue/%s" % (self.mount, self.role)
            self.actions.append("issue a certificate from %s (%s)" % (path, ", ".join(reasons)))
            if self.check_mode:
                allowed = vault.capabilities(path)
                if allowed is not None and not set(allowed) & set(["create", "update", "root"]):
                    self.module.warn("the token may not issue from %s (its capabilities there: %s): the run would fail"
                                     % (path, ", ".join(allowed) or "none"))
                after = ("a new certificate from %s\nsubject: CN=%s\nsans: %s\nttl: %s\n"
                         % (path, self.params["common_name"], ", ".join(sorted(self.dns) + sorted(self.ips)) or "-",
                            format_duration(self.ttl)))
                after += self.wanted_files() + "ca: %s (the current CA)\n" % name_text(ca.subject)
            else:
                cert_pem, key_pem, issuing_ca = self.issue(vault)
                if not os.path.isdir(self.dest):
                    try:
                        os.makedirs(self.dest, 0o755)
                    except OSError as exc:
                        self.module.fail_json(msg="cannot create %s: %s" % (self.dest, exc.strerror or exc))
                self.write("key", key_pem)
                self.write("cert", cert_pem)
                self.write("ca", issuing_ca)
                key_pem = None
                self.actions.append("write %s, %s and %s" % (self.paths["cert"], self.paths["key"], self.paths["ca"]))
                final_cert = load_certificate(cert_pem)
                lifetime = (not_after(final_cert) - utc_now()).total_seconds()
                if lifetime <= self.renew_before < self.ttl:
                    self.module.warn("Vault issued a certificate valid for %s only (the role's or the mount's maximum TTL is "
                                     "shorter than ttl), not longer than renew_before (%s): every run will issue a new one; "
                                     "lower renew_before or raise the maximum TTL"
                                     % (format_duration(lifetime), format_duration(self.renew_before)))
                issued_ca = load_certificate(issuing_ca)
                after = cert_summary(final_cert) + self.wanted_files() + "ca: %s (the current CA)\n" % (
                    name_text(issued_ca.subject) if issued_ca is not None else "-")
        else:
            if not ca_is_current:
                changed = True
                self.actions.append("write %s (the current CA of %s, %s)" % (self.paths["ca"], self.mount, name_text(ca.subject)))
                if not self.check_mode:
                    self.write("ca", ca_pem)
                    state["ca"]["attrs"] = self.wanted_attrs("ca")
            for kind in ("cert", "key", "ca"):
                if state[kind]["attrs"] is not None and self.fix_attrs(kind, state[kind]["attrs"]):
                    changed = True
            after = cert_summary(cert) + self.wanted_files() + "ca: %s (the current CA)\n" % name_text(ca.subject)
        facts = cert_facts(final_cert) if final_cert is not None else dict(
            serial=None, not_after=None, common_name=None, sans=[], issuer=None)
        facts.pop("subject", None)
        result.update(facts)
        result.update(changed=changed, actions=self.actions)
        if self.module._diff:
            result["diff"] = dict(before=before, after=after, before_header=self.paths["cert"], after_header=self.paths["cert"])
        return result


def main():
    module = AnsibleModule(
        argument_spec=vault_argument_spec(
            mount=dict(type="str", default="pki"),
            role=dict(type="str", required=True),
            common_name=dict(type="str", required=True),
            alt_names=dict(type="list", elements="str", default=[]),
            ip_sans=dict(type="list", elements="str", default=[]),
            ttl=dict(type="str", default="2160h"),
            renew_before=dict(type="str", default="720h"),
            dest=dict(type="path", default="/etc/db/security"),
            cert_file=dict(type="str", default="server.crt"),
            key_file=dict(type="str", default="server.key"),
            ca_file=dict(type="str", default="ca.crt"),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            cert_mode=dict(type="raw", default="0644"),
            key_mode=dict(type="raw", default="0600", no_log=False),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    result = CertRun(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
