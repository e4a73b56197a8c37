"""The door page's ES modules (registration/static/door/): the DOM-free ones run under node and read codes and fold
search text exactly as the server does; every module stays small, local (no CDN) and uses only texts and elements the
page has; the service worker and the manifest are served as the browser needs them."""

import io
import json
import random
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from registration import tickets
from registration.extensions import db
from registration.services import door_data, registrations
from registration.text import fold_for_search

DOOR = Path(__file__).resolve().parent.parent / "registration" / "static" / "door"
MODULES = sorted(DOOR.glob("*.js"))
#: Lines a module may have: each is read in one sitting.
LINE_BUDGET = 300


def node(script: str, payload) -> object:
    """Run an ES module script under node with `payload` as JSON on stdin; its JSON output."""
    # The modules are ES modules in a folder whose package.json says no "type": node says so once, on stderr.
    ran = subprocess.run(["node", "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON", "--input-type=module",
                          "-e", script], input=json.dumps(payload), capture_output=True, text=True, timeout=120,
                         check=False)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


FOLD = f"""
import {{ readFileSync }} from "node:fs";
import {{ foldForSearch }} from "{(DOOR / 'fold.js').as_uri()}";
const input = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(input.map(foldForSearch)));
"""

FOLD_ALL = f"""
import {{ foldForSearch }} from "{(DOOR / 'fold.js').as_uri()}";
const out = [];
for (let c = 0; c < 0x110000; c++) out.push(c >= 0xd800 && c < 0xe000 ? "" : foldForSearch(String.fromCodePoint(c)));
process.stdout.write(JSON.stringify(out));
"""

CODES = f"""
import {{ readFileSync }} from "node:fs";
import {{ cleanCode, codeProblem, normaliseCode, TICKET_CODE, CODE_LENGTH }} from "{(DOOR / 'code.js').as_uri()}";
const input = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({{
  pattern: TICKET_CODE.source, length: CODE_LENGTH,
  results: input.map((raw) => [cleanCode(raw), normaliseCode(raw), codeProblem(raw)]),
}}));
"""

# --- search folding --------------------------------------------------------------------------------------

TRICKY_SEARCH = [
    "ﾔﾏﾀﾞ ﾀﾛｳ", "やまだ たろう", "ヤマダ", "ｶﾞｷﾞｸﾞｹﾞｺﾞ ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ", "ゝゞ ゔ ゕゖ", "ｓｍｉｔｈ", "ＳＭＩＴＨ", "SmItH",
    "Ｅｘａｍｐｌｅ ＫＫ", "taro_yamada@EXAMPLE.jp", "１２３", "㈱例示", "①②", "ﬁle ﬀ", "Straße STRASSE ẞ",
    "ΟΔΥΣΣΕΥΣ Ὀδυσσεύς", "İstanbul", "Ǆemal", "Ⅻ", "㌔", "ｰ－−", "\u3000全角スペース", "é é", "ÀÉÎÕÜ",
]


def test_fold_equals_the_servers_on_tricky_inputs():
    assert node(FOLD, TRICKY_SEARCH) == [fold_for_search(text) for text in TRICKY_SEARCH]


#: Where fold.js knowingly differs from Python's casefold() (see the comment in fold.js): Cherokee letters,
#: Greek letters with iota subscript or that casefold decomposes, a few Latin and Cyrillic letters casefold maps
#: (or decomposes) and lower case does not. None of them is in a Japanese or English name.
DOCUMENTED = [(0x13A0, 0x13FF), (0xAB70, 0xABBF), (0x1F50, 0x1FFF), (0x1C80, 0x1C88), (0x1E96, 0x1E99),
              (0x0345, 0x0345), (0x037A, 0x037A), (0x0390, 0x0390), (0x03B0, 0x03B0), (0x01F0, 0x01F0)]


def test_fold_equals_the_servers_for_every_character_but_the_documented_ones():
    folded = node(FOLD_ALL, None)
    different = []
    for code_point, js in enumerate(folded):
        if 0xD800 <= code_point < 0xE000:
            continue
        char = chr(code_point)
        if js != fold_for_search(char) and unicodedata.category(char) != "Cn":  # Cn: newer than Python's Unicode
            if not any(low <= code_point <= high for low, high in DOCUMENTED):
                different.append(f"U+{code_point:04X} {unicodedata.name(char, '?')}")
    assert different == []


SEARCH = f"""
import {{ readFileSync }} from "node:fs";
import {{ foldForSearch, searchKey }} from "{(DOOR / 'fold.js').as_uri()}";
const {{ people, queries }} = JSON.parse(readFileSync(0, "utf8"));
const keys = people.map((person) => [person.id, searchKey(person)]);
process.stdout.write(JSON.stringify(queries.map((query) => {{
  const needle = foldForSearch(query.trim());
  return keys.filter(([, key]) => key.includes(needle)).map(([id]) => id);
}})));
"""

