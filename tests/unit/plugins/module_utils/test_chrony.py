# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/chrony.py: `chronyc -c tracking` parsing."""

from __future__ import absolute_import, division, print_function

import ast
import pathlib

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import chrony

_PATH = pathlib.Path(chrony.__file__)

SYNCED = (
    "A9FEA97B,169.254.169.123,3,1700000000.123456789,-0.000012345,0.000001000,0.000020000,"
    "-12.345,0.001,0.020,0.000456000,0.000789000,16.0,Normal\n"
)
UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,"
    "1.000000000,1.000000000,0.0,Not synchronised\n"
)
# A clock master serving its own clock ("local stratum 1", no upstream).
LOCAL = "7F7F0101,,1,1700000100.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,0.000000000,0.000010000,64.0,Normal"


def with_fields(**changes):
    fields = SYNCED.strip().split(",")
    for name, value in changes.items():
        fields[chrony.TRACKING_FIELDS.index(name)] = value
    return ",".join(fields)


def test_synchronised_line():
    t = chrony.parse_tracking(SYNCED)
    assert t["reference_id"] == "A9FEA97B"
    assert t["reference_name"] == "169.254.169.123"
    assert t["stratum"] == 3
    assert t["ref_time"] == pytest.approx(1700000000.123456789)
    assert t["offset"] == pytest.approx(-0.000012345)
    assert t["offset_ns"] == -12345
    assert t["last_offset_ns"] == 1000
    assert t["rms_offset_ns"] == 20000
    assert t["frequency_ppm"] == pytest.approx(-12.345)
    assert t["residual_frequency_ppm"] == pytest.approx(0.001)
    assert t["skew_ppm"] == pytest.approx(0.02)
    assert t["root_delay_ns"] == 456000
    assert t["root_dispersion_ns"] == 789000
    assert t["update_interval"] == pytest.approx(16.0)
    assert t["leap_status"] == "Normal"
    assert t["synchronised"] is True
    assert t["local_reference"] is False
    assert all(isinstance(t[k], int) for k in ("offset_ns", "root_delay_ns", "root_dispersion_ns", "rms_offset_ns"))


def test_uncertainty_is_abs_offset_plus_dispersion_plus_half_delay():
    t = chrony.parse_tracking(SYNCED)
    # 12345 + 789000 + 456000 / 2
    assert chrony.uncertainty_ns(t) == 1029345
    assert chrony.uncertainty_ns(SYNCED) == 1029345  # CSV text accepted too
    positive = chrony.parse_tracking(with_fields(offset="0.000012345"))
    assert chrony.uncertainty_ns(positive) == 1029345


def test_unsynchronised_line():
    t = chrony.parse_tracking(UNSYNCED)
    assert t["synchronised"] is False
    assert t["reference_id"] == "00000000"
    assert t["reference_name"] == ""
    assert t["stratum"] == 0
    assert t["leap_status"] == "Not synchronised"
    assert chrony.uncertainty_ns(t) == 1500000000


def test_local_reference_with_stratum_is_synchronised_but_flagged():
    t = chrony.parse_tracking(LOCAL)
    assert t["local_reference"] is True
    assert t["synchronised"] is True
    assert chrony.parse_tracking(LOCAL.replace(",1,", ",0,", 1))["synchronised"] is False
    assert chrony.parse_tracking(LOCAL.replace("Normal", "Not synchronised"))["synchronised"] is False


@pytest.mark.parametrize(
    "leap, synced",
    [("Normal", True), ("Insert second", True), ("Delete second", True), ("Not synchronised", False)],
)
def test_leap_states(leap, synced):
    t = chrony.parse_tracking(with_fields(leap_status=leap))
    assert t["leap_status"] == leap
    assert t["synchronised"] is synced


def test_no_reference_id_is_never_synchronised():
    assert chrony.parse_tracking(with_fields(reference_id="00000000"))["synchronised"] is False


