"""Checks scripts/push-sink.py against the protocol, from the outside.

The sink is only worth something if it refuses what a real push service
refuses, so besides one good delivery this sends messages that are wrong in
one way each and expects each to be turned away, and walks the failure
modes. It plays the application server: it encrypts with http_ece to the
subscription's keys (RFC 8291) and signs its own VAPID JWT (RFC 8292), both
with fresh keys, independent of the sink's code.

Starts nothing: run scripts/push.sh first.

    $HEARTH_VENV/bin/python scripts/push-sink-selftest.py --url http://127.0.0.1:8089

Prints one line per check and exits non-zero if any failed. The hang check
leaves one request waiting in the sink for two minutes; that is harmless.
"""

import argparse
import base64
import http.client
import json
import socket
import sys
import time
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class Failed(Exception):
    pass


def expect(condition, what):
    if not condition:
        raise Failed(what)


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Client:
    """Plain http.client, because urllib would follow the 307 we test for."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, body=None, headers=None, timeout=10):
        if url.startswith("/"):
            url = self.base_url + url
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            conn.request(method, u.path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.headers, data
        finally:
            conn.close()

    def json(self, method, path, body=None, want=200):
        raw = None if body is None else json.dumps(body).encode()
        status, _, data = self.request(method, path, raw, {"Content-Type": "application/json"})
        expect(status == want, "%s %s answered %d, not %d: %s" % (method, path, status, want, data[:200]))
        return json.loads(data) if data else None

    def subscribe(self, **settings):
        sub = self.json("POST", "/subscriptions", settings, want=201)
        # The shape of PushSubscription.toJSON(), which the server stores.
        expect(set(sub) == {"id", "endpoint", "keys"}, "subscription fields: %s" % sorted(sub))
        expect(set(sub["keys"]) == {"p256dh", "auth"}, "subscription keys: %s" % sorted(sub["keys"]))
        expect("=" not in sub["keys"]["p256dh"] + sub["keys"]["auth"], "keys must be unpadded base64url")
        p256dh = b64url_decode(sub["keys"]["p256dh"])
        expect(len(p256dh) == 65 and p256dh[0] == 4, "p256dh is not an uncompressed P-256 point")
        expect(len(b64url_decode(sub["keys"]["auth"])) == 16, "auth is not 16 bytes")
        expect(sub["endpoint"] == "%s/push/%s" % (self.base_url, sub["id"]), "endpoint %s" % sub["endpoint"])
        return sub

    def state(self, sub):
        return self.json("GET", "/subscriptions/%s" % sub["id"])


def origin(url):
    u = urlsplit(url)
    return "%s://%s" % (u.scheme, u.netloc)


def encrypt(sub, payload):
    """What the server does per RFC 8291: ECDH with a fresh key against
    p256dh, mixed with the auth secret; one aes128gcm record."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    return http_ece.encrypt(
        payload,
        private_key=ephemeral,
        dh=b64url_decode(sub["keys"]["p256dh"]),
        auth_secret=b64url_decode(sub["keys"]["auth"]),
        version="aes128gcm",
    )


