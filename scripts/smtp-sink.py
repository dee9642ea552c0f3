"""A real SMTP server for the mail tests (aiosmtpd), storing what it accepts.

Every accepted message is written, once per recipient, as one file in the
mail directory: `<ns>-<rand>.eml`, the message exactly as received with an
`X-Sink-Rcpt-To:` line in front naming the envelope recipient. Files are
written under a temporary name and renamed, so readers never see half a
message.

Recipients steer the conversation (the local part, case-insensitive):
  bounce...      RCPT answers 550 (a permanent refusal: the address is dead)
  tempfailN-...  RCPT answers 451 (try again later) the first N times this
                 address is tried, then accepts
  tempfail-...   RCPT always answers 451
everything else is accepted.

    python scripts/smtp-sink.py --host 127.0.0.1 --port 2526 --dir /var/tmp/hearth-smtp/mail
"""

import argparse
import asyncio
import os
import re
import secrets
import signal
import time

from aiosmtpd.controller import Controller

TEMPFAIL = re.compile(r"^tempfail(\d*)")


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.tries = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("bounce"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        m = TEMPFAIL.match(local)
        if m:
            key = address.lower()
            self.tries[key] = self.tries.get(key, 0) + 1
            if not m.group(1) or self.tries[key] <= int(m.group(1)):
                return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        body = envelope.original_content or b""
        for rcpt in envelope.rcpt_tos:
            name = "%d-%s.eml" % (time.time_ns(), secrets.token_hex(4))
            tmp = os.path.join(self.directory, "." + name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(b"X-Sink-Rcpt-To: " + rcpt.encode() + b"\r\n" + body)
            os.rename(tmp, os.path.join(self.directory, name))
        return "250 2.0.0 accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2526)
    p.add_argument("--dir", required=True)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    controller = Controller(Sink(a.dir), hostname=a.host, port=a.port)
    controller.start()
    print("smtp sink on %s:%d, mail in %s" % (a.host, a.port, a.dir), flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