def test_lowercase_hex_bytes_and_surrounding_blank_lines():
    t = chrony.parse_tracking(("\n" + with_fields(reference_id="a9fea97b") + "\n\n").encode())
    assert t["reference_id"] == "A9FEA97B"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("506 Cannot talk to daemon", "14 comma-separated fields, got 1"),
        (SYNCED.strip() + ",extra", "got 15"),
        (SYNCED + SYNCED, "one CSV line"),
        (with_fields(reference_id="XYZ"), "reference_id"),
        (with_fields(reference_id="A9FEA97"), "reference_id"),
        (with_fields(stratum="three"), "stratum"),
        (with_fields(stratum="17"), "stratum"),
        (with_fields(offset="abc"), "offset"),
        (with_fields(offset="nan"), "offset"),
        (with_fields(root_delay="-0.1"), "root_delay"),
        (with_fields(root_dispersion="inf"), "root_dispersion"),
        (with_fields(leap_status=""), "leap_status"),
        (b"\xff\xfe", "ASCII"),
        (None, "must be a string"),
    ],
)
def test_malformed_input_raises_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        chrony.parse_tracking(text)


def test_uncertainty_needs_parsed_tracking():
    with pytest.raises(ValueError, match="parse_tracking"):
        chrony.uncertainty_ns({"offset": 0.0})


def test_module_is_stdlib_only_and_sanity_shaped():
    source = _PATH.read_text()
    assert "from __future__ import absolute_import, division, print_function" in source
    assert "__metaclass__ = type" in source
    assert "# Copyright: scratchbird.cluster contributors" in source
    assert "print(" not in source and "sys.exit" not in source
    # 3.7 grammar: no walrus, no match; Ansible ships module_utils to old targets
    tree = ast.parse(source, feature_version=(3, 7))
    assert " | None" not in source and "-> " not in source  # no annotations at all
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "math", "os"}  # standard library only


# --- sources, sourcestats, summary, collect: real chronyc 4.3 output (fixtures/README.md) ---

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


def fixture(situation, report):
    return (FIXTURES / ("%s.%s.csv" % (situation, report))).read_text()


def reports(situation):
    return [fixture(situation, r) for r in chrony.REPORTS]


def by_name(items):
    return dict((item["name"], item) for item in items)


def test_sources_of_a_synced_client():
    sources = chrony.parse_sources(fixture("client-synced", "sources"))
    assert [s["name"] for s in sources] == ["10.213.10.11", "10.213.10.250"]
    srv, lost = sources
    assert srv == {
        "mode": "server",
        "mode_char": "^",
        "state": "selected",
        "state_char": "*",
        "selected": True,
        "name": "10.213.10.11",
        "stratum": 8,
        "poll": 0,
        "reach": 255,
        "reach_octal": "377",
        "last_rx": 1,
        "offset": pytest.approx(0.000003563),
        "offset_ns": 3563,
        "measured_offset": pytest.approx(0.000003067),
        "measured_offset_ns": 3067,
        "error": pytest.approx(0.000010456),
        "error_ns": 10456,
    }
    assert lost["state"] == "unusable" and lost["state_char"] == "?" and lost["selected"] is False
    assert lost["reach"] == 0 and lost["reach_octal"] == "0"
    assert lost["last_rx"] is None  # chronyc prints 4294967295: never received
    assert lost["poll"] == 2 and lost["stratum"] == 0


@pytest.mark.parametrize(
    "situation, states",
    [
        ("client-starting", ["unusable"] * 4),
        ("client-first-selection", ["selected", "unusable"]),
        ("client-multi", ["combined", "selected", "falseticker", "unusable"]),
        ("client-not-combined", ["selected", "not_combined", "falseticker", "unusable"]),
        ("client-too-variable", ["too_variable"] * 3 + ["unusable"]),
        ("client-source-lost", ["unusable", "unusable"]),
        ("server-local", ["unusable"]),
        ("server-local-no-sources", []),
    ],
)
def test_every_state_chronyc_prints(situation, states):
    sources = chrony.parse_sources(fixture(situation, "sources"))
    assert [s["state"] for s in sources] == states
    assert [s["selected"] for s in sources] == [state == "selected" for state in states]
    assert all(isinstance(s[k], int) for s in sources for k in ("offset_ns", "measured_offset_ns", "error_ns"))