#: Found by name, kana or organisation, whatever the width, case, kana script or order of the names. (Not by e-mail:
#: the local copy holds no addresses.)
QUERIES = ["ヤマダ", "やまだ", "ﾔﾏﾀﾞ", "ｓｍｉｔｈ", "SMITH", "smith john", "john smith", "JOHN", "Ｅｘａｍｐｌｅ ＫＫ",
           "例示", "山田 花子", "花子 山田", "はなこ", "ﾊﾅｺ", "サトウ", "Other", "ｼﾞｮﾝ", "nobody"]


def test_offline_search_finds_the_seat_holders_the_servers_search_finds(app_ctx, make_details):
    registrations.register(make_details(family_name="Smith", given_name="John", family_name_kana="やまだ",
                                        given_name_kana="ｼﾞｮﾝ", organization="Example KK", attend_closing=True),
                           locale="en")
    registrations.register(make_details(family_name="山田", given_name="花子", family_name_kana="ヤマダ",
                                        given_name_kana="はなこ", organization="例示", attend_closing=True), locale="ja")
    registrations.register(make_details(family_name="佐藤", given_name="一", family_name_kana="サトウ",
                                        organization="Other", attend_closing=True), locale="ja")
    registrations.register(make_details(family_name="山田", given_name="無席", organization="Example KK"), locale="ja")
    db.session.flush()
    people = door_data.door_dataset(None)["people"]
    assert len(people) == 3 and all("email" not in person for person in people)
    offline = node(SEARCH, {"people": people, "queries": QUERIES})
    seat_holders = {person["id"] for person in people}
    online = [sorted(p.id for p in registrations.search(query) if p.id in seat_holders) for query in QUERIES]
    assert [sorted(ids) for ids in offline] == online
    assert all(online[:-1]), "every query but the last finds someone"


# --- ticket codes ----------------------------------------------------------------------------------------

CODE = "2HTJJPRJYPJXQZ5MLK3VGHEBDA"
TRICKY_CODES = [
    CODE, CODE.lower(), "２ｈｔｊ\u3000ｊｐｒｊ", "0O1I8B\u00a0-\u2013\u2014\u2212ーｰ・。．.\u2009\t", "ab9!é",
    "2htj-jprj ypjx qz5m lk3v gheb da", "2HTJ・JPRJ・YPJX・QZ5M・LK3V・GHEB・DA", "２ＨＴＪ－ＪＰＲＪ",
    CODE + "\n", CODE + "\r\n", "\ufeff" + CODE, CODE[:25], CODE + "A", CODE[:25] + "9", CODE[:25] + "ß",
    "ｺｰﾄﾞ", "コード", "こーど", "Ⅻ" + CODE[2:], "\x1c" + CODE, CODE + "\x85", "\u200b" + CODE, "🎫" + CODE[1:],
    "", "   ", "-", "ÀÉÎ", "ｱｲｳｴｵ" * 6, "I" * 26, "0" * 26, "8" * 27,
]


def random_texts(count: int = 400) -> list[str]:
    """Texts a scanner or a hurried hand could type: code characters, look-alikes, widths and separators."""
    rng = random.Random(13)
    pieces = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcxyz0189") + list("ＡＺａｚ０９ｰー・。．-–—−  \t\u3000ßéｱ") + [
        "\u00a0", "\u2009", "\ufeff", "\x1c", "\x85", "\u200b", "Ⅻ", "ﬀ", "①"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 34))) for _ in range(count)]


def test_code_cleaning_equals_the_servers():
    texts = TRICKY_CODES + random_texts()
    answer = node(CODES, texts)
    assert answer["pattern"] == f"^{tickets.TICKET_CODE.pattern}$" and answer["length"] == tickets.CODE_LENGTH
    for raw, (cleaned, normalised, problem) in zip(texts, answer["results"], strict=True):
        expected = tickets.code_problem(raw)
        assert (cleaned, normalised, problem) == (
            tickets._clean(raw), tickets.normalise_code(raw), expected.as_json() if expected else None), repr(raw)


# --- the gate's name --------------------------------------------------------------------------------------

GATES = f"""
import {{ readFileSync }} from "node:fs";
import {{ cleanGate }} from "{(DOOR / 'code.js').as_uri()}";
process.stdout.write(JSON.stringify(JSON.parse(readFileSync(0, "utf8")).map(cleanGate)));
"""


def server_gate(text: str) -> str:
    """The gate as the server keeps it (issue 13): unprintable characters dropped, trimmed, 40 characters."""
    kept = "".join(char for char in text if char.isprintable()).strip()
    return kept[:40].strip() or "door-1"


def test_the_gate_is_cleaned_as_the_server_keeps_it():
    tricky = ["", " ", "door-2", "gate-Z\u200bW", "\u200b", "a" * 39 + "😀b", "😀" * 41, "a\ud800b", "\udc00",
              "x" * 39 + " y", "\u2028入口\u2029", "正面\u3000入口", "\u00a0gate\u00a0", "\tgate\r\n", "\x00g\x7f",
              "\ufeffgate", "g\u200e\u202e\u2066ate", "\ue000private", "ｹﾞｰﾄ ２", "e\u0301", "👨\u200d👩\u200d👧" * 8]
    pool = "ab 1ｹﾞ正😀\u200b\u2028\u00a0\u3000\t\x00\ud800\udfff\ue000\u0301\u202e"
    rng = random.Random(13)
    texts = tricky + ["".join(rng.choice(pool) for _ in range(rng.randint(0, 60))) for _ in range(400)]
    assert node(GATES, texts) == [server_gate(text) for text in texts]


