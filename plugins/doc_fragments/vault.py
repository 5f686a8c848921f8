# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of the Vault plugins (module_utils/vault.py). Two variants of the same
    # options: DOCUMENTATION for the modules (environment variables through the argument spec's
    # fallback) and LOOKUP for the lookups (scratchbird.cluster.vault.lookup, with env entries).
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Address of Vault (or OpenBao), for example C(https://vault.internal:8200).
      - Required; taken from E(VAULT_ADDR) where the module runs when omitted.
    type: str
  auth_method:
    description:
      - How to authenticate. V(token) uses O(token); V(approle) logs in with O(role_id) and O(secret_id)
        at O(approle_mount) and uses the token it gets.
      - Default is V(approle) when O(role_id) is set, else V(token).
    type: str
    choices: [token, approle]
  token:
    description:
      - Vault token for O(auth_method=token). Taken from E(VAULT_TOKEN) where the module runs when omitted.
    type: str
  role_id:
    description: AppRole role_id for O(auth_method=approle).
    type: str
  secret_id:
    description:
      - AppRole secret_id for O(auth_method=approle); may be omitted only for a role that does not bind
        secret IDs. Taken from E(VAULT_SECRET_ID) where the module runs when omitted.
    type: str
  approle_mount:
    description: Mount path of the AppRole auth method (without C(auth/)).
    type: str
    default: approle
  ca_cert:
    description:
      - CA bundle (PEM) to verify Vault's TLS certificate with, instead of the system's CAs.
      - Taken from E(VAULT_CACERT) where the module runs when omitted.
    type: path
  validate_certs:
    description: Verify Vault's TLS certificate. Only V(false) for tests; prefer O(ca_cert).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for Vault's answer to one request.
    type: int
    default: 30
requirements:
  - hvac (0.11 to 2.4 tested) where the module runs.
notes:
  - Error messages name the Vault address, the request and which credential was used (the token or
    the AppRole login), never the token or the secret_id.
"""

    # The same options for lookup plugins (configuration style, environment variables as env entries).
    LOOKUP = r"""
options:
  url:
    description:
      - Address of Vault (or OpenBao), for example C(https://vault.internal:8200). Required.
    type: str
    env:
      - name: VAULT_ADDR
  auth_method:
    description:
      - How to authenticate. V(token) uses O(token); V(approle) logs in with O(role_id) and O(secret_id)
        at O(approle_mount) and uses the token it gets.
      - Default is V(approle) when O(role_id) is set, else V(token).
    type: str
    choices: [token, approle]
  token:
    description: Vault token for O(auth_method=token).
    type: str
    env:
      - name: VAULT_TOKEN
  role_id:
    description: AppRole role_id for O(auth_method=approle).
    type: str
  secret_id:
    description:
      - AppRole secret_id for O(auth_method=approle); may be omitted only for a role that does not bind
        secret IDs.
    type: str
    env:
      - name: VAULT_SECRET_ID
  approle_mount:
    description: Mount path of the AppRole auth method (without C(auth/)).
    type: str
    default: approle
  ca_cert:
    description: CA bundle (PEM) to verify Vault's TLS certificate with, instead of the system's CAs.
    type: path
    env:
      - name: VAULT_CACERT
  validate_certs:
    description: Verify Vault's TLS certificate. Only V(false) for tests; prefer O(ca_cert).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for Vault's answer to one request.
    type: int
    default: 30
requirements:
  - hvac (0.11 to 2.4 tested) on the controller.
notes:
  - Error messages name the Vault address, the request and which credential was used (the token or
    the AppRole login), never the token or the secret_id.
"""
