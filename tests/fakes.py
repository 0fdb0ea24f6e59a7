"""Fake Twilio and Web Push services on 127.0.0.1, for the real clients to talk to."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils


def b64d(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64e(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with a scripted answer per request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: dict[str, tuple[int, dict, dict]] = {}  # key → (status, json body, headers)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                status, payload, headers = owner.handle(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                self.answer(status, payload, headers)

            def do_GET(self):
                status, payload, headers = owner.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, b"")
                self.answer(status, payload, headers)

            def answer(self, status, payload, headers):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path, headers, body):  # pragma: no cover - overridden
        raise NotImplementedError


class FakeTwilio(FakeServer):
    """The Messages API: answers 201 with a sid, or the error scripted for the recipient (in
    ``script``: every time; in ``script_once``: a list of answers, each used once, first)."""

    def __init__(self):
        super().__init__()
        self.script_once: dict[str, list[tuple[int, int | None, str, dict]]] = {}

    def handle(self, path, headers, body):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.requests.append({"path": path, "form": form, "auth": headers.get("authorization", "")})
        to = form.get("To", "")
        if self.script_once.get(to):
            status, code, message, extra = self.script_once[to].pop(0)
            return status, {"code": code, "message": message, "status": status}, extra
        if to in self.script:
            status, code, message, extra = self.script[to]
            return status, {"code": code, "message": message, "status": status}, extra
        sid = "SM" + uuid.uuid4().hex
        return 201, {"sid": sid, "status": "queued", "to": to, "from": form.get("From"), "body": form.get("Body")}, {}


def content_template(
    sid: str,
    name: str,
    *,
    status: str = "approved",
    body: str = "Hi {{1}}, come back to {{2}}: {{3}}",
    language: str = "en",
    rejection_reason: str = "",
    variables: dict | None = None,
    **approval,
) -> dict:
    """One Content resource with its WhatsApp approval, as Twilio's ContentAndApprovals lists it."""
    return {
        "sid": sid, "account_sid": "", "friendly_name": name, "language": language,
        "variables": variables if variables is not None else {"1": "Wei", "2": "Kopi", "3": "https://x.example"},
        "types": {"twilio/text": {"body": body}},
        "date_created": "2026-11-01T10:00:00Z", "date_updated": "2026-11-02T10:00:00Z",
        "approval_requests": {"name": name, "category": "MARKETING", "content_type": "twilio/text", "status": status,
                              "rejection_reason": rejection_reason, "allow_category_change": True, "type": "whatsapp",
                              **approval},
    }  # fmt: skip


class FakeContentApi(FakeServer):
    """Twilio's Content API: ``GET /v1/ContentAndApprovals`` lists the templates of the account
    that authenticates (``accounts``: account SID → list of ``content_template`` dicts), paged by
    PageSize with Twilio's ``meta``. ``script``: account SID → (status, body) answered instead,
    a bytes body sent as it is (a malformed answer)."""

    def __init__(self):
        super().__init__()
        self.accounts: dict[str, list[dict]] = {}

    def handle(self, path, headers, body):
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        auth = headers.get("authorization", "")
        account = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":")[0] if auth else ""
        self.requests.append({"path": parts.path, "query": query, "account": account})
        if account in self.script:
            status, payload = self.script[account][:2]
            return status, payload, {}
        if parts.path != "/v1/ContentAndApprovals":
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}, {}
        contents = [{**c, "account_sid": account} for c in self.accounts.get(account, [])]
        size, page = int(query.get("PageSize", 50)), int(query.get("Page", 0))
        chunk = contents[page * size : (page + 1) * size]
        base = "https://content.twilio.com/v1/ContentAndApprovals"
        more = (page + 1) * size < len(contents)
        meta = {
            "key": "contents", "page": page, "page_size": size,
            "first_page_url": f"{base}?PageSize={size}&Page=0",
            "previous_page_url": f"{base}?PageSize={size}&Page={page - 1}" if page else None,
            "next_page_url": f"{base}?PageSize={size}&Page={page + 1}&PageToken=PT{page + 1}" if more else None,
            "url": f"{base}?PageSize={size}&Page={page}",
        }  # fmt: skip
        return 200, {"contents": chunk, "meta": meta}, {}


class FakePushService(FakeServer):
    """A push service that checks the VAPID JWT and decrypts the payload (RFC 8291/8292)."""

    def __init__(self, vapid_public_key: str):
        super().__init__()
        self.vapid_public_key = vapid_public_key
        self.subscribers: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}

    def subscribe(self, name: str) -> dict:
        """A browser's subscription: a fresh P-256 key pair and auth secret."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = uuid.uuid4().bytes
        self.subscribers[name] = (key, auth)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": f"{self.url}/push/{name}", "keys": {"p256dh": b64e(public), "auth": b64e(auth)}}

    def verify_vapid(self, authorization: str, endpoint_origin: str) -> dict:
        scheme, _, params = authorization.partition(" ")
        assert scheme == "vapid", authorization
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        assert fields["k"] == self.vapid_public_key
        header_b64, claims_b64, signature_b64 = fields["t"].split(".")
        signature = b64d(signature_b64)
        der = utils.encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(fields["k"]))
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(b64d(claims_b64))
        assert claims["aud"] == endpoint_origin and claims["exp"] > time.time() and claims["sub"].startswith("mailto:")
        return claims

    def handle(self, path, headers, body):
        name = path.rsplit("/", 1)[-1]
        record = {"path": path, "headers": headers, "name": name}
        self.requests.append(record)
        if name in self.script:
            status, payload, extra = self.script[name]
            return status, payload, extra
        try:
            record["claims"] = self.verify_vapid(headers.get("authorization", ""), self.url)
        except Exception as exc:  # noqa: BLE001 - answered like a push service would, and recorded
            record["error"] = repr(exc)
            return 403, {"error": repr(exc)}, {}
        key, auth = self.subscribers[name]
        record["payload"] = json.loads(
            http_ece.decrypt(body, private_key=key, auth_secret=auth, version=headers.get("content-encoding"))
        )
        return 201, {}, {"Location": f"{self.url}/messages/{uuid.uuid4().hex}"}
