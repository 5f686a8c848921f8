# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Write chrony's state as a node_exporter textfile (``chrony.prom``).

Installed by the ``scratchbird.cluster.gpsd_chrony`` role and run by the
``chrony-metrics`` systemd timer.  It asks chronyd (``chronyc -n -c tracking``,
``sources`` and ``sourcestats``) and parses the answers with the collection's
one chrony parser (``plugins/module_utils/chrony.py``, installed beside this
script as ``scratchbird_chrony.py``: ``collect()``), then replaces the textfile
atomically (temporary file in the same directory, fsync, rename), so
node_exporter never reads half a file.

When chronyc fails the file still gets written, with ``chrony_up 0``.
Run by gpsd_chrony_metrics_python (python3); standard library only; Python 3.6+.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import subprocess
import sys
import tempfile
import time

__metaclass__ = type

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import scratchbird_chrony as chrony  # noqa: E402  pylint: disable=wrong-import-position,import-error

TEXTFILE_NAME = "chrony.prom"


def run_command(argv, timeout=10.0):
    """(rc, stdout, stderr) of argv, the contract of chrony.collect()."""
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", "timed out after %ss" % timeout
    except OSError as exc:
        return 127, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def leap_label(status):
    return status.strip().lower().replace(" ", "_")


class Exposition:
    """Prometheus text exposition format 0.0.4: HELP and TYPE before each family."""

    def __init__(self):
        self.lines = []

    @staticmethod
    def _escape_label(value):
        return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")

    @staticmethod
    def _value(value):
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int):
            return str(value)
        return repr(float(value))

    def add(self, name, help_text, samples, metric_type="gauge"):
        """samples: a number, or a list of (labels dict, number)."""
        if not isinstance(samples, list):
            samples = [({}, samples)]
        self.lines.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\").replace("\n", "\\n")))
        self.lines.append("# TYPE %s %s" % (name, metric_type))
        for labels, value in samples:
            if labels:
                body = ",".join('%s="%s"' % (k, self._escape_label(v)) for k, v in sorted(labels.items()))
                self.lines.append("%s{%s} %s" % (name, body, self._value(value)))
            else:
                self.lines.append("%s %s" % (name, self._value(value)))

    def text(self):
        return "\n".join(self.lines) + "\n"


def add_tracking(out, tracking, max_uncertainty_ns):
    uncertainty = chrony.uncertainty_ns(tracking)
    out.add("chrony_clock_uncertainty_nanoseconds",
            "Clock uncertainty bound: |offset| + root dispersion + root delay / 2.", uncertainty)
    out.add("chrony_clock_within_bound",
            "1 when the clock uncertainty is within chrony_max_uncertainty_nanoseconds.",
            uncertainty <= max_uncertainty_ns)
    out.add("chrony_clock_offset_nanoseconds", "System clock offset from true time (positive: fast).",
            tracking["offset_ns"])
    out.add("chrony_clock_last_offset_nanoseconds", "Offset at the last clock update.", tracking["last_offset_ns"])
    out.add("chrony_clock_rms_offset_nanoseconds", "Long-term average (RMS) of the offset.",
            tracking["rms_offset_ns"])
    out.add("chrony_root_delay_nanoseconds", "Total network path delay to the stratum-1 source.",
            tracking["root_delay_ns"])
    out.add("chrony_root_dispersion_nanoseconds", "Total dispersion accumulated up to the stratum-1 source.",
            tracking["root_dispersion_ns"])
    out.add("chrony_stratum", "Stratum of this host (0 when not synchronised).", tracking["stratum"])
    out.add("chrony_synchronised", "1 when chronyd is synchronised to a reference.", tracking["synchronised"])
    out.add("chrony_local_reference", "1 when chronyd serves its own clock (local stratum, no upstream).",
            tracking["local_reference"])
    statuses = [leap_label(s) for s in chrony.LEAP_STATUSES]
    current = leap_label(tracking["leap_status"])
    if current not in statuses:
        statuses.append(current)
    out.add("chrony_leap_status", "Leap status reported by chronyd (1 for the current one).",
            [({"status": s}, s == current) for s in statuses])
    out.add("chrony_frequency_ppm", "Frequency error of the system clock (ppm, positive: fast).",
            tracking["frequency_ppm"])
    out.add("chrony_residual_frequency_ppm", "Residual frequency of the selected source (ppm).",
            tracking["residual_frequency_ppm"])
    out.add("chrony_skew_ppm", "Estimated error bound of the frequency (ppm).", tracking["skew_ppm"])
    out.add("chrony_update_interval_seconds", "Interval between the last two clock updates.",
            tracking["update_interval"])
    out.add("chrony_reference_timestamp_seconds", "Time of the last measurement from the reference source.",
            tracking["ref_time"])


def add_sources(out, state):
    states = list(chrony.SOURCE_STATES.values())
    counts = dict((label, 0) for label in states)
    for source in state["sources"]:
        counts[source["state"]] = counts.get(source["state"], 0) + 1
    out.add("chrony_sources", "Time sources of chronyd by state (chronyc sources).",
            [({"state": label}, counts[label]) for label in states])
    selected = [s for s in state["sources"] if s["selected"]]
    if selected:
        out.add("chrony_selected_source_info", "The source chronyd is synchronised to (value 1).",
                [({"source": s["name"], "mode": s["mode"], "reference_id": state["reference_id"]}, 1)
                 for s in selected])


def collect(chronyc, max_uncertainty_ns, timeout):
    """The textfile content and the error message (None when chronyc answered)."""
    started = time.time()
    out = Exposition()
    state = None
    error = None
    try:
        state = chrony.collect(lambda argv: run_command(argv, timeout), chronyc=chronyc)
    except (chrony.ChronycError, ValueError) as exc:
        error = str(exc)

    out.add("chrony_up", "1 when chronyc answered (tracking, sources, sourcestats) and its output parsed.",
            state is not None)
    out.add("chrony_max_uncertainty_nanoseconds",
            "Deployment bound on clock uncertainty (max_acceptable_uncertainty_ns).", max_uncertainty_ns)
    if state is not None:
        add_tracking(out, state["tracking"], max_uncertainty_ns)
        add_sources(out, state)
    finished = time.time()
    out.add("chrony_metrics_duration_seconds", "Time taken to query chronyd and render this file.",
            round(finished - started, 6))
    out.add("chrony_metrics_last_run_timestamp_seconds", "When this file was written (Unix time).",
            round(finished, 3))
    return out.text(), error


def write_atomically(directory, name, content):
    """Temporary file in the same directory, fsync, rename: readers see old or new."""
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write chrony metrics as a node_exporter textfile.")
    parser.add_argument("--textfile-dir", required=True, help="node_exporter textfile collector directory")
    parser.add_argument("--max-uncertainty-ns", type=int, default=50000000,
                        help="deployment bound on clock uncertainty (default 50 ms)")
    parser.add_argument("--chronyc", default="chronyc", help="chronyc executable (default: from PATH)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each chronyc call")
    parser.add_argument("--stdout", action="store_true", help="print the metrics instead of writing the file")
    args = parser.parse_args(argv)

    content, error = collect(args.chronyc, args.max_uncertainty_ns, args.timeout)
    if error:
        sys.stderr.write("chrony_textfile: %s\n" % error)
    if args.stdout:
        sys.stdout.write(content)
        return 0
    try:
        write_atomically(args.textfile_dir, TEXTFILE_NAME, content)
    except OSError as exc:
        sys.stderr.write("chrony_textfile: cannot write %s: %s\n"
                         % (os.path.join(args.textfile_dir, TEXTFILE_NAME), exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
