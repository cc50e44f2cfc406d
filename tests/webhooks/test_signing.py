"""Standard Webhooks signatures: the published test vector, secrets, and rotation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from webhooks.signing import new_secret, secrets_in_use, sign, signature_header

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signing_reproduces_the_standard_webhooks_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY.encode()) == (
        VECTOR_SIGNATURE
    )


def test_the_reference_library_signs_the_vector_the_same_way() -> None:
    when = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC)
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, when, VECTOR_BODY) == VECTOR_SIGNATURE


def test_a_signed_message_verifies_with_the_standardwebhooks_library() -> None:
    secret = new_secret()
    timestamp = int(datetime.now(UTC).timestamp())
    body = '{"type":"comment_period.opened","data":{}}'
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([secret], "evt_1", timestamp, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "comment_period.opened", "data": {}}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("opened", "closed"), headers)


def test_new_secrets_are_whsec_and_at_least_24_random_bytes() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24


def test_two_live_secrets_give_two_space_separated_signatures_each_verifying() -> None:
    old, new = new_secret(), new_secret()
    timestamp = int(datetime.now(UTC).timestamp())
    header = signature_header([new, old], "evt_2", timestamp, "{}")
    assert header == f"{sign(new, 'evt_2', timestamp, '{}')} {sign(old, 'evt_2', timestamp, '{}')}"
    headers = {
        "webhook-id": "evt_2",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": header,
    }
    Webhook(old).verify("{}", headers)
    Webhook(new).verify("{}", headers)


def test_the_old_secret_is_live_only_until_its_grace_period_ends() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    expires = now + timedelta(hours=24)
    assert secrets_in_use("new", "old", expires, now) == ["new", "old"]
    assert secrets_in_use("new", "old", expires, expires - timedelta(seconds=1)) == ["new", "old"]
    assert secrets_in_use("new", "old", expires, expires) == ["new"]
    assert secrets_in_use("new", None, None, now) == ["new"]


def test_a_malformed_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        sign("whsec_not base64!", "evt", 1, "{}")
    with pytest.raises(ValueError):
        sign("whsec_", "evt", 1, "{}")
