#!/usr/bin/env python3
"""A stand-in GPS receiver for the lab: NMEA 0183 over TCP with the current UTC time.

Every connected client gets, once per second and just after the second boundary, a burst
of GPRMC (status A), GPGGA (fix quality 1), GPGSA (3D fix) and GPZDA sentences carrying the
time of that boundary.  gpsd reads it as a network device (``DEVICES="tcp://127.0.0.1:10110"``)
and, unlike for a pty, exports that time to chrony through NTP shared memory.

Python 3 standard library only: it runs on a lab host that has nothing but python3.

    nmea_feeder.py [--bind 127.0.0.1] [--port 10110] [--lat 52.3676] [--lon 4.9041]
    nmea_feeder.py --once          # one burst for the current second on stdout

SIGTERM/SIGINT stop it cleanly (exit 0).  Under systemd (``Type=notify``) it reports
READY=1 once it listens.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import select
import signal
import socket
import sys
import time

SATELLITES = (2, 5, 7, 9, 13, 15, 18, 20, 24, 29)   # 10 satellites in use
HDOP, PDOP, VDOP = 0.9, 1.6, 1.3
SEND_TIMEOUT_BURSTS = 5   # drop a client whose send buffer stays full this many bursts


def checksum(body: str) -> str:
    """XOR of every character between '$' and '*', two upper-case hex digits."""
    value = 0
    for char in body.encode("ascii"):
        value ^= char
    return f"{value:02X}"


def sentence(*fields: object) -> str:
    body = ",".join("" if f is None else str(f) for f in fields)
    return f"${body}*{checksum(body)}\r\n"


def _coord(value: float, degree_digits: int, positive: str, negative: str) -> tuple[str, str]:
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60.0
    if round(minutes, 4) >= 60.0:   # 59.99999' must not print as 60.0000'
        degrees, minutes = degrees + 1, 0.0
    return f"{degrees:0{degree_digits}d}{minutes:07.4f}", hemisphere


def burst(when: dt.datetime, lat: float, lon: float, alt: float = 12.0, zda: bool = True) -> str:
    """The sentences of one epoch (``when`` is UTC; its fraction is printed to 1/100 s)."""
    when = when.astimezone(dt.timezone.utc)
    hhmmss = f"{when:%H%M%S}.{when.microsecond // 10000:02d}"
    la, ns = _coord(lat, 2, "N", "S")
    lo, ew = _coord(lon, 3, "E", "W")
    sats = list(SATELLITES[:12]) + [None] * (12 - len(SATELLITES[:12]))
    out = [
        # time, status A(ctive), position, speed (kn), course, date, magnetic variation, mode A
        sentence("GPRMC", hhmmss, "A", la, ns, lo, ew, "0.00", "0.00", f"{when:%d%m%y}", None, None, "A"),
        # time, position, quality 1 (GPS fix), satellites, HDOP, altitude, geoid separation
        sentence("GPGGA", hhmmss, la, ns, lo, ew, 1, f"{len(SATELLITES):02d}", f"{HDOP:.1f}",
                 f"{alt:.1f}", "M", "46.9", "M", None, None),
        # automatic, 3D fix, PRNs in use, PDOP, HDOP, VDOP
        sentence("GPGSA", "A", 3, *(None if s is None else f"{s:02d}" for s in sats),
                 f"{PDOP:.1f}", f"{HDOP:.1f}", f"{VDOP:.1f}"),
    ]
    if zda:
        out.append(sentence("GPZDA", hhmmss, f"{when:%d}", f"{when:%m}", f"{when:%Y}", "00", "00"))
    return "".join(out)


def sd_notify(message: str) -> None:
    """systemd readiness (Type=notify) without libsystemd; a no-op outside systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(path)
            sock.sendall(message.encode())
        except OSError:
            pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Feeder:
    def __init__(self, bind: str, port: int, lat: float, lon: float, alt: float, zda: bool,
                 latency: float = 0.0, jitter: float = 0.0):
        self.lat, self.lon, self.alt, self.zda = lat, lon, alt, zda
        self.latency, self.jitter = latency, jitter
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.server = socket.socket(family, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((bind, port))
        self.server.listen(16)
        self.server.setblocking(False)
        self.clients: dict[socket.socket, dict] = {}
        # SIGTERM/SIGINT wake select() through this pipe; the loop then ends cleanly.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.stopping = False

    def _lag(self) -> float:
        """When, after the second boundary, this epoch's burst goes out (a real receiver
        sends NMEA some 10-500 ms late and not always equally late)."""
        return self.latency + (random.uniform(0.0, self.jitter) if self.jitter else 0.0)

    def stop(self, signum, _frame) -> None:
        self.stopping = True
        try:
            os.write(self.wake_w, bytes([signum]))
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.server.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.clients[conn] = {"peer": peer, "pending": b"", "stalled": 0}
            log(f"client {peer[0]}:{peer[1]} connected ({len(self.clients)} connected)")

    def _drop(self, conn: socket.socket, why: str) -> None:
        info = self.clients.pop(conn, None)
        conn.close()
        if info:
            peer = info["peer"]
            log(f"client {peer[0]}:{peer[1]} {why} ({len(self.clients)} connected)")

    def _drain(self, conn: socket.socket) -> None:
        """Read and discard what a client sends (gpsd may probe the 'receiver')."""
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, f"failed: {exc}")
            return
        if not data:
            self._drop(conn, "disconnected")

    def _send(self, conn: socket.socket, payload: bytes) -> None:
        info = self.clients[conn]
        if info["pending"]:
            # The previous burst is still unsent (a slow reader): finish that one rather than
            # cut a sentence in half, skip this epoch, and give up on a client that stays stuck.
            info["stalled"] += 1
            if info["stalled"] >= SEND_TIMEOUT_BURSTS:
                self._drop(conn, "not reading, dropped")
            return
        info["pending"] = payload
        self._flush(conn)

    def _flush(self, conn: socket.socket) -> None:
        info = self.clients[conn]
        try:
            sent = conn.send(info["pending"])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, f"failed: {exc}")
            return
        info["pending"] = info["pending"][sent:]
        if not info["pending"]:
            info["stalled"] = 0

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        host, port = self.server.getsockname()[:2]
        log(f"nmea-feeder listening on {host}:{port}")
        sd_notify("READY=1\nSTATUS=serving NMEA on %s:%d" % (host, port))
        next_epoch = int(time.time()) + 1
        send_at = next_epoch + self._lag()
        try:
            while not self.stopping:
                now = time.time()
                if now >= send_at:
                    # Sentences carry the boundary just passed; a late wake-up (overload,
                    # suspend) skips to the current second instead of replaying old ones.
                    epoch = max(next_epoch, int(now - self.latency))
                    payload = burst(dt.datetime.fromtimestamp(epoch, dt.timezone.utc),
                                    self.lat, self.lon, self.alt, self.zda).encode("ascii")
                    for conn in list(self.clients):
                        self._send(conn, payload)
                    next_epoch = epoch + 1
                    send_at = next_epoch + self._lag()
                    continue
                readers = [self.server, self.wake_r, *self.clients]
                writers = [c for c, info in self.clients.items() if info["pending"]]
                ready_r, ready_w, _ = select.select(readers, writers, [], max(0.0, send_at - now))
                for obj in ready_r:
                    if obj is self.server:
                        self._accept()
                    elif obj == self.wake_r:
                        os.read(self.wake_r, 64)
                    elif obj in self.clients:
                        self._drain(obj)
                for conn in ready_w:
                    if conn in self.clients:
                        self._flush(conn)
        finally:
            sd_notify("STOPPING=1")
            for conn in list(self.clients):
                self._drop(conn, "closed on shutdown")
            self.server.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            log("nmea-feeder stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=10110, help="TCP port (default 10110, NMEA-0183 over IP)")
    parser.add_argument("--lat", type=float, default=52.3676, help="latitude in degrees, north positive")
    parser.add_argument("--lon", type=float, default=4.9041, help="longitude in degrees, east positive")
    parser.add_argument("--alt", type=float, default=12.0, help="altitude above mean sea level, metres")
    parser.add_argument("--no-zda", dest="zda", action="store_false", help="do not send GPZDA")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="send each burst this long after its second (default 0: at once)")
    parser.add_argument("--jitter", type=float, default=0.0, metavar="SECONDS",
                        help="plus a random 0..SECONDS per burst, to mimic a real receiver")
    parser.add_argument("--once", action="store_true", help="print one burst for the current second and exit")
    args = parser.parse_args(argv)
    if not -90.0 <= args.lat <= 90.0 or not -180.0 <= args.lon <= 180.0:
        parser.error("--lat must be within ±90 and --lon within ±180")
    if args.latency < 0.0 or args.jitter < 0.0 or args.latency + args.jitter >= 0.9:
        parser.error("--latency and --jitter must be >= 0 and add up to less than 0.9 s")
    if args.once:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        sys.stdout.write(burst(now, args.lat, args.lon, args.alt, args.zda))
        sys.stdout.flush()
        return 0
    try:
        feeder = Feeder(args.bind, args.port, args.lat, args.lon, args.alt, args.zda,
                        args.latency, args.jitter)
    except OSError as exc:
        log(f"nmea-feeder: cannot listen on {args.bind}:{args.port}: {exc}")
        return 1
    feeder.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
