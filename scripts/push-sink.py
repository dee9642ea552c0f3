"""A real Web Push service for the push tests: it checks what a browser's
push service checks, and decrypts what it accepts.

A push test must prove that the server signed and encrypted a message a
browser could read, so this sink accepts nothing on trust: every message is
checked against RFC 8030 (Web Push), RFC 8292 (VAPID) and RFC 8291 (message
encryption), and decrypted with the subscription's own private key before it
is stored. Everything lives in memory; a restart forgets it.

    python scripts/push-sink.py --host 127.0.0.1 --port 8089

The HTTP API (JSON in and out):

  POST  /subscriptions        a new subscription. Optional body
                              {"mode": "ok", "fail_times": N, "redirect_to": URL};
                              answers 201 with what a browser's
                              PushSubscription.toJSON() gives:
                              {"id", "endpoint", "keys": {"p256dh", "auth"}}
  PATCH /subscriptions/<id>   changes mode / fail_times / redirect_to
  GET   /subscriptions/<id>   {"mode", "messages", "rejections", "attempts"}
  POST  /push/<id>            the push endpoint the server under test calls
  GET   /messages/<n>         one stored message (the Location of a 201)

What a subscription's mode makes POST /push/<id> answer:
  ok        checks and decrypts (below); 201 and stores the message
  gone      410 (the subscription expired: the server must drop it)
  notfound  404 (likewise)
  error     500
  hang      answers 503 only after 120 s, to exercise the server's timeout
  redirect  307 to redirect_to
  flaky     500 for the first fail_times requests, then as ok

In mode ok the checks run in this order, the first failure answering:
  TTL header missing or not a non-negative integer      400
  Urgency not very-low|low|normal|high, or Topic not
    1-32 base64url characters (RFC 8030 §5.3, §5.4)     400
  Content-Encoding not aes128gcm                        415
  Authorization not `vapid t=<JWT>, k=<key>`, JWT not
    ES256, k not an uncompressed P-256 point            401
  JWT signature invalid under k                         403
  aud not this sink's origin, exp past or more than
    24 h (+60 s of clock skew) ahead, sub neither
    mailto: nor https:                                  403
  body over 4096 bytes (RFC 8030 §7.2)                  413
  body not a single aes128gcm record that decrypts
    with this subscription's keys                       400
Each refusal is recorded, with its reason, under the subscription's
"rejections"; every request to /push/<id>, whatever the mode, under
"attempts".
"""

import argparse
import base64
import json
import re
import secrets
import signal
import sys
import threading
import time

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "gone", "notfound", "error", "hang", "redirect", "flaky")
HANG_SECONDS = 120
# RFC 8292 §2: exp no more than 24 hours ahead; the minute is for clock skew
# between the server under test and this sink.
MAX_EXP_AHEAD = 24 * 3600 + 60
# RFC 8030 §7.2: push services must take at least 4096 bytes of payload and
# may refuse more, as the big ones do; a server that sends more would fail
# in production, so it fails here.
MAX_PAYLOAD = 4096
# Bodies of the control API; anything larger is a broken client.
MAX_BODY = 1 << 20
URGENCIES = ("very-low", "low", "normal", "high")
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
B64URL = re.compile(r"[A-Za-z0-9_-]*")
# aes128gcm header (RFC 8188 §2.1): salt(16) rs(4) idlen(1) keyid(idlen).
# In Web Push the keyid is the sender's 65-byte public key (RFC 8291 §4).
ECE_HEADER = 16 + 4 + 1
SENDER_KEY_LEN = 65
TAG_LEN = 16


