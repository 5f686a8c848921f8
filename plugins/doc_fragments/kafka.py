# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of the Kafka admin modules (module_utils/kafka.py).
    DOCUMENTATION = r"""
options:
  bootstrap_servers:
    description:
      - Kafka brokers to bootstrap from, each C(host:port) (C([address]:port) for IPv6).
      - One reachable broker is enough; the client learns the others from it.
      - The module runs where the task runs (usually the controller; use C(delegate_to) to run it
        on a host that reaches the brokers).
    type: list
    elements: str
    required: true
  security_protocol:
    description: Protocol of the brokers' listener.
    type: str
    choices: [PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]
    default: PLAINTEXT
  ssl_cafile:
    description:
      - CA certificates (PEM) to verify the brokers with, for O(security_protocol=SSL) or
        O(security_protocol=SASL_SSL). The system's CAs are used when omitted.
    type: path
  ssl_certfile:
    description: Client certificate (PEM) for TLS client authentication.
    type: path
  ssl_keyfile:
    description: Private key (PEM) of O(ssl_certfile).
    type: path
  sasl_mechanism:
    description:
      - SASL mechanism. Required with O(security_protocol=SASL_PLAINTEXT) or
        O(security_protocol=SASL_SSL).
    type: str
    choices: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  sasl_username:
    description: SASL user name. Required with the SASL protocols.
    type: str
  sasl_password:
    description: SASL password. Required with the SASL protocols.
    type: str
  request_timeout_ms:
    description:
      - Timeout of one request to a broker, in milliseconds. Must be greater than 0.
      - Also bounds the wait for a first broker connection - with no broker reachable the
        module fails after about this long.
    type: int
    default: 30000
notes:
  - The connection options can be set once for the Kafka modules with C(module_defaults) and
    the C(group/scratchbird.cluster.kafka) action group.
"""
