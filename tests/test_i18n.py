"""Every message of every page and mail exists in Japanese; English is the source text."""

import re
from io import BytesIO

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import ROOT

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
METHOD_MAP = [("registration/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def source_messages() -> set[str]:
    """The msgids in the code and templates as they are now, not as a stale .pot says."""
    found = set()
    for _, _, message, *_ in extract_from_dir(str(ROOT), METHOD_MAP, keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def japanese_catalog():
    path = ROOT / "registration/translations/ja/LC_MESSAGES/messages.po"
    return read_po(BytesIO(path.read_bytes()))


def test_every_message_has_a_japanese_translation():
    catalog = japanese_catalog()
    missing = []
    for msgid in sorted(source_messages()):
        entry = catalog.get(msgid)
        strings = entry.string if entry else None
        strings = strings if isinstance(strings, tuple) else (strings,)
        if entry is None or entry.fuzzy or not all(strings):
            missing.append(msgid)
    assert missing == []


def test_placeholders_survive_translation():
    for entry in japanese_catalog():
        if not entry.id:
            continue
        source = entry.id[0] if isinstance(entry.id, tuple) else entry.id
        for translation in entry.string if isinstance(entry.string, tuple) else (entry.string,):
            assert sorted(PLACEHOLDER.findall(translation)) == sorted(PLACEHOLDER.findall(source)), source
