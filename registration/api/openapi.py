"""The OpenAPI 3.1 description of `/api/v1`, served at `GET /api/v1/openapi.json`.

Written by hand, next to the views it describes: tests/test_openapi.py fails when a rule under /api/v1 is missing
here, and fuzzes every operation with Schemathesis against a real app and database, so an answer this document does
not name (status, content type or body) fails the tests too.
"""

from registration.converters import MAX_ID
from registration.tickets import CODE_LENGTH, MAX_REPORTED_CHARACTERS

#: A string format of this API (OpenAPI allows formats of one's own): after its surrounding whitespace is trimmed
#: (a scanner may end what it types with a tab or a line break), one or more characters, all printable in Python's
#: sense (no control, format, private-use, unassigned or separator characters other than the ASCII space).
PRINTABLE = "printable"

# The limits the views enforce and this document states, defined once for both.
MAX_CODE = 200
MAX_GATE = 40
MAX_NONCE = 64
#: An ISO 8601 moment with offset ("2023-09-14T10:02:03.123456+09:00" is 32 characters).
MAX_MOMENT = 40
#: previous_latency_ms is below one hour.
MAX_LATENCY_MS = 3_600_000 - 1

JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


def _result(value: str, **properties: dict) -> dict:
    """An answer object whose `result` is `value`, with these further properties (all of them always present)."""
    return {
        "type": "object",
        "properties": {"result": {"const": value}, **properties},
        "required": ["result", *properties],
        "additionalProperties": False,
    }


#: In every error answer (400, 401, 404 not_found, 405, 413, 5xx): the answer's X-Request-ID, which finds its line in
#: the server's log.
_REQUEST_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:@+=-]{1,128}$",
               "description": "The request's id, also in the X-Request-ID header: quote it when reporting a problem."}


def _with_conflict(schema: dict, *kinds: str) -> dict:
    """`schema` with an optional `conflict` member: the door's offline decision and the server disagree."""
    conflict = {"enum": list(kinds), "description": _CONFLICT}
    return {**schema, "properties": {**schema["properties"], "conflict": conflict}}


def _text(limit: int, description: str) -> dict:
    return {"type": "string", "format": PRINTABLE, "minLength": 1, "maxLength": limit, "description": description}


_CODE = (
    f"The ticket code as scanned or typed: {CODE_LENGTH} characters of base32 (A-Z, 2-7), as its QR code holds them. "
    "Forgiven: width (NFKC), case, spaces of any kind anywhere (besides the printable characters of the format, a "
    "no-break or ideographic space too), hyphens, dashes (U+2010-2015, U+2212, and ー, which the minus key types "
    "under a Japanese input method) and dots (. · ・ 。) between groups, and the digits 0, 1, 8, which base32 does not "
    "have, for the letters O, I, B. Nothing else is guessed: a text that still cannot be a code is answered "
    "`unknown_code` with a `problem`.")
_NULLABLE_TEXT = {"type": ["string", "null"]}
#: How the door writes its scan time (Python's datetime.fromisoformat, which the API reads it with, takes more).
_MOMENT_WITH_OFFSET = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
_OFFLINE_RESULTS = ["ok", "already_checked_in", "unknown_code", "not_admitted"]
_CONFLICT = (
    "Recorded when the door decided offline and the server disagrees: `admitted_twice` (the door let the person in, "
    "and a check-in stood already: the first stays the admission), `admitted_without_ticket` (the door let in "
    "someone without a valid ticket), `refused_with_ticket` (the door turned away a ticket holder who was not "
    "checked in). Staff see it on the console and on the door pages.")
_MOMENT = {"type": "string", "format": "date-time", "description": "In Japan Standard Time, to the second."}

_ATTENDEE = {
    "name": {"type": "string", "description": "The name as the person's own language writes it: given name, a space, "
                                              "family name for a registrant who registered in English; family name, "
                                              "a space, given name otherwise."},
    "kana": {"type": "string", "description": "The reading of the name in kana (may be empty)."},
    "organization": {"type": "string"},
    "on_site": {"type": "boolean", "description": "Registered at the venue (a walk-in)."},
}

