"""One spelling per client address, and the network a client is counted under."""

import pytest
from django.test import RequestFactory

from accounts.clients import canonical_ip, client_of, network


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        (" 198.51.100.7\n", "198.51.100.7"),
        # IPv4-mapped, however it is spelled, is the IPv4 address it maps.
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("::FFFF:198.51.100.7", "198.51.100.7"),
        ("::ffff:c633:6407", "198.51.100.7"),
        ("0:0:0:0:0:ffff:c633:6407", "198.51.100.7"),
        ("::ffff:198.51.100.7%eth0", "198.51.100.7"),
        # IPv6 in its compressed lower-case spelling, without the server's zone.
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("fe80::1%25", "fe80::1"),
        # Not IPv4-mapped: an IPv6 address that merely ends in an IPv4 one stays IPv6.
        ("64:ff9b::198.51.100.7", "64:ff9b::c633:6407"),
    ],
)
def test_canonical_ip_is_one_spelling_per_address(value, expected):
    assert canonical_ip(value) == expected


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "garbage", "1.2.3.4.5", "01.02.03.04",
     "2001:db8::1%", "::ffff:198.51.100.7%", "unknown", "198.51.100.7, 10.0.0.1"],
)  # fmt: skip
def test_canonical_ip_of_anything_but_an_address_is_none(value):
    assert canonical_ip(value) is None
    assert network(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198.51.100.7", "198.51.100.7/32"),
        ("::ffff:198.51.100.7", "198.51.100.7/32"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::99%eth0", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_network_is_the_address_for_ipv4_and_the_slash_64_for_ipv6(value, expected):
    assert network(value) == expected


def test_network_of_mapped_addresses_keeps_ipv4_clients_apart():
    """The review's finding: every mapped address once fell into ::/64, one shared count."""
    assert network("::ffff:198.51.100.7") != network("::ffff:198.51.100.8")
    assert network("::ffff:198.51.100.7") == network("198.51.100.7")


def test_network_takes_wider_prefixes_when_asked():
    assert network("198.51.100.7", ipv4_prefix=24) == "198.51.100.0/24"
    assert network("::ffff:198.51.100.7", ipv4_prefix=24) == "198.51.100.0/24"
    assert network("2001:db8:1:2::1", ipv6_prefix=48) == "2001:db8:1::/48"


@pytest.mark.parametrize(
    ("meta", "num_proxies", "expected"),
    [
        ({"REMOTE_ADDR": "::ffff:198.51.100.7"}, 0, "198.51.100.7"),
        ({"REMOTE_ADDR": "fe80::1%eth0"}, 0, "fe80::1"),
        # Ignored with NUM_PROXIES=0: a client cannot choose its own address.
        ({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "::ffff:198.51.100.7"}, 0, "10.0.0.1"),
        ({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "::ffff:198.51.100.7"}, 1,
         "198.51.100.7"),
        # Not an address: the peer, not one "no address" every such client shares.
        ({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "garbage"}, 1, "10.0.0.1"),
    ],
)  # fmt: skip
def test_client_of_reports_the_canonical_address(settings, meta, num_proxies, expected):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}
    request = RequestFactory().get("/", **meta)
    assert client_of(request).ip == expected


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("198.51.100.7:1111", "198.51.100.7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[::ffff:198.51.100.7]:80", "198.51.100.7"),
    ],
)
def test_a_port_a_proxy_appends_is_dropped(forwarded, expected):
    assert canonical_ip(forwarded) == expected


def test_a_forwarded_entry_that_is_no_address_counts_as_the_peer(rf, settings):
    """The review's finding: `unknown` and other non-addresses all shared one bucket."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    request = rf.get("/", HTTP_X_FORWARDED_FOR="unknown", REMOTE_ADDR="10.1.2.3")
    assert client_of(request).ip == "10.1.2.3"