def test_reach_is_octal_and_falseticker_offsets_are_signed():
    multi = by_name(chrony.parse_sources(fixture("client-multi", "sources")))
    assert multi["10.213.10.14"]["offset_ns"] == -500001311  # offset 0.5 on its server line
    assert multi["10.213.10.14"]["state_char"] == "x"
    first = chrony.parse_sources(fixture("client-first-selection", "sources"))[0]
    assert first["reach"] == 7 and first["reach_octal"] == "7" and first["last_rx"] == 0
    lost = chrony.parse_sources(fixture("client-source-lost", "sources"))[0]
    assert lost["reach"] == 0 and lost["last_rx"] == 27


def test_refclock_mode_and_refid_name():
    (gps,) = chrony.parse_sources(fixture("server-local", "sources"))
    assert gps["mode"] == "refclock" and gps["mode_char"] == "#" and gps["name"] == "GPS"
    peer = chrony.parse_sources("=,+,10.0.0.2,3,6,377,12,0.000001,0.000001,0.00002")[0]
    assert peer["mode"] == "peer" and peer["state"] == "combined"


def test_sourcestats():
    stats = chrony.parse_sourcestats(fixture("client-multi", "sourcestats"))
    assert [s["name"] for s in stats] == ["10.213.10.11", "10.213.10.13", "10.213.10.14", "10.213.10.250"]
    assert stats[0] == {
        "name": "10.213.10.11",
        "samples": 17,
        "runs": 11,
        "span": 15,
        "frequency_ppm": pytest.approx(0.032),
        "frequency_skew_ppm": pytest.approx(0.376),
        "offset": pytest.approx(0.00000015),
        "offset_ns": 150,
        "std_dev": pytest.approx(0.00000163),
        "std_dev_ns": 1630,
    }
    assert stats[2]["offset_ns"] == -500001371
    empty = stats[3]
    assert empty["samples"] == 0 and empty["std_dev_ns"] == 4000000000 and empty["frequency_skew_ppm"] == 2000.0
    first = chrony.parse_sourcestats(fixture("client-first-selection", "sourcestats"))[0]
    assert first["frequency_ppm"] == 0.0  # chronyc prints -0.000
    assert chrony.parse_sourcestats(fixture("server-local-no-sources", "sourcestats")) == []


def test_reports_accept_bytes_and_blank_lines():
    text = "\n" + fixture("client-synced", "sources") + "\n\n"
    assert chrony.parse_sources(text.encode()) == chrony.parse_sources(fixture("client-synced", "sources"))
    assert chrony.parse_sourcestats(b"") == []


SOURCE_LINE = "^,*,10.213.10.11,8,0,377,1,0.000003563,0.000003067,0.000010456"
STATS_LINE = "10.213.10.11,12,9,12,-0.004,0.637,-0.000000001,0.000001766"


def with_source(**changes):
    fields = SOURCE_LINE.split(",")
    for name, value in changes.items():
        fields[chrony.SOURCES_FIELDS.index(name)] = value
    return ",".join(fields)


def with_stats(**changes):
    fields = STATS_LINE.split(",")
    for name, value in changes.items():
        fields[chrony.SOURCESTATS_FIELDS.index(name)] = value
    return ",".join(fields)