_SCHEMAS = {
    "Attendee": {
        "type": "object",
        "description": "What door staff need to see of a person.",
        "properties": _ATTENDEE,
        "required": list(_ATTENDEE),
        "additionalProperties": False,
    },
    "CheckInRequest": {
        "type": "object",
        "description": (
            "A scan: exactly one of `code` (the ticket code as scanned or typed) and `registrant_id` (the manual "
            "button, from a search result). A member that is null counts "
            "as absent. Other members are ignored. Integers are written as JSON integers: `1`, not `1.0` or `1e0` "
            "(JSON Schema cannot tell these apart, the API does: 400)."),
        "properties": {
            "code": {"oneOf": [_text(MAX_CODE, _CODE), {"type": "null"}]},
            "registrant_id": {"type": ["integer", "null"], "minimum": 1,
                              "description": "A registrant's id; an id nobody has is answered `unknown_code`."},
            "gate": {"oneOf": [_text(MAX_GATE, "Where the person is let in; by default the device's name, or "
                                               "`door` for a staff session."), {"type": "null"}]},
            "nonce": {"oneOf": [_text(MAX_NONCE, "Chosen by the client for each scan and sent again with its "
                                                 "retries: a retry gets the first answer back."),
                                {"type": "null"}]},
            "previous_latency_ms": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_LATENCY_MS,
                                    "description": "How long the previous scan took to be answered, as the client "
                                                   "measured it."},
            "scanned_at": {"oneOf": [
                {"type": "string", "format": "date-time", "maxLength": MAX_MOMENT,
                 "pattern": _MOMENT_WITH_OFFSET,
                 "description": "When the device scanned, for a scan sent late (queued offline): ISO 8601 with its "
                                "UTC offset or Z. Recorded as the moment of admission, clamped into the 24 hours "
                                "before the server received it (a wrong device clock never writes the future); the "
                                "time received is kept beside it. Absent: the time received."},
                {"type": "null"}]},
            "offline_result": {"enum": [*_OFFLINE_RESULTS, None],
                               "description": "What the door decided on its own while it could not reach the server. "
                                              "`ok` is admitted as any scan (a check-in standing already, or no "
                                              "valid ticket, is recorded as a conflict); a refusal stays a refusal: "
                                              "no check-in is made, and a ticket holder not checked in is answered "
                                              "`not_admitted` with reason `refused_offline` and a conflict. Sent "
                                              "with the retry of a scan whose first answer never arrived, it marks "
                                              "that scan once."},
        },
        "oneOf": [
            {"required": ["code"], "properties": {"code": {"type": "string"}, "registrant_id": {"type": "null"}}},
            {"required": ["registrant_id"],
             "properties": {"registrant_id": {"type": "integer"}, "code": {"type": "null"}}},
        ],
    },
    "CheckedIn": _with_conflict(_result(
        "ok", checkin_id={"type": "integer", "minimum": 1}, attendee=_ref("Attendee"), checked_in_at=_MOMENT,
        gate={"type": "string"}), "refused_with_ticket"),
    "AlreadyCheckedIn": _with_conflict({
        **_result("already_checked_in", checkin_id={"type": "integer", "minimum": 1,
                                                    "description": "The standing check-in, which can be undone."},
                  attendee=_ref("Attendee"), checked_in_at=_MOMENT, gate={"type": "string"},
                  by={**_NULLABLE_TEXT, "description": "The staff member who checked the person in."},
                  device={**_NULLABLE_TEXT, "description": "Their device; null for the door page."}),
        "description": "The person was let in before: when, where and by whom.",
    }, "admitted_twice"),
    "NotAdmitted": _with_conflict(_result(
        "not_admitted", reason={"enum": ["cancelled", "waitlisted", "no_ticket", "replaced", "refused_offline"]},
        attendee=_ref("Attendee")), "admitted_without_ticket", "refused_with_ticket"),
    "UnknownCode": _with_conflict({
        "type": "object",
        "description": "No ticket has this code, or nobody has this id. When the code cannot be any ticket's code, "
                       "even read as `code` says it is read, `problem` says why, for the door to say what to check.",
        "properties": {"result": {"const": "unknown_code"}, "problem": _ref("CodeProblem")},
        "required": ["result"],
        "additionalProperties": False,
    }, "admitted_without_ticket"),
    "CodeProblem": {
        "type": "object",
        "description": "Why a scanned text is not a ticket code. Characters no code has come first; else the length.",
        "properties": {
            "kind": {"enum": ["too_short", "too_long", "bad_characters"]},
            "length": {"type": "integer", "minimum": 0,
                       "description": "How many characters the text has, spaces, hyphens, dashes and dots left out."},
            "expected_length": {"const": CODE_LENGTH},
            "characters": {"type": "array", "maxItems": MAX_REPORTED_CHARACTERS, "uniqueItems": True,
                           "items": {"type": "string", "minLength": 1, "maxLength": 1},
                           "description": "For `bad_characters`: the characters no code has, each once, in the "
                                          "order they come (width folded, letters in upper case); empty otherwise."},
        },
        "required": ["kind", "length", "expected_length", "characters"],
        "additionalProperties": False,
    },
    "NonceReused": {
        **_result("nonce_reused"),
        "description": "The nonce was sent before with another code, person or device: this scan gets no answer.",
    },
    "InvalidRequest": {
        "type": "object",
        "description": "A malformed request; `field` names the member at fault, or `message` says what is wrong.",
        "properties": {"result": {"const": "invalid_request"}, "message": {"type": "string"},
                       "field": {"type": "string"}, "request_id": _REQUEST_ID},
        "required": ["result", "request_id"],
        "additionalProperties": False,
    },
    "Unauthorized": {
        "type": "object",
        "description": "No device token or staff session, a token that is unknown or revoked (or its staff member "
                       "disabled), or a session request without its CSRF token (`reason` is then `csrf`).",
        "properties": {"result": {"const": "unauthorized"}, "reason": {"const": "csrf"}, "request_id": _REQUEST_ID},
        "required": ["result", "request_id"],
        "additionalProperties": False,
    },
    "NotFound": _result("not_found", request_id=_REQUEST_ID),
    "TooLarge": {**_result("too_large", request_id=_REQUEST_ID), "description": "The request declares a body longer than the server takes "
                                                        "(MAX_CONTENT_LENGTH, 64 KiB by default); refused before "
                                                        "anything else, credentials included."},
    "ServerError": {**_result("server_error", request_id=_REQUEST_ID), "description": "The server failed; the request may be retried "
                                                              "(a check-in with the same nonce)."},
    "Undone": _result("undone", checkin_id={"type": "integer", "minimum": 1}),
    "Stats": {
        "type": "object",
        "description": "The door's live counter.",
        "properties": {
            "checked_in": {"type": "integer", "minimum": 0, "description": "Seat holders checked in."},
            "confirmed": {"type": "integer", "minimum": 0, "description": "Confirmed seats."},
            "capacity": {"type": "integer", "minimum": 0},
            "waitlisted": {"type": "integer", "minimum": 0},
            "checked_in_without_seat": {"type": "integer", "minimum": 0,
                                        "description": "Checked in, and have since lost their seat (cancelled)."},
        },
        "required": ["checked_in", "confirmed", "capacity", "waitlisted", "checked_in_without_seat"],
        "additionalProperties": False,
    },
    "SearchResult": {
        "type": "object",
        "description": "A person found, with the Attendee members, and whether and where they are checked in.",
        "properties": {
            "registrant_id": {"type": "integer", "minimum": 1},
            **_ATTENDEE,
            "email": {"type": "string"},
            "seat_status": {"enum": ["none", "waitlisted", "confirmed", "cancelled"]},
            "checked_in": {"type": "boolean", "description": "A check-in stands (it may outlive the ticket)."},
            "admissible": {"type": "boolean", "description": "Whether the door lets the person in."},
            "reason": {"enum": ["cancelled", "waitlisted", "no_ticket", "replaced", None],
                       "description": "Why not, when not admissible."},
            "checkin_id": {"type": ["integer", "null"], "minimum": 1,
                           "description": "The standing check-in, which can be undone."},
            "checked_in_at": {"oneOf": [_MOMENT, {"type": "null"}]},
            "gate": _NULLABLE_TEXT,
        },
        "required": ["registrant_id", *_ATTENDEE, "email", "seat_status", "checked_in", "admissible", "reason",
                     "checkin_id", "checked_in_at", "gate"],
        "additionalProperties": False,
    },
    "DoorPerson": {
        "type": "object",
        "description": "A current seat holder as the door's local copy keeps them. Never an e-mail address or a code.",
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "hash": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$",
                     "description": "base64url (no padding) of the first 16 bytes of HMAC-SHA256(`key`, the ticket "
                                    "code as normalised for a scan, in UTF-8)."},
            **_ATTENDEE,
            "checkin": {"oneOf": [{
                "type": "object", "description": "The standing check-in.",
                "properties": {"id": {"type": "integer", "minimum": 1}, "at": _MOMENT, "gate": {"type": "string"}},
                "required": ["id", "at", "gate"], "additionalProperties": False}, {"type": "null"}]},
        },
        "required": ["id", "hash", *_ATTENDEE, "checkin"],
        "additionalProperties": False,
    },
    "DoorDataset": {
        "type": "object",
        "description": "What a door page needs to decide on its own, for current seat holders only.",
        "properties": {
            "version": {"type": "string", "description": "Send it back as `since` for the changes after it."},
            "full": {"type": "boolean", "description": "true: replace the whole local copy; false: apply the changes "
                                                        "(upsert `people` by id, delete `removed`)."},
            "key_id": {"type": "string"},
            "key": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$",
                    "description": "The HMAC-SHA256 key of the ticket code hashes, base64url without padding (32 "
                                   "bytes). A new key_id means a new key: start afresh."},
            "server_time": {"type": "string", "format": "date-time",
                            "description": "The server's clock, Japan time, to the millisecond."},
            "expires_at": {**_MOMENT, "description": "The end of the closing day, Japan time: after it the copy is "
                                                     "wiped."},
            "expired": {"type": "boolean", "description": "The closing day is over: `people` is empty and the door "
                                                           "keeps nothing."},
            "people": {"type": "array", "items": _ref("DoorPerson")},
            "removed": {"type": "array", "items": {"type": "integer", "minimum": 1},
                        "description": "Ids that are no longer seat holders: delete them."},
            "conflicts": {"type": "array", "maxItems": 20, "items": {"type": "object"},
                          "description": "Open conflicts of offline scans (the console's list), newest first."},
            "conflicts_open": {"type": "integer", "minimum": 0,
                               "description": "How many conflicts are open in all (`conflicts` lists 20 at most)."},
            "csrf_token": {"type": "string", "description": "For a staff session only: the session's current CSRF "
                                                            "token (a page from the cache may hold an old one)."},
        },
        "required": ["version", "full", "key_id", "key", "server_time", "expires_at", "expired", "people", "removed",
                     "conflicts", "conflicts_open"],
        "additionalProperties": False,
    },
    "SearchResults": {
        "type": "object",
        "properties": {"results": {"type": "array", "maxItems": 20, "items": _ref("SearchResult")}},
        "required": ["results"],
        "additionalProperties": False,
    },
}

