"""HTTPS with the address pinned: the sender connects to the address it checked yet
verifies the certificate (and sends SNI) for the URL's host name."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from tests.webhooks.conftest import EngineFactory, FakeDNS
from tests.webhooks.receiver import Receiver
from webhooks import SUCCEEDED, WebhookAttempt, WebhookDelivery

NAME = "hooks.partner.example"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a certificate it signed for NAME (made with the openssl tool)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=Daylight test CA", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            cwd=folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
            "-subj", f"/CN={NAME}", cwd=folder)
    (folder / "leaf.ext").write_text(f"subjectAltName=DNS:{NAME}\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
            cwd=folder)
    return folder


@pytest.fixture
def tls_receiver(certificates: Path) -> Iterator[Receiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "leaf.pem", certificates / "leaf.key")
    with Receiver(ssl_context=context) as running:
        yield running


def only_attempt(sessions: sessionmaker[Session]) -> WebhookAttempt:
    with sessions() as session:
        return session.exec(select(WebhookAttempt)).one()


def test_https_to_a_pinned_address_verifies_the_certificate_for_the_host_name(
    fake_dns: FakeDNS,
    tls_receiver: Receiver,
    certificates: Path,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    fake_dns.add(NAME, "127.0.0.1")
    add_endpoint(tls_receiver.url("/hook", host=NAME))
    publish()

    make_sender(ca_bundle=str(certificates / "ca.pem")).run_until_idle()

    [request] = tls_receiver.wait_for(1)
    assert request.headers["host"] == f"{NAME}:{tls_receiver.port}"
    with sessions() as session:
        assert session.exec(select(WebhookDelivery)).one().status == SUCCEEDED


def test_a_certificate_for_another_name_is_refused(
    fake_dns: FakeDNS,
    tls_receiver: Receiver,
    certificates: Path,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    fake_dns.add("other.partner.example", "127.0.0.1")  # same address, wrong name
    add_endpoint(tls_receiver.url("/hook", host="other.partner.example"))
    publish()

    make_sender(ca_bundle=str(certificates / "ca.pem")).run_until_idle()

    assert only_attempt(sessions).error_kind == "tls"
    assert tls_receiver.received == []


def test_an_untrusted_certificate_is_refused(
    fake_dns: FakeDNS,
    tls_receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    fake_dns.add(NAME, "127.0.0.1")
    add_endpoint(tls_receiver.url("/hook", host=NAME))
    publish()

    make_sender().run_until_idle()  # the system's trust store does not know the test CA

    assert only_attempt(sessions).error_kind == "tls"
    assert tls_receiver.received == []
