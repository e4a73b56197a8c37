"""A small asyncio HTTP/1.1 client for the load benchmarks: keep-alive when the server allows it, a cookie jar per
simulated browser, per-request timings. Standard library only (uvloop when installed), so that it costs the
machine little beside the servers it measures. Loopback targets only."""

import asyncio
import os
import re
import resource
import time
from dataclasses import dataclass, field

try:
    import uvloop
except ImportError:  # the app's venv has no uvloop; plain asyncio is cheap enough at these rates
    uvloop = None

CSRF_TOKEN = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass
class Answer:
    """One response: status, headers (lower-cased names, repeated ones kept), body, seconds taken."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float
    error: str = ""

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        return next((v for k, v in self.headers if k == name), None)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip().lower(), value.strip()))
    lookup = dict(headers)
    if "content-length" in lookup:
        body = await reader.readexactly(int(lookup["content-length"]))
    elif lookup.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    else:
        body = await reader.read()
    keep = version == "HTTP/1.1" and lookup.get("connection", "").lower() != "close"
    return int(status), headers, body, keep


@dataclass
class Browser:
    """One simulated client: a connection kept alive where the server allows, and a cookie jar."""

    host: str
    port: int
    timeout: float = 30.0
    cookies: dict[str, str] = field(default_factory=dict)
    _conn: tuple | None = None

    def forget(self) -> None:
        """A new person at this client: no cookies."""
        self.cookies.clear()

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> Answer:
        """Send one request (never retried: POSTs are not idempotent) and read the whole answer."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        started = time.perf_counter()
        conn, self._conn = self._conn, None
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
            reader, writer = conn
            writer.write(payload)
            status, got, content, keep = await asyncio.wait_for(_read_response(reader), self.timeout)
        except Exception as exc:  # transport error or timeout: counted, never retried
            if conn is not None:
                conn[1].close()
            return Answer(None, [], b"", time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
        if keep:
            self._conn = conn
        else:
            writer.close()
        for name, value in got:
            if name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                if val == "" or "expires=thu, 01 jan 1970" in value.lower():
                    self.cookies.pop(key.strip(), None)
                else:
                    self.cookies[key.strip()] = val.strip()
        return Answer(status, got, content, time.perf_counter() - started)

    def close(self) -> None:
        """Close the kept connection, if any."""
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the shared loadgen's definition), in the values' unit."""
    if not sorted_values:
        return None
    i = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def latency_ms(seconds: list[float]) -> dict:
    """p50/p95/p99/max in ms of a list of durations in seconds."""
    values = sorted(seconds)
    return {name: (None if percentile(values, q) is None else round(percentile(values, q) * 1000, 2))
            for name, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99), ("max_ms", 100))}


class CPUMeter:
    """CPU seconds of this process (the client) and of process trees (gunicorn masters with their workers, a worker
    replaced on the way included) over an interval."""

    def __init__(self, masters: list[int] | None = None, extra: list[int] | None = None) -> None:
        self.masters, self.extra = list(masters or []), list(extra or [])
        self.start_self = self._self()
        self.start_servers = sum(tree_cpu(pid) for pid in self.masters)
        self.start_extra = {pid: process_cpu(pid) for pid in self.extra}
        self.start_wall = time.perf_counter()
        self.start_machine = machine_ticks()

    @staticmethod
    def _self() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def stop(self) -> dict:
        """Seconds of CPU: client, servers (sum), wall; and how busy the whole machine was (% of all cores)."""
        wall = time.perf_counter() - self.start_wall
        servers = sum(tree_cpu(pid) for pid in self.masters) - self.start_servers
        total0, idle0 = self.start_machine
        total1, idle1 = machine_ticks()
        return {"wall_s": wall, "client_cpu_s": self._self() - self.start_self, "server_cpu_s": servers,
                "machine_busy_pct": round(100 * (1 - (idle1 - idle0) / max(1, total1 - total0)), 1)}


def _stat(pid: int) -> list[str] | None:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (0 if it is gone)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(master: int) -> float:
    """CPU seconds of a master, of its live children, and of the children it has reaped (cutime + cstime): a worker
    that gunicorn replaced in between still counts."""
    fields = _stat(master)
    if fields is None:
        return 0.0
    own = sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu(pid) for pid in children(master))


def machine_ticks() -> tuple[int, int]:
    """(all, idle) jiffies of the machine since boot."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def children(pid: int) -> list[int]:
    """The child processes of a process (gunicorn's workers)."""
    try:
        return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def loadavg() -> str:
    """The machine's load averages (1, 5, 15 min), as /proc/loadavg has them."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def install_uvloop() -> str:
    """Use uvloop when it is there; the event loop's name."""
    if uvloop is not None:
        uvloop.install()
        return "uvloop"
    return "asyncio"
