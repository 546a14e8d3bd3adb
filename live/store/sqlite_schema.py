"""The SQLite schema, as numbered migrations.

`schema_version` holds the number of the last migration applied. Opening a store
applies the missing ones in order, each in its own transaction, so an old data
dir upgrades itself and a half-applied migration is never left behind. To change
the schema, append a migration; never edit one that has shipped.

Timestamps are fixed-width UTC text (`times.to_storage`), so SQL compares them as
times. `seq` gives every row an insertion order to break ties in newest-first lists.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: livestreams, API keys, publish sessions
    """
    CREATE TABLE livestreams (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        stream_key TEXT NOT NULL UNIQUE,
        playback_id TEXT NOT NULL UNIQUE,
        record INTEGER NOT NULL,
        latency_mode TEXT NOT NULL,
        transcode TEXT NOT NULL,
        reconnect_window_s INTEGER NOT NULL,
        max_duration_s INTEGER NOT NULL,
        srt_passphrase TEXT,
        live INTEGER NOT NULL DEFAULT 0,
        ban_reason TEXT,
        banned_at TEXT,
        ban_until TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX livestreams_newest ON livestreams (created_at, seq);

    CREATE TABLE api_keys (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        last_used_at TEXT
    );

    CREATE TABLE sessions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        livestream_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        remote_addr TEXT NOT NULL,
        encoder TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        end_reason TEXT,
        video TEXT,
        audio TEXT,
        bytes_in INTEGER NOT NULL DEFAULT 0,
        peak_viewers INTEGER NOT NULL DEFAULT 0,
        total_views INTEGER NOT NULL DEFAULT 0,
        asset_id TEXT
    );
    CREATE INDEX sessions_by_stream ON sessions (livestream_id, started_at, seq);
    CREATE INDEX sessions_open ON sessions (ended_at) WHERE ended_at IS NULL;
    """,
    # 2: assets (recordings)
    """
    CREATE TABLE assets (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        livestream_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        duration_s REAL NOT NULL DEFAULT 0,
        size_bytes INTEGER NOT NULL DEFAULT 0,
        has_poster INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        ready_at TEXT
    );
    CREATE INDEX assets_newest ON assets (created_at, seq);
    CREATE INDEX assets_by_stream ON assets (livestream_id, created_at, seq);
    CREATE INDEX assets_unfinished ON assets (status)
        WHERE status IN ('recording', 'processing');
    """,
    # 3: webhooks, webhook deliveries (the outbox), idempotency keys. Viewer stats
    # live in memory and land in `sessions` (peak_viewers, total_views) at a session's end.
    """
    CREATE TABLE webhooks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    CREATE TABLE webhook_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        webhook_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
        WHERE state = 'pending';
    CREATE INDEX deliveries_newest ON webhook_deliveries (created_at, seq);
    -- Deleting an endpoint drops its outbox and log in the same statement.
    CREATE TRIGGER webhooks_delete_deliveries AFTER DELETE ON webhooks BEGIN
        DELETE FROM webhook_deliveries WHERE webhook_id = OLD.id;
    END;

    CREATE TABLE idempotency_keys (
        api_key_id TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        body BLOB NOT NULL,
        content_type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (api_key_id, key)
    );
    CREATE INDEX idempotency_age ON idempotency_keys (created_at);
    """,
    # 4: a deleted asset (API or retention) leaves its history entry without an asset,
    # in the same statement, rather than naming one that is gone.
    """
    CREATE TRIGGER assets_delete_unlinks_session AFTER DELETE ON assets BEGIN
        UPDATE sessions SET asset_id = NULL WHERE asset_id = OLD.id;
    END;
    UPDATE sessions SET asset_id = NULL
        WHERE asset_id IS NOT NULL AND asset_id NOT IN (SELECT id FROM assets);
    """,
    # 5: per livestream, the highest fence (lease token) seen on a session write.
    """
    CREATE TABLE session_fences (
        livestream_id TEXT PRIMARY KEY,
        fence INTEGER NOT NULL
    );
    """,
    # 6: assets from uploads and imports: no livestream or session, where they came
    # from, what was asked of them, and `error` as a {"code", "message"} object (an
    # old recording's error text becomes a `processing_failed`). SQLite cannot drop
    # NOT NULL, so the table is rebuilt; the delete trigger goes with it.
    """
    CREATE TABLE assets_v6 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        livestream_id TEXT,
        session_id TEXT,
        source TEXT NOT NULL DEFAULT 'recording',
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        error TEXT,
        progress INTEGER NOT NULL DEFAULT 0,
        duration_s REAL NOT NULL DEFAULT 0,
        size_bytes INTEGER NOT NULL DEFAULT 0,
        has_poster INTEGER NOT NULL DEFAULT 0,
        origin_url TEXT,
        origin_http_headers TEXT,
        clip_start_s REAL,
        clip_duration_s REAL,
        transcode TEXT NOT NULL DEFAULT 'ladder',
        declared_size_bytes INTEGER,
        upload_expires_at TEXT,
        renditions TEXT NOT NULL DEFAULT '[]',
        original TEXT,
        created_at TEXT NOT NULL,
        ready_at TEXT
    );
    INSERT INTO assets_v6 (seq, id, livestream_id, session_id, status, error, duration_s,
        size_bytes, has_poster, created_at, ready_at)
    SELECT seq, id, livestream_id, session_id, status,
        CASE WHEN error IS NULL THEN NULL
             ELSE json_object('code', 'processing_failed', 'message', error) END,
        duration_s, size_bytes, has_poster, created_at, ready_at
    FROM assets;
    DROP TABLE assets;
    ALTER TABLE assets_v6 RENAME TO assets;
    CREATE INDEX assets_newest ON assets (created_at, seq);
    CREATE INDEX assets_by_stream ON assets (livestream_id, created_at, seq);
    CREATE INDEX assets_unfinished ON assets (status)
        WHERE status NOT IN ('ready', 'failed');
    CREATE TRIGGER assets_delete_unlinks_session AFTER DELETE ON assets BEGIN
        UPDATE sessions SET asset_id = NULL WHERE asset_id = OLD.id;
    END;
    """,
    # 7: VOD jobs: the queue of uploads and imports to process, and the leases of the
    # running ones (`aggregates/vod_jobs.py`). Served oldest first by `seq`.
    """
    CREATE TABLE vod_jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        asset_id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        node_id TEXT,
        lease_until TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX vod_jobs_by_state ON vod_jobs (state, seq);
    """,
    # 8: uploads in progress (tus or PUT): where the bytes are and who writes them, so
    # that a restart or another node carries on. One per asset.
    """
    CREATE TABLE uploads (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        asset_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        length INTEGER,
        "offset" INTEGER NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL DEFAULT '{}',
        write TEXT NOT NULL DEFAULT '{}',
        holder TEXT,
        held_until TEXT,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX uploads_expiry ON uploads (expires_at);
    """,
    # 9: livestreams are found at publish time by the hash of their stream key
    # (`ids.hash_stream_key`, registered as `stream_key_digest` on the connection).
    """
    ALTER TABLE livestreams ADD COLUMN stream_key_hash TEXT;
    UPDATE livestreams SET stream_key_hash = stream_key_digest(stream_key);
    CREATE UNIQUE INDEX livestreams_by_key_hash ON livestreams (stream_key_hash);
    """,
    # 10: imports by URL waiting to be fetched or being fetched, with the lease of the
    # node fetching each (`aggregates/import_jobs.py`); the same shape as vod_jobs.
    """
    CREATE TABLE import_jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        asset_id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        node_id TEXT,
        lease_until TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX import_jobs_by_state ON import_jobs (state, seq);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
