"""Standard Webhooks signing and verification, pinned to the spec's published vector."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from adapters import standard_webhooks as sw
from dispatcher.errors import ConfigurationError, SignatureError

# The vector published with the Standard Webhooks reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"a key for the tests, 32 bytes!!!").decode()
OTHER = "whsec_" + base64.b64encode(b"another key entirely, not ours").decode()
NOW = 1_700_000_000


def headers(body: bytes = b"{}", ts: int = NOW, secret: str = SECRET, msg_id: str = "msg_1"):
    return sw.sign(secret, msg_id, ts, body)


def test_sign_reproduces_the_published_vector():
    signed = sw.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    assert signed == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIG,
    }


def test_signature_matches_an_hmac_computed_here():
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, b"msg_9.1700000000.hello", hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    assert sw.sign(SECRET, "msg_9", NOW, b"hello")["webhook-signature"] == expected


def test_verify_accepts_the_published_vector():
    vector = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIG,
    }
    assert sw.verify(VECTOR_SECRET, vector, VECTOR_BODY, now=VECTOR_TS + 10) == VECTOR_TS


def test_verify_round_trip_and_header_names_are_case_insensitive():
    body = b'{"a": 1}'
    shouted = {k.upper(): v for k, v in headers(body).items()}
    assert sw.verify(SECRET, shouted, body, now=NOW) == NOW
    assert sw.verify(SECRET, headers(body), body.decode(), now=NOW) == NOW


def test_the_prefix_is_optional():
    body = b"x"
    assert sw.verify(SECRET.removeprefix("whsec_"), headers(body), body, now=NOW)


def test_any_of_several_signatures_may_match_for_key_rotation():
    body = b"rotated"
    both = sw.sign([OTHER, SECRET], "msg_1", NOW, body)
    assert len(both["webhook-signature"].split()) == 2
    assert sw.verify(SECRET, both, body, now=NOW)
    assert sw.verify(OTHER, both, body, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(missing):
    h = headers()
    del h[missing]
    with pytest.raises(SignatureError, match=f"missing {missing} header"):
        sw.verify(SECRET, h, b"{}", now=NOW)


def test_bad_timestamp():
    h = {**headers(), "webhook-timestamp": "yesterday"}
    with pytest.raises(SignatureError, match="bad webhook-timestamp"):
        sw.verify(SECRET, h, b"{}", now=NOW)


def test_too_old_and_too_new():
    with pytest.raises(SignatureError, match="too old"):
        sw.verify(SECRET, headers(ts=NOW - 301), b"{}", now=NOW)
    with pytest.raises(SignatureError, match="too new"):
        sw.verify(SECRET, headers(ts=NOW + 301), b"{}", now=NOW)
    # the edges are inside the window
    assert sw.verify(SECRET, headers(ts=NOW - 300), b"{}", now=NOW)
    assert sw.verify(SECRET, headers(ts=NOW + 300), b"{}", now=NOW)
    assert sw.verify(SECRET, headers(ts=NOW - 1000), b"{}", tolerance=2000, now=NOW)


def test_wrong_secret_altered_body_and_altered_id_do_not_match():
    body = b'{"amount": 100}'
    with pytest.raises(SignatureError, match="no matching signature"):
        sw.verify(SECRET, headers(body, secret=OTHER), body, now=NOW)
    with pytest.raises(SignatureError, match="no matching signature"):
        sw.verify(SECRET, headers(body), b'{"amount": 999}', now=NOW)
    with pytest.raises(SignatureError, match="no matching signature"):
        sw.verify(SECRET, {**headers(body), "webhook-id": "msg_2"}, body, now=NOW)


def test_only_v1_signatures_count():
    h = headers()
    h["webhook-signature"] = h["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(SignatureError, match="no v1 signature"):
        sw.verify(SECRET, h, b"{}", now=NOW)


def test_garbage_signature_is_a_mismatch_not_a_crash():
    h = {**headers(), "webhook-signature": "v1,not-base64-é v1,"}
    with pytest.raises(SignatureError, match="no matching signature"):
        sw.verify(SECRET, h, b"{}", now=NOW)


def test_malformed_secret_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        sw.secret_key("whsec_***not base64***")
    with pytest.raises(ConfigurationError):
        sw.secret_key("whsec_")


def test_generated_secrets_sign_and_verify():
    secret = sw.generate_secret()
    assert secret.startswith("whsec_")
    h = sw.sign(secret, "msg_x", NOW, b"b")
    assert sw.verify(secret, h, b"b", now=NOW)
