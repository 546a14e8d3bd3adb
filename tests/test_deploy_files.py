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

from live.config import Settings, split_address
from live.stats.viewers import PLAYER_PARAM

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
NODES = ("node1", "node2")
# Settings the cluster work adds to live/config.py (named in the cluster issue); a
# config file may use them before every branch has landed.
CLUSTER_SETTINGS = {"node_url", "storage", "cluster_playback", "vod_delivery"}
# Environment variables read outside `Settings` (the S3 client's).
OTHER_ENVIRONMENT = {"LIVE_S3_ENDPOINT"}
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


def _flat(table: dict) -> dict:
    flat = {}
    for key, value in table.items():
        flat.update(_flat(value) if isinstance(value, dict) else {key: value})
    return flat


def _setting(config: dict, name: str):
    """A setting as the file has it, else its default."""
    flat = _flat(config)
    return flat[name] if name in flat else getattr(Settings(), name)


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


def test_nodes_run_live_in_cluster_mode_with_a_config_live_accepts(services):
    known = {field for field in Settings.__dataclass_fields__} | CLUSTER_SETTINGS
    for name in NODES:
        service = services[name]
        assert service["command"][:2] == ["live", "serve"]
        flags = _flags(service["command"])
        source, config = _node_config(service)
        assert source == REPO / "configs" / "cluster.toml"
        unknown = set(_flat(config)) - known
        assert not unknown, f"{source.name}: settings live does not have: {unknown}"
        # behind the edge: URIs every viewer shares, and nodes that proxy for each other
        assert _setting(config, "viewer_stats") is False
        assert _setting(config, "cluster_playback") == "proxy"
        node_url = urlsplit(flags["--node-url"])
        assert node_url.hostname == name, "a node's URL names its own service"
        assert node_url.port == split_address(_setting(config, "http"))[1]
        redis = urlsplit(flags["--redis"])
        assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
        for variable in service["environment"]:
            if variable.startswith("LIVE_") and variable not in OTHER_ENVIRONMENT:
                assert variable[5:].lower() in known, f"{name}: {variable} is no setting"


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
        storage = urlsplit(_flags(service["command"])["--storage"])
        assert (storage.scheme, storage.hostname) == ("s3", created[1])
        environment = {k: _interpolate(v) for k, v in service["environment"].items()}
        endpoint = urlsplit(environment["LIVE_S3_ENDPOINT"])
        assert (endpoint.hostname, endpoint.port) == ("minio", 9000)  # MinIO's API port
        assert environment["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert environment["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
        assert environment["AWS_DEFAULT_REGION"]
        assert "minio-init" in service["depends_on"]


def test_published_ports_are_what_the_nodes_and_the_edge_listen_on(services):
    host_ports: list[tuple[str, str]] = []
    for name in NODES:
        service = services[name]
        _, config = _node_config(service)
        rtmp = split_address(_setting(config, "rtmp"))[1]
        srt = split_address(_setting(config, "srt"))[1]
        whip = service["environment"]["LIVE_WHIP_UDP_PORTS"]
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
        _, config = _node_config(services[host])
        assert port == split_address(_setting(config, "http"))[1], backend
        assert f"origin.add_backend({backend});" in init, f"{backend} is not in the director"
        # a blocking reload or hinted part is held up to 3 target durations
        target_duration = -(-_setting(config, "segment_target_s") // 1)
        timeout = float(re.search(
            rf"backend {backend} \{{[^}}]*\.first_byte_timeout = (\d+)s;", vcl)[1])  # fmt: skip
        assert timeout > 3 * target_duration
    for node in NODES:
        assert node in edge["depends_on"]
    # a viewer's own URLs (viewer statistics on) are passed, never cached for others
    assert f'req.url ~ "[?&]{PLAYER_PARAM}="' in vcl
