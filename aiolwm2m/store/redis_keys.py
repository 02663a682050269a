"""Where the Redis stores keep what: the key layout, the same on one Redis and on a Cluster.

Every key starts with the deployment's namespace (``lwm2m`` unless the store URL names
another, ``?namespace=``), so several deployments, or test runs, can share one Redis.

One hash tag per endpoint
-------------------------
Everything about one endpoint lives under the hash tag ``{e:ENDPOINT}``, so all of it is in
one Redis Cluster slot, and every change that touches several of its keys is one Lua script
(atomic, and accepted by a Cluster because it names keys of one slot only)::

    NS:{e:EP}:r     string  the registration row (``records.registration_row`` as JSON)
    NS:{e:EP}:o     hash    observations: token (hex) -> Observation JSON
    NS:{e:EP}:q     hash    queued requests: id -> QueuedRequest JSON (every state)
    NS:{e:EP}:s     string  the endpoint's credentials (SecurityInfo JSON)
    NS:{e:EP}:bc    string  its bootstrap configuration (BootstrapConfigRecord JSON)
    NS:{e:EP}:bs    hash    its bootstrap sessions: id -> [sequence, record JSON]

The tag starts with ``e:`` so that it is never empty (an endpoint name starting with ``}``
would otherwise leave ``{}``, and Redis would hash each whole key to a different slot); an
endpoint name holding ``}`` ends the tag early, at the same place for every key of that
endpoint, so they still share a slot.

Slot buckets
------------
What must be found across endpoints (whose registrations expire when, which queued requests
time out when, which endpoint a registration id names) is kept in buckets, one per Cluster
slot: ``NS:{TAG}:...`` where TAG is a short hex string chosen so that it hashes to that slot
(:func:`slot_tag`). An endpoint's bucket is the one of its own slot, so the script that
writes its registration also updates its expiry entry, atomically, without a cross-slot
transaction; and expiry is spread over 16,384 sorted sets instead of one hot key::

    NS:{TAG(s)}:rx  zset    registration expiry: member endpoint, score expires_at (s)
    NS:{TAG(s)}:qx  zset    pending queued requests: member "EP\\nID", score expires_at (s)
    NS:{TAG(s)}:id  hash    registration id -> endpoint, for ids hashing to slot s

The id index lives in the slot of the *id* (a lookup by id knows nothing else), so it is
written by a command of its own in the same pipeline as the registration's script: not
atomic with it. A reader that follows it checks the registration row it leads to names the
same id (the row starts with it), and treats a mismatch as absent; an entry left behind by a
crash between the two writes is removed by the next removal of that id, or found stale and
ignored.

Credential claims
-----------------
A PSK identity, an RPK or a certificate name belongs to one endpoint at most. Each is a key
of its own, in its own slot, holding the endpoint that owns it::

    NS:{c:psk:HEX}    string  -> endpoint    (the PSK identity, hex)
    NS:{c:rpk:SHA256} string  -> endpoint    (SHA-256 of the public key, hex)
    NS:{c:x509:NAME}  string  -> endpoint    (the certificate name as written)

A ``put`` claims first (a script: set when free or already ours, else answer the owner),
then writes the endpoint's row, then releases the claims it no longer holds (delete only if
still ours). A claim whose owner's row does not hold that credential (a crash between the
steps) is taken over (compare-and-set on the old owner).

Several nodes (``--node-id``, :mod:`aiolwm2m.cluster`)
---------------------------------------------------
Nodes that share a namespace divide the endpoints between them by ownership leases, and
talk through a stream each::

    NS:{e:EP}:own     string  the node that owns the endpoint (PX: lifetime + grace)
    NS:{TAG(s)}:qi    hash    queued request id -> endpoint, for ids hashing to slot s
    NS:{n:NODE}:in    stream  the node's inbox: routed requests, answers, notices
    NS:{n:NODE}:ev    stream  the node's events, while some node has SSE subscribers
    NS:{n:NODE}:alive string  the node's heartbeat (its figures as JSON; PX: node TTL)
    NS:{nodes}        set     every node id that ever joined

The lease is claimed in the script that writes the registration (a Register takes it over,
an Update keeps it only while it is still the node's: fencing, so a node that lost an
endpoint cannot overwrite its new owner's state, held writes included), and renewed by every
Update. A lease counts while its key exists and its node's heartbeat does.
"""

from __future__ import annotations

import binascii
import hashlib

#: Redis Cluster's slot count (fixed by the protocol).
SLOTS = 16384
DEFAULT_NAMESPACE = "lwm2m"

_SLOT_TAGS: list[str] = []


def _build_slot_tags() -> list[str]:
    """For each slot, the shortest hex string (first found) whose CRC16 lands in it. About
    300,000 candidates to cover every slot; done once per process, when a Redis store
    opens."""
    tags: list[str | None] = [None] * SLOTS
    missing = SLOTS
    crc = binascii.crc_hqx
    n = 0
    while missing:
        text = format(n, "x")
        slot = crc(text.encode(), 0) & (SLOTS - 1)
        if tags[slot] is None:
            tags[slot] = text
            missing -= 1
        n += 1
    return [t for t in tags if t is not None]