class Reject(Exception):
    """A request refused with an HTTP status and a reason a test can read."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    # Strict: RFC 7515 base64url has no padding, and the stdlib decoder would
    # silently skip characters outside the alphabet.
    if not B64URL.fullmatch(text):
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def origin_of(host, port):
    """The origin (RFC 6454) a VAPID aud must name for endpoints on host:port."""
    if ":" in host:
        host = "[%s]" % host
    return "http://%s" % host if port == 80 else "http://%s:%d" % (host, port)


class Subscription:
    def __init__(self, sub_id):
        self.id = sub_id
        # The browser side of RFC 8291: the key pair whose public half is
        # p256dh, and the auth secret. Only this sink can decrypt with them.
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = secrets.token_bytes(16)
        self.mode = "ok"
        self.redirect_to = None
        self.failures_left = 0
        self.messages = []
        self.rejections = []
        self.attempts = []

    def configure(self, settings):
        """Applies {"mode", "fail_times", "redirect_to"}, all optional; raises
        Reject(400) without changing anything when they don't make sense."""
        if not isinstance(settings, dict):
            raise Reject(400, "expected a JSON object")
        unknown = set(settings) - {"mode", "fail_times", "redirect_to"}
        if unknown:
            # A typo in a test's setup should fail loudly, not be ignored.
            raise Reject(400, "unknown fields: %s" % ", ".join(sorted(unknown)))
        mode = settings.get("mode", self.mode)
        if mode not in MODES:
            raise Reject(400, "mode must be one of %s" % ", ".join(MODES))
        fail_times = settings.get("fail_times", self.failures_left)
        if isinstance(fail_times, bool) or not isinstance(fail_times, int) or fail_times < 0:
            raise Reject(400, "fail_times must be a non-negative integer")
        redirect_to = settings.get("redirect_to", self.redirect_to)
        if redirect_to is not None and not (
            isinstance(redirect_to, str) and re.match(r"https?://", redirect_to)
        ):
            raise Reject(400, "redirect_to must be an http(s) URL")
        if mode == "redirect" and redirect_to is None:
            raise Reject(400, "mode redirect needs redirect_to")
        self.mode, self.failures_left, self.redirect_to = mode, fail_times, redirect_to

    def public_json(self, endpoint):
        p256dh = self.private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        return {
            "id": self.id,
            "endpoint": endpoint,
            "keys": {"p256dh": b64url_encode(p256dh), "auth": b64url_encode(self.auth_secret)},
        }

    def state_json(self):
        return {
            "mode": self.mode,
            "messages": self.messages,
            "rejections": self.rejections,
            "attempts": self.attempts,
        }


def check_vapid(authorization, origin, now):
    """Checks an RFC 8292 Authorization header; returns k (as sent)."""
    if not authorization:
        raise Reject(401, "missing Authorization header")
    m = re.fullmatch(r"\s*vapid\s+(.*?)\s*", authorization, re.I | re.S)
    if not m:
        raise Reject(401, "Authorization scheme is not vapid (RFC 8292 §3)")
    params = {}
    for part in m.group(1).split(","):
        name, eq, value = part.strip().partition("=")
        name, value = name.strip().lower(), value.strip()
        # auth-param values may be quoted-strings (RFC 7235 §2.1).
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not eq or not name or not value or name in params:
            raise Reject(401, "malformed vapid parameters: %r" % m.group(1))
        params[name] = value
    if "t" not in params or "k" not in params:
        raise Reject(401, "vapid Authorization needs both t= and k=")
    token, k = params["t"], params["k"]

    parts = token.split(".")
    if len(parts) != 3:
        raise Reject(401, "t is not a JWS compact serialization (three parts)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError as e:
        raise Reject(401, "JWT part is not base64url JSON: %s" % e)
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Reject(401, "JWT header and claims must be JSON objects")
    if header.get("alg") != "ES256":
        raise Reject(401, "JWT alg is %r, not ES256 (RFC 8292 §2)" % header.get("alg"))
    if "typ" in header and str(header["typ"]).upper() != "JWT":
        raise Reject(401, "JWT typ is %r, not JWT" % header["typ"])

    try:
        key_bytes = b64url_decode(k)
    except ValueError:
        raise Reject(401, "k is not base64url without padding")
    if len(key_bytes) != 65 or key_bytes[0] != 4:
        raise Reject(401, "k is not an uncompressed P-256 point (65 bytes, 0x04 first)")
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_bytes)
    except ValueError:
        raise Reject(401, "k is not a point on P-256")

    # JWS ES256 signatures are r||s, 32 bytes each (RFC 7518 §3.4); the
    # cryptography package verifies DER, so re-encode rather than accept
    # DER, which a real push service would refuse.
    if len(signature) != 64:
        raise Reject(403, "JWT signature is %d bytes, not 64 (r||s)" % len(signature))
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, (parts[0] + "." + parts[1]).encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Reject(403, "JWT signature does not verify under k")

    aud = claims.get("aud")
    if aud != origin:
        raise Reject(403, "JWT aud is %r, not this push service's origin %r" % (aud, origin))
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise Reject(403, "JWT exp is missing or not a number")
    if exp <= now:
        raise Reject(403, "JWT expired %.0f s ago" % (now - exp))
    if exp > now + MAX_EXP_AHEAD:
        raise Reject(403, "JWT exp is %.0f s ahead, more than 24 h (RFC 8292 §2)" % (exp - now))
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise Reject(403, "JWT sub is %r, neither mailto: nor https: (RFC 8292 §2.1)" % sub)
    return k


