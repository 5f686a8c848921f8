# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Parse chronyc CSV output (``chronyc -c ...``).

This is the single chrony parser of the collection: modules import it as
``ansible_collections.scratchbird.cluster.plugins.module_utils.chrony`` and the
stand-in engine (lab/engine) bundles this very file.  Standard library only,
Python 3.8+.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os

# Field order of ``chronyc -c tracking`` (one CSV line).
TRACKING_FIELDS = (
    "reference_id",  # hex, 8 digits
    "reference_name",  # name or address, may be empty
    "stratum",
    "ref_time",  # seconds since the epoch
    "offset",  # system time offset, seconds, signed
    "last_offset",
    "rms_offset",
    "frequency_ppm",
    "residual_frequency_ppm",
    "skew_ppm",
    "root_delay",
    "root_dispersion",
    "update_interval",
    "leap_status",
)

# Reference ids chronyd reports when it has no real reference:
# 00000000 = none selected, 7F7F0101 = its own local clock ("local stratum N").
NO_REFERENCE_ID = "00000000"
LOCAL_REFERENCE_ID = "7F7F0101"

LEAP_NORMAL = "Normal"
LEAP_NOT_SYNCHRONISED = "Not synchronised"
SYNCHRONISED_LEAP_STATUSES = (LEAP_NORMAL, "Insert second", "Delete second")
LEAP_STATUSES = SYNCHRONISED_LEAP_STATUSES + (LEAP_NOT_SYNCHRONISED,)

_NS_PER_S = 1000000000

# Fields given in seconds that also get an ``<name>_ns`` integer.
_SECONDS_WITH_NS = ("offset", "last_offset", "rms_offset", "root_delay", "root_dispersion")
_FLOAT_FIELDS = tuple(f for f in TRACKING_FIELDS
                      if f not in ("reference_id", "reference_name", "stratum", "leap_status"))
_NON_NEGATIVE = ("ref_time", "rms_offset", "skew_ppm", "root_delay", "root_dispersion", "update_interval")


def seconds_to_ns(seconds):
    """Seconds (float) to integer nanoseconds, rounded to nearest."""
    return int(round(seconds * _NS_PER_S))


def _single_line(text):
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("chronyc tracking output is not ASCII")
    if not isinstance(text, str):
        raise ValueError("chronyc tracking output must be a string, not %s" % type(text).__name__)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("chronyc tracking output is empty")
    if len(lines) > 1:
        raise ValueError(
            "chronyc -c tracking output must be one CSV line, got %d lines (first: %r)" % (len(lines), lines[0][:80])
        )
    return lines[0]


def _parse_float(name, raw):
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("chronyc tracking field %s: not a number: %r" % (name, raw))
    if math.isnan(value) or math.isinf(value):
        raise ValueError("chronyc tracking field %s: not a finite number: %r" % (name, raw))
    if name in _NON_NEGATIVE and value < 0:
        raise ValueError("chronyc tracking field %s: must not be negative: %r" % (name, raw))
    return value


def parse_tracking(csv_text):
    """Parse the output of ``chronyc -c tracking``.

    Returns a dict with the raw fields (seconds as float, ppm as float),
    ``<field>_ns`` integers for offset, last_offset, rms_offset, root_delay and
    root_dispersion, ``local_reference`` (chronyd serves its own clock) and
    ``synchronised``.  Raises ValueError on anything that is not exactly one
    well-formed tracking line (for example chronyc's "506 Cannot talk to daemon").
    """
    line = _single_line(csv_text)
    fields = line.split(",")
    if len(fields) != len(TRACKING_FIELDS):
        raise ValueError(
            "chronyc -c tracking output must have %d comma-separated fields, got %d: %r"
            % (len(TRACKING_FIELDS), len(fields), line[:120])
        )
    raw = dict(zip(TRACKING_FIELDS, [f.strip() for f in fields]))

    ref_id = raw["reference_id"].upper()
    if len(ref_id) != 8 or any(c not in "0123456789ABCDEF" for c in ref_id):
        raise ValueError("chronyc tracking field reference_id: expected 8 hex digits, got %r" % raw["reference_id"])

    try:
        stratum = int(raw["stratum"])
    except ValueError:
        raise ValueError("chronyc tracking field stratum: not an integer: %r" % raw["stratum"])
    if stratum < 0 or stratum > 16:
        raise ValueError("chronyc tracking field stratum: out of range 0..16: %d" % stratum)

    leap = raw["leap_status"]
    if not leap:
        raise ValueError("chronyc tracking field leap_status: empty")

    result = {
        "reference_id": ref_id,
        "reference_name": raw["reference_name"],
        "stratum": stratum,
        "leap_status": leap,
    }
    for name in _FLOAT_FIELDS:
        result[name] = _parse_float(name, raw[name])
    for name in _SECONDS_WITH_NS:
        result[name + "_ns"] = seconds_to_ns(result[name])

    result["local_reference"] = ref_id == LOCAL_REFERENCE_ID
    result["synchronised"] = bool(ref_id != NO_REFERENCE_ID and stratum > 0 and leap in SYNCHRONISED_LEAP_STATUSES)
    return result


