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
# half a target duration; a multivariant playlist that hands out a viewer id:
# "private, no-cache") and forwards it unchanged, like Access-Control-Allow-Origin,
# so players and browsers see what the node meant.
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
    if (req.url !~ "^/(live|vod)/") {
        # The API, metrics, health, admin pages: never cached, never coalesced.
        return (pass);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        # CORS preflights (OPTIONS) and anything else: the node answers each.
        return (pass);
    }
    if (req.url ~ "[?&]pl=") {
        # A viewer's own URL (viewer statistics on: the node put the viewer's id,
        # `pl`, in every URI it handed out). Nobody else asks for it, and the node
        # must see each request to count the viewer.
        return (pass);
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
    # immutable; playlists live as long as their max-age; a multivariant playlist
    # that carries a viewer id is "private, no-cache" and the built-in rule below
    # makes it a pass for everyone (hit-for-miss: concurrent requests each go to the
    # node, none waits on another's).
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
