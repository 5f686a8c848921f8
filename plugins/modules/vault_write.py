#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vault_write
short_description: Write to a Vault path only when it does not already hold the values
version_added: 0.1.0
description:
  - For idempotent Vault set-up (mounts, PKI roles, policies, auth roles). Reads O(read_path) (by
    default O(path)) and writes O(data) to O(path) only when needed.
  - "Without O(create_only): writes when O(data) is not a subset of what the read returns (the answer's
    C(data)). Dicts are compared recursively as subsets (keys Vault returns beyond O(data) are
    ignored); lists as lists (same length and order); numbers equal numeric strings (V(2) and V('2'));
    booleans equal V('true')/V('false'); durations such as V(2160h) equal a number of seconds
    (V(7776000), as Vault returns TTLs); a comma-separated string equals a list."
  - With O(create_only=true), writes only when O(read_path) holds nothing - Vault answers 404, a 400
    or 405 saying the mount, route or issuer does not exist (for example C(No secret engine mount at pki/)),
    or an empty answer - and never compares. For one-shot writes such as enabling a mount or
    generating a root CA.
  - Reports a change only when it writes. In check mode it reads, reports whether it would write, and writes nothing.
author: scratchbird.cluster contributors (@scratchbird)
options:
  path:
    description:
      - Vault API path to write to, without C(/v1/), for example C(pki/roles/scratchbird-tx-engine) or
        C(sys/mounts/pki). Written with C(POST).
    type: str
    required: true
  data:
    description: Values to write (the request body).
    type: dict
    default: {}
  read_path:
    description:
      - Path to read the current values from (C(GET)), when it is not O(path) - for example
        C(sys/mounts/pki/tune) to compare, or C(pki/cert/ca) to see whether a root CA exists.
      - Defaults to O(path).
    type: str
  create_only:
    description:
      - Write only when O(read_path) holds nothing; do not compare an existing value with O(data).
    type: bool
    default: false
extends_documentation_fragment:
  - scratchbird.cluster.vault
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads O(read_path) and reports whether it would write; writes nothing.
  diff_mode:
    support: full
    details: Shows the keys of O(data) as O(read_path) holds them before and as they would be after.
  platform:
    support: full
    platforms: posix
notes:
  - Secrets in O(data), in the values read (RV(before)) or in the write's answer (RV(response)), for example
    a generated secret_id or a KV secret, are shown in the task's result; set C(no_log=true) on such a task.
  - A path that cannot be read back (a write-only endpoint) holds nothing for this module, so such a write
    happens on every run with O(create_only=true), and never with O(data={}).
  - Vault may keep a value in another form than it was written (a policy reformatted, a default filled
    in); such a key is written on every run. Compare through a O(read_path) that returns it as written.
seealso:
  - module: scratchbird.cluster.vault_pki_cert
"""

EXAMPLES = r"""
- name: PKI secrets engine at pki/ (only when there is none)
  scratchbird.cluster.vault_write:
    url: https://vault.internal:8200
    token: "{{ vault_admin_token }}"
    path: sys/mounts/pki
    data:
      type: pki
    create_only: true

- name: A PKI role, rewritten only when a value differs
  scratchbird.cluster.vault_write:
    url: https://vault.internal:8200
    token: "{{ vault_admin_token }}"
    path: pki/roles/scratchbird-tx-engine
    data:
      allowed_domains: [lab]
      allow_subdomains: true
      ttl: 2160h
      max_ttl: 2160h

- name: Maximum TTL of the mount, compared with its tune settings
  scratchbird.cluster.vault_write:
    url: https://vault.internal:8200
    token: "{{ vault_admin_token }}"
    path: sys/mounts/pki/tune
    data:
      max_lease_ttl: 87600h

- name: A secret_id for the nodes' AppRole (secret in the answer)
  scratchbird.cluster.vault_write:
    url: https://vault.internal:8200
    token: "{{ vault_admin_token }}"
    path: auth/approle/role/scratchbird-tx-engine/secret-id
    create_only: true
  register: secret_id
  no_log: true
"""

RETURN = r"""
response:
  description:
    - The C(data) of Vault's answer to the write (for example a generated certificate or secret_id);
      null when nothing was written or Vault answered without data.
  returned: success
  type: dict
  sample: {"certificate": "-----BEGIN CERTIFICATE-----...", "serial_number": "1a:2b:..."}
before:
  description:
    - What O(read_path) held before the run (the C(data) of the answer, or the answer without its envelope);
      null when it held nothing.
  returned: success
  type: raw
  sample: {"allowed_domains": ["lab"], "ttl": 7776000}
differences:
  description:
    - The keys of O(data) that O(read_path) did not hold as given (without O(create_only)); all keys when
      it held nothing.
  returned: success
  type: list
  elements: str
  sample: [ttl]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.scratchbird.cluster.plugins.module_utils.vault import (
    VaultError,
    answer_data,
    differing_keys,
    fail_module,
    module_vault,
    vault_argument_spec,
)


def decide(data, current, create_only):
    """(write?, differing keys) for the wanted ``data`` and what the read returned (None: nothing)."""
    if create_only:
        return current is None, sorted(data) if current is None else []
    if current is None:
        keys = sorted(data)
        return bool(keys), keys
    keys = differing_keys(data, current)
    return bool(keys), keys


def main():
    module = AnsibleModule(
        argument_spec=vault_argument_spec(
            path=dict(type="str", required=True),
            data=dict(type="dict", default={}),
            read_path=dict(type="str"),
            create_only=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"].strip().strip("/")
    read_path = (module.params["read_path"] or path).strip().strip("/")
    if not path:
        module.fail_json(msg="path must not be empty")
    data = module.params["data"] or {}
    vault = module_vault(module)
    try:
        current = answer_data(vault.read(read_path))
    except VaultError as exc:
        fail_module(module, exc)
    write, keys = decide(data, current, module.params["create_only"])
    response = None
    if write and not module.check_mode:
        try:
            answer = vault.write(path, data)
        except VaultError as exc:
            fail_module(module, exc)
        response = answer.get("data") if isinstance(answer, dict) else None
    result = dict(changed=write, response=response, before=current, differences=keys)
    if module._diff:
        have = current if isinstance(current, dict) else {}
        before = dict((k, have[k]) for k in data if k in have)
        after = dict(before)
        if write:
            after.update(data)
        result["diff"] = dict(before=before, after=after, before_header=read_path, after_header=path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
