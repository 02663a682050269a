"""The broker's limit flags, shared by ``aiolwm2m broker`` and ``aiolwm2m server``
(which embeds a broker with ``--broker-port``); the names are ``BrokerLimits``' with a
``broker_`` prefix, as settings files spell them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from aiolwm2m.pubsub import BrokerLimits

DEFAULTS = BrokerLimits()

#: flag dest -> BrokerLimits field
LIMIT_FIELDS = {
    "broker_max_topics": "max_topics",
    "broker_max_topics_per_address": "max_topics_per_address",
    "broker_max_value_size": "max_value_size",
    "broker_max_subscribers_per_topic": "max_subscribers_per_topic",
    "broker_max_subscribers": "max_subscribers",
    "broker_max_subscribers_per_address": "max_subscribers_per_address",
    "broker_publish_rate": "publish_rate",
    "broker_publish_burst": "publish_burst",
}

#: Every setting of ``aiolwm2m server`` about the broker (TOML names = flag names).
SERVER_SETTINGS = ("broker_port", "broker_uri", "broker_rd", *LIMIT_FIELDS)

_HELP = {
    "max_topics": ("N", int, "topics in all, 4.03 beyond"),
    "max_topics_per_address": ("N", int, "topics created from one address or IPv6 /64"),
    "max_value_size": ("BYTES", int, "largest publication, 4.13 beyond"),
    "max_subscribers_per_topic": ("N", int, "subscribers of one topic"),
    "max_subscribers": ("N", int, "subscriptions in all"),
    "max_subscribers_per_address": ("N", int, "subscriptions from one address or IPv6 /64"),
    "publish_rate": ("PER_S", float, "publications per second one address may make to one "
                                     "topic (and topic changes in all), 4.29 beyond; 0 = no "
                                     "limit"),
    "publish_burst": ("N", int, "publications allowed at once"),
}


def add_server_flags(p: argparse.ArgumentParser) -> None:
    """``aiolwm2m server``'s broker flags: run one, or show one read over CoAP."""
    group = p.add_argument_group(
        "Pub/sub broker", "a CoAP publish-subscribe broker (draft-ietf-core-coap-pubsub) whose "
        "topics the REST API (/api/broker) and the web UI show")
    group.add_argument("--broker-port", type=int, metavar="PORT",
                       help="run a broker in this process on this UDP port of --coap-host, "
                            "in the same data directory (off by default)")
    group.add_argument("--broker-uri", metavar="URI",
                       help="show a broker read over CoAP instead (coap://HOST:PORT), say a "
                            "gateway's")
    group.add_argument("--broker-rd", metavar="URI",
                       help="a Resource Directory the broker announces itself to (see "
                            "aiolwm2m broker --rd)")
    add_limit_flags(p, with_defaults=False)


def add_limit_flags(p: argparse.ArgumentParser, *, with_defaults: bool) -> None:
    """``with_defaults``: False where settings layers fill in what a flag leaves out."""
    group = p.add_argument_group("Pub/sub broker limits",
                                 "what peers may make the broker hold, and how fast they may "
                                 "publish")
    for dest, field in LIMIT_FIELDS.items():
        metavar, kind, text = _HELP[field]
        default = getattr(DEFAULTS, field)
        group.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind,
                           metavar=metavar, default=default if with_defaults else None,
                           help=f"{text} (default {default:g})" if kind is float else
                           f"{text} (default {default})")


def limits_from(values: Any, error: Callable[[str], Exception]) -> BrokerLimits:
    """BrokerLimits from an object with the ``broker_*`` attributes (parsed flags or
    settings); an invalid one raises ``error(message)``."""
    try:
        return BrokerLimits(**{field: getattr(values, dest)
                               for dest, field in LIMIT_FIELDS.items()})
    except ValueError as e:
        raise error(str(e)) from None