def decrypt_body(body, subscription):
    """Decrypts an RFC 8291 message body with the subscription's keys."""
    if len(body) > MAX_PAYLOAD:
        raise Reject(413, "body is %d bytes, over %d" % (len(body), MAX_PAYLOAD))
    if len(body) < ECE_HEADER:
        raise Reject(400, "body is shorter than the aes128gcm header")
    rs = int.from_bytes(body[16:20], "big")
    if body[20] != SENDER_KEY_LEN:
        raise Reject(400, "aes128gcm keyid is %d bytes, not the sender's 65-byte key (RFC 8291 §4)" % body[20])
    record = body[ECE_HEADER + SENDER_KEY_LEN:]
    # http_ece returns b"" for a body with no records, verifying nothing, so
    # a record (tag plus the padding delimiter at least) must be there.
    if len(record) < TAG_LEN + 1:
        raise Reject(400, "aes128gcm body has no ciphertext record")
    # RFC 8291 §4: a push message is a single record, so rs must cover it.
    if len(record) > rs:
        raise Reject(400, "body is more than one record (rs %d, %d bytes)" % (rs, len(record)))
    try:
        # The sender's public key comes from the keyid in the header, so only
        # the subscription's private key and auth secret are passed.
        return http_ece.decrypt(
            body,
            private_key=subscription.private_key,
            auth_secret=subscription.auth_secret,
            version="aes128gcm",
        )
    except Exception as e:  # ECEException, or ValueError for a bad keyid point
        raise Reject(400, "decryption failed: %s" % getattr(e, "message", e))


