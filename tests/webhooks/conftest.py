"""Fixtures for the webhook tests: a fake clock, a real receiver, fake DNS, engines."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from registry.clock import FakeClock
from registry.db import make_session_factory
from tests.webhooks.receiver import Receiver
from webhooks import DeliveryEngine, WebhookEndpoint, create_endpoint, enqueue_event
from webhooks.ids import new_id


@pytest.fixture
def clock() -> FakeClock:
    """A clock standing at the real time (so standardwebhooks' freshness check passes)
    until the test moves it."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1."""
    with Receiver() as running:
        yield running


class FakeDNS:
    """Names a test makes resolvable, and every lookup made, so no real DNS is used."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def add(self, name: str, *addresses: str) -> None:
        """Make ``name`` resolve to ``addresses`` (replacing any earlier answer)."""
        self.names[name] = list(addresses)

    def answer(self, name: str, port: Any) -> list[tuple[Any, ...]]:
        infos: list[tuple[Any, ...]] = []
        for address in self.names[name]:
            ip = ipaddress.ip_address(address)
            if ip.version == 6:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """Resolve only the names the test adds; address literals and ``localhost`` resolve as
    usual (from /etc/hosts), and any other name does not resolve at all."""
    dns = FakeDNS()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        dns.lookups.append(name)
        if name in dns.names:
            return dns.answer(name, int(port or 0))
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if name != "localhost":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory an engine (and the tests' own writes) use."""
    return make_session_factory(engine)


EngineFactory = Callable[..., DeliveryEngine]


@pytest.fixture
def make_sender(sessions: sessionmaker[Session], clock: FakeClock) -> Iterator[EngineFactory]:
    """Build delivery engines on the test database and fake clock (jitter fixed at zero);
    they are shut down after the test."""
    made: list[DeliveryEngine] = []

    def make(**kwargs: Any) -> DeliveryEngine:
        kwargs.setdefault("allow_private", True)
        kwargs.setdefault("random", lambda: 0.5)
        kwargs.setdefault("timeout", 5.0)
        engine = DeliveryEngine(sessions, clock.now, **kwargs)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.shutdown(wait=True, timeout=10)


@pytest.fixture
def sender(make_sender: EngineFactory) -> DeliveryEngine:
    """One delivery engine allowed to send to loopback."""
    return make_sender()


@pytest.fixture
def add_endpoint(
    sessions: sessionmaker[Session], clock: FakeClock
) -> Callable[..., tuple[WebhookEndpoint, str]]:
    """Create and commit an endpoint; returns it with its secret."""

    def add(url: str, event_types: list[str] | None = None, **kwargs: Any) -> tuple[
        WebhookEndpoint, str
    ]:
        kwargs.setdefault("allow_private", True)
        with sessions() as session:
            endpoint, secret = create_endpoint(
                session, url=url, event_types=event_types or [], now=clock.now(), **kwargs
            )
            session.commit()
            return endpoint, secret

    return add


@pytest.fixture
def publish(sessions: sessionmaker[Session], clock: FakeClock) -> Callable[..., str]:
    """Hand an event to the webhooks (and commit); returns its id."""

    def publish_event(
        type: str = "comment_period.opened",
        data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        event_id = new_id("evt")
        with sessions() as session:
            enqueue_event(
                session,
                event_id=event_id,
                type=type,
                timestamp=clock.now(),
                data=data if data is not None else {"review": {"id": "rev_1"}},
                now=clock.now(),
                **kwargs,
            )
            session.commit()
        return event_id

    return publish_event