# Any request may declare a body too long for the server (registration/__init__.py refuses it for the whole app, GETs
# included) or meet a failure on the server's side.
_ANY = {
    "413": _answer("The body is too long.", "TooLarge"),
    "5XX": _answer("The server failed.", "ServerError"),
}
# Every operation but the document's needs credentials.
_COMMON = {"401": _answer("No valid credentials.", "Unauthorized"), **_ANY}
_DEVICE_OR_SESSION = [{"deviceToken": []}, {"staffSession": []}]
# A state-changing request on a staff session must prove it comes from the app's own page (X-CSRFToken).
_DEVICE_OR_SESSION_WITH_CSRF = [{"deviceToken": []}, {"staffSession": [], "csrfToken": []}]

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "CODT2023 door API",
        "version": "1",
        "description": (
            "Check-ins at the closing event's door, their undo, the live counter and the search for people without "
            "their code. Every answer, refusals and errors included, is a JSON object with a `result` member "
            "(`results` for a search, the counter's numbers for the counter); a wrong method on a known path is "
            "answered 405 `method_not_allowed` with an `Allow` header, an unknown path 404 `not_found`. Every error "
            "answer (`invalid_request`, `unauthorized`, `not_found`, `method_not_allowed`, `too_large`, "
            "`server_error`) has a `request_id` member, the answer's `X-Request-ID` header: quote it when reporting a "
            "problem. Nothing here is rate-limited.\n\n"
            "Scanners authenticate with a device token (`Authorization: Bearer <token>`, issued by `flask --app "
            "registration staff token`); the door page uses the staff member's session cookie and sends the "
            "session's CSRF token in `X-CSRFToken` with every POST. A request with an `Authorization` header is "
            "judged by its token alone."),
    },
    "paths": {
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {"description": "The OpenAPI document.",
                            "content": {JSON: {"schema": {"type": "object", "required": ["openapi", "paths"]}}}},
                    **_ANY,
                },
            },
        },
        "/api/v1/checkins": {
            "post": {
                "operationId": "checkIn",
                "summary": "Admit the holder of a ticket code, or a registrant from the manual button.",
                "description": "Every scan is recorded, refused ones included. A retry with the nonce of an "
                               "answered scan gets that scan's answer back, whatever it was.",
                "security": _DEVICE_OR_SESSION_WITH_CSRF,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {
                        "schema": _ref("CheckInRequest"),
                        "examples": {
                            "scan": {"value": {"code": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "gate": "east",
                                               "nonce": "3f6c2a", "previous_latency_ms": 180}},
                            "manual": {"value": {"registrant_id": 1, "gate": "east"}},
                        },
                    }},
                },
                "responses": {
                    "201": {
                        **_answer("Let in now.", "CheckedIn"),
                        "links": {"undo": {"operationId": "undoCheckIn",
                                           "parameters": {"checkin_id": "$response.body#/checkin_id"}}},
                    },
                    "400": _answer("The body is not a JSON object, or a member is malformed.", "InvalidRequest"),
                    "403": _answer("The code or person does not admit; `reason` says why.", "NotAdmitted"),
                    "404": _answer("No ticket has this code, or nobody has this id.", "UnknownCode"),
                    "409": {
                        **_answer("Already checked in.", "AlreadyCheckedIn"),
                        "links": {"undo": {"operationId": "undoCheckIn",
                                           "parameters": {"checkin_id": "$response.body#/checkin_id"}}},
                    },
                    "422": _answer("The nonce belongs to another scan.", "NonceReused"),
                    **_COMMON,
                },
            },
        },
        "/api/v1/checkins/{checkin_id}/undo": {
            "post": {
                "operationId": "undoCheckIn",
                "summary": "Take back a check-in (a wrong person let in, a double tap); recorded in the audit log.",
                "description": "The request body, if any, is ignored (but for its length: 413).",
                "security": _DEVICE_OR_SESSION_WITH_CSRF,
                "parameters": [{
                    "name": "checkin_id", "in": "path", "required": True,
                    "description": "A check-in's id, in ASCII digits without a leading zero; any other spelling "
                                   "matches no route (404).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    "example": 1,
                }],
                "responses": {
                    "200": _answer("Undone.", "Undone"),
                    "404": _answer("No such check-in, or it was undone already.", "NotFound"),
                    **_COMMON,
                },
            },
        },
        "/api/v1/door/dataset": {
            "get": {
                "operationId": "doorDataset",
                "summary": "The door's local copy: the seat holders, or their changes since a version.",
                "description": "Changes are those of people (seat, ticket, name, cancellation, erasure) and of their "
                               "check-ins (made or undone) since the moment `since` names; the version is a minute "
                               "behind the server's clock, so a change committed late is sent too (a person may "
                               "come again: upsert by id). The answer is not to be cached.",
                "security": _DEVICE_OR_SESSION,
                "parameters": [{
                    "name": "since", "in": "query", "required": False,
                    "description": "A `version` from an earlier answer. Missing, malformed, from another key or "
                                   "later than the server's clock: the whole copy is sent (`full`).",
                    "schema": {"type": "string"},
                }],
                "responses": {"200": _answer("The copy, or its changes.", "DoorDataset"), **_COMMON},
            },
        },
        "/api/v1/stats": {
            "get": {
                "operationId": "stats",
                "summary": "The live counter.",
                "security": _DEVICE_OR_SESSION,
                "responses": {"200": _answer("The counter.", "Stats"), **_COMMON},
            },
        },
        "/api/v1/registrants": {
            "get": {
                "operationId": "searchRegistrants",
                "summary": "Search by name, kana, email or organisation, for people without their code.",
                "security": _DEVICE_OR_SESSION,
                "parameters": [{
                    "name": "q", "in": "query", "required": False,
                    "description": "2 to 100 printable characters after trimming, matched whatever their width, case "
                                   "or kana script (`%` and `_` as themselves); anything else finds nobody.",
                    "schema": {"type": "string"},
                    "example": "山田",
                }],
                "responses": {"200": _answer("At most 20 people, by kana.", "SearchResults"), **_COMMON},
            },
        },
    },
    "components": {
        "securitySchemes": {
            "deviceToken": {"type": "http", "scheme": "bearer",
                            "description": "A scanner's device token; revoked tokens are refused within "
                                           "DEVICE_TOKEN_CACHE_SECONDS."},
            "staffSession": {"type": "apiKey", "in": "cookie", "name": "session",
                             "description": "A signed-in staff member's session (door or admin)."},
            "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                          "description": "The session's CSRF token, as the door page holds it."},
        },
        "schemas": _SCHEMAS,
    },
}
