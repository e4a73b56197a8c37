"""The door page as an installable app: its service worker (/door/sw.js, scope /door) and web app manifest."""

import hashlib
import json
from pathlib import Path

from flask import current_app, make_response, url_for
from flask_babel import gettext as _

from registration.staffarea.views import bp

#: What the service worker keeps for the page to open without network: everything under these folders of /static
#: with these endings (the door's modules, styles and icons, idb, the QR decoder and its WebAssembly), and the
#: site's stylesheet, which base.html loads.
CACHED_FOLDERS = ("door", "vendor/idb", "vendor/zxing-wasm")
CACHED_ENDINGS = (".js", ".css", ".wasm", ".png")
CACHED_FILES = ("style.css",)
#: The worker's own source, under /static/door: served here, with the list and version put first.
WORKER_SOURCE = "door/sw.js"
SCOPE = "/door"

_digests: dict[tuple[str, int, int], str] = {}


def _digest(path: Path) -> str:
    # Hashing the 1 MB decoder on every worker update check would be wasteful: a file is hashed again when its
    # modification time or size changes.
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _digests:
        _digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _digests[key]


def cached_files() -> list[str]:
    """The /static files the service worker keeps, relative to the static folder, in a stable order."""
    static = Path(current_app.static_folder)
    found = {name for name in CACHED_FILES if (static / name).is_file()}
    for folder in CACHED_FOLDERS:
        for path in (static / folder).rglob("*"):
            if path.is_file() and path.name.endswith(CACHED_ENDINGS):
                found.add(path.relative_to(static).as_posix())
    found.discard(WORKER_SOURCE)
    return sorted(found)


@bp.get("/door/sw.js")
def door_service_worker():
    """The door's service worker, with the files it caches and a version that changes with any of their contents."""
    static = Path(current_app.static_folder)
    files = cached_files()
    version = hashlib.sha256()
    for name in [WORKER_SOURCE, *files]:
        version.update(f"{name}\0{_digest(static / name)}\0".encode())
    config = {"version": version.hexdigest()[:16], "page": url_for("staff.door"),
              "files": [url_for("static", filename=name) for name in files]}
    source = (static / WORKER_SOURCE).read_text(encoding="utf-8")
    response = make_response(f"const DOOR = {json.dumps(config)};\n{source}")
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    # The script sits in /door/, whose default scope would be /door/: the page itself is /door.
    response.headers["Service-Worker-Allowed"] = SCOPE
    # Not cacheable (the app answers no-store to all but public pages): every update check asks the server.
    return response


@bp.get("/door/manifest.webmanifest")
def door_manifest():
    """The web app manifest that makes the door page installable (browsers fetch it without the session)."""
    manifest = {
        "name": _("CODT2023 door"),
        "short_name": _("Door"),
        "description": _("Check-in at the door of the closing event, also without network."),
        "start_url": url_for("staff.door"),
        "scope": SCOPE,
        "display": "standalone",
        "orientation": "any",
        "background_color": "#ffffff",
        "theme_color": "#146c2e",
        "icons": [{"src": url_for("static", filename=f"door/icon-{size}.png"), "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": "any"} for size in (192, 512)],
    }
    response = make_response(json.dumps(manifest, ensure_ascii=False))
    response.headers["Content-Type"] = "application/manifest+json; charset=utf-8"
    return response