class Vapid:
    """An application server's VAPID key pair (RFC 8292)."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.k = b64url_encode(self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))

    def header(self, aud, exp=None, sub="mailto:selftest@hearth.invalid", tamper=False):
        if exp is None:
            exp = int(time.time()) + 12 * 3600
        signing_input = "%s.%s" % (
            b64url_encode(json.dumps({"typ": "JWT", "alg": "ES256"}).encode()),
            b64url_encode(json.dumps({"aud": aud, "exp": exp, "sub": sub}).encode()),
        )
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        signature = bytearray(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        if tamper:
            signature[10] ^= 0x01
        return "vapid t=%s.%s, k=%s" % (signing_input, b64url_encode(bytes(signature)), self.k)


class SelfTest:
    def __init__(self, url):
        self.client = Client(url)
        self.vapid = Vapid()
        self.passed = 0
        self.failed = 0

    def push(self, sub, payload=b'{"kind":"selftest"}', body=None, timeout=10, **overrides):
        """POSTs a push that is valid unless overrides say otherwise: header
        names map to a value, or to None to leave the header out."""
        headers = {
            "TTL": "60",
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self.vapid.header(origin(sub["endpoint"])),
        }
        for name, value in overrides.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        if body is None:
            body = encrypt(sub, payload)
        return self.client.request("POST", sub["endpoint"], body, headers, timeout=timeout)

    def check(self, name, fn):
        try:
            fn()
        except Failed as e:
            self.failed += 1
            print("FAIL %s: %s" % (name, e))
        except Exception as e:  # a crash in a check is a failure, not the end
            self.failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        else:
            self.passed += 1
            print("ok   %s" % name)

    # --- delivery ---------------------------------------------------------

    def delivery(self):
        sub = self.client.subscribe()
        payload = {"type": "message", "room": "r1", "text": "héllo ✓"}
        status, headers, data = self.push(
            sub, json.dumps(payload).encode(), Topic="room-r1", Urgency="high"
        )
        expect(status == 201, "push answered %d: %s" % (status, data[:200]))
        location = headers.get("Location") or ""
        expect(location.startswith("/messages/"), "Location %r" % location)
        state = self.client.state(sub)
        expect(len(state["messages"]) == 1, "%d messages stored" % len(state["messages"]))
        msg = state["messages"][0]
        expect(msg["payload"] == payload, "payload %r" % msg["payload"])
        expect(msg["ttl"] == 60, "ttl %r" % msg["ttl"])
        expect(msg["topic"] == "room-r1" and msg["urgency"] == "high", "topic/urgency %r/%r" % (msg["topic"], msg["urgency"]))
        expect(msg["vapid_key"] == self.vapid.k, "vapid_key is not the signer's key")
        expect(abs(msg["received_at"] - time.time()) < 30, "received_at %r" % msg["received_at"])
        expect(state["rejections"] == [], "rejections %r" % state["rejections"])
        expect([a["status"] for a in state["attempts"]] == [201], "attempts %r" % state["attempts"])
        same = self.client.json("GET", location)
        expect(same["payload"] == payload and same["subscription"] == sub["id"], "GET %s: %r" % (location, same))

    def text_payload(self):
        sub = self.client.subscribe()
        status, _, data = self.push(sub, b"plain text, not JSON")
        expect(status == 201, "push answered %d: %s" % (status, data[:200]))
        expect(self.client.state(sub)["messages"][0]["payload"] == "plain text, not JSON", "text payload not kept")

    # --- refusals: each push is wrong in one way --------------------------

    def refused(self, want, reason_has, **push_args):
        """A fresh subscription, one bad push: answered `want`, recorded as a
        rejection whose reason mentions `reason_has`, nothing stored."""
        def run():
            sub = self.client.subscribe()
            status, _, data = self.push(sub, **push_args)
            expect(status == want, "answered %d, not %d: %s" % (status, want, data[:200]))
            state = self.client.state(sub)
            expect(state["messages"] == [], "a message was stored anyway")
            expect(len(state["rejections"]) == 1, "rejections %r" % state["rejections"])
            rejection = state["rejections"][0]
            expect(rejection["status"] == want, "rejection status %r" % rejection["status"])
            expect(reason_has.lower() in rejection["reason"].lower(), "reason %r lacks %r" % (rejection["reason"], reason_has))
        return run

    def refusals(self):
        now = int(time.time())
        aud = origin(self.client.base_url)
        other = Vapid()
        stranger = {"keys": self.client.subscribe()["keys"]}
        return [
            ("tampered signature -> 403", self.refused(403, "signature", Authorization=self.vapid.header(aud, tamper=True))),
            ("wrong aud -> 403", self.refused(403, "aud", Authorization=self.vapid.header("http://127.0.0.1:1"))),
            ("expired exp -> 403", self.refused(403, "expired", Authorization=self.vapid.header(aud, exp=now - 60))),
            ("missing TTL -> 400", self.refused(400, "TTL", TTL=None)),
            ("negative TTL -> 400", self.refused(400, "TTL", TTL="-5")),
            ("exp over 24 h ahead -> 403", self.refused(403, "24 h", Authorization=self.vapid.header(aud, exp=now + 25 * 3600))),
            ("sub not mailto:/https: -> 403", self.refused(403, "sub", Authorization=self.vapid.header(aud, sub="hearth"))),
            ("missing Authorization -> 401", self.refused(401, "missing Authorization", Authorization=None)),
            ("WebPush scheme -> 401", self.refused(401, "vapid", Authorization="WebPush " + self.vapid.header(aud)[6:])),
            ("k of another key -> 403", self.refused(403, "signature", Authorization=self.vapid.header(aud).rsplit("k=", 1)[0] + "k=" + other.k)),
            ("Content-Encoding aesgcm -> 415", self.refused(415, "Content-Encoding", Content_Encoding="aesgcm")),
            ("bad Urgency -> 400", self.refused(400, "Urgency", Urgency="urgent")),
            ("encrypted to other keys -> 400", self.refused(400, "decryption failed", body=encrypt(stranger, b"{}"))),
            ("header without record -> 400", self.refused(400, "no ciphertext", body=encrypt(stranger, b"{}")[:86])),
            ("body over 4096 bytes -> 413", self.refused(413, "4096", payload=b"x" * 4200)),
        ]

    # --- modes ------------------------------------------------------------

    def mode(self, want, **settings):
        def run():
            sub = self.client.subscribe(**settings)
            status, headers, data = self.push(sub)
            expect(status == want, "answered %d, not %d: %s" % (status, want, data[:200]))
            if "redirect_to" in settings:
                expect(headers.get("Location") == settings["redirect_to"], "Location %r" % headers.get("Location"))
            state = self.client.state(sub)
            expect([a["status"] for a in state["attempts"]] == [want], "attempts %r" % state["attempts"])
            expect(state["messages"] == [], "a message was stored anyway")
        return run

    def flaky(self):
        sub = self.client.subscribe(mode="flaky", fail_times=2)
        statuses = [self.push(sub)[0] for _ in range(3)]
        expect(statuses == [500, 500, 201], "answers %r" % statuses)
        state = self.client.state(sub)
        expect([a["status"] for a in state["attempts"]] == [500, 500, 201], "attempts %r" % state["attempts"])
        expect(len(state["messages"]) == 1, "%d messages stored" % len(state["messages"]))

    def goes_away(self):
        sub = self.client.subscribe()
        expect(self.push(sub)[0] == 201, "first push not accepted")
        self.client.json("PATCH", "/subscriptions/%s" % sub["id"], {"mode": "gone"})
        status = self.push(sub)[0]
        expect(status == 410, "after PATCH gone: %d" % status)

    def unknown(self):
        sub = dict(self.client.subscribe())
        sub["endpoint"] = sub["endpoint"].rsplit("/", 1)[0] + "/" + "0" * 32
        status = self.push(sub)[0]
        expect(status == 404, "unknown subscription: %d" % status)

    def bad_settings(self):
        status, _, _ = self.client.request("POST", "/subscriptions", b'{"mode": "sometimes"}')
        expect(status == 400, "unknown mode accepted: %d" % status)
        status, _, _ = self.client.request("POST", "/subscriptions", b'{"mode": "redirect"}')
        expect(status == 400, "redirect without redirect_to accepted: %d" % status)

    def hang(self):
        sub = self.client.subscribe(mode="hang")
        try:
            status = self.push(sub, timeout=2)[0]
        except (socket.timeout, TimeoutError):
            pass
        else:
            raise Failed("answered %d within 2 s" % status)
        expect(len(self.client.state(sub)["attempts"]) == 1, "the attempt was not recorded")

    def run(self):
        self.check("delivery: encrypted + signed push is decrypted and stored", self.delivery)
        self.check("non-JSON payload is kept as text", self.text_payload)
        for name, fn in self.refusals():
            self.check(name, fn)
        self.check("mode gone -> 410", self.mode(410, mode="gone"))
        self.check("mode notfound -> 404", self.mode(404, mode="notfound"))
        self.check("mode error -> 500", self.mode(500, mode="error"))
        self.check("mode redirect -> 307", self.mode(307, mode="redirect", redirect_to="http://127.0.0.1:1/elsewhere"))
        self.check("mode flaky, fail_times 2 -> 500, 500, 201", self.flaky)
        self.check("PATCH mode gone: a working subscription answers 410", self.goes_away)
        self.check("unknown subscription -> 404", self.unknown)
        self.check("bad subscription settings -> 400", self.bad_settings)
        self.check("mode hang: no answer within 2 s", self.hang)
        print("selftest: %d passed, %d failed" % (self.passed, self.failed))
        return self.failed == 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8089")
    a = p.parse_args()
    test = SelfTest(a.url)
    try:
        test.client.request("GET", "/subscriptions/0", timeout=5)
    except OSError as e:
        sys.exit("push sink not reachable at %s (%s): run scripts/push.sh" % (a.url, e))
    sys.exit(0 if test.run() else 1)


if __name__ == "__main__":
    main()