def uncertainty_ns(tracking):
    """Clock uncertainty bound in ns: |offset| + root dispersion + root delay / 2.

    ``tracking`` is a dict from parse_tracking (or the CSV text itself).
    """
    if not isinstance(tracking, dict):
        tracking = parse_tracking(tracking)
    try:
        seconds = abs(tracking["offset"]) + tracking["root_dispersion"] + tracking["root_delay"] / 2.0
    except KeyError as exc:
        raise ValueError("tracking dict lacks %s (use parse_tracking)" % exc)
    return seconds_to_ns(seconds)


# Field order of ``chronyc -c sources`` (one CSV line per source).  The columns
# are those of the text report; reach stays an octal number, last_rx is whole
# seconds (4294967295 when nothing was ever received) and offsets are seconds.
SOURCES_FIELDS = (
    "mode",  # ^ server, = peer, # reference clock
    "state",  # * + - ? x ~
    "name",  # address (with -n), name, or the refid of a reference clock
    "stratum",
    "poll",  # log2 of the polling interval in seconds, may be negative
    "reach",  # 8-bit reachability register, octal
    "last_rx",  # seconds since the last good sample
    "offset",  # last sample offset, adjusted for clock corrections since
    "measured_offset",  # last sample offset as measured
    "error",  # error bound of the last sample (the "+/-" column)
)

# Field order of ``chronyc -c sourcestats``.
SOURCESTATS_FIELDS = (
    "name",
    "samples",  # NP
    "runs",  # NR
    "span",  # seconds between the oldest and the newest sample
    "frequency_ppm",
    "frequency_skew_ppm",
    "offset",  # estimated offset of the source, seconds
    "std_dev",  # estimated sample standard deviation, seconds
)

SOURCE_MODES = {"^": "server", "=": "peer", "#": "refclock"}

# The ``S`` column of ``chronyc sources`` and its human name.
SOURCE_STATES = {
    "*": "selected",  # the best source, chronyd synchronises to it
    "+": "combined",  # also used, combined with the selected source
    "-": "not_combined",  # selectable, but left out of the combination
    "?": "unusable",  # unreachable, unsynchronised or too few samples
    "x": "falseticker",  # inconsistent with the majority of the sources
    "~": "too_variable",  # its time varies too much (maxjitter)
}

# last_rx chronyc prints for a source that never gave a good sample.
_LAST_RX_NEVER = 4294967295

_SOURCE_SECONDS = ("offset", "measured_offset", "error")
_SOURCESTATS_SECONDS = ("offset", "std_dev")


