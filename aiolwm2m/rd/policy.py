"""The Resource Directory's authorisation policy (CRD-004) as data.

Sans-IO: a plain mapping in (the ``[rd_policy]`` table of the server's TOML, or the body of
``PUT /api/rd/policy``), a checked :class:`RdPolicy` out, and back to the same plain form for
the store. :mod:`.authorization` applies it.

The document::

    anonymous_register = true    # NoSec peers may register (names without credentials)
    anonymous_lookup = true      # NoSec peers may look up
    sector_lookup = false        # lookups see only the asker's sectors (see below)
    bind_credentials = true      # a name with credentials in the security store is theirs

    [identities."psk:gateway-7"]         # a principal (aiolwm2m.principals), or "*"
    endpoints = ["meter-*", "valve-1"]   # ep it may register (absent: any free name)
    sectors = ["plant-1", ""]            # d it may register in ("" = none; absent: any)
    lookup = ["plant-*"]                 # sectors its lookups see besides its own

Patterns are a name, or a prefix with a trailing ``*`` (as in lookups): ``*`` alone matches
anything, including no sector. The ``"*"`` identity is the rule of every authenticated peer
that has none of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiolwm2m.lwm2m.errors import shown

from .params import MAX_NAME_BYTES

#: Principals one policy may name, and patterns one list may hold: the policy is read on
#: every registration, and a REST client (with a token) could otherwise make it huge.
MAX_IDENTITIES = 10_000
MAX_PATTERNS = 256
MAX_PRINCIPAL_CHARS = 1024
#: The identity whose rule applies to authenticated peers without one of their own.
ANY_IDENTITY = "*"
_PRINCIPAL_PREFIXES = ("psk:", "rpk:", "x509:")
_FLAGS = ("anonymous_register", "anonymous_lookup", "sector_lookup", "bind_credentials")
_RULE_KEYS = ("endpoints", "sectors", "lookup")


class PolicyError(ValueError):
    """What is wrong with a policy document, naming where (``identities['psk:x'].sectors[2]``)."""


class Patterns:
    """Names and trailing-``*`` prefixes; matching costs a set lookup plus one
    ``startswith`` per prefix."""

    __slots__ = ("exact", "prefixes", "texts")

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = tuple(texts)
        self.exact = frozenset(t for t in self.texts if not t.endswith("*"))
        self.prefixes = tuple(t[:-1] for t in self.texts if t.endswith("*"))

    def matches(self, value: str) -> bool:
        return value in self.exact or any(value.startswith(p) for p in self.prefixes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Patterns) and other.texts == self.texts

    def __hash__(self) -> int:
        return hash(self.texts)

    def __repr__(self) -> str:
        return f"Patterns({list(self.texts)!r})"


NO_PATTERNS = Patterns(())


@dataclass(frozen=True)
class IdentityRule:
    #: Endpoint names the identity may register; None: any name not bound to other
    #: credentials.
    endpoints: Patterns | None = None
    #: Sectors it may register in (a registration without ``d`` counts as ""); None: any.
    sectors: Patterns | None = None
    #: Sectors its lookups see besides its own (only with ``sector_lookup``).
    lookup: Patterns = NO_PATTERNS


@dataclass(frozen=True)
class RdPolicy:
    anonymous_register: bool = True
    anonymous_lookup: bool = True
    #: Lookups see the registrations without a sector, and those in the asker's own
    #: sectors: the ones it holds registrations in, may register in, or is granted.
    #: Anonymous peers see only the registrations without a sector.
    sector_lookup: bool = False
    bind_credentials: bool = True
    identities: Mapping[str, IdentityRule] = field(default_factory=dict)

    def rule_of(self, principal: str) -> IdentityRule | None:
        rule = self.identities.get(principal)
        return rule if rule is not None else self.identities.get(ANY_IDENTITY)


#: What the RD does with no policy configured (the behaviour before CRD-004, plus the
#: binding of names with credentials to those credentials).
DEFAULT_POLICY = RdPolicy()


def _pattern(value: Any, where: str, *, empty_ok: bool) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: a pattern is a string, not {type(value).__name__}")
    stem = value[:-1] if value.endswith("*") else value
    if "*" in stem:
        raise PolicyError(f"{where}: {shown(value, 40)}: '*' may only end a pattern")
    if not value and not empty_ok:
        raise PolicyError(f"{where}: an endpoint pattern cannot be empty")
    if len(stem.encode("utf-8")) > MAX_NAME_BYTES:
        raise PolicyError(f"{where}: {shown(value, 40)} is longer than {MAX_NAME_BYTES} "
                          "bytes")
    return value


def _patterns(value: Any, where: str, *, empty_ok: bool) -> Patterns:
    if not isinstance(value, list | tuple):
        raise PolicyError(f"{where}: expected a list of patterns")
    if len(value) > MAX_PATTERNS:
        raise PolicyError(f"{where}: more than {MAX_PATTERNS} patterns")
    return Patterns(_pattern(v, f"{where}[{i}]", empty_ok=empty_ok)
                    for i, v in enumerate(value))


def _principal(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise PolicyError("identities: a key is a principal such as \"psk:dev-1\"")
    if name != ANY_IDENTITY and not name.startswith(_PRINCIPAL_PREFIXES):
        raise PolicyError(f"identities: {shown(name, 40)} is not a principal (psk:..., "
                          "rpk:<sha-256 hex>, x509:<name>) nor \"*\"")
    if len(name) > MAX_PRINCIPAL_CHARS:
        raise PolicyError(f"identities: a principal longer than {MAX_PRINCIPAL_CHARS} "
                          "characters")
    return name


def parse_rule(data: Any, where: str) -> IdentityRule:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: expected a table with endpoints, sectors, lookup")
    unknown = [k for k in data if k not in _RULE_KEYS]
    if unknown:
        raise PolicyError(f"{where}: unknown key {shown(str(unknown[0]), 24)} (known: "
                          f"{', '.join(_RULE_KEYS)})")
    endpoints = data.get("endpoints")
    sectors = data.get("sectors")
    lookup = data.get("lookup")
    return IdentityRule(
        endpoints=None if endpoints is None else _patterns(endpoints, f"{where}.endpoints",
                                                           empty_ok=False),
        sectors=None if sectors is None else _patterns(sectors, f"{where}.sectors",
                                                       empty_ok=True),
        lookup=NO_PATTERNS if lookup is None else _patterns(lookup, f"{where}.lookup",
                                                            empty_ok=True))


def parse_policy(data: Any) -> RdPolicy:
    """A checked policy from its plain form; PolicyError saying what is wrong (nothing of a
    refused document is applied: the caller keeps the policy it had)."""
    if not isinstance(data, Mapping):
        raise PolicyError("the policy is a table (JSON object)")
    unknown = [k for k in data if k not in (*_FLAGS, "identities")]
    if unknown:
        raise PolicyError(f"unknown key {shown(str(unknown[0]), 24)} (known: "
                          f"{', '.join(_FLAGS)}, identities)")
    flags: dict[str, bool] = {}
    for name in _FLAGS:
        if name in data:
            value = data[name]
            if not isinstance(value, bool):
                raise PolicyError(f"{name}: expected true or false")
            flags[name] = value
    identities_in = data.get("identities", {})
    if not isinstance(identities_in, Mapping):
        raise PolicyError("identities: expected a table of principal = rule")
    if len(identities_in) > MAX_IDENTITIES:
        raise PolicyError(f"identities: more than {MAX_IDENTITIES}")
    identities: dict[str, IdentityRule] = {}
    for name, rule in identities_in.items():
        principal = _principal(name)
        identities[principal] = parse_rule(rule, f"identities[{shown(principal, 40)}]")
    return RdPolicy(identities=identities, **flags)


def rule_to_dict(rule: IdentityRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.endpoints is not None:
        out["endpoints"] = list(rule.endpoints.texts)
    if rule.sectors is not None:
        out["sectors"] = list(rule.sectors.texts)
    out["lookup"] = list(rule.lookup.texts)
    return out


def policy_to_dict(policy: RdPolicy) -> dict[str, Any]:
    """The plain form :func:`parse_policy` reads back to an equal policy."""
    out: dict[str, Any] = {name: getattr(policy, name) for name in _FLAGS}
    out["identities"] = {name: rule_to_dict(rule)
                         for name, rule in sorted(policy.identities.items())}
    return out
