vcl 4.1;
# The caching edge in front of `live` nodes (Varnish 7.x).
#
# Playback (/live, /vod) is cached and, above all, coalesced: when many viewers ask
# for the same URL at once, one request goes to a node and the others wait on
# Varnish's waiting list, woken the moment the answer's headers arrive. LL-HLS makes
# every viewer ask for the same next thing at the same time (a blocking playlist
# reload `?_HLS_msn=N&_HLS_part=M`, then the part it names, or the preload-hinted
# part the node holds until it is complete), so a node answers each playlist
# version and each part about once however many viewers there are.
#
# Everything else (/v1, /whip, /metrics, /healthz, /admin, /publish, ...) is passed
# through uncached.
#
# The edge honours the nodes' Cache-Control (parts, segments, init sections:
# "max-age=3600, immutable"; a blocking playlist: 6 target durations; a plain one:
# half a target duration) and forwards it unchanged, like Access-Control-Allow-Origin,
# so players and browsers see what the node meant. The multivariant playlist, which
# hands each player its id, is never cached; the id, a path segment of every URL a
# player asks for after it, is left out of the cache key.
#
#   varnishd -F -a :6081 -f /etc/varnish/edge.vcl -s malloc,256m

import directors;
import std;

# ---------------------------------------------------------------------------- nodes
# One backend per `live` node (its HTTP listener, `listen.http` in cluster.toml).
# To add a node: copy a backend block below with the new node's host and port, and
# add it to the director in vcl_init (`origin.add_backend(node3);`).
#
# Varnish looks a backend's host name up once, when the VCL is loaded: after a node
# is recreated with a new address, reload the VCL (restart the edge).
#
# first_byte_timeout must outlast the longest answer a node holds back on purpose:
# a blocking playlist reload or a preload-hinted part waits up to 3 target durations
# (the node answers 503 after that), 3 s with the default 1 s segments; 30 s leaves
# room for segments of up to 10 s.
backend node1 {
    .host = "node1";
    .port = "8080";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

backend node2 {
    .host = "node2";
    .port = "8080";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

sub vcl_init {
    # Any node answers for any stream (a node that does not own a stream fetches it
    # from the owner: run the nodes with cluster_playback = "proxy", as a redirect
    # would send viewers to a node address they cannot reach). Coalescing happens
    # before a node is picked, so spreading requests costs nothing in origin load.
    new origin = directors.round_robin();
    origin.add_backend(node1);
    origin.add_backend(node2);
    # WHIP: a session lives on the node that answered its POST, and the publisher's
    # PATCH and DELETE must reach that node too: one node per client address.
    new sticky = directors.hash();
    sticky.add_backend(node1, 1.0);
    sticky.add_backend(node2, 1.0);
}

# ---------------------------------------------------------------------------- requests

sub vcl_recv {
    # A director, not a node: the node is picked per fetch, and again on a retry.
    set req.backend_hint = origin.backend();

    if (req.url ~ "^/whip(/|$|\?)") {
        set req.backend_hint = sticky.backend(client.ip);
        return (pass);
    }
    # What the edge tells a node about a playback request (see vcl_backend_fetch);
    # never a client's word. (A node believes it, and the X-Forwarded-For entry
    # Varnish adds, only from the addresses in its `trusted_proxies`.)
    unset req.http.X-Live-Edge;
    if (req.url !~ "^/(live|vod)/") {
        # The API, metrics, health, admin pages: never cached, never coalesced.
        return (pass);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        # CORS preflights (OPTIONS) and anything else: the node answers each.
        return (pass);
    }
    if (req.url ~ "^/live/[^/]+/index\.m3u8(\?|$)") {
        # The multivariant playlist starts a player session and hands that player
        # its own id: never cached, each one is the node's.
        return (pass);
    }
    if (req.url ~ "^/live/[^/]+/pl_[A-Za-z0-9_-]+/") {
        # A player's URL (viewer statistics on: /live/{pb}/{player}/{rendition}/...).
        # Every player gets the same bytes, so the id is cut out of the URL the edge
        # caches and fetches by: one object per part and playlist version for all.
        # The node still has to hear from each player now and then to count it: its
        # media playlist request for a segment's second part (LL-HLS: a player asks
        # for `_HLS_part=1` once per segment, after the segment's first part, while
        # at a segment's end it asks past the last part rather than for part 0) or
        # any reload without a part (plain HLS, first load), about one request per
        # player and segment, goes to the node with the id, marked "count".
        set req.url = std.querysort(req.url);
        if (req.url ~ "^[^?]*/index\.m3u8(\?|$)"
            && (req.url !~ "[?&]_HLS_part=" || req.url ~ "[?&]_HLS_part=1(&|$)")) {
            set req.http.X-Live-Edge = "count";
            return (pass);
        }
        set req.url = regsub(req.url, "^(/live/[^/]+)/pl_[A-Za-z0-9_-]+/", "\1/");
    }
    if (req.url ~ "^/vod/[^/]+/download\.mp4") {
        # A whole recording as one file, fetched once per download, often by range:
        # not worth evicting the live parts for.
        return (pass);
    }
    # Playback is public and the same for everyone: cookies and credentials a
    # browser attaches change nothing, and must not turn a cacheable request into a
    # pass (the built-in rule).
    unset req.http.Cookie;
    unset req.http.Authorization;
    # hls.js and other players put the directives in different orders: one order,
    # so `_HLS_part=2&_HLS_msn=9` and `_HLS_msn=9&_HLS_part=2` wait on one fetch.
    set req.url = std.querysort(req.url);
    return (hash);
}

sub vcl_hash {
    # The URL alone: one edge serves one site, and viewers reaching it under
    # different names (an IP, a DNS name) should share objects and fetches.
    hash_data(req.url);
    return (lookup);
}

# ---------------------------------------------------------------------------- fetches

sub vcl_backend_fetch {
    # A playback fetch the edge shares among players belongs to none of them: the
    # node does not count it as a viewer (the edge's own address would be one).
    if (bereq.url ~ "^/live/" && !bereq.http.X-Live-Edge) {
        set bereq.http.X-Live-Edge = "shared";
    }
}

sub vcl_backend_response {
    if (bereq.uncacheable) {
        return (deliver);
    }
    if (beresp.status >= 300) {
        # A 404 for a part not produced yet, a 503 while a stream starts, a redirect
        # to the node that runs a stream now (cluster_playback = "redirect") or to
        # a presigned object URL: each can change within a part's duration. Never
        # keep one longer than the node asked, at most 1 s, and never as the
        # built-in 2-minute hit-for-miss marker, which would stop coalescing on that
        # URL (each viewer would go to the node) for as long as it lives.
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        if (beresp.ttl > 1s) {
            set beresp.ttl = 1s;
        }
        if (beresp.ttl <= 0s || beresp.http.Cache-Control ~ "(?i:no-cache|no-store|private)") {
            set beresp.ttl = 0s;
            set beresp.uncacheable = true;
        }
        return (deliver);
    }
    if (beresp.http.Content-Type ~ "mpegurl") {
        # A live playlist is only right while fresh: a stale one served during
        # grace would send players seconds back in time.
        set beresp.grace = 0s;
        set beresp.keep = 0s;
    }
    # Everything else as the node says: parts, segments and init sections are
    # immutable; playlists live as long as their max-age.
}

sub vcl_backend_error {
    # The node could not be reached or did not answer in time: once more, on the
    # next node, before the viewer gets an error. Reads only: a POST that timed out
    # may have been done.
    if (bereq.retries < 1 && (bereq.method == "GET" || bereq.method == "HEAD")) {
        return (retry);
    }
}

# ---------------------------------------------------------------------------- answers

sub vcl_deliver {
    # For operators and tests: whether this answer came from the cache. (Age, which
    # hls.js reads to place itself behind a CDN, is set by Varnish already.)
    if (obj.uncacheable) {
        set resp.http.X-Cache = "pass";
    } elif (obj.hits > 0) {
        set resp.http.X-Cache = "hit";
    } else {
        set resp.http.X-Cache = "miss";
    }
}
