"""The Lua scripts of the Redis stores: each changes the keys of one slot, atomically.

They are sent as ``EVALSHA`` (the body once per connection-loss, ``SCRIPT LOAD``); a Redis
that restarted has forgotten them, and the writer loads them again when it answers
``NOSCRIPT``. Every script is idempotent (it sets a state rather than applying a delta), so
the writer may send a batch again when it does not know whether Redis applied it.
"""

from __future__ import annotations

import hashlib


class Script:
    __slots__ = ("body", "name", "sha")

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()


#: KEYS: registration row, the slot's expiry bucket. ARGV: row JSON, expires_at, endpoint.
PUT_REGISTRATION = Script("put_registration", """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
""")

#: KEYS: registration row, expiry bucket. ARGV: the row's JSON prefix '["ID",', endpoint.
#: Removes the row only while it is still that registration's (a newer one of the same
#: endpoint stays).
DELETE_REGISTRATION = Script("delete_registration", """
local row = redis.call('GET', KEYS[1])
if row and string.sub(row, 1, #ARGV[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
""")

#: KEYS: a hash. ARGV: field, value. Deletes the field only while it holds that value.
HDEL_IF = Script("hdel_if", """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
""")

#: KEYS: the endpoint's queue hash, the slot's queue-expiry bucket. ARGV: id, JSON,
#: "1" when pending (else "0"), expires_at, bucket member.
PUT_QUEUED = Script("put_queued", """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
else
  redis.call('ZREM', KEYS[2], ARGV[5])
end
return 1
""")

#: KEYS: a credential claim. ARGV: endpoint. Claims it when free or already the endpoint's;
#: otherwise answers the owner.
CLAIM = Script("claim", """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1])
return false
""")

#: KEYS: a credential claim. ARGV: new owner, old owner. Takes over a stale claim.
TAKE_OVER = Script("take_over", """
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
""")

#: KEYS: a string. ARGV: value. Deletes it only while it holds that value.
DEL_IF = Script("del_if", """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
""")

# -- several nodes (aiolwm2m.cluster): the lease is checked in the script that writes --------

#: KEYS: registration row, expiry bucket, lease, observations hash. ARGV: row JSON,
#: expires_at, endpoint, node, lease ms, "take" (a Register: the lease becomes this node's
#: whoever held it) or "keep" (an Update: refused with NOTOWNER while another node holds
#: it), the row's JSON prefix. A Register that replaces another registration of the
#: endpoint drops that one's observations. Answers the previous lease holder ('' if none).
PUT_OWNED = Script("put_owned", """
local cur = redis.call('GET', KEYS[3])
if cur and cur ~= ARGV[4] and ARGV[6] ~= 'take' then
  return redis.error_reply('NOTOWNER ' .. cur)
end
if ARGV[6] == 'take' then
  local old = redis.call('GET', KEYS[1])
  if old and string.sub(old, 1, #ARGV[7]) ~= ARGV[7] then
    redis.call('DEL', KEYS[4])
  end
end
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return cur or ''
""")

#: KEYS: registration row, expiry bucket, lease. ARGV: the row's JSON prefix, endpoint,
#: node. Removes the registration and its lease while the row is still that
#: registration's and the lease is not another node's.
DELETE_OWNED = Script("delete_owned", """
local cur = redis.call('GET', KEYS[3])
if cur and cur ~= ARGV[3] then
  return 0
end
local row = redis.call('GET', KEYS[1])
if row and string.sub(row, 1, #ARGV[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
""")

#: KEYS: lease, registration row. ARGV: node, the holder the caller saw ('' for none),
#: lease ms, the row's JSON prefix ('' to claim without a registration). Compare-and-set:
#: the lease becomes the node's only while it is still held by whom the caller saw (or
#: already by the node; with '' this is SET NX PX) and the row is still that
#: registration. Answers 1, the holder that won meanwhile, or nil when the registration
#: is gone.
CLAIM_LEASE = Script("claim_lease", """
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] and cur ~= ARGV[2] then
  return cur
end
if ARGV[4] ~= '' then
  local row = redis.call('GET', KEYS[2])
  if not row or string.sub(row, 1, #ARGV[4]) ~= ARGV[4] then
    return false
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
""")

#: KEYS: registration row, expiry bucket, lease, observations hash. ARGV: endpoint, now,
#: the holder the sweeper saw ('' for none). Expires a registration whose time is up and
#: whose lease is still held by that (dead) node: answers its row, else nil.
EXPIRE_ORPHAN = Script("expire_orphan", """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then
  return false
end
local cur = redis.call('GET', KEYS[3]) or ''
if cur ~= ARGV[3] then
  return false
end
local row = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
return row or ''
""")

#: KEYS: the endpoint's queue hash, the queue-expiry bucket. ARGV: id, the in-flight JSON,
#: bucket member. Marks a queued request in flight only while it is still pending (two
#: nodes flushing one endpoint's queue never both send an at-most-once request). 1 or 0.
START_QUEUED = Script("start_queued", """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or cjson.decode(cur)['state'] ~= 'pending' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
""")

ALL = (PUT_REGISTRATION, DELETE_REGISTRATION, HDEL_IF, PUT_QUEUED, CLAIM, TAKE_OVER, DEL_IF,
       PUT_OWNED, DELETE_OWNED, CLAIM_LEASE, EXPIRE_ORPHAN, START_QUEUED)
