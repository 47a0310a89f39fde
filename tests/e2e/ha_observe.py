"""What the HA suite (test_e2e_ha.py) records while it disrupts the operator: the leader-election
Lease's history (a ``kubectl get lease -w`` stream) and, on the local-node provider, every HTTP
request that reaches the Elasticsearch Service from an operator Pod, with its source address.

The emulator's request log has method, path, status, timestamp and user, but no client address,
and both replicas log in as the same user; so which Pod sent a request is read off the wire: an
AF_PACKET socket on the host (Pods' veths are the host's; Pod-to-Service traffic is not SNATed) sees the
first segment of every request, whose request line and source IP say who asked for what. Kernel
timestamps (SO_TIMESTAMP) and the Lease's MicroTimes come from the same clock (one machine).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass

SO_TIMESTAMP = 29  # Linux: struct timeval in the ancillary data of every packet
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003


def _bpf_tcp_dst_port(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF for `ip and tcp dst port PORT` on Ethernet frames (what `tcpdump -dd` prints)."""
    return [(0x28, 0, 0, 12), (0x15, 0, 8, 0x0800),   # ldh [12]; jeq IPv4 else drop
            (0x30, 0, 0, 23), (0x15, 0, 6, 6),        # ldb [23]; jeq TCP else drop
            (0x28, 0, 0, 20), (0x45, 4, 0, 0x1FFF),   # ldh [20]; jset fragment offset -> drop
            (0xB1, 0, 0, 14), (0x48, 0, 0, 16),       # ldxb 4*([14]&0xf); ldh [x+16] (dst port)
            (0x15, 0, 1, port), (0x06, 0, 0, 262144), (0x06, 0, 0, 0)]
METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ")


def micro_time(text: str | None) -> float | None:
    """A Lease MicroTime (RFC 3339, microseconds) as a Unix timestamp."""
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class LeaseRecord:
    seen: float  # when the watch delivered it (local clock)
    holder: str
    acquire: float | None
    renew: float | None
    transitions: int
    rv: str


class LeaseWatch:
    """Every version of one Lease, from ``kubectl get lease NAME -w -o json`` (one object per update:
    each renewal, release and acquisition is a write)."""

    def __init__(self, kubectl_argv: list[str], namespace: str, name: str) -> None:
        self.records: list[LeaseRecord] = []
        self._lock = threading.Lock()
        self._proc = subprocess.Popen([*kubectl_argv, "-n", namespace, "get", "lease", name, "-w", "-o", "json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        dec, buf = json.JSONDecoder(), ""
        for line in self._proc.stdout:
            buf += line
            while buf.strip():
                try:
                    obj, end = dec.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                spec = obj.get("spec") or {}
                rec = LeaseRecord(time.time(), spec.get("holderIdentity") or "", micro_time(spec.get("acquireTime")),
                                  micro_time(spec.get("renewTime")), int(spec.get("leaseTransitions") or 0),
                                  obj["metadata"]["resourceVersion"])
                with self._lock:
                    if not self.records or self.records[-1].rv != rec.rv:
                        self.records.append(rec)

    def history(self) -> list[LeaseRecord]:
        with self._lock:
            return list(self.records)

    def holder(self) -> str:
        h = self.history()
        return h[-1].holder if h else ""

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@dataclass(frozen=True)
class WireRequest:
    t: float  # kernel timestamp of the request's first segment
    src: str
    sport: int
    method: str
    path: str  # percent-decoded, without the query, as the emulator logs it
    query: str


class WireTap:
    """HTTP requests to TCP port ``port`` seen on any interface of this host (root, Linux).

    Not only the bridge: with br_netfilter, a Pod's packet to a ClusterIP is DNATed at the bridge
    and forwarded between two of its ports, never crossing the bridge device; on the veths it is
    seen (twice: the sender's and the receiver's), and the kernel's filter keeps only that port."""

    def __init__(self, port: int = 9200) -> None:
        self.port = port
        self.requests: list[WireRequest] = []
        self._seen: set[tuple[str, int, int]] = set()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        prog = _bpf_tcp_dst_port(port)
        self._filter = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog))
        fprog = struct.pack("HL", len(prog), ctypes.addressof(self._filter))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self._sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, anc, _flags, _addr = self._sock.recvmsg(65535, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            t = time.time()
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(payload) >= 16:
                    sec, usec = struct.unpack("qq", payload[:16])
                    t = sec + usec / 1e6
            self._parse(data, t)

    def _parse(self, frame: bytes, t: float) -> None:
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":  # IPv4 over Ethernet
            return
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or len(ip) < ihl + 20:  # TCP
            return
        tcp = ip[ihl:]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        if dport != self.port:
            return
        payload = tcp[(tcp[12] >> 4) * 4:]
        if not payload.startswith(METHODS):
            return
        src = socket.inet_ntoa(ip[12:16])
        key = (src, sport, seq)  # the same segment is seen on several interfaces, before and after DNAT
        line = payload.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(line) < 2:
            return
        raw = urllib.parse.urlsplit(line[1])
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
            self.requests.append(WireRequest(t, src, sport, line[0], urllib.parse.unquote(raw.path), raw.query))

    def between(self, t0: float, t1: float = float("inf")) -> list[WireRequest]:
        with self._lock:
            return sorted((r for r in self.requests if t0 <= r.t <= t1), key=lambda r: r.t)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