def check_push(headers, body, subscription, origin, now):
    """All the checks of mode ok, in the documented order; returns the
    message to store or raises Reject."""
    ttl = headers.get("TTL")
    if ttl is None:
        raise Reject(400, "missing TTL header (RFC 8030 §5.2)")
    if not re.fullmatch(r"[0-9]+", ttl.strip()):
        raise Reject(400, "TTL %r is not a non-negative integer" % ttl)
    urgency = headers.get("Urgency")
    if urgency is not None and urgency.strip() not in URGENCIES:
        raise Reject(400, "Urgency %r is not one of %s (RFC 8030 §5.3)" % (urgency, ", ".join(URGENCIES)))
    topic = headers.get("Topic")
    if topic is not None and not TOPIC.fullmatch(topic.strip()):
        raise Reject(400, "Topic %r is not 1-32 base64url characters (RFC 8030 §5.4)" % topic)
    encoding = headers.get("Content-Encoding")
    if (encoding or "").strip().lower() != "aes128gcm":
        raise Reject(415, "Content-Encoding is %r, not aes128gcm (RFC 8291)" % encoding)
    vapid_key = check_vapid(headers.get("Authorization"), origin, now)
    plaintext = decrypt_body(body, subscription)
    # Keep non-UTF-8 bytes visible as escapes rather than losing them.
    text = plaintext.decode("utf-8", errors="backslashreplace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = text
    return {
        "received_at": now,
        "ttl": int(ttl),
        "topic": topic.strip() if topic is not None else None,
        "urgency": urgency.strip() if urgency is not None else None,
        "vapid_key": vapid_key,
        "payload": payload,
    }


class Sink:
    """The shared state; every access holds the lock."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.lock = threading.Lock()
        self.subscriptions = {}
        # Every stored message as (subscription id, message); /messages/<n>
        # is entry n-1.
        self.messages = []


class BodyError(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open as the server's HTTP client expects
    # of a push service; it requires every answer to carry Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "hearth-push-sink"
    sys_version = ""
    # Idle kept-alive connections are dropped after this long.
    timeout = 600

    @property
    def sink(self):
        return self.server.sink

    # --- plumbing ---------------------------------------------------------

    def parse_request(self):
        self.note = ""
        return super().parse_request()

    def log_request(self, code="-", size="-"):
        # One line per request, with the reason for any refusal, so the log
        # alone explains why a push test failed.
        code = getattr(code, "value", code)
        note = (" (%s)" % self.note) if getattr(self, "note", "") else ""
        sys.stderr.write(
            "%s %s %s %s -> %s%s\n"
            % (time.strftime("%Y-%m-%dT%H:%M:%S"), self.address_string(), self.command, self.path, code, note)
        )

    def log_message(self, format, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), format % args))

    def read_body(self):
        # Read the whole body before answering anything: on a kept-alive
        # connection unread bytes would be taken for the next request.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BodyError("bad chunk size line")
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: not used
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise BodyError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BodyError("bad Content-Length")
        if length < 0 or length > MAX_BODY:
            raise BodyError("body too large or bad Content-Length")
        return self.rfile.read(length)

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else (json.dumps(body) + "\n").encode()
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (as it should on a hanging endpoint).
            self.close_connection = True

    def refuse(self, status, reason):
        self.note = reason
        self.reply(status, {"error": reason})

    def json_body(self):
        raw = self.read_body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise Reject(400, "body is not JSON")

    def route(self, handlers):
        """Runs the handler whose pattern matches the path, or answers 404;
        turns Reject and BodyError into answers."""
        path = self.path.split("?", 1)[0]
        try:
            for pattern, handler in handlers:
                m = re.fullmatch(pattern, path)
                if m:
                    handler(*m.groups())
                    return
            self.read_body()
            self.refuse(404, "no such resource")
        except BodyError as e:
            self.close_connection = True
            self.refuse(400, str(e))
        except Reject as e:
            self.refuse(e.status, e.reason)

    def do_GET(self):
        self.route([
            (r"/subscriptions/([0-9a-f]+)", self.get_subscription),
            (r"/messages/([0-9]+)", self.get_message),
        ])

    def do_POST(self):
        self.route([
            (r"/subscriptions", self.create_subscription),
            (r"/push/([0-9a-f]+)", self.push),
        ])

    def do_PATCH(self):
        self.route([(r"/subscriptions/([0-9a-f]+)", self.patch_subscription)])

    # --- the control API --------------------------------------------------

    def create_subscription(self):
        settings = self.json_body()
        sub = Subscription(secrets.token_hex(16))
        sub.configure(settings)
        with self.sink.lock:
            self.sink.subscriptions[sub.id] = sub
        self.note = "mode %s" % sub.mode
        self.reply(201, sub.public_json("%s/push/%s" % (self.sink.base_url, sub.id)))

    def lookup(self, sub_id):
        sub = self.sink.subscriptions.get(sub_id)
        if sub is None:
            raise Reject(404, "no such subscription")
        return sub

    def get_subscription(self, sub_id):
        self.read_body()
        with self.sink.lock:
            # Serialized under the lock: pushes may be appending meanwhile.
            state = json.loads(json.dumps(self.lookup(sub_id).state_json()))
        self.reply(200, state)

    def patch_subscription(self, sub_id):
        settings = self.json_body()
        with self.sink.lock:
            sub = self.lookup(sub_id)
            sub.configure(settings)
            state = {"mode": sub.mode}
        self.note = "mode %s" % state["mode"]
        self.reply(200, state)

    def get_message(self, n):
        self.read_body()
        n = int(n)
        with self.sink.lock:
            if not 1 <= n <= len(self.sink.messages):
                raise Reject(404, "no such message")
            sub_id, message = self.sink.messages[n - 1]
            body = dict(message, subscription=sub_id)
        self.reply(200, body)

    # --- the push endpoint ------------------------------------------------

    def push(self, sub_id):
        body = self.read_body()
        now = time.time()
        with self.sink.lock:
            sub = self.lookup(sub_id)
            mode = sub.mode
            if mode == "flaky":
                if sub.failures_left > 0:
                    sub.failures_left -= 1
                else:
                    mode = "ok"
            fixed = {
                "gone": (410, "subscription gone (mode gone)"),
                "notfound": (404, "subscription not found (mode notfound)"),
                "error": (500, "push service error (mode %s)" % sub.mode),
                "flaky": (500, "push service error (mode flaky)"),
                # Recorded now, answered after HANG_SECONDS: a test sees the
                # attempt while the server is still waiting.
                "hang": (503, "answered after %d s (mode hang)" % HANG_SECONDS),
                "redirect": (307, "redirected to %s" % sub.redirect_to),
            }.get(mode)
            if fixed:
                sub.attempts.append({"status": fixed[0], "at": now})
            redirect_to = sub.redirect_to
        if fixed:
            status, reason = fixed
            if mode == "hang":
                time.sleep(HANG_SECONDS)
            self.note = reason
            headers = [("Location", redirect_to)] if mode == "redirect" else []
            self.reply(status, {"error": reason} if status >= 400 else None, headers)
            return

        # Mode ok. The checks only read the subscription's keys, which never
        # change, so they run outside the lock.
        try:
            message = check_push(self.headers, body, sub, self.sink.base_url, now)
        except Reject as e:
            with self.sink.lock:
                sub.rejections.append({"reason": e.reason, "status": e.status, "at": now})
                sub.attempts.append({"status": e.status, "at": now})
            raise
        with self.sink.lock:
            sub.messages.append(message)
            sub.attempts.append({"status": 201, "at": now})
            self.sink.messages.append((sub.id, message))
            n = len(self.sink.messages)
        self.note = "stored /messages/%d" % n
        self.reply(201, None, [("Location", "/messages/%d" % n)])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8089)
    a = p.parse_args()
    server = ThreadingHTTPServer((a.host, a.port), Handler)
    server.sink = Sink(origin_of(a.host, a.port))
    # SIGTERM (scripts/push.sh stop) ends serve_forever like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("push sink on %s" % server.sink.base_url, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
