# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Run a module in-process on replayed chronyc output (see chrony_fakes)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

from ansible.module_utils import basic

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.chrony_fakes import CHRONYC, Chronyc

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.module_args import ExitJson, FailJson, patch_exits, patch_module_args


@pytest.fixture
def run_module(monkeypatch):
    """run_module(main, args, situations) -> (result dict, failed bool, Chronyc)."""

    patch_exits(monkeypatch)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: CHRONYC)

    def run(main, args, situations=("client-synced",)):
        chronyc = Chronyc(situations, executable=args.get("chronyc_path") or CHRONYC)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: chronyc(argv))
        with patch_module_args(args):
            try:
                main()
            except ExitJson as exc:
                return exc.args[0], False, chronyc
            except FailJson as exc:
                return exc.args[0], True, chronyc
        raise AssertionError("module returned without exit_json or fail_json")

    return run
