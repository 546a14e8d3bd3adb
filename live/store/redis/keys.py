"""The key layout in Redis, in one place. Every key starts with the store's prefix
(default "live:"); the Lua scripts build the same names from the prefix they are given.

Records are hashes (`codec.py`), one per record, with the store's insertion number
in field `_seq` (from the counter `seq`). Lists are sorted sets whose members all
score 0 and read `<created_at storage text>|<seq, 16 digits>|<id>`, so that text
order is (time, insertion) order: newest first is a reverse range, a page is a LIMIT,
the total a ZCARD, and "created before T" a lex bound.

    seq                         counter: insertion order of every record
    ls:<id>                     livestream hash
    ls:index                    all livestreams (ordered members)
    ls:key:<sha256 of its key>  -> livestream id (the ingest's lookup; the record's
                                `_key_hash` names it)
    ls:pb:<playback id>         -> livestream id (the viewers' lookup)
    ls:bans                     bans with an until: score = until in µs, member = id
    ls:live, ls:banned          livestreams flagged live, with a ban (ordered)
    ak:<id>                     API key hash
    ak:index                    all API keys (ordered)
    ak:hash:<sha256>            -> API key id
    ses:<id>                    session hash
    ses:ls:<livestream id>      a livestream's sessions (ordered by started_at)
    ses:open                    sessions without ended_at: score = seq, member = id
    ses:fence:<livestream id>   highest fence seen on a session write of that stream
    ast:<id>                    asset hash
    ast:index, ast:ls:<ls id>   all assets, a livestream's assets (ordered)
    ast:status:<status>         the assets with a status (ordered)
    ast:named:<asset id>        ids of the sessions whose asset_id names the asset
    wh:<id>                     webhook hash
    wh:index                    all webhooks (ordered)
    wh:event:<event>            the webhooks subscribed to an event (ordered)
    dlv:<id>                    delivery hash
    dlv:index, dlv:wh:<wh id>   the delivery log, all and per endpoint (ordered)
    dlv:state:<state>,          the same, of one state
      dlv:wh:<wh id>:<state>
    dlv:due:<wh id>             an endpoint's pending deliveries: score = next attempt
                                in µs, member = "<seq, 16 digits>|<id>" (ties: oldest)
    dlv:pending                 all pending deliveries: score = next attempt in µs
    idem:<api key id>:<key>     idempotent answer hash
    idem:age                    answers by age: score = created_at in µs
    upl:<id>                    upload hash (an upload in progress)
    upl:asset:<asset id>        -> the asset's upload id
    upl:expiry                  uploads by expiry: score = expires_at in µs, member = id
    rate:<bucket>               rate limiter state (`live/api/ratelimit_redis.py`)
    vod:job:<asset id>,         the VOD job queue (`vod_jobs.py`)
      vod:queue, vod:running
    imp:job:<asset id>,         the imports being fetched (`import_jobs.py`), laid
      imp:queue, imp:running    out as the VOD job queue (`job_queue.py`)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DEFAULT_PREFIX = "live:"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self.seq = prefix + "seq"
        self.livestreams = prefix + "ls:index"
        self.bans = prefix + "ls:bans"
        self.api_keys = prefix + "ak:index"
        self.open_sessions = prefix + "ses:open"
        self.assets = prefix + "ast:index"
        self.webhooks = prefix + "wh:index"
        self.pending = prefix + "dlv:pending"
        self.idempotency_age = prefix + "idem:age"

    def livestream(self, livestream_id: str) -> str:
        return f"{self.prefix}ls:{livestream_id}"

    def stream_key_hash(self, key_hash: str) -> str:
        return f"{self.prefix}ls:key:{key_hash}"

    def playback_id(self, playback_id: str) -> str:
        return f"{self.prefix}ls:pb:{playback_id}"

    def api_key(self, api_key_id: str) -> str:
        return f"{self.prefix}ak:{api_key_id}"

    def api_key_hash(self, key_hash: str) -> str:
        return f"{self.prefix}ak:hash:{key_hash}"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}ses:{session_id}"

    def sessions_of(self, livestream_id: str) -> str:
        return f"{self.prefix}ses:ls:{livestream_id}"

    def asset(self, asset_id: str) -> str:
        return f"{self.prefix}ast:{asset_id}"

    def assets_of(self, livestream_id: str) -> str:
        return f"{self.prefix}ast:ls:{livestream_id}"

    def assets_in(self, status: str) -> str:
        return f"{self.prefix}ast:status:{status}"

    def webhook(self, webhook_id: str) -> str:
        return f"{self.prefix}wh:{webhook_id}"

    def subscribers(self, event: str) -> str:
        return f"{self.prefix}wh:event:{event}"

    def delivery(self, delivery_id: str) -> str:
        return f"{self.prefix}dlv:{delivery_id}"

    def delivery_log(self, webhook_id: str | None, state: str | None) -> str:
        """The delivery log, of one endpoint and of one state if given."""
        if webhook_id is None:
            return f"{self.prefix}dlv:" + (f"state:{state}" if state else "index")
        return f"{self.prefix}dlv:wh:{webhook_id}" + (f":{state}" if state else "")

    def idempotent_answer(self, api_key_id: str, key: str) -> str:
        return f"{self.prefix}idem:{api_key_id}:{key}"


def to_micros(value: datetime) -> int:
    """A time as whole microseconds since the epoch: exact as a sorted-set score
    (a double holds integers up to 2^53, i.e. until the year 2255)."""
    return (value - _EPOCH) // _MICROSECOND


def from_micros(micros: float) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))
