# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Fakes for the chrony module tests: replayed chronyc output, a clock that does not sleep."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pathlib

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "module_utils" / "fixtures"
CHRONYC = "/usr/bin/chronyc"
DAEMON_DOWN = "daemon-down"


def fixture_text(situation, report):
    return (FIXTURES / ("%s.%s.csv" % (situation, report))).read_text()


class Chronyc:
    """Replays captured chronyc output: one situation per poll (three chronyc calls).

    The last situation repeats for every further poll.
    """

    def __init__(self, situations, executable=CHRONYC):
        self.situations = list(situations)
        self.executable = executable
        self.calls = []
        self.polls = 0

    def current(self):
        return self.situations[min(self.polls, len(self.situations) - 1)]

    def __call__(self, argv):
        self.calls.append(list(argv))
        assert argv[:3] == [self.executable, "-n", "-c"] and len(argv) == 4, argv
        report = argv[3]
        situation = self.current()
        if situation == DAEMON_DOWN:
            self.polls += 1
            return 1, (FIXTURES / "daemon-down.stdout.txt").read_text(), ""
        if callable(situation):
            result = situation(report)
        else:
            result = (0, fixture_text(situation, report), "")
        if report == "sourcestats" or result[0] != 0:
            self.polls += 1
        return result


class FakeClock:
    """time.monotonic / time.sleep without sleeping."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds
