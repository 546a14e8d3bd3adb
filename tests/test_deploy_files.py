"""docker-compose.yml, the Dockerfile and configs/ describe one cluster.

Docker cannot run here, so this checks what `docker compose up` would trip over or,
worse, start wrongly: a config file that is not there, a setting `live` does not
know, a node the edge does not send to, a port published that nothing listens on,
credentials or a bucket that differ between MinIO and the nodes.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp.test_utils import make_mocked_request

from live.cli import _parser
from live.config import Settings, load_settings, split_address
from live.hops import TrustedHops, parse_networks
from live.stats.viewers import ViewerTracker

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
NODES = ("node1", "node2")
_BACKEND = re.compile(r'backend (\w+) \{\s*\.host = "([^"]+)";\s*\.port = "(\d+)";')
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` as it reads with NAME unset (`${NAME:?msg}`: NAME)."""
    return _VARIABLE.sub(lambda m: m[3] if m[2] == "-" else f"<{m[1]}>", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _flags(command: list[str]) -> dict[str, str]:
    return {flag: value for flag, value in itertools.pairwise(command) if flag.startswith("-")}


def _mounts(service: dict) -> dict[str, Path]:
    """Bind mounts of files from the repository: container path -> repository file."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = REPO / source
    return mounts


def _published(service: dict) -> list[tuple[str, str, str]]:
    """(host port(s), container port(s), protocol) of each published port."""
    published = []
    for entry in service.get("ports", []):
        ports, _, protocol = str(entry).partition("/")
        host, container = ports.rsplit(":", 1)
        published.append((host, container, protocol or "tcp"))
    return published


def _node_config(service: dict) -> tuple[Path, dict]:
    flags = _flags(service["command"])
    source = _mounts(service)[flags["--config"]]
    with source.open("rb") as handle:
        return source, tomllib.load(handle)


def test_every_service_has_an_image_or_a_build_that_exists(services):
    assert {"redis", "minio", "minio-init", *NODES, "edge"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    for name in NODES:
        context = REPO / services[name]["build"]
        dockerfile = (context / "Dockerfile").read_text()
        assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
        ignored = (context / ".dockerignore").read_text()
        kept = {line[1:] for line in ignored.splitlines() if line.startswith("!")}
        copied = [path for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M)
                  for path in line.split()]  # fmt: skip
        assert copied
        for path in copied:
            assert (context / path).exists(), f"Dockerfile copies missing {path}"
            assert path in kept, f".dockerignore leaves {path} out of the image"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "live" in project["scripts"]  # the command the nodes run


def _node_settings(service: dict) -> Settings:
    """The settings `live serve` would start a node with: its command line parsed by
    live's own parser, the mounted config file and the service's environment."""
    arguments = _parser().parse_args(service["command"][1:])
    source, _ = _node_config(service)
    overrides = {k: v for k, v in vars(arguments).items() if k in Settings.__dataclass_fields__}
    environment = {k: _interpolate(v) for k, v in service["environment"].items()}
    return load_settings(source, overrides, environ=environment)


def test_nodes_run_live_in_cluster_mode_with_settings_live_accepts(services):
    for name in NODES:
        service = services[name]
        assert service["command"][:2] == ["live", "serve"]
        source, _ = _node_config(service)
        assert source == REPO / "configs" / "cluster.toml"
        settings = _node_settings(service)  # unknown or invalid settings raise here
        # behind the edge: viewers counted (the edge leaves their ids out of its cache
        # key), and nodes that proxy for each other
        assert settings.viewer_stats is True
        assert settings.cluster_playback == "proxy"
        # ... whose hop headers they believe: compose networks come from docker's
        # private pools, and a node's HTTP is published nowhere
        hops = TrustedHops(parse_networks(settings.trusted_proxies))
        assert all(hops.trusts(a) for a in ("172.18.0.5", "192.168.32.4", "10.0.1.2"))
        assert not hops.trusts("203.0.113.9")
        assert not any(p.split(":")[-1] == "8080" for p in service.get("ports", []))
        node_url = urlsplit(settings.node_url)
        assert node_url.hostname == name, "a node's URL names its own service"
        assert node_url.port == split_address(settings.http)[1]
        redis = urlsplit(settings.redis)
        assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
        assert settings.api_key == "<LIVE_API_KEY>"  # required from the environment
        for variable in service["environment"]:
            if variable.startswith("LIVE_"):
                setting = variable[5:].lower()
                assert setting in Settings.__dataclass_fields__, f"{name}: {variable}"


def test_redis_keeps_an_append_only_file(services):
    command = services["redis"]["command"]
    assert command[0] == "redis-server"
    assert _flags(command)["--appendonly"] == "yes"
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])


def test_nodes_write_to_the_bucket_minio_init_creates_with_minios_credentials(services):
    script = " ".join(services["minio-init"]["entrypoint"])
    created = re.search(r"mc mb (?:--ignore-existing )?\w+/([\w.-]+)", script)
    assert created, script
    minio = {k: _interpolate(v) for k, v in services["minio"]["environment"].items()}
    init = {k: _interpolate(v) for k, v in services["minio-init"]["environment"].items()}
    assert init == minio
    for name in NODES:
        service = services[name]
        settings = _node_settings(service)
        storage = urlsplit(settings.storage)
        assert (storage.scheme, storage.hostname) == ("s3", created[1])
        environment = {k: _interpolate(v) for k, v in service["environment"].items()}
        endpoint = urlsplit(settings.s3_endpoint)
        assert (endpoint.hostname, endpoint.port) == ("minio", 9000)  # MinIO's API port
        assert environment["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert environment["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
        assert environment["AWS_DEFAULT_REGION"]
        assert "minio-init" in service["depends_on"]


def test_published_ports_are_what_the_nodes_and_the_edge_listen_on(services):
    host_ports: list[tuple[str, str]] = []
    for name in NODES:
        service = services[name]
        settings = _node_settings(service)
        rtmp = split_address(settings.rtmp)[1]
        srt = split_address(settings.srt)[1]
        whip = settings.whip_udp_ports
        published = _published(service)
        assert {(c, p) for _, c, p in published} == {(str(rtmp), "tcp"), (str(srt), "udp"),
                                                    (whip, "udp")}, name  # fmt: skip
        for host, container, _ in published:
            if "-" in container:  # WHIP's UDP range: the same numbers outside, as
                assert host == container  # candidates carry the port the node bound
        host_ports += [(host, protocol) for host, _, protocol in published]
    edge = services["edge"]
    listen = _flags(edge["command"])["-a"]
    (edge_port,) = _published(edge)
    assert edge_port[1] == listen.rsplit(":", 1)[1]
    host_ports.append((edge_port[0], edge_port[2]))
    assert len(host_ports) == len(set(host_ports)), "two services publish one host port"


def test_the_edge_runs_the_projects_vcl_against_every_node(services):
    edge = services["edge"]
    flags = _flags(edge["command"])
    assert edge["command"][0] == "varnishd" and "-F" in edge["command"]
    vcl_file = _mounts(edge)[flags["-f"]]
    assert vcl_file == REPO / "configs" / "edge.vcl"
    vcl = vcl_file.read_text()
    backends = {name: (host, int(port)) for name, host, port in _BACKEND.findall(vcl)}
    assert {host for host, _ in backends.values()} == set(NODES)
    init = re.search(r"sub vcl_init \{(.*?)\n\}", vcl, re.S)[1]
    for backend, (host, port) in backends.items():
        settings = _node_settings(services[host])
        assert port == split_address(settings.http)[1], backend
        assert f"origin.add_backend({backend});" in init, f"{backend} is not in the director"
        # a blocking reload or hinted part is held up to 3 target durations
        target_duration = -(-settings.segment_target_s // 1)
        timeout = float(re.search(
            rf"backend {backend} \{{[^}}]*\.first_byte_timeout = (\d+)s;", vcl)[1])  # fmt: skip
        assert timeout > 3 * target_duration
    for node in NODES:
        assert node in edge["depends_on"]
    # a player's id (viewer statistics on) is cut out of the URL the edge caches by,
    # whatever id the server hands out
    pattern, replacement = re.search(r'regsub\(req\.url, "([^"]+)", "([^"]+)"\)', vcl).groups()
    player = ViewerTracker().start_player(make_mocked_request("GET", "/"), "pb_x")
    path = f"/live/pb_x/{player}/source/part-7.m4s"
    assert re.sub(pattern, replacement, path) == "/live/pb_x/source/part-7.m4s"


def test_no_third_party_javascript_is_committed() -> None:
    """npm installs it (scripts/setup.sh); a committed node_modules, even a link to a
    local copy, would shadow that install in every fresh clone."""
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert [path for path in tracked if "node_modules" in path.split("/")] == []