@pytest.mark.parametrize(
    "text, message",
    [
        ("506 Cannot talk to daemon", "sources line 1 must have 10 comma-separated fields, got 1"),
        (SOURCE_LINE + "\n" + SOURCE_LINE + ",x", "line 2 .* got 11"),
        (with_source(mode="!"), "field mode"),
        (with_source(state="#"), "field state"),
        (with_source(name=""), "field name: empty"),
        (with_source(stratum="17"), "field stratum: out of range"),
        (with_source(poll="six"), "field poll: not an integer"),
        (with_source(reach="378"), "field reach: not an integer"),  # octal
        (with_source(reach="400"), "field reach: out of range"),
        (with_source(last_rx="-1"), "field last_rx"),
        (with_source(offset="nan"), "field offset: not a finite"),
        (with_source(measured_offset="x"), "field measured_offset: not a number"),
        (with_source(error="-0.1"), "field error: must not be negative"),
        (b"\xff", "sources output is not ASCII"),
        (None, "must be a string"),
    ],
)
def test_malformed_sources(text, message):
    with pytest.raises(ValueError, match=message):
        chrony.parse_sources(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("506 Cannot talk to daemon", "sourcestats line 1 must have 8 comma-separated fields, got 1"),
        (SOURCE_LINE, "got 10"),
        (with_stats(name=""), "field name: empty"),
        (with_stats(samples="1.5"), "field samples: not an integer"),
        (with_stats(span="-3"), "field span: out of range"),
        (with_stats(frequency_ppm="inf"), "field frequency_ppm: not a finite"),
        (with_stats(frequency_skew_ppm="-1"), "frequency_skew_ppm: must not be negative"),
        (with_stats(std_dev="-0.1"), "field std_dev: must not be negative"),
    ],
)
def test_malformed_sourcestats(text, message):
    with pytest.raises(ValueError, match=message):
        chrony.parse_sourcestats(text)


def test_summary_of_a_synced_client():
    s = chrony.summary(*reports("client-multi"))
    assert s["synchronised"] is True
    assert s["selected_source"] == "10.213.10.13"
    assert s["reference_id"] == "0AD50A0D" and s["reference_name"] == "10.213.10.13"
    assert s["local_reference"] is False
    assert s["stratum"] == 9 and s["leap_status"] == "Normal"
    assert (s["offset_ns"], s["root_delay_ns"], s["root_dispersion_ns"]) == (1826, 10067, 6594)
    assert s["uncertainty_ns"] == 1826 + 6594 + 10067 // 2 + 1  # 5033.5 rounds up
    assert s["uncertainty_ns"] == chrony.uncertainty_ns(s["tracking"])
    assert s["tracking"]["frequency_ppm"] == pytest.approx(-0.056)
    assert [(x["name"], x["state"]) for x in s["sources"]] == [
        ("10.213.10.11", "combined"),
        ("10.213.10.13", "selected"),
        ("10.213.10.14", "falseticker"),
        ("10.213.10.250", "unusable"),
    ]
    assert s["sources"][1]["stats"]["std_dev_ns"] == 1450 and "name" not in s["sources"][1]["stats"]


def test_summary_takes_parsed_reports_too():
    tracking, sources, sourcestats = reports("client-synced")
    parsed = chrony.summary(chrony.parse_tracking(tracking), chrony.parse_sources(sources),
                            chrony.parse_sourcestats(sourcestats))
    assert parsed == chrony.summary(tracking, sources, sourcestats)
    assert parsed["uncertainty_ns"] == 6302 + 2760 + 18931 // 2 + 1


def test_summary_without_sourcestats_or_with_a_missing_line():
    tracking, sources, dummy = reports("client-synced")
    assert all(x["stats"] is None for x in chrony.summary(tracking, sources)["sources"])
    partial = chrony.summary(tracking, sources, fixture("client-synced", "sourcestats").splitlines()[0])
    assert partial["sources"][0]["stats"]["samples"] == 12
    assert partial["sources"][1]["stats"] is None


