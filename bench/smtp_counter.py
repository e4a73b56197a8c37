#!/usr/bin/env python3
"""A counting SMTP server on loopback (aiosmtpd) for bench/mail_sender.py: accepts everything, keeps nothing but
counts per Message-ID, and writes them to --out when it gets SIGTERM or SIGINT.

    .venv/bin/python bench/smtp_counter.py --port 8340 --out /tmp/counts.json
"""

import argparse
import json
import re
import signal
import threading
import time

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)


class Counting:
    """aiosmtpd handler: one count per Message-ID, the first and last arrival, the bytes received."""

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.messages = self.bytes = 0
        self.first = self.last = None

    async def handle_DATA(self, server, session, envelope) -> str:
        """Count the message and accept it."""
        now = time.time()
        data = envelope.original_content or envelope.content
        found = MESSAGE_ID.search(data[:4096])
        key = found.group(1).decode() if found else f"none-{self.messages}"
        self.by_id[key] = self.by_id.get(key, 0) + 1
        self.messages += 1
        self.bytes += len(data)
        self.first = self.first or now
        self.last = now
        return "250 OK"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    handler = Counting()
    # SMTPUTF8 on, as a real relay has it; data size unlimited (a ticket mail is ~20 KB).
    controller = Controller(handler, hostname="127.0.0.1", port=a.port, enable_SMTPUTF8=True, data_size_limit=None)
    controller.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()
    with open(a.out, "w") as f:
        json.dump({"messages": handler.messages, "distinct_message_ids": len(handler.by_id),
                   "duplicates": sum(n - 1 for n in handler.by_id.values() if n > 1), "bytes": handler.bytes,
                   "first": handler.first, "last": handler.last, "message_ids": sorted(handler.by_id)}, f)


if __name__ == "__main__":
    main()