# --- the modules as files --------------------------------------------------------------------------------

def test_every_module_is_read_in_one_sitting():
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in MODULES}
    assert {"main.js", "fold.js", "code.js", "queue.js", "dataset.js", "camera.js", "screen.js", "sw.js"} <= set(sizes)
    assert {name: lines for name, lines in sizes.items() if lines > LINE_BUDGET} == {}


def test_no_module_loads_anything_from_another_host():
    for path in MODULES:
        source = path.read_text(encoding="utf-8")
        code = re.sub(r"/\*.*?\*/|(^|\s)//[^\n]*", r"\1", source, flags=re.DOTALL)  # comments may say "no CDN"
        assert not re.search(r"https?:|wss?:|[\"'`]//|\bcdn", code, re.IGNORECASE), path.name
        for target in re.findall(r"""(?:from|import)\s*\(?\s*["']([^"']+)["']""", source):
            assert target.startswith(("./", "../vendor/")), (path.name, target)
            assert (path.parent / target).resolve().is_file(), (path.name, target)


# --- what the modules use of the page --------------------------------------------------------------------

#: Texts looked up by a computed name: T[`code_${kind}`], T[`status_${...}`], T[`conflict_${kind}`], T[reason].
COMPUTED_TEXTS = {"code_too_short", "code_too_long", "code_bad_characters", "cancelled", "waitlisted", "no_ticket",
                  "replaced", "status_confirmed", "status_waitlisted", "status_none", "status_cancelled",
                  "status_checked_in_cancelled", "status_checked_in_no_ticket", "conflict_admitted_twice",
                  "conflict_admitted_without_ticket", "conflict_refused_with_ticket"}


@pytest.fixture
def door_page(client, make_staff) -> str:
    """The door page as a signed-in door staff member gets it."""
    name, password = make_staff("door")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"name": name, "password": password,
                                       "csrf_token": token.group(1)}).status_code == 303
    page = client.get("/door")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_every_text_and_element_a_module_uses_is_on_the_page(door_page):
    messages = json.loads(re.search(r'<script type="application/json" id="door-messages">(.*?)</script>', door_page,
                                    re.DOTALL).group(1))
    sources = "\n".join(path.read_text(encoding="utf-8") for path in MODULES)
    used = set(re.findall(r"\bT\.(\w+)", sources)) | COMPUTED_TEXTS
    assert used - messages.keys() == set()
    assert messages.keys() - used == set(), "texts nobody shows"
    ids = set(re.findall(r'\$\("([\w-]+)"\)', sources))
    assert {element for element in ids if f'id="{element}"' not in door_page} == set()
    for testid in ("connection", "door-conflicts", "result", "counter"):
        assert f'data-testid="{testid}"' in door_page
    assert 'src="/static/door/main.js"' in door_page and 'rel="manifest" href="/door/manifest.webmanifest"' in door_page


def test_the_service_worker_caches_every_module_and_the_decoder(client):
    worker = client.get("/door/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert worker.headers["Service-Worker-Allowed"] == "/door"
    first, _, rest = worker.get_data(as_text=True).partition("\n")
    config = json.loads(re.fullmatch(r"const DOOR = (\{.*\});", first).group(1))
    assert rest == (DOOR / "sw.js").read_text(encoding="utf-8")
    assert config["page"] == "/door" and re.fullmatch(r"[0-9a-f]{16}", config["version"])
    files = set(config["files"])
    assert {f"/static/door/{path.name}" for path in MODULES if path.name != "sw.js"} <= files
    assert {"/static/door/door.css", "/static/door/icon-192.png", "/static/style.css", "/static/vendor/idb/index.js",
            "/static/vendor/zxing-wasm/es/reader/index.js",
            "/static/vendor/zxing-wasm/reader/zxing_reader.wasm"} <= files
    assert "/static/door/sw.js" not in files
    for url in files:
        with client.get(url) as served:  # a static file: closed, or Python warns of the open file
            assert served.status_code == 200, url
    assert client.get("/door/sw.js").get_data(as_text=True).startswith(first), "the version is stable"


def test_the_manifest_makes_the_door_installable(client):
    answer = client.get("/door/manifest.webmanifest")
    assert answer.status_code == 200 and answer.mimetype == "application/manifest+json"
    manifest = answer.get_json(force=True)
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == ("/door", "/door", "standalone")
    assert manifest["name"] and manifest["short_name"]
    sizes = set()
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as png:
            assert png.status_code == 200 and icon["type"] == "image/png"
            data = png.get_data()
        with Image.open(io.BytesIO(data)) as image:
            assert f"{image.width}x{image.height}" == icon["sizes"] and image.format == "PNG"
            sizes.add(image.width)
    assert sizes == {192, 512}
