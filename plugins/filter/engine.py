# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the engine roles: the engine configuration contract (module_utils/engine_schema)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.scratchbird.cluster.plugins.module_utils.engine_schema import errors


def engine_config_errors(value, kind, label=None, metrics_port=None, metrics_port_from=None):
    """The problems of a cluster.yaml or tier file document, as "<path>: <problem>" strings."""
    try:
        return errors(value, kind, label=label, metrics_port=metrics_port, metrics_port_from=metrics_port_from)
    except ValueError as exc:
        raise AnsibleFilterError("engine_config_errors: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"engine_config_errors": engine_config_errors}