def slot_tag(slot: int) -> str:
    if not _SLOT_TAGS:
        _SLOT_TAGS.extend(_build_slot_tags())
    return _SLOT_TAGS[slot]


def key_slot(key: str) -> int:
    """The Cluster slot of ``key``, as Redis computes it (CRC16-XMODEM of the hash tag when
    the key has a non-empty one, else of the whole key)."""
    data = key.encode()
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return binascii.crc_hqx(data, 0) & (SLOTS - 1)


def check_namespace(namespace: str) -> str:
    """A namespace is a plain name: no braces (they would become the hash tag), no glob
    characters (it is part of SCAN patterns), no colon or whitespace."""
    if not namespace or len(namespace) > 64 or any(
            c in "{}*?[]\\: \t\r\n" for c in namespace):
        raise ValueError(f"bad Redis namespace {namespace!r}: use letters, digits, - _ .")
    return namespace


class Keys:
    """The key names of one namespace (see the module docstring)."""

    __slots__ = ("_bucket", "ns", "pattern")

    def __init__(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.ns = check_namespace(namespace)
        #: SCAN pattern of every per-endpoint key of the namespace.
        self.pattern = f"{self.ns}:{{e:*"
        self._bucket = f"{self.ns}:{{"

    # -- per endpoint ---------------------------------------------------------------------

    def endpoint(self, endpoint: str, kind: str) -> str:
        return f"{self.ns}:{{e:{endpoint}}}:{kind}"

    def registration(self, endpoint: str) -> str:
        return f"{self.ns}:{{e:{endpoint}}}:r"

    def parse_endpoint_key(self, key: str) -> tuple[str, str] | None:
        """(endpoint, kind) of a per-endpoint key of this namespace, else None."""
        prefix = f"{self.ns}:{{e:"
        if not key.startswith(prefix):
            return None
        endpoint, sep, kind = key[len(prefix):].rpartition("}:")
        if not sep:
            return None
        return endpoint, kind

    # -- slot buckets ---------------------------------------------------------------------

    def endpoint_slot(self, endpoint: str) -> int:
        return key_slot(self.registration(endpoint))

    def registration_keys(self, endpoint: str) -> tuple[str, str]:
        """The registration row's key and its slot's expiry bucket (one slot)."""
        row = f"{self.ns}:{{e:{endpoint}}}:r"
        return row, f"{self._bucket}{slot_tag(key_slot(row))}}}:rx"

    def bucket(self, slot: int, kind: str) -> str:
        return f"{self._bucket}{slot_tag(slot)}}}:{kind}"

    def registration_expiry(self, endpoint: str) -> str:
        return self.bucket(self.endpoint_slot(endpoint), "rx")

    def queue_expiry(self, endpoint: str) -> str:
        return self.bucket(self.endpoint_slot(endpoint), "qx")

    def id_index(self, registration_id: str) -> str:
        return self.bucket(binascii.crc_hqx(registration_id.encode(), 0) & (SLOTS - 1), "id")

    def queue_id_index(self, request_id: str) -> str:
        return self.bucket(binascii.crc_hqx(request_id.encode(), 0) & (SLOTS - 1), "qi")

    # -- several nodes --------------------------------------------------------------------

    def lease(self, endpoint: str) -> str:
        return f"{self.ns}:{{e:{endpoint}}}:own"

    def node(self, node: str, kind: str) -> str:
        return f"{self.ns}:{{n:{node}}}:{kind}"

    @property
    def nodes(self) -> str:
        return f"{self.ns}:{{nodes}}"

    @property
    def lease_pattern(self) -> str:
        """SCAN pattern of every lease of the namespace."""
        return f"{self.ns}:{{e:*}}:own"

    # -- credential claims ----------------------------------------------------------------

    def psk_claim(self, identity: bytes) -> str:
        return f"{self.ns}:{{c:psk:{identity.hex()}}}"

    def rpk_claim(self, public_key: bytes) -> str:
        return f"{self.ns}:{{c:rpk:{hashlib.sha256(public_key).hexdigest()}}}"

    def x509_claim(self, name: str) -> str:
        return f"{self.ns}:{{c:x509:{name}}}"


def check_node_id(node: str) -> str:
    """A node id is a short plain name (it is part of key names and metric labels)."""
    if not 1 <= len(node) <= 64 or not all(c.isascii() and (c.isalnum() or c in "._-")
                                           for c in node):
        raise ValueError(f"bad node id {node[:70]!r}: use 1 to 64 letters, digits, . _ -")
    return node


def queue_member(endpoint: str, request_id: str) -> str:
    """A pending request's member in its ``qx`` bucket: the endpoint (to find its hash)
    and the id (base64url: never holds the separator)."""
    return f"{endpoint}\n{request_id}"
