# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""patch_module_args for every module test: ansible-core's own (2.19+), or the same shim."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type
__all__ = ["ExitJson", "FailJson", "patch_exits", "patch_module_args"]

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    import contextlib
    import json

    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args=None):
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


class ExitJson(Exception):
    """Raised instead of exit_json: args[0] is the result."""


class FailJson(Exception):
    """Raised instead of fail_json: args[0] is the result, with failed and msg."""


def patch_exits(monkeypatch):
    """Make AnsibleModule.exit_json / fail_json raise ExitJson / FailJson."""
    from ansible.module_utils import basic

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        raise ExitJson(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        kwargs["failed"] = True
        raise FailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