def _csv_lines(text, report):
    """Non-blank lines of a multi-line chronyc report (an empty report is valid)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("chronyc %s output is not ASCII" % report)
    if not isinstance(text, str):
        raise ValueError("chronyc %s output must be a string, not %s" % (report, type(text).__name__))
    return [line.strip() for line in text.splitlines() if line.strip()]


def _split_fields(line, names, report, number):
    fields = line.split(",")
    if len(fields) != len(names):
        raise ValueError(
            "chronyc -c %s line %d must have %d comma-separated fields, got %d: %r"
            % (report, number, len(names), len(fields), line[:120])
        )
    return dict(zip(names, [f.strip() for f in fields]))


def _report_int(report, number, name, raw, base=10, minimum=None, maximum=None):
    try:
        value = int(raw, base)
    except ValueError:
        raise ValueError("chronyc %s line %d field %s: not an integer: %r" % (report, number, name, raw))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(
            "chronyc %s line %d field %s: out of range %s..%s: %r" % (report, number, name, minimum, maximum, raw)
        )
    return value


def _report_float(report, number, name, raw, non_negative=False):
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("chronyc %s line %d field %s: not a number: %r" % (report, number, name, raw))
    if math.isnan(value) or math.isinf(value):
        raise ValueError("chronyc %s line %d field %s: not a finite number: %r" % (report, number, name, raw))
    if non_negative and value < 0:
        raise ValueError("chronyc %s line %d field %s: must not be negative: %r" % (report, number, name, raw))
    return value


def _report_name(report, number, raw):
    if not raw:
        raise ValueError("chronyc %s line %d field name: empty" % (report, number))
    return raw


def parse_sources(csv_text):
    """Parse the output of ``chronyc -c sources``: a list of dicts, one per source.

    Each dict has ``mode`` (server, peer, refclock) and ``mode_char``, ``state``
    (selected, combined, not_combined, unusable, falseticker, too_variable) and
    ``state_char``, ``selected`` (the ``*`` source), ``name``, ``stratum``,
    ``poll`` (log2 seconds), ``reach`` (the register as an int, 0..255),
    ``reach_octal`` (as chronyc prints it, "377" = the last 8 polls answered),
    ``last_rx`` (seconds since the last good sample, None if there never was
    one), and ``offset``, ``measured_offset``, ``error`` in seconds with
    ``<field>_ns`` integers.  No output (no sources) gives [].  Raises
    ValueError on any malformed line (for example "506 Cannot talk to daemon").
    """
    result = []
    for number, line in enumerate(_csv_lines(csv_text, "sources"), 1):
        raw = _split_fields(line, SOURCES_FIELDS, "sources", number)
        if raw["mode"] not in SOURCE_MODES:
            raise ValueError("chronyc sources line %d field mode: expected one of ^ = #, got %r" % (number, raw["mode"]))
        if raw["state"] not in SOURCE_STATES:
            raise ValueError(
                "chronyc sources line %d field state: expected one of * + - ? x ~, got %r" % (number, raw["state"])
            )
        reach = _report_int("sources", number, "reach", raw["reach"], base=8, minimum=0, maximum=255)
        last_rx = _report_int("sources", number, "last_rx", raw["last_rx"], minimum=0)
        source = {
            "mode": SOURCE_MODES[raw["mode"]],
            "mode_char": raw["mode"],
            "state": SOURCE_STATES[raw["state"]],
            "state_char": raw["state"],
            "selected": raw["state"] == "*",
            "name": _report_name("sources", number, raw["name"]),
            "stratum": _report_int("sources", number, "stratum", raw["stratum"], minimum=0, maximum=16),
            "poll": _report_int("sources", number, "poll", raw["poll"], minimum=-32, maximum=32),
            "reach": reach,
            "reach_octal": "%o" % reach,
            "last_rx": None if last_rx == _LAST_RX_NEVER else last_rx,
        }
        for name in _SOURCE_SECONDS:
            source[name] = _report_float("sources", number, name, raw[name], non_negative=name == "error")
            source[name + "_ns"] = seconds_to_ns(source[name])
        result.append(source)
    return result


def parse_sourcestats(csv_text):
    """Parse the output of ``chronyc -c sourcestats``: a list of dicts, one per source.

    Each dict has ``name``, ``samples`` (NP), ``runs`` (NR), ``span`` (seconds
    from the oldest to the newest sample), ``frequency_ppm``,
    ``frequency_skew_ppm``, and ``offset`` (estimated) and ``std_dev`` in
    seconds with ``<field>_ns`` integers.  No output gives [].  Raises
    ValueError on any malformed line.
    """
    result = []
    for number, line in enumerate(_csv_lines(csv_text, "sourcestats"), 1):
        raw = _split_fields(line, SOURCESTATS_FIELDS, "sourcestats", number)
        stats = {
            "name": _report_name("sourcestats", number, raw["name"]),
            "samples": _report_int("sourcestats", number, "samples", raw["samples"], minimum=0),
            "runs": _report_int("sourcestats", number, "runs", raw["runs"], minimum=0),
            "span": _report_int("sourcestats", number, "span", raw["span"], minimum=0),
            "frequency_ppm": _report_float("sourcestats", number, "frequency_ppm", raw["frequency_ppm"]),
            "frequency_skew_ppm": _report_float(
                "sourcestats", number, "frequency_skew_ppm", raw["frequency_skew_ppm"], non_negative=True
            ),
        }
        for name in _SOURCESTATS_SECONDS:
            stats[name] = _report_float("sourcestats", number, name, raw[name], non_negative=name == "std_dev")
            stats[name + "_ns"] = seconds_to_ns(stats[name])
        result.append(stats)
    return result


def summary(tracking, sources, sourcestats=None):
    """One view of chronyd's state from its three reports (parsed dicts or CSV text).

    Returns ``synchronised`` (chronyd's own view, see parse_tracking),
    ``selected_source`` (name of the ``*`` source, None when there is none),
    ``reference_id``, ``reference_name``, ``local_reference``, ``stratum``,
    ``leap_status``, ``offset_ns``, ``root_delay_ns``, ``root_dispersion_ns``,
    ``uncertainty_ns`` (see uncertainty_ns), ``tracking`` (the parsed tracking
    dict) and ``sources``: the parsed sources, each with ``stats`` (its
    sourcestats dict without the name, None when chronyc did not list it).
    """
    if not isinstance(tracking, dict):
        tracking = parse_tracking(tracking)
    if not isinstance(sources, list):
        sources = parse_sources(sources)
    if sourcestats is None:
        sourcestats = []
    elif not isinstance(sourcestats, list):
        sourcestats = parse_sourcestats(sourcestats)

    stats_by_name = {}
    for stats in sourcestats:
        stats_by_name[stats["name"]] = dict((k, v) for k, v in stats.items() if k != "name")
    merged = []
    for source in sources:
        entry = dict(source)
        entry["stats"] = stats_by_name.get(source["name"])
        merged.append(entry)

    selected = [s["name"] for s in sources if s["selected"]]
    return {
        "synchronised": tracking["synchronised"],
        "selected_source": selected[0] if selected else None,
        "reference_id": tracking["reference_id"],
        "reference_name": tracking["reference_name"],
        "local_reference": tracking["local_reference"],
        "stratum": tracking["stratum"],
        "leap_status": tracking["leap_status"],
        "offset_ns": tracking["offset_ns"],
        "root_delay_ns": tracking["root_delay_ns"],
        "root_dispersion_ns": tracking["root_dispersion_ns"],
        "uncertainty_ns": uncertainty_ns(tracking),
        "tracking": tracking,
        "sources": merged,
    }


# The reports collect() reads, in order.
REPORTS = ("tracking", "sources", "sourcestats")

# What chronyc prints (on stdout, exit code 1) when chronyd does not answer.
CANNOT_TALK_TO_DAEMON = "506 Cannot talk to daemon"


class ChronycError(Exception):
    """chronyc failed; ``daemon_unreachable`` when chronyd did not answer at all."""

    def __init__(self, message, daemon_unreachable=False, rc=None, command=None):
        super(ChronycError, self).__init__(message)
        self.daemon_unreachable = daemon_unreachable
        self.rc = rc
        self.command = command


def _as_text(value):
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value


def collect(run, chronyc="chronyc"):
    """Run ``chronyc -n -c`` tracking, sources and sourcestats and return summary().

    ``run(argv)`` runs a command and returns ``(rc, stdout, stderr)`` (as
    AnsibleModule.run_command does).  Raises ChronycError when chronyc fails
    (``daemon_unreachable`` set for "506 Cannot talk to daemon") and
    ValueError when its output cannot be parsed.
    """
    texts = {}
    for report in REPORTS:
        argv = [chronyc, "-n", "-c", report]
        command = " ".join(argv)
        rc, out, err = run(argv)
        out, err = _as_text(out), _as_text(err)
        said = " ".join(part.strip() for part in (out, err) if part.strip())
        if CANNOT_TALK_TO_DAEMON in said:
            raise ChronycError(
                "chronyd is not running or does not answer: `%s` exited %s: %s" % (command, rc, said),
                daemon_unreachable=True, rc=rc, command=command,
            )
        if rc != 0:
            raise ChronycError(
                "`%s` failed with exit code %s: %s" % (command, rc, said or "(no output)"), rc=rc, command=command
            )
        texts[report] = out
    try:
        return summary(
            parse_tracking(texts["tracking"]), parse_sources(texts["sources"]), parse_sourcestats(texts["sourcestats"])
        )
    except ValueError as exc:
        raise ValueError("cannot parse the output of %s -n -c: %s" % (chronyc, exc))


def find_chronyc(module):
    """The chronyc a module runs: its chronyc_path option, or chronyc found on the target."""
    path = module.params["chronyc_path"]
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            module.fail_json(msg="chronyc_path %s is not an executable file" % path)
        return path
    return module.get_bin_path("chronyc", required=True)
