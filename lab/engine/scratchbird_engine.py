# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""ScratchBird cluster stand-in engine (dev/lab only).

NOT a database.  One small program that honours the deployment contract of the
operator-supplied engines (tx-engine, ingestion-engine, olap-shard,
clock-master): same config files and schemas, same ports, /health /ready
/metrics, systemd Type=notify, clean SIGTERM.  See docs/standin-engine.md.

Python 3.11 standard library plus PyYAML (bundled into the built artifact).
"""

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

try:  # written by lab/engine/build.py into the artifact
    import scratchbird_build_info as _build_info

    VERSION = _build_info.VERSION
    FAULT = _build_info.FAULT
except ImportError:
    VERSION = "0.0.0+source"
    FAULT = None

PROGRAM = "scratchbird-engine"
FAULTS = ("unhealthy",)

EXIT_OK = 0
EXIT_RUNTIME = 1  # could not start: data dir, bind, TLS files
EXIT_CONFIG = 2  # invalid configuration or usage


def _load_module_util(name):
    """The collection's plugins/module_utils/<name>.py itself; never a copy of its logic.

    Looked up as scratchbird_<name> (the built artifact: build.py embeds the file under
    that name), then in an installed scratchbird.cluster collection, then in the source
    tree this file belongs to.
    """
    candidates = ("scratchbird_" + name, "ansible_collections.scratchbird.cluster.plugins.module_utils." + name)
    for module_name in candidates:
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # only "not there"; a broken module must not be skipped
            if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
                raise
    here = os.path.dirname(os.path.abspath(__file__))  # source tree: <repo>/lab/engine
    path = os.path.join(here, os.pardir, os.pardir, "plugins", "module_utils", name + ".py")
    spec = importlib.util.spec_from_file_location(candidates[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chrony = _load_module_util("chrony")  # chronyc output parser
schema = _load_module_util("engine_schema")  # the config files' contract


class Tier:
    def __init__(self, name, prefix, default_config, data_dir, metrics_port):
        self.name = name
        self.prefix = prefix  # Prometheus metric prefix
        document = schema.SCHEMAS.get(name)
        self.config_key = document.top_key if document else None  # top key of the tier file (None: no tier file)
        self.default_config = default_config
        self.data_dir = data_dir
        self.metrics_port = metrics_port


TIERS = {
    t.name: t
    for t in (
        Tier("tx-engine", "tx_engine", "/etc/db/tx-engine.yaml", "/var/lib/db/tx-engine", 9090),
        Tier("ingestion-engine", "ingestion", "/etc/db/ingestion.yaml", "/var/lib/db/ingestion", 9091),
        Tier("olap-shard", "olap_shard", "/etc/db/olap.yaml", "/var/lib/db/olap", 9092),
        Tier("clock-master", "clock_master", None, "/var/lib/db/clock-master", 9093),
    )
}
DEFAULT_CLUSTER_CONFIG = "/etc/db/cluster.yaml"
DEFAULT_HEARTBEAT_PORT = 8888
DEFAULT_HEARTBEAT_INTERVAL_MS = 100
DEFAULT_MAX_UNCERTAINTY_NS = 50000000
MARKER_FILE = ".scratchbird-standin.json"

# --------------------------------------------------------------------------
# Configuration files (their schema: plugins/module_utils/engine_schema.py)
# --------------------------------------------------------------------------


class ConfigError(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, dummy in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r (first at line %d)" % (key, seen[key] + 1), key_node.start_mark
            )
        try:
            seen[key] = key_node.start_mark.line
        except TypeError:  # unhashable key; let the base constructor report it
            break
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path):
    """-> parsed document; raises ConfigError("<file>: ...")."""
    label = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError("%s: cannot read %s: %s" % (label, path, exc.strerror or exc))
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not UTF-8 text: %s" % (label, exc))
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("%s: YAML error%s: %s" % (label, where, problem))


def _get(doc, *keys, default=None):
    for key in keys:
        if not isinstance(doc, dict) or doc.get(key) is None:
            return default
        doc = doc[key]
    return doc


class Settings:
    """Validated configuration plus the values the service derives from it."""

    def __init__(self, tier, args):
        self.tier = tier
        self.cluster_path = args.cluster_config
        self.tier_path = args.config or tier.default_config
        errors = []
        self.cluster = self._load(self.cluster_path, "cluster", errors) or {}
        # The metrics port is unknown while cluster.yaml is invalid; then only --metrics-port is checked.
        self.metrics_port, metrics_from = self._metrics_port(args, bool(self.cluster))
        self.tier_doc = {}
        if tier.config_key:
            checks = {"metrics_port": self.metrics_port, "metrics_port_from": metrics_from}
            self.tier_doc = self._load(self.tier_path, tier.name, errors, **checks) or {}
        if not errors:
            self._derive(args)
        self.errors = errors

    @staticmethod
    def _load(path, kind, errors, **checks):
        """The parsed, valid document, or None after adding its problems ("<file>: ...") to errors."""
        label = os.path.basename(path)
        try:
            doc = load_yaml(path)
        except ConfigError as exc:
            errors.append(str(exc))
            return None
        if doc is None:
            errors.append("%s: file is empty" % label)
            return None
        problems = schema.errors(doc, kind, **checks)
        errors.extend("%s: %s" % (label, problem) for problem in problems)
        return None if problems else doc

    def _metrics_port(self, args, cluster_ok):
        """(port, where it comes from); (None, None) while cluster.yaml, which may set it, is invalid."""
        if args.metrics_port:
            return args.metrics_port, "set by --metrics-port"
        if not cluster_ok:
            return None, None
        port = _get(self.cluster, "cluster", "monitoring", "prometheus_port")
        if port:
            return port, "set by cluster.monitoring.prometheus_port"
        where = "the %s default; set another with cluster.monitoring.prometheus_port or --metrics-port"
        return self.tier.metrics_port, where % self.tier.name

    def _derive(self, args):
        c = self.cluster["cluster"]
        t = self.tier_doc[self.tier.config_key] if self.tier.config_key else {}
        self.cluster_name = c["name"]
        self.heartbeat_port = args.heartbeat_port or _get(c, "clock", "heartbeat_port", default=DEFAULT_HEARTBEAT_PORT)
        self.heartbeat_interval = (
            _get(c, "clock", "heartbeat_interval_ms", default=DEFAULT_HEARTBEAT_INTERVAL_MS) / 1000.0
        )
        self.max_uncertainty_ns = _get(c, "clock", "max_acceptable_uncertainty_ns", default=DEFAULT_MAX_UNCERTAINTY_NS)
        self.log_level = _get(c, "monitoring", "log_level", default="info")
        self.tls = _get(c, "security", "enable_tls", default=False)
        self.tls_files = {
            "tls_cert_path": _get(c, "security", "tls_cert_path", default="/etc/db/security/server.crt"),
            "tls_key_path": _get(c, "security", "tls_key_path", default="/etc/db/security/server.key"),
            "tls_ca_path": _get(c, "security", "tls_ca_path", default="/etc/db/security/ca.crt"),
        }
        self.data_dir = args.data_dir or _get(t, "storage", "data_dir", default=self.tier.data_dir)
        self.listeners = t.get("listeners", []) if self.tier.name == "tx-engine" else []
        self.server_id = t.get("server_id", "auto") if self.tier.name == "tx-engine" else None
        if self.server_id == "auto":
            # Stand-in for "auto-assign from pool": stable per host name.
            self.server_id = zlib.crc32(socket.gethostname().encode()) % 1000000


# --------------------------------------------------------------------------
# Runtime
# --------------------------------------------------------------------------

_LEVELS = {"debug": (10, 7), "info": (20, 6), "warning": (30, 4), "error": (40, 3)}


class Log:
    """One line per event on stderr (the journal under systemd, with <N> priority prefixes)."""

    def __init__(self, tier_name):
        self.tier_name = tier_name
        self.threshold = 20
        self.journal = bool(os.environ.get("JOURNAL_STREAM"))
        self.lock = threading.Lock()

    def set_level(self, name):
        self.threshold = _LEVELS.get(name, _LEVELS["info"])[0]

    def __call__(self, event, level="info", **fields):
        rank, syslog = _LEVELS[level]
        if rank < self.threshold:
            return
        parts = [event] + ["%s=%s" % (k, v) for k, v in fields.items()]
        if self.journal:
            line = "<%d>%s: %s\n" % (syslog, self.tier_name, " ".join(parts))
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            line = "%sZ %s[%d] %s: %s\n" % (stamp, self.tier_name, os.getpid(), level, " ".join(parts))
        with self.lock:
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


def sd_notify(message, log):
    """Send a datagram to $NOTIFY_SOCKET (path or abstract '@name'); no-op without it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log("sd_notify unsupported address", level="warning", address=address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as exc:
        log("sd_notify failed", level="warning", error=exc)
        return False


class ClockSource:
    """`chronyc -n -c tracking`, parsed by the collection's module_utils, cached briefly."""

    TTL = 1.0

    def __init__(self, chronyc):
        self.chronyc = chronyc
        self.lock = threading.Lock()
        self.stamp = None
        self.value = None

    def tracking(self):
        with self.lock:
            now = time.monotonic()
            if self.stamp is None or now - self.stamp >= self.TTL:
                self.value = self._query()
                self.stamp = time.monotonic()
            return self.value

    def _query(self):
        exe = shutil.which(self.chronyc)
        if not exe:
            return None
        try:
            done = subprocess.run(
                [exe, "-n", "-c", "tracking"],
                check=False,
                capture_output=True,
                text=True,
                timeout=3,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        try:
            data = chrony.parse_tracking(done.stdout)
        except ValueError:
            return None
        data["uncertainty_ns"] = chrony.uncertainty_ns(data)
        return data


def _family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


class Engine:
    def __init__(self, tier, settings, args, log):
        self.tier = tier
        self.s = settings
        self.args = args
        self.log = log
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        self.stop_event = threading.Event()
        self.ready = False
        self.clock = ClockSource(args.chronyc)
        self.lock = threading.Lock()
        self.tcp = []  # [(socket, listener dict, counter dict)]
        self.udp = None
        self.httpd = None
        self.threads = []
        self.beats_received = 0
        self.beats_missed = 0
        self.last_beat = None
        self.last_beat_from = None
        self.beats_sent = 0
        self.signal_reader = self.signal_writer = None  # see install_signal_handlers
        self.tls_cert_sha256 = None  # the certificate in use (loaded at start, again on SIGHUP)
        self.tls_reloads = 0
        self.heartbeat_targets = [(host, port or settings.heartbeat_port) for host, port in args.heartbeat_target or []]

    # ---- startup ---------------------------------------------------------
    def prepare_data_dir(self):
        path = self.s.data_dir
        os.makedirs(path, exist_ok=True)
        marker = os.path.join(path, MARKER_FILE)
        tmp = marker + ".tmp"
        info = {
            "tier": self.tier.name,
            "version": VERSION,
            "fault": FAULT,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": int(self.started),
        }
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
            handle.write("\n")
        os.replace(tmp, marker)

    def check_tls_files(self):
        problems = []
        for key, path in sorted(self.s.tls_files.items()):
            if not os.access(path, os.R_OK):
                problems.append("cluster.security.%s: %s is missing or not readable" % (key, path))
            elif key == "tls_key_path" and os.stat(path).st_mode & 0o077:
                problems.append(
                    "cluster.security.tls_key_path: %s must not be accessible by group/others (mode 0600)" % path
                )
        return problems

    def load_tls(self):
        """Take the certificate in use (the stand-in serves no TLS; it tracks what it would serve)."""
        with open(self.s.tls_files["tls_cert_path"], "rb") as handle:
            self.tls_cert_sha256 = hashlib.sha256(handle.read()).hexdigest()

    def open_sockets(self):
        bind = self.args.bind
        family = _family(bind)
        for listener in self.s.listeners:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bind, listener["port"]))
            sock.listen(128)
            sock.setblocking(False)
            self.tcp.append((sock, listener, {"accepted": 0}))
            self.log(
                "listening", proto="tcp", address="%s:%d" % (bind, listener["port"]), protocol=listener["protocol"]
            )
        if self.tier.name in ("tx-engine", "clock-master"):
            self.udp = socket.socket(family, socket.SOCK_DGRAM)
            self.udp.bind((bind, self.s.heartbeat_port))
            self.udp.setblocking(False)
            self.log("listening", proto="udp", address="%s:%d" % (bind, self.s.heartbeat_port), purpose="heartbeat")
        server = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        self.httpd = server((bind, self.s.metrics_port), type("Handler", (HTTPHandler,), {"engine": self}))
        self.log("listening", proto="http", address="%s:%d" % (bind, self.s.metrics_port), purpose="metrics")

    def start_threads(self):
        self._spawn("http", self.httpd.serve_forever, 0.2)
        if self.tcp or self.udp:
            self._spawn("io", self._io_loop)
        if self.heartbeat_targets:
            self._spawn("heartbeat-sender", self._send_heartbeats)
        watchdog_usec = os.environ.get("WATCHDOG_USEC", "")
        watchdog_pid = os.environ.get("WATCHDOG_PID", str(os.getpid()))
        if watchdog_usec.isdigit() and int(watchdog_usec) > 0 and watchdog_pid == str(os.getpid()):
            self._spawn("watchdog", self._watchdog, int(watchdog_usec) / 2e6)

    def _spawn(self, name, target, *args):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    # ---- loops -----------------------------------------------------------
    def _io_loop(self):
        sel = selectors.DefaultSelector()
        for entry in self.tcp:
            sel.register(entry[0], selectors.EVENT_READ, entry)
        if self.udp:
            sel.register(self.udp, selectors.EVENT_READ, None)
        banner = ("scratchbird stand-in %s %s\n" % (self.tier.name, VERSION)).encode()
        while not self.stop_event.is_set():
            for key, dummy in sel.select(timeout=0.2):
                if key.data is None:
                    self._receive_heartbeats()
                else:
                    self._accept(key.data, banner)
        sel.close()

    def _accept(self, entry, banner):
        sock, listener, counter = entry
        try:
            conn, peer = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.log("accept failed", level="warning", port=listener["port"], error=exc)
            return
        with self.lock:
            counter["accepted"] += 1
        try:
            conn.settimeout(1.0)
            conn.sendall(banner)
        except OSError:
            pass
        finally:
            conn.close()
        self.log("connection", level="debug", protocol=listener["protocol"], peer=peer[0])

    def _receive_heartbeats(self):
        while True:
            try:
                peer = self.udp.recvfrom(2048)[1]
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            now = time.monotonic()
            with self.lock:
                if self.last_beat is not None:
                    self.beats_missed += self._missed(now - self.last_beat)
                self.beats_received += 1
                self.last_beat = now
                self.last_beat_from = peer[0]

    def _missed(self, gap):
        """Heartbeat intervals that passed without a beat (rounded, so jitter is not a miss)."""
        return max(0, int(gap / self.s.heartbeat_interval + 0.5) - 1)

    def heartbeat_counts(self):
        with self.lock:
            missed = self.beats_missed
            if self.last_beat is not None:
                missed += self._missed(time.monotonic() - self.last_beat)
            return self.beats_received, missed

    def _send_heartbeats(self):
        host = socket.gethostname()
        sockets = {}
        seq = 0
        while not self.stop_event.wait(self.s.heartbeat_interval):
            seq += 1
            payload = ("SBHB1 %s %d %d" % (host, seq, time.time_ns())).encode()
            for target in self.heartbeat_targets:
                family = _family(target[0])
                if family not in sockets:
                    sockets[family] = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sockets[family].sendto(payload, target)
                    with self.lock:
                        self.beats_sent += 1
                except OSError as exc:
                    if seq == 1:
                        self.log("heartbeat send failed", level="warning", target="%s:%d" % target, error=exc)
        for sock in sockets.values():
            sock.close()

    def _watchdog(self, period):
        while not self.stop_event.wait(period):
            sd_notify("WATCHDOG=1", self.log)

    # ---- reporting -------------------------------------------------------
    def clock_report(self):
        report = {"source": "chronyc", "available": False, "max_acceptable_uncertainty_ns": self.s.max_uncertainty_ns}
        data = self.clock.tracking()
        if data is not None:
            report.update(
                available=True,
                synchronised=data["synchronised"],
                reference=data["reference_name"] or data["reference_id"],
                stratum=data["stratum"],
                leap_status=data["leap_status"],
                offset_ns=data["offset_ns"],
                uncertainty_ns=data["uncertainty_ns"],
                within_bound=data["uncertainty_ns"] <= self.s.max_uncertainty_ns,
            )
        if self.udp is not None:
            received, missed = self.heartbeat_counts()
            report["heartbeats_received"] = received
            report["heartbeats_missed"] = missed
            report["last_heartbeat_from"] = self.last_beat_from
        return report

    def uptime(self):
        return time.monotonic() - self.started_monotonic

    def health(self):
        if FAULT == "unhealthy":
            return 503, {"status": "failing", "tier": self.tier.name, "version": VERSION, "fault": FAULT}
        return 200, {
            "status": "ok",
            "tier": self.tier.name,
            "version": VERSION,
            "server_id": self.s.server_id,
            "cluster": self.s.cluster_name,
            "host": socket.gethostname(),
            "uptime_s": round(self.uptime(), 3),
            "clock": self.clock_report(),
            "tls": {"cert_sha256": self.tls_cert_sha256, "reloads": self.tls_reloads} if self.s.tls else None,
        }

    def metrics(self):
        """Prometheus text format.  Samples: a plain value, or [(labels dict, value), ...]."""
        p = self.tier.prefix
        out = []

        def metric(name, kind, help_text, samples):
            out.append("# HELP %s %s" % (name, help_text))
            out.append("# TYPE %s %s" % (name, kind))
            for labels, value in samples if isinstance(samples, list) else [({}, samples)]:
                text = ",".join(
                    '%s="%s"' % (k, str(v).replace("\\", "\\\\").replace('"', '\\"')) for k, v in labels.items()
                )
                out.append("%s%s %s" % (name, "{%s}" % text if text else "", value))

        build = {"version": VERSION, "tier": self.tier.name, "fault": FAULT or ""}
        metric(p + "_up", "gauge", "1 while the stand-in engine runs.", 1)
        metric(p + "_build_info", "gauge", "Build of the stand-in engine.", [(build, 1)])
        metric(p + "_healthy", "gauge", "1 when /health answers 200.", int(FAULT != "unhealthy"))
        metric(p + "_uptime_seconds", "gauge", "Seconds since start.", "%.3f" % self.uptime())
        data = self.clock.tracking()
        metric(p + "_clock_tracking_available", "gauge", "1 when chronyc -c tracking answered.", int(bool(data)))
        if data is not None:
            uncertainty = data["uncertainty_ns"]
            metric(
                p + "_clock_uncertainty_nanoseconds", "gauge", "|offset| + root dispersion + root delay/2.", uncertainty
            )
            metric(p + "_clock_offset_nanoseconds", "gauge", "System clock offset from chrony.", data["offset_ns"])
            metric(p + "_clock_synchronised", "gauge", "1 when chrony is synchronised.", int(data["synchronised"]))
            metric(p + "_clock_stratum", "gauge", "chrony stratum.", data["stratum"])
            if self.tier.name == "clock-master":
                metric("clock_master_uncertainty_nanoseconds", "gauge", "Clock master uncertainty.", uncertainty)
                metric("clock_master_drift_ppm", "gauge", "chrony frequency error (ppm).", data["frequency_ppm"])
                metric("clock_master_jitter_nanoseconds", "gauge", "chrony RMS offset.", data["rms_offset_ns"])
        if self.udp is not None:
            received, missed = self.heartbeat_counts()
            metric(p + "_clock_heartbeats_received_total", "counter", "Heartbeat datagrams received.", received)
            metric(p + "_clock_heartbeats_missed_total", "counter", "Heartbeat intervals without a datagram.", missed)
        with self.lock:
            sent = self.beats_sent
            accepted = [
                ({"protocol": lst["protocol"], "port": lst["port"]}, n["accepted"]) for dummy, lst, n in self.tcp
            ]
        if self.heartbeat_targets:
            metric(p + "_clock_heartbeats_sent_total", "counter", "Heartbeat datagrams sent.", sent)
        if accepted:
            metric(
                p + "_connections_accepted_total", "counter", "Connections accepted (banner, then closed).", accepted
            )
        return "\n".join(out) + "\n"

    # ---- run -------------------------------------------------------------
    def run(self):
        self.install_signal_handlers()
        self.log(
            "starting",
            version=VERSION,
            config=self.s.tier_path or "-",
            cluster_config=self.s.cluster_path,
            data_dir=self.s.data_dir,
        )
        if FAULT:
            self.log("fault injection active", level="warning", fault=FAULT)
        try:
            self.prepare_data_dir()
        except OSError as exc:
            self.log("data dir not usable", level="error", path=self.s.data_dir, error=exc.strerror or exc)
            return EXIT_RUNTIME
        if self.s.tls:
            problems = self.check_tls_files()
            for problem in problems:
                self.log("tls material", level="error", problem=problem)
            if problems:
                return EXIT_RUNTIME
            self.load_tls()
        try:
            self.open_sockets()
        except OSError as exc:
            self.log("bind failed", level="error", error=exc.strerror or exc)
            self.close()
            return EXIT_RUNTIME
        self.start_threads()
        self.ready = True
        sd_notify("READY=1\nSTATUS=%s %s serving" % (self.tier.name, VERSION), self.log)
        self.log("ready", version=VERSION, metrics_port=self.s.metrics_port)
        self.wait_for_stop()
        self.ready = False
        sd_notify("STOPPING=1", self.log)
        self.log("stopping")
        self.close()
        self.log("stopped")
        return EXIT_OK

    def install_signal_handlers(self):
        """SIGTERM/SIGINT/SIGHUP arrive as bytes on a socketpair (signal.set_wakeup_fd).

        The Python-level handlers do nothing, so no lock is ever taken inside a
        signal handler; wait_for_stop() acts on them.  Main thread only.
        """
        self.signal_reader, self.signal_writer = socket.socketpair()  # keep both referenced: GC would close them
        self.signal_writer.setblocking(False)
        signal.set_wakeup_fd(self.signal_writer.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _ignore_signal)

    def wait_for_stop(self):
        """Block until SIGTERM/SIGINT; SIGHUP re-validates the config."""
        while True:
            for signum in self.signal_reader.recv(64):
                if signum == signal.SIGHUP:
                    self.reload()
                elif signum in (signal.SIGTERM, signal.SIGINT):
                    self.log("signal", name=signal.Signals(signum).name)
                    return

    def reload(self):
        settings = Settings(self.tier, self.args)
        if settings.errors:
            for error in settings.errors:
                self.log("reload: config invalid", level="error", error=error)
        else:
            self.log("reload: config ok (the stand-in applies config changes on restart only)")
        if self.s.tls:
            problems = self.check_tls_files()
            for problem in problems:
                self.log("reload: tls material", level="error", problem=problem)
            if not problems:
                self.load_tls()
                self.tls_reloads += 1
                self.log("reload: tls material loaded", cert_sha256=self.tls_cert_sha256)

    def close(self):
        self.stop_event.set()
        if self.httpd is not None and any(t.name == "http" for t in self.threads):
            self.httpd.shutdown()
        for thread in self.threads:
            thread.join(timeout=2)
        if self.httpd is not None:
            self.httpd.server_close()
        for entry in self.tcp:
            entry[0].close()
        if self.udp is not None:
            self.udp.close()


