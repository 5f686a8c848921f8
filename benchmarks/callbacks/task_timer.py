# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Dev-only callback (benchmarks): wall time per task and per play, slowest first, at the end.

Enable with ANSIBLE_CALLBACK_PLUGINS=benchmarks/callbacks ANSIBLE_CALLBACKS_ENABLED=task_timer;
TASK_TIMER_TOP (default 25) sets how many tasks are listed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._tasks, self._plays, self._current, self._play = [], [], None, None

    def _close_task(self):
        if self._current:
            name, start = self._current
            self._tasks.append((time.monotonic() - start, name))
            self._current = None

    def _close_play(self):
        self._close_task()
        if self._play:
            name, start = self._play
            self._plays.append((time.monotonic() - start, name))
            self._play = None

    def v2_playbook_on_play_start(self, play):
        self._close_play()
        self._play = (play.get_name(), time.monotonic())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close_task()
        self._current = ("%s | %s" % (self._play[0] if self._play else "", task.get_name()), time.monotonic())

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_playbook_on_stats(self, stats):
        self._close_play()
        top = int(os.environ.get("TASK_TIMER_TOP", "25"))
        self._display.display("== plays (s) ==")
        for took, name in self._plays:
            self._display.display("%8.2f  %s" % (took, name))
        self._display.display("== slowest tasks (s) ==")
        for took, name in sorted(self._tasks, reverse=True)[:top]:
            self._display.display("%8.2f  %s" % (took, name))
