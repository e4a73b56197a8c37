"""How fast the door answers: from the moment a ticket's QR code is in front of the camera to the answer on screen,
in headless Chromium with a fake camera, online and offline.

    .venv/bin/python bench/door_speed.py [--codes 60] [--phases online,offline] [--database sqlite|postgresql]

Needs Chromium at /usr/bin/chromium (scripts/test installs it). What it does (2-5 minutes with 60 codes):
1. A fresh database (a SQLite file, or a PostgreSQL database made with `createdb`), `db upgrade`, `event load`,
   2 x N seat holders registered through the registration service (ticket codes read from the database), a door
   staff account. gunicorn serves it on 127.0.0.1 as scripts/serve does (1 process, 8 threads), on a rehearsal clock
   at the closing day's morning.
2. Per phase, a camera file (bench/fake_camera.py: 640x480, 30 fps; per code 5-10 white frames, then 15 frames of
   its QR code with a marker strip) with N codes nobody has scanned yet, and a Chromium launched with it as its webcam.
   Before each phase it waits (--quiet-wait, up to 30 s) for the CPUs to be less than half busy, and records how
   busy they were. Door staff sign in (camera left off), the page gets ready (offline: its local copy is ready, then
   the browser context goes offline), the camera is switched on, and the file plays once.
3. bench/door_speed.js, injected into the door page (nothing of the door's code changes), times each code: the
   moment its first frame was captured (read from the marker strip on the frames the door's <video> presents) to
   the first animation frame after the answer naming that person appeared in [data-testid=result]. Per code also:
   when the door's decode that found it began (performance.measure "door-decode", when the page records it), the
   check-in request (Resource Timing), the time to the DOM change and to the frame.
4. Baseline in the first phase's browser, right after it: a bench page on the same server decodes the same camera
   frames with the door's decoder (zxing-wasm, self-hosted), times the frame grab, and times a no-op fetch (a static
   file) and GET /api/v1/stats through the same server.

Prints a table and writes the JSON (--json, default bench/door_speed-<database>.json). Targets (issue 13):
median < 150 ms, p95 < 400 ms, online and offline. Method and today's figures: bench/DOOR_SPEED.md.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fake_camera  # noqa: E402  (bench/ is the script's folder)
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432")
PG_DATABASE = "door_speed_bench"
STAFF, PASSWORD = "bench-door", "bench door password 2023"
#: The closing day's morning, before the deadline at 10:00: the door is open and people still register.
REHEARSAL_CLOCK = "2023-09-14T08:30:00+09:00"
REGISTERED_AT = datetime(2023, 8, 25, 1, 0, tzinfo=UTC)
TARGET_MEDIAN_MS, TARGET_P95_MS = 150, 400
FRAME_MS = 1000 / fake_camera.FPS
JS = (Path(__file__).parent / "door_speed.js").read_text()
DEFAULT_DECODER = "/static/vendor/zxing-wasm/es/reader/index.js"
DEFAULT_WASM = "/static/vendor/zxing-wasm/reader/zxing_reader.wasm"


# --- setting up ------------------------------------------------------------------------------------------------

def flask(env: dict, *args: str, input: str | None = None) -> str:
    """Run `flask --app registration ...`; its output. Raises on failure."""
    result = subprocess.run([str(VENV_BIN / "flask"), "--app", "registration", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, input=input, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def pg_options() -> list[str]:
    """createdb/dropdb options for BENCH_PG_URL's server."""
    host = urllib.parse.urlsplit(PG_SERVER)
    return ["-h", host.hostname or "127.0.0.1", "-p", str(host.port or 5432), "-U", host.username or "root"]


