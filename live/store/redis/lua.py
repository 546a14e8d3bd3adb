"""Lua shared by the Redis store's scripts, and the generic scripts several parts use.

A script runs atomically in Redis: no other client's command runs between its
first and last call, which is how every multi-key write of the store is one write.
Every script gets the key prefix as ARGV[1] and names keys as `keys.py` lays out.
The store runs on one Redis (with replicas if wanted), not on Redis Cluster: some
scripts name keys they read from records, which Cluster would refuse.
"""

from __future__ import annotations

# Helpers every script starts with.
PRELUDE = """
local P = ARGV[1]
local function ordered(stamp, seq, id)
    return stamp .. '|' .. string.format('%016d', tonumber(seq)) .. '|' .. id
end
local function id_of(member)
    return string.match(member, '([^|]*)$')
end
local function due_member(seq, id)
    return string.format('%016d', tonumber(seq)) .. '|' .. id
end
-- HSET the pairs and HDEL the names in ARGV[first..]: a count n, n pairs, names.
local function apply_changes(key, first)
    local n = tonumber(ARGV[first])
    if n > 0 then
        redis.call('HSET', key, unpack(ARGV, first + 1, first + 2 * n))
    end
    if #ARGV > first + 2 * n then
        redis.call('HDEL', key, unpack(ARGV, first + 2 * n + 1))
    end
end
"""


def script(body: str) -> str:
    """A complete script: the prelude, then `body`."""
    return PRELUDE + body


# Insert a record. KEYS[1] the hash, KEYS[2] the seq counter, KEYS[3..2+nidx] ordered
# indexes, KEYS[3+nidx..] lookup keys set to the id. ARGV: prefix, order stamp, id,
# nidx, only-if-new ("1": if the first lookup key exists, insert nothing and answer
# the existing id), then the changes (see apply_changes). Answers {seq} or {false, id};
# the error EXISTS if the record does.
INSERT = script("""
local stamp, id, nidx, only_new = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
if only_new == '1' then
    local existing = redis.call('GET', KEYS[3 + nidx])
    if existing then return {false, existing} end
end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], '_seq', seq)
apply_changes(KEYS[1], 6)
local member = ordered(stamp, seq, id)
for i = 3, 2 + nidx do redis.call('ZADD', KEYS[i], 0, member) end
for i = 3 + nidx, #KEYS do redis.call('SET', KEYS[i], id) end
return {seq}
""")

# Change fields of an existing record. KEYS[1] the hash; ARGV: prefix, changes.
# Answers the record (HGETALL), or false if there is none (nothing is created).
UPDATE = script("""
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
apply_changes(KEYS[1], 2)
return redis.call('HGETALL', KEYS[1])
""")

# Follow a lookup key to its record. KEYS[1] the lookup key; ARGV: prefix, the record
# key prefix. Answers the record, or an empty list.
LOOKUP = script("""
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[2] .. id)
""")

# One page of an ordered index, newest first, with the total. KEYS[1] the index;
# ARGV: prefix, record key prefix, offset, count, upper lex bound ("+" or "(stamp"),
# then optionally a field and the values it may have. Unfiltered it reads only the
# page; filtered it walks the index (as SQL scans the table). Answers {total, record...}.
PAGE = script("""
local index, records = KEYS[1], ARGV[2]
local offset, count, upper, field = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local out = {0}
if not field then
    out[1] = redis.call('ZLEXCOUNT', index, '-', upper)
    local page = redis.call('ZRANGE', index, upper, '-', 'BYLEX', 'REV', 'LIMIT', offset, count)
    for _, member in ipairs(page) do
        out[#out + 1] = redis.call('HGETALL', records .. id_of(member))
    end
    return out
end
local wanted = {}
for i = 7, #ARGV do wanted[ARGV[i]] = true end
local total = 0
for _, member in ipairs(redis.call('ZRANGE', index, upper, '-', 'BYLEX', 'REV')) do
    local key = records .. id_of(member)
    if wanted[redis.call('HGET', key, field)] then
        if total >= offset and total < offset + count then
            out[#out + 1] = redis.call('HGETALL', key)
        end
        total = total + 1
    end
end
out[1] = total
return out
""")