class HTTPHandler(BaseHTTPRequestHandler):
    engine = None
    server_version = "scratchbird-standin"
    sys_version = ""

    def log_message(self, *args):  # access logs stay quiet
        pass

    def _send(self, code, body, content_type):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, code, doc):
        self._send(code, json.dumps(doc, sort_keys=True) + "\n", "application/json")

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        engine = self.engine
        if path == "/health":
            self._json(*engine.health())
        elif path == "/ready":
            if engine.ready:
                self._json(200, {"ready": True, "tier": engine.tier.name})
            else:
                self._json(503, {"ready": False, "tier": engine.tier.name})
        elif path == "/metrics":
            self._send(200, engine.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._json(404, {"error": "not found", "paths": ["/health", "/ready", "/metrics"]})

    do_HEAD = do_GET


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _port(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a port number: %r" % text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("port %d out of range 1..65535" % value)
    return value


def _heartbeat_target(text):
    """HOST, HOST:PORT or [V6]:PORT -> (host, port or None)."""
    if text.startswith("[") and "]" in text:
        host, rest = text[1:].split("]", 1)
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
    if not host:
        raise argparse.ArgumentTypeError("missing host in %r" % text)
    return (host, _port(port) if port else None)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="ScratchBird cluster stand-in engine (dev/lab only, not a database). "
        "The tier comes from the invoked name (tx-engine, ingestion-engine, olap-shard, clock-master) or --tier.",
    )
    parser.add_argument("--tier", choices=sorted(TIERS))
    parser.add_argument("--cluster-config", default=DEFAULT_CLUSTER_CONFIG, metavar="PATH")
    parser.add_argument("--config", metavar="PATH", help="tier file (default /etc/db/<tier file>.yaml)")
    parser.add_argument("--check-config", action="store_true", help="validate the config files and exit")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--data-dir", metavar="PATH")
    parser.add_argument("--metrics-port", type=_port, metavar="PORT")
    parser.add_argument("--heartbeat-port", type=_port, metavar="PORT", help="override cluster.clock.heartbeat_port")
    parser.add_argument(
        "--bind", default="0.0.0.0", metavar="ADDRESS", help="address of every socket (default 0.0.0.0)"
    )
    parser.add_argument("--chronyc", default="chronyc", metavar="PATH", help="chronyc executable (default: from PATH)")
    parser.add_argument(
        "--heartbeat-target",
        action="append",
        type=_heartbeat_target,
        metavar="HOST[:PORT]",
        help="clock-master: send a heartbeat datagram here every heartbeat_interval_ms (repeatable)",
    )
    return parser


def version_line(tier_name):
    extra = ", fault: %s" % FAULT if FAULT else ""
    middle = " %s" % tier_name if tier_name else ""
    return "%s%s %s (stand-in%s)" % (PROGRAM, middle, VERSION, extra)


def tier_from_argv0(argv0):
    name = os.path.basename(argv0 or "")
    if name.endswith(".py"):
        name = name[:-3]
    return TIERS.get(name)


def main(argv=None):
    argv0 = sys.argv[0] if argv is None else PROGRAM
    args = build_parser().parse_args(argv)
    tier = TIERS[args.tier] if args.tier else tier_from_argv0(argv0)
    if args.version:
        print(version_line(tier.name if tier else None))
        return EXIT_OK
    if tier is None:
        sys.stderr.write(
            "%s: cannot tell the tier from the name %r; invoke it as one of %s or pass --tier\n"
            % (PROGRAM, os.path.basename(argv0), ", ".join(sorted(TIERS)))
        )
        return EXIT_CONFIG
    if args.config and tier.config_key is None:
        sys.stderr.write("%s: %s has no tier config file; use --cluster-config only\n" % (PROGRAM, tier.name))
        return EXIT_CONFIG
    if args.heartbeat_target and tier.name != "clock-master":
        sys.stderr.write("%s: --heartbeat-target is for clock-master only\n" % PROGRAM)
        return EXIT_CONFIG

    settings = Settings(tier, args)
    if settings.errors:
        for error in settings.errors:
            sys.stderr.write(error + "\n")
        if not args.check_config:
            sys.stderr.write("%s: %s: refusing to start with an invalid configuration\n" % (PROGRAM, tier.name))
        return EXIT_CONFIG
    if args.check_config:
        print("config ok")
        return EXIT_OK

    log = Log(tier.name)
    log.set_level(settings.log_level)
    return Engine(tier, settings, args, log).run()


def _ignore_signal(_signum, _frame):
    """Delivery happens through the wakeup fd (see Engine.wait_for_stop)."""


if __name__ == "__main__":
    sys.exit(main())