@pytest.mark.parametrize(
    "situation, synchronised, selected, local",
    [
        ("client-starting", False, None, False),
        ("client-first-selection", False, "10.213.10.11", False),  # a * before tracking caught up
        ("client-synced", True, "10.213.10.11", False),
        ("client-not-combined", True, "10.213.10.11", False),
        ("client-too-variable", False, None, False),
        ("client-source-lost", True, None, False),  # still Normal, but nothing selected
        ("server-local", True, None, True),
        ("server-local-no-sources", True, None, True),
    ],
)
def test_summary_of_each_situation(situation, synchronised, selected, local):
    s = chrony.summary(*reports(situation))
    assert (s["synchronised"], s["selected_source"], s["local_reference"]) == (synchronised, selected, local)


def test_unsynchronised_summary_has_a_large_uncertainty():
    s = chrony.summary(*reports("client-starting"))
    assert s["reference_id"] == "00000000" and s["stratum"] == 0
    assert s["uncertainty_ns"] == 1500000000


@pytest.mark.parametrize("leap", ["insert", "delete"])
def test_leap_second_pending_is_still_synchronised(leap):
    dummy, sources, sourcestats = reports("client-synced")
    s = chrony.summary(fixture("derived-leap-" + leap, "tracking"), sources, sourcestats)
    assert s["leap_status"] == "%s second" % leap.capitalize()
    assert s["synchronised"] is True


class Run:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        return self.answers[argv[-1]]


def answers(situation):
    return dict((r, (0, fixture(situation, r), "")) for r in chrony.REPORTS)


def test_collect_runs_the_three_reports():
    run = Run(answers("client-synced"))
    s = chrony.collect(run, "/usr/sbin/chronyc")
    assert run.calls == [["/usr/sbin/chronyc", "-n", "-c", r] for r in ("tracking", "sources", "sourcestats")]
    assert s == chrony.summary(*reports("client-synced"))


def test_collect_accepts_bytes():
    run = Run(dict((r, (0, out.encode(), b"")) for r, (rc, out, err) in answers("client-synced").items()))
    assert chrony.collect(run)["selected_source"] == "10.213.10.11"


def test_collect_daemon_down():
    down = (FIXTURES / "daemon-down.stdout.txt").read_text()
    run = Run({"tracking": (1, down, "")})
    with pytest.raises(chrony.ChronycError, match="chronyd is not running or does not answer: "
                       "`chronyc -n -c tracking` exited 1: 506 Cannot talk to daemon") as info:
        chrony.collect(run)
    assert info.value.daemon_unreachable is True
    assert info.value.rc == 1 and info.value.command == "chronyc -n -c tracking"
    assert len(run.calls) == 1


def test_collect_other_chronyc_failures():
    failing = answers("client-synced")
    failing["sources"] = (1, "", "501 Not authorised\n")
    with pytest.raises(chrony.ChronycError, match="`chronyc -n -c sources` failed with exit code 1: 501 Not authorised") as info:
        chrony.collect(Run(failing))
    assert info.value.daemon_unreachable is False
    failing["sources"] = (2, None, None)
    with pytest.raises(chrony.ChronycError, match=r"exit code 2: \(no output\)"):
        chrony.collect(Run(failing))


def test_collect_unparsable_output():
    garbled = answers("client-synced")
    garbled["sourcestats"] = (0, "what,is,this\n", "")
    with pytest.raises(ValueError, match="cannot parse the output of chronyc -n -c: chronyc -c sourcestats line 1"):
        chrony.collect(Run(garbled))


def test_fixtures_are_real_chronyc_csv():
    """Every captured report parses; a guard against a fixture edited by hand."""
    situations = sorted(set(p.name.split(".")[0] for p in FIXTURES.glob("*.csv")))
    assert len(situations) >= 10
    for situation in situations:
        for report in chrony.REPORTS:
            path = FIXTURES / ("%s.%s.csv" % (situation, report))
            if path.exists():
                getattr(chrony, "parse_" + report)(path.read_text())
