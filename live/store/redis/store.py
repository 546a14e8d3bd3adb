"""`RedisStore`: the store of a cluster, shared by every node, made of one part per
aggregate over a shared client. The key layout is in `keys.py`."""

from __future__ import annotations

from redis.asyncio import Redis

from live.store.base import Store
from live.store.redis.api_keys import RedisApiKeys
from live.store.redis.assets import RedisAssets
from live.store.redis.idempotency import RedisIdempotency
from live.store.redis.import_jobs import RedisImportJobs
from live.store.redis.keys import DEFAULT_PREFIX, Keys
from live.store.redis.livestreams import RedisLivestreams
from live.store.redis.sessions import RedisSessions
from live.store.redis.unavailable import unavailable_when_unreachable
from live.store.redis.uploads import RedisUploads
from live.store.redis.vod_jobs import RedisVodJobs
from live.store.redis.webhooks import RedisWebhooks


@unavailable_when_unreachable
class RedisStore(
    RedisLivestreams,
    RedisApiKeys,
    RedisSessions,
    RedisAssets,
    RedisWebhooks,
    RedisIdempotency,
    RedisVodJobs,
    RedisImportJobs,
    RedisUploads,
    Store,
):
    """`Store` on Redis (7 or newer). Create with `await RedisStore.open(url)`, or
    from a client made with `decode_responses=True`."""

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisStore needs a client made with decode_responses=True")
        super().__init__(client, Keys(prefix))

    @property
    def client(self) -> Redis:
        """The connection, for the parts of a node that share it (rate limits, leases)."""
        return self._redis

    @classmethod
    async def open(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> RedisStore:
        """Connect to `url` ("redis://host:port/db") and check that Redis answers, so
        that a wrong address fails at start-up rather than at the first request."""
        # Bounded waits: a node whose Redis hangs answers 503 instead of hanging too.
        client = Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            raise ConnectionError(
                f"Redis at {_without_password(url)} does not answer: {exc}"
            ) from exc
        store = cls(client, prefix=prefix)
        await store.hash_old_stream_key_lookups()
        return store


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    return scheme + sep + "***@" + rest.split("@", 1)[1]