def fresh_database(backend: str, workdir: Path) -> str:
    """A new, empty database; its URL."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'door-speed.sqlite'}"
    subprocess.run(["dropdb", "--if-exists", *pg_options(), PG_DATABASE], check=True, capture_output=True)
    subprocess.run(["createdb", *pg_options(), PG_DATABASE], check=True, capture_output=True)
    return f"{PG_SERVER}/{PG_DATABASE}"


def add_seat_holders(database_url: str, count: int, workdir: Path) -> list[tuple[str, str]]:
    """Register `count` people who want a seat (the capacity holds them all); their (code, name), in order."""
    from registration import create_app
    from registration.extensions import db
    from registration.models import Registrant
    from registration.services.checkins import display_name
    from registration.services.registrations import Details, register

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "door-speed-bench",
                      "REHEARSAL_CLOCK": None, "MAIL_URL": f"file://{workdir / 'outbox'}"},
                     instance_path=str(workdir / "instance"))
    people = []
    with app.app_context():
        for number in range(1, count + 1):
            details = Details(family_name="ベンチ", given_name=f"{number:03d}", family_name_kana="ベンチ",
                              given_name_kana=f"{number:03d}", email=f"bench-{number}@example.invalid",
                              organization=f"Bench Corp {number}", attend_closing=True)
            outcome = register(details, locale="ja", at=REGISTERED_AT + timedelta(seconds=number))
            people.append(outcome.registrant)
        db.session.commit()
        result = []
        for registrant in people:
            person = db.session.get(Registrant, registrant.id)
            if not person.ticket_code:
                raise RuntimeError(f"registrant {person.id} got no ticket (seat status {person.seat_status})")
            result.append((person.ticket_code, display_name(person)))
        db.engine.dispose()
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving the app, as scripts/serve does."""

    def __init__(self, env: dict, log: Path, workers: int, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as log_file:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--threads", str(threads),
                 "--bind", f"127.0.0.1:{self.port}", "--chdir", str(ROOT), "--log-level", "warning",
                 "registration:create_app()"],
                env={**env, "PUBLIC_BASE_URL": self.url}, stdout=subprocess.DEVNULL, stderr=log_file)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def machine_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How busy all CPUs were between two cpu_times(), 0..1 (this bench's browser and server included)."""
    return round((after[0] - before[0]) / max(1, after[1] - before[1]), 2)


def wait_for_quiet(seconds: float, busy_below: float = 0.5) -> float:
    """Wait up to `seconds` for 2 s in which the CPUs are less than `busy_below` busy; the last 2 s's busy share."""
    deadline = time.monotonic() + seconds
    while True:
        before = cpu_times()
        time.sleep(2)
        busy = machine_busy(before, cpu_times())
        if busy < busy_below or time.monotonic() >= deadline:
            return busy


# --- statistics --------------------------------------------------------------------------------------------------

def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (p95 of 60 values is the 57th smallest)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def summary(values: list[float]) -> dict:
    """count, median, p95, max (ms, rounded to 0.1)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"count": 0, "median": None, "p95": None, "max": None}
    return {"count": len(values), "median": round(statistics.median(values), 1),
            "p95": round(percentile(values, 0.95), 1), "max": round(max(values), 1)}


# --- the door page -----------------------------------------------------------------------------------------------

def sign_in(page, server: Server, errors: list[str] | None = None) -> None:
    """Sign in as door staff with the camera set off (so that it starts only when the bench says)."""
    page.goto(server.url + "/login?next=/door")
    page.evaluate("localStorage.setItem('door.camera', 'off')")
    page.locator("#name").fill(STAFF)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("#password").press("Enter")
    page.wait_for_url(re.compile(r"/door$"))
    try:
        page.wait_for_selector("#door[data-ready=true]", state="attached", timeout=30_000)
    except PlaywrightTimeout as error:
        raise RuntimeError(f"the door page did not get ready: {errors}") from error


def start_camera(page) -> None:
    """Switch the door's camera on, as staff would."""
    if page.locator("#door").get_attribute("data-camera") == "on":
        return
    page.locator("#door-camera-toggle").click()
    page.wait_for_selector("#door[data-camera=on]", state="attached", timeout=15_000)


def run_door(browser, server: Server, people: list[tuple[str, str]], first_number: int, *, offline: bool,
             loop_seconds: float) -> dict:
    """One phase: the camera file plays once in front of a signed-in door page; raw records and per-code times."""
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    context.add_init_script(JS.replace("__STRIP__", json.dumps(fake_camera.STRIP)))
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda message: page_errors.append(f"console: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    sign_in(page, server, page_errors)
    door = page.locator("#door")
    info = {"offline": offline, "decoder": None, "dataset": None, "sw": None, "skipped": None}
    if offline:
        try:
            page.wait_for_selector("#door[data-dataset=ready]", state="attached", timeout=30_000)
        except PlaywrightTimeout:  # the page keeps no local copy (yet)
            info["skipped"] = "the door page never set data-dataset=ready (no local copy): offline not measurable"
            context.close()
            return {"info": info, "page_errors": page_errors}
        try:
            page.wait_for_selector("#door[data-sw=ready]", state="attached", timeout=10_000)
        except PlaywrightTimeout:
            pass  # not needed for deciding offline; recorded below
        context.set_offline(True)
    info["dataset"] = door.get_attribute("data-dataset")
    info["sw"] = door.get_attribute("data-sw")
    decoder_module = door.get_attribute("data-zxing-module") or DEFAULT_DECODER
    decoder_wasm = door.get_attribute("data-zxing-wasm") or DEFAULT_WASM
    measure_from = page.evaluate("performance.now()")
    start_camera(page)
    info["decoder"] = door.get_attribute("data-decoder")
    # The file plays once: every code passes in front of the camera (plus the time of one code for the last answer).
    deadline = time.monotonic() + loop_seconds + 3
    wanted = set(range(len(people)))
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        names = page.evaluate("(window.__doorBench || {answers: []}).answers.map((a) => a.name)")
        if wanted <= {number for name in names if (number := person_number(name, first_number)) is not None}:
            page.wait_for_timeout(300)  # the last answer's frame
            break
    raw = page.evaluate("() => ({bench: window.__doorBench, door: {...document.getElementById('door').dataset}})")
    raw["measure_from"] = measure_from
    info["connection"] = raw["door"].get("connection")
    info["queue"] = raw["door"].get("queue")
    if offline:
        context.set_offline(False)
    context.close()
    return {"info": info, "raw": raw, "page_errors": page_errors, "people": len(people),
            "decoder_module": decoder_module, "decoder_wasm": decoder_wasm}


def person_number(name: str, first_number: int) -> int | None:
    """The code's place in this phase's camera file, from the name the answer shows ("ベンチ 061")."""
    match = re.search(r"(\d{3,})", name or "")
    return int(match.group(1)) - first_number if match else None


def analyse(result: dict, first_number: int, loop_seconds: float) -> dict:
    """Per code: onset (first frame captured), answer on screen, and the steps between."""
    raw = result["raw"]
    bench = raw["bench"]
    frames = sorted(bench["frames"], key=lambda f: f["callback"])
    onsets: dict[int, dict] = {}
    previous = None
    capture_lag = []
    for frame in frames:
        if frame["capture"] is not None:
            capture_lag.append(frame["presentation"] - frame["capture"])
        code = frame["code"]
        # A code counts from a frame seen after a frame without it: its beginning is in the recording.
        if code >= 0 and previous is not None and previous != code and code not in onsets:
            seen = frame["capture"] if frame["capture"] is not None else frame["presentation"]
            onsets[code] = {"onset": seen - frame["offset"] * FRAME_MS, "first_offset": frame["offset"],
                            "first_seen": frame["presentation"]}
        previous = code
    presented = [f["n"] for f in frames]
    skipped = sum(max(0, b - a - 1) for a, b in zip(presented, presented[1:]))
    answers = sorted(bench["answers"], key=lambda a: a["mutation"])
    decodes = sorted(bench["decodes"], key=lambda d: d["start"])
    requests = sorted(bench["requests"], key=lambda r: r["start"])
    window = loop_seconds * 1000 / 2  # an answer later than this belongs to the file's next loop
    per_code = []
    for code, onset in sorted(onsets.items()):
        start = onset["onset"]
        answer = next((a for a in answers if a.get("frame") is not None and a["frame"] > start
                       and person_number(a["name"], first_number) == code), None)
        if answer is None or answer["frame"] - start > window:
            per_code.append({"code": code, "onset": start, "missed": True})
            continue
        # The request whose answer this is: the last one sent before the answer appeared. None for an answer the
        # page decided itself (the queue's attempts to send are not what the answer waited for).
        request = None if answer["offline"] else next(
            (r for r in reversed(requests) if start - 200 <= r["start"] <= answer["mutation"]), None)
        decided = request["start"] if request else answer["mutation"]
        # The decode that found the code: the last one that ended before the request (or the answer).
        found = [d for d in decodes if d["start"] >= start - 200 and d["start"] + d["duration"] <= decided + 0.5]
        corrected = False
        if found and found[-1]["start"] < start:
            # The frame strip was not seen on the code's first frames (the sampler missed them) and the capture
            # times of later frames put the start too late: a decode that began earlier found the code already.
            start, corrected = found[-1]["start"], True
        entry = {"code": code, "onset": start, "first_offset": onset["first_offset"], "onset_corrected": corrected,
                 "missed": False, "kind": answer["kind"], "offline": answer["offline"],
                 "latency": answer["frame"] - start, "to_painted": (answer.get("painted") or answer["frame"]) - start,
                 "to_mutation": answer["mutation"] - start,
                 "frame_after_mutation": answer["frame"] - answer["mutation"]}
        if request:
            entry["request_start"] = request["start"] - start
            entry["request"] = request["end"] - request["start"]
            entry["response_to_dom"] = answer["mutation"] - request["end"]
        if found:
            entry["decode_start"] = found[-1]["start"] - start
            entry["decode"] = found[-1]["duration"]
            entry["decode_end_to_next"] = decided - found[-1]["start"] - found[-1]["duration"]
            entry["decodes_since_onset"] = sum(1 for d in found if d["start"] >= start)
        per_code.append(entry)
    measured = [e for e in per_code if not e["missed"]]
    intervals = [b["start"] - a["start"] for a, b in zip(decodes, decodes[1:]) if b["start"] - a["start"] < 1000]
    out = {
        "codes_in_file": result["people"],
        "codes_seen_from_their_start": len(onsets),
        "measured": len(measured),
        "missed": [e["code"] for e in per_code if e["missed"]],
        "kinds": {kind: sum(1 for e in measured if e["kind"] == kind) for kind in ("ok", "already", "refused")},
        "marked_offline": sum(1 for e in measured if e["offline"]),
        "onsets_from_a_later_frame": sum(1 for e in measured if e["first_offset"]),
        "onsets_corrected_by_an_earlier_decode": sum(1 for e in measured if e["onset_corrected"]),
        "latency": summary([e["latency"] for e in measured]),
        "latency_to_painted": summary([e["to_painted"] for e in measured]),
        "steps": {
            "onset_to_decode_start": summary([e.get("decode_start") for e in measured]),
            "decode_that_found_it": summary([e.get("decode") for e in measured]),
            "decode_end_to_request_or_dom": summary([e.get("decode_end_to_next") for e in measured]),
            "onset_to_request_start": summary([e.get("request_start") for e in measured]),
            "request": summary([e.get("request") for e in measured]),
            "response_to_dom": summary([e.get("response_to_dom") for e in measured]),
            "onset_to_dom": summary([e["to_mutation"] for e in measured]),
            "dom_to_frame": summary([e["frame_after_mutation"] for e in measured]),
        },
        "door_decode_per_frame": summary([d["duration"] for d in decodes]),
        "door_decode_interval": summary(intervals),
        "door_decodes_recorded": len(decodes),
        "door_answer_measure": summary([d["duration"] for d in bench["doorAnswers"]]),
        "camera": {"frames_sampled": len(frames), "frames_not_sampled": skipped,
                   "capture_to_presentation": summary(capture_lag),
                   "sampler_cost_per_frame": summary(bench["samplerMs"])},
        "page_errors": result["page_errors"] + bench["errors"],
        "per_code": per_code,
    }
    return out


# --- baseline ----------------------------------------------------------------------------------------------------

BASELINE_HTML = """<!doctype html><meta charset="utf-8"><title>bench baseline</title>
<video id="v" muted playsinline></video>
<script type="module">
const zxing = await import(%(module)s);
zxing.setZXingModuleOverrides({ locateFile: (path, prefix) => (path.endsWith(".wasm") ? %(wasm)s : prefix + path) });
const options = { formats: ["QRCode"], maxNumberOfSymbols: 1 };
await zxing.readBarcodes(new ImageData(64, 64), options);
const video = document.getElementById("v");
video.srcObject = await navigator.mediaDevices.getUserMedia(
  { audio: false, video: { width: { ideal: 640 }, height: { ideal: 480 } } });
await video.play();
const canvas = document.createElement("canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const out = { grab: [], decodeCode: [], decodeBlank: [], noop: [], stats: [] };
for (let i = 0; i < %(frames)d; i++) {
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  let t = performance.now();
  context.drawImage(video, 0, 0);
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  out.grab.push(performance.now() - t);
  t = performance.now();
  const found = await zxing.readBarcodes(image, options);
  (found.some((c) => c.isValid && c.text) ? out.decodeCode : out.decodeBlank).push(performance.now() - t);
  await sleep(100);
}
for (let i = 0; i < %(fetches)d; i++) {
  let t = performance.now();
  await (await fetch("/static/door/door.css", { cache: "no-store" })).arrayBuffer();
  out.noop.push(performance.now() - t);
  t = performance.now();
  await (await fetch("/api/v1/stats", { cache: "no-store", credentials: "same-origin",
                                        headers: { Accept: "application/json" } })).json();
  out.stats.push(performance.now() - t);
  await sleep(50);
}
window.__baseline = out;
</script>"""


def run_baseline(browser, server: Server, module: str, wasm: str, frames: int = 120, fetches: int = 40) -> dict:
    """The door's decoder alone on the same camera, the frame grab, a no-op fetch and GET /api/v1/stats."""
    context = browser.new_context(viewport={"width": 800, "height": 600})
    page = context.new_page()
    sign_in(page, server)  # the stats API wants the door's session
    page.close()
    page = context.new_page()
    url = server.url + "/__bench_baseline"
    html = BASELINE_HTML % {"module": json.dumps(module), "wasm": json.dumps(wasm), "frames": frames,
                            "fetches": fetches}
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto(url)
    page.wait_for_function("window.__baseline", timeout=120_000, polling=500)
    out = page.evaluate("window.__baseline")
    context.close()
    return {name: summary(values) for name, values in out.items()}


# --- report ------------------------------------------------------------------------------------------------------

def fmt(value) -> str:
    return "-" if value is None else (f"{value:.0f}" if value >= 100 else f"{value:.1f}")


def row(label: str, stats: dict) -> str:
    return f"| {label} | {stats['count']} | {fmt(stats['median'])} | {fmt(stats['p95'])} | {fmt(stats['max'])} |"


def report(results: dict) -> str:
    lines = [f"door speed, {results['when']}, {results['database']}, {results['codes']} codes per phase, "
             f"Chromium {results['chromium']}, {os.cpu_count()} CPUs, load before: {results['load_before']}", ""]
    lines += ["| measure (ms) | n | median | p95 | max |", "|---|---|---|---|---|"]
    for name, phase in results["phases"].items():
        if "skipped" in phase:
            lines.append(f"| {name}: skipped ({phase['skipped']}) | | | | |")
            continue
        machine = phase["machine"]
        lines.append(f"| {name}: machine during the phase: load {machine['load_1min_before']} -> "
                     f"{machine['load_1min_after']}, CPUs {machine['cpus_busy']:.0%} busy (all processes) | | | | |")
        latency = phase["latency"]
        met = (latency["median"] is not None and latency["median"] < TARGET_MEDIAN_MS
               and latency["p95"] < TARGET_P95_MS)
        verdict = ("targets met" if met else "targets NOT met") if phase["measured"] >= 50 else "fewer than 50 codes"
        lines.append(row(f"**{name}: code in front of camera -> answer on screen** "
                         f"({verdict}; missed {len(phase['missed'])})", latency))
        lines.append(row(f"{name}: ... -> answer painted (one task after the frame)", phase["latency_to_painted"]))
        for step, stats in phase["steps"].items():
            if stats["count"]:
                lines.append(row(f"{name}: {step.replace('_', ' ')}", stats))
        lines.append(row(f"{name}: door-decode per frame (the page's own measure)", phase["door_decode_per_frame"]))
        lines.append(row(f"{name}: interval between door decodes", phase["door_decode_interval"]))
        lines.append(row(f"{name}: door-answer (the page's own scan -> answer measure)", phase["door_answer_measure"]))
        lines.append(row(f"{name}: capture -> presentation of a camera frame",
                         phase["camera"]["capture_to_presentation"]))
        lines.append(row(f"{name}: bench sampler cost per frame", phase["camera"]["sampler_cost_per_frame"]))
    base = results.get("baseline") or {}
    labels = {"decodeCode": "baseline: zxing decode, frame with a code", "decodeBlank":
              "baseline: zxing decode, frame without a code", "grab": "baseline: frame grab (drawImage+getImageData)",
              "noop": "baseline: no-op fetch (static file)", "stats": "baseline: GET /api/v1/stats"}
    for key, label in labels.items():
        if key in base:
            lines.append(row(label, base[key]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=60, help="codes per phase (distinct, valid; >= 50 for the target)")
    parser.add_argument("--phases", default="online,offline")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--blank", type=int, default=5, help="white frames before each code, at least")
    parser.add_argument("--jitter", type=int, default=5, help="up to this many more white frames (random, seeded)")
    parser.add_argument("--shown", type=int, default=15, help="frames each code is shown")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", type=Path, help="where to write the results (bench/door_speed-<database>.json)")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before each phase, wait up to this many seconds for the CPUs to be less than half busy")
    parser.add_argument("--raw", action="store_true", help="put every frame and answer record into the JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (camera files, server log)")
    args = parser.parse_args()
    args.json = args.json or Path(__file__).parent / f"door_speed-{args.database}.json"
    phases = [p for p in args.phases.split(",") if p]
    if not phases or set(phases) - {"online", "offline"}:
        parser.error("--phases takes online and/or offline")
    if not 1 <= args.codes < 2 ** fake_camera.INDEX_BITS // len(phases):
        parser.error(f"--codes takes 1 to {2 ** fake_camera.INDEX_BITS // len(phases) - 1}")

    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/test installs it for the browser tests)")
    workdir = Path(tempfile.mkdtemp(prefix="door-speed-"))
    try:
        results = run(args, phases, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report(results))
    args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    print(f"\nJSON: {args.json}  ({results['seconds']} s)")


def run(args: argparse.Namespace, phases: list[str], workdir: Path) -> dict:
    """Set up, serve, and measure each phase and the baseline; the results."""
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()[0]
    started = time.monotonic()
    database_url = fresh_database(args.database, workdir)
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "door-speed-bench-" + "x" * 32,
           "MAIL_URL": f"file://{workdir / 'outbox'}", "REHEARSAL_CLOCK": REHEARSAL_CLOCK,
           "CLOSING_CAPACITY": str(len(phases) * args.codes + 10), "PYTHONPATH": str(ROOT)}
    env.pop("APP_ENV", None)
    print(f"work folder {workdir}; setting up {len(phases) * args.codes} seat holders on {args.database} ...",
          flush=True)
    try:
        flask(env, "db", "upgrade")
        flask(env, "event", "load")
        people = add_seat_holders(database_url, len(phases) * args.codes, workdir)
        flask(env, "staff", "add", STAFF, "--role", "door", "--password-stdin", input=PASSWORD + "\n")
        flask(env, "rehearsal", "restart")
        cameras = {}
        loop_seconds = 0.0
        for index, phase in enumerate(phases):
            codes = [code for code, _ in people[index * args.codes:(index + 1) * args.codes]]
            cameras[phase] = workdir / f"camera-{phase}.y4m"
            loop_seconds = fake_camera.write_y4m(cameras[phase], codes, blank=args.blank, jitter=args.jitter,
                                                 shown=args.shown)
        print(f"set up in {time.monotonic() - started:.0f} s; camera files of {loop_seconds:.1f} s", flush=True)

        server = Server(env, workdir / "gunicorn.log", args.workers, args.threads)
        chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.split()[1:2]
        results = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "database": args.database,
                   "codes": args.codes, "chromium": (chromium or ["?"])[0], "load_before": round(load_before, 2),
                   "server": f"gunicorn --workers {args.workers} --threads {args.threads}",
                   "camera": {"blank_frames": f"{args.blank}-{args.blank + args.jitter}", "shown_frames": args.shown,
                              "fps": fake_camera.FPS, "size": f"{fake_camera.WIDTH}x{fake_camera.HEIGHT}",
                              "loop_seconds": loop_seconds},
                   "phases": {}}
        try:
            with sync_playwright() as playwright:
                for index, phase in enumerate(phases):
                    print(f"{phase}: {args.codes} codes ...", flush=True)
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                        *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                        f"--use-file-for-fake-video-capture={cameras[phase]}"])
                    try:
                        results["phases"][phase] = measure_phase(args, browser, server, people, index, phase,
                                                                 loop_seconds)
                        if "baseline" not in results:
                            print("baseline ...", flush=True)
                            info = results["phases"][phase]["info"]
                            results["baseline"] = run_baseline(browser, server, info["decoder_module"],
                                                               info["decoder_wasm"])
                    finally:
                        browser.close()
        finally:
            server.stop()
            results["server_errors"] = (workdir / "gunicorn.log").read_text(errors="replace")[-3000:]
    finally:
        if args.database == "postgresql":
            subprocess.run(["dropdb", "--if-exists", *pg_options(), PG_DATABASE], capture_output=True)
    results["seconds"] = round(time.monotonic() - started)
    return results


