"""The SSRF guard: URLs refused at creation, and addresses refused again at every send."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from tests.webhooks.conftest import EngineFactory, FakeDNS
from tests.webhooks.receiver import Receiver
from webhooks import UnsafeURLError, WebhookAttempt, check_url, create_endpoint

# (URL, a fragment of the reason given). DNS is faked: see the fake_dns fixture and
# the names added in `dns` below.
REFUSED = [
    ("", "required"),
    ("http://hooks.partner.example/", "https"),
    ("ftp://hooks.partner.example/", "https"),
    ("file:///etc/passwd", "https"),
    ("javascript:alert(1)", "https"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "https"),
    ("https://user:secret@hooks.partner.example/", "user name or password"),
    ("https://user@hooks.partner.example/", "user name or password"),
    ("https:///no-host", "no host"),
    ("https://", "no host"),
    ("https://hooks.partner.example/#part", "fragment"),
    ("https://hooks partner.example/", "spaces"),
    ("https://hooks.partner.example:0/", "port"),
    ("https://hooks.partner.example:99999/", "malformed"),
    ("https://[not-an-address]/", "IPv6"),
    ("https://999.1.1.1/", "not a valid name or address"),
    ("https://-bad-.example/", "not a valid name"),
    # loopback, in every spelling a resolver accepts
    ("https://127.0.0.1/", "loopback"),
    ("https://127.0.0.1:8443/hook", "loopback"),
    ("https://127.0.0.1./", "loopback"),
    ("https://127.1/", "loopback"),
    ("https://2130706433/", "loopback"),
    ("https://0x7f000001/", "loopback"),
    ("https://0x7f.0.0.1/", "loopback"),
    ("https://0177.0.0.1/", "loopback"),
    ("https://017700000001/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[::ffff:7f00:1]/", "loopback"),
    ("https://localhost/", "loopback"),
    ("https://localhost:5000/hook", "loopback"),
    # unspecified
    ("https://0.0.0.0/", "unspecified"),
    ("https://0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    # private, shared, link-local, metadata
    ("https://10.0.0.1/", "private"),
    ("https://172.16.5.4/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://[::ffff:10.0.0.1]/", "private"),
    ("https://100.64.0.1/", "CGNAT"),
    ("https://100.127.255.254/", "CGNAT"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[::ffff:169.254.169.254]/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://169.254.1.1/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fe80::1%25eth0]/", "link-local"),
    ("https://[fc00::1]/", "unique local"),
    ("https://[fd12:3456:789a::1]/", "unique local"),
    ("https://[fec0::1]/", "site-local"),
    # multicast, reserved, documentation and other special ranges
    ("https://224.0.0.1/", "multicast"),
    ("https://239.255.255.250/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://255.255.255.255/", "reserved"),
    ("https://192.88.99.1/", "reserved"),
    ("https://[5f00::1]/", "reserved"),
    ("https://192.0.2.10/", "special-purpose"),
    ("https://198.18.0.1/", "special-purpose"),
    ("https://[2001:db8::1]/", "special-purpose"),
    ("https://[100::1]/", "reserved"),
    # IPv6 forms that embed an IPv4 address
    ("https://[::127.0.0.1]/", "embeds an IPv4"),
    ("https://[64:ff9b::7f00:1]/", "embeds an IPv4"),
    ("https://[2002:7f00:1::]/", "embeds an IPv4"),
    # names that resolve to what is refused, or do not resolve
    ("https://internal.partner.example/", "private"),
    ("https://ipv6-loopback.example/", "loopback"),
    ("https://metadata.example/", "metadata"),
    ("https://rebinding.example/", "loopback"),
    ("https://nowhere.example/", "does not resolve"),
]

ACCEPTED = [
    "https://hooks.partner.example/daylight",
    "https://hooks.partner.example:8443/daylight?source=city",
    "https://HOOKS.Partner.Example/daylight",
    "https://bücher.example/hook",
    "https://v6.partner.example/hook",
    "https://93.184.216.34/hook",
    "https://[2606:4700:4700::1111]/hook",
]


@pytest.fixture
def dns(fake_dns: FakeDNS) -> FakeDNS:
    fake_dns.add("hooks.partner.example", "93.184.216.34")
    fake_dns.add("xn--bcher-kva.example", "93.184.216.35")
    fake_dns.add("v6.partner.example", "2606:2800:220:1:248:1893:25c8:1946")
    fake_dns.add("internal.partner.example", "10.1.2.3")
    fake_dns.add("ipv6-loopback.example", "::1")
    fake_dns.add("metadata.example", "169.254.169.254")
    # A name with one public and one loopback answer: refused as a whole.
    fake_dns.add("rebinding.example", "93.184.216.34", "127.0.0.1")
    return fake_dns


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_unsafe_urls_are_refused_with_a_reason(dns: FakeDNS, url: str, reason: str) -> None:
    with pytest.raises(UnsafeURLError) as refused:
        check_url(url, allow_private=False)
    assert reason in refused.value.reason


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_https_urls_are_accepted(dns: FakeDNS, url: str) -> None:
    check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost:5000/hook",
        "https://[::1]/hook",
        "http://10.0.0.5/hook",
        "http://internal.partner.example/hook",
        "http://2130706433/hook",
        "http://not-resolving.example/hook",  # checked again when sent
    ],
)
def test_development_mode_allows_http_loopback_and_private_addresses(
    dns: FakeDNS, url: str
) -> None:
    check_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://metadata.example/", "metadata"),
        ("http://0.0.0.0:5000/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("ftp://127.0.0.1/", "https"),
        ("http://user:pw@127.0.0.1/", "user name"),
    ],
)
def test_development_mode_still_refuses_metadata_and_malformed_urls(
    dns: FakeDNS, url: str, reason: str
) -> None:
    with pytest.raises(UnsafeURLError) as refused:
        check_url(url, allow_private=True)
    assert reason in refused.value.reason


@pytest.mark.parametrize(("url", "hidden"), [
    ("https://internal.partner.example/", "10.1.2.3"),
    ("https://ipv6-loopback.example/", "::1"),
    ("https://rebinding.example/", "127.0.0.1"),
])
def test_a_refused_name_does_not_tell_where_it_points(dns: FakeDNS, url: str,
                                                      hidden: str) -> None:
    # This machine's resolver may know the city's internal names: a refusal that named
    # the address would let a partner map them.
    with pytest.raises(UnsafeURLError) as refused:
        check_url(url, allow_private=False)
    assert hidden not in refused.value.reason
    assert refused.value.reason.startswith(f"the host {url.split('/')[2]} resolves to")


def test_an_endpoint_with_an_unsafe_url_is_not_created(
    dns: FakeDNS, session: Session, clock: Any
) -> None:
    with pytest.raises(UnsafeURLError):
        create_endpoint(session, url="https://localhost/hook", now=clock.now())
    endpoint, _ = create_endpoint(
        session, url="https://hooks.partner.example/hook", now=clock.now()
    )
    assert endpoint.url == "https://hooks.partner.example/hook"


def only_attempt(sessions: sessionmaker[Session]) -> WebhookAttempt:
    with sessions() as session:
        [attempt] = session.exec(select(WebhookAttempt)).all()
        return attempt


def test_a_loopback_endpoint_is_refused_at_send_time_outside_development(
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    # Created while private addresses were allowed; the sender no longer allows them.
    add_endpoint(receiver.url("/hook"), allow_private=True)
    publish()

    make_sender(allow_private=False).run_until_idle()

    attempt = only_attempt(sessions)
    assert attempt.error_kind == "unsafe_url"
    assert attempt.status_code is None
    assert receiver.received == []


def test_a_name_rebound_to_loopback_after_creation_is_refused_at_send_time(
    dns: FakeDNS,
    receiver: Receiver,
    make_sender: EngineFactory,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
    sessions: sessionmaker[Session],
) -> None:
    dns.add("hooks.partner.example", "93.184.216.34")
    add_endpoint(f"https://hooks.partner.example:{receiver.port}/hook", allow_private=False)
    dns.add("hooks.partner.example", "127.0.0.1")  # the attacker's DNS now points home
    publish()

    make_sender(allow_private=False).run_until_idle()

    attempt = only_attempt(sessions)
    assert attempt.error_kind == "unsafe_url"
    assert "loopback" in (attempt.error_detail or "")
    assert receiver.received == []


def test_the_sender_resolves_once_and_connects_to_the_address_it_checked(
    dns: FakeDNS,
    receiver: Receiver,
    sender: Any,
    add_endpoint: Callable[..., Any],
    publish: Callable[..., str],
) -> None:
    dns.add("hooks.partner.example", "127.0.0.1")
    add_endpoint(f"http://hooks.partner.example:{receiver.port}/hook")
    publish()
    dns.lookups.clear()

    sender.run_until_idle()

    [request] = receiver.wait_for(1)
    assert request.headers["host"] == f"hooks.partner.example:{receiver.port}"
    # One lookup, by the guard; the connection went to its answer, not to a fresh lookup.
    assert dns.lookups.count("hooks.partner.example") == 1