def measure_phase(args: argparse.Namespace, browser, server: Server, people: list[tuple[str, str]], index: int,
                  phase: str, loop_seconds: float) -> dict:
    """One phase's results: what the door page did with its N codes, and how busy the machine was meanwhile."""
    quiet = wait_for_quiet(args.quiet_wait) if args.quiet_wait else None
    load, cpu = os.getloadavg()[0], cpu_times()
    first_number = index * args.codes + 1
    result = run_door(browser, server, people[index * args.codes:(index + 1) * args.codes], first_number,
                      offline=phase == "offline", loop_seconds=loop_seconds)
    result["info"]["decoder_module"] = result.get("decoder_module", DEFAULT_DECODER)
    result["info"]["decoder_wasm"] = result.get("decoder_wasm", DEFAULT_WASM)
    if result["info"]["skipped"]:
        out = {"skipped": result["info"]["skipped"], "info": result["info"]}
    else:
        out = {"info": result["info"], **analyse(result, first_number, loop_seconds)}
        if args.raw:
            out["raw"] = result["raw"]
    out["machine"] = {"busy_just_before": quiet, "load_1min_before": round(load, 2),
                      "load_1min_after": round(os.getloadavg()[0], 2), "cpus_busy": machine_busy(cpu, cpu_times())}
    return out


if __name__ == "__main__":
    main()
