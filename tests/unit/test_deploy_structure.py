"""Structural checks of the container deployment.

Docker does not run in CI, so ``docker-compose.yml``, ``deploy/Dockerfile``,
``deploy/nginx/default.conf`` and ``.dockerignore`` are parsed here and checked against each
other and against the code: settings names (``streams.settings.Settings``), the Kafka version
(``deploy/kafka/pom.xml``), the packages (``pyproject.toml``), the API port and the WebSocket
paths. Each check names what would break at ``docker compose up`` if it failed.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx" / "default.conf"
DOCKERIGNORE = ROOT / ".dockerignore"
KAFKA_POM = ROOT / "deploy" / "kafka" / "pom.xml"
PYPROJECT = ROOT / "pyproject.toml"

#: App services and the `enms` subcommand each must run.
APP_SERVICES = {"topics": "topics", "worker": "worker", "api": "api", "simulator": "simulate"}
SUBCOMMANDS = {"worker", "api", "simulate", "topics"}
ALL_SERVICES = {"kafka", "redis", "nginx", *APP_SERVICES}
APP_IMAGE = "enms-stream:latest"
UPSTREAM = "enms_api"
WS_CHANNELS = ("dashboard", "anomalies", "training", "events")
SETTINGS_VARS = {f"ENMS_{f.name.upper()}" for f in dataclasses.fields(Settings)}


# --- compose helpers -------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` interpolation with no variable set: every default applies.

    A ``${VAR}`` without a default would make the file depend on the caller's shell, so it is
    refused.

    >>> interpolate("${ENMS_READINGS_PARTITIONS:-8}/$${HOME}")
    '8/${HOME}'
    """

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        expr = m.group("braced") or m.group("bare")
        parsed = re.fullmatch(r"[A-Za-z_]\w*(?P<op>:?[-?+])?(?P<word>.*)", expr, re.DOTALL)
        assert parsed, f"bad interpolation {m.group(0)}"
        if parsed["op"] in {":-", "-"}:
            return parsed["word"]
        msg = f"variable without a default in compose file: {m.group(0)}"
        raise AssertionError(msg)

    return _INTERPOLATION.sub(one, value)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict:
    doc = yaml.safe_load(compose_text)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    """The service's environment as strings, interpolated (mapping or ``KEY=VALUE`` list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    out = {}
    for key, value in raw.items():
        assert value is not None, f"{key} has no value (would be taken from the host)"
        assert not isinstance(value, bool), f"{key}: quote booleans in compose environments"
        out[key] = interpolate(str(value))
    return out


def argv_of(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(interpolate(command))
    return [interpolate(str(c)) for c in command]


def depends_of(service: dict) -> dict[str, str]:
    """Dependency name -> condition (the short list form means ``service_started``)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def closure(services: dict[str, dict], name: str) -> set[str]:
    """Every service `name` waits for, directly or through others."""
    seen: set[str] = set()
    todo = list(depends_of(services[name]))
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(depends_of(services[dep]))
    return seen


def healthcheck_argv(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(t) for t in test]


def listeners(spec: str) -> dict[str, tuple[str, int]]:
    """``PLAINTEXT://kafka:9092,CONTROLLER://:9093`` -> {name: (host, port)}."""
    out = {}
    for item in spec.split(","):
        name, rest = item.strip().split("://", 1)
        host, port = rest.rsplit(":", 1)
        out[name] = (host, int(port))
    return out


def named_volumes_mounted(service: dict) -> dict[str, str]:
    """Container path -> named volume, for the service's named-volume mounts."""
    out = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            if vol.get("type", "volume") == "volume":
                out[vol["target"]] = vol["source"]
            continue
        source, target = vol.split(":")[:2]
        if not source.startswith((".", "/", "~")):
            out[target] = source
    return out


# --- Dockerfile helpers ----------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages with their instructions (comments dropped, lines joined)."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
            continue
        assert stages, f"{keyword} before the first FROM"
        stages[-1].instructions.append((keyword, args))
    return stages


def lineage(stages: list[Stage], index: int) -> list[Stage]:
    """The stage and the earlier stages it is built FROM, oldest first."""
    chain = [stages[index]]
    names = {s.name: i for i, s in enumerate(stages[:index]) if s.name}
    while chain[0].base in names:
        chain.insert(0, stages[names[chain[0].base]])
    return chain


def exec_form(args: str) -> list[str]:
    """CMD/ENTRYPOINT as argv: the JSON (exec) form, or the shell form wrapped in /bin/sh -c."""
    if args.startswith("["):
        argv = json.loads(args)
        assert all(isinstance(a, str) for a in argv)
        return argv
    return ["/bin/sh", "-c", args]


def env_instructions(stage: Stage) -> dict[str, str]:
    """ENV KEY=VALUE pairs (and the legacy ``ENV KEY VALUE`` form)."""
    out = {}
    for args in stage.args("ENV"):
        words = shlex.split(args)
        if words and "=" not in words[0]:
            out[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            out[key] = value
    return out


@pytest.fixture(scope="module")
def image() -> dict:
    """What the final image runs with: entrypoint, cmd, user, env, stages."""
    stages = dockerfile_stages()
    chain = lineage(stages, len(stages) - 1)
    entrypoint: list[str] = []
    cmd: list[str] = []
    user = None
    env: dict[str, str] = {}
    for stage in chain:
        for keyword, args in stage.instructions:
            if keyword == "ENTRYPOINT":
                entrypoint, cmd = exec_form(args), []  # a new ENTRYPOINT resets CMD
            elif keyword == "CMD":
                cmd = exec_form(args)
            elif keyword == "USER":
                user = args
        env.update(env_instructions(stage))
    return {"stages": stages, "chain": chain, "entrypoint": entrypoint, "cmd": cmd,
            "user": user, "env": env}


# --- nginx helpers ---------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def children(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]


_NGINX_TOKEN = re.compile(
    r"""\s+|#[^\n]*"""                                # blanks, comments
    r"""|"((?:\\.|[^"\\])*)"|'((?:\\.|[^'\\])*)'"""  # quoted strings
    r"""|([{};])|([^\s{};"'#]+)""")                    # punctuation, bare words


def parse_nginx(text: str) -> Directive:
    """The config as a tree of directives (a pseudo ``http`` directive at the root)."""
    tokens: list[tuple[str, bool]] = []  # (text, is_punctuation)
    pos = 0
    while pos < len(text):
        m = _NGINX_TOKEN.match(text, pos)
        assert m, f"nginx config: cannot tokenize at {text[pos:pos + 30]!r}"
        pos = m.end()
        if m.group(1) is not None:
            tokens.append((m.group(1), False))
        elif m.group(2) is not None:
            tokens.append((m.group(2), False))
        elif m.group(3):
            tokens.append((m.group(3), True))
        elif m.group(4):
            tokens.append((m.group(4), False))

    def block(i: int, top: bool) -> tuple[list[Directive], int]:
        out: list[Directive] = []
        words: list[str] = []
        while i < len(tokens):
            tok, punct = tokens[i]
            i += 1
            if not punct:
                words.append(tok)
            elif tok == ";":
                assert words, "nginx config: empty directive"
                out.append(Directive(words[0], words[1:]))
                words = []
            elif tok == "{":
                assert words, "nginx config: block without a name"
                inner, i = block(i, top=False)
                out.append(Directive(words[0], words[1:], inner))
                words = []
            else:  # "}"
                assert not top and not words, "nginx config: unbalanced braces"
                return out, i
        assert top and not words, "nginx config: unterminated block or directive"
        return out, i

    body, _ = block(0, top=True)
    return Directive("http", [], body)


def nginx_seconds(value: str) -> float:
    """An nginx time (``1800``, ``1800s``, ``30m``, ``1h 30m``, ``500ms``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000,
             "y": 31536000}
    parts = re.findall(r"(\d+)(ms|[smhdwMy]?)", value)
    assert parts and "".join(n + u for n, u in parts) == value.replace(" ", ""), value
    return sum(int(n) * units[u or "s"] for n, u in parts)


@pytest.fixture(scope="module")
def nginx() -> Directive:
    return parse_nginx(NGINX_CONF.read_text())


@pytest.fixture(scope="module")
def server(nginx: Directive) -> Directive:
    (srv,) = nginx.children("server")
    return srv


def locate(server: Directive, path: str) -> Directive:
    """The location nginx picks for `path`: exact match, else the longest prefix."""
    locations = server.children("location")
    for loc in locations:
        assert loc.args[0] not in {"~", "~*", "@"} and not loc.args[0].startswith("@"), (
            f"regex/named location {loc.args}: teach locate() about it")
    for loc in locations:
        if loc.args[0] == "=" and loc.args[1] == path:
            return loc
    prefixes = [loc for loc in locations if loc.args[0] != "=" and path.startswith(loc.args[-1])]
    assert prefixes, f"no location matches {path}"
    return max(prefixes, key=lambda loc: len(loc.args[-1]))


def effective(levels: list[Directive], name: str) -> list[list[str]]:
    """All instances of `name` that apply in the innermost level, with nginx inheritance:
    a level inherits a directive only if it does not set it itself (for proxy_set_header, if
    it sets none at all)."""
    for level in levels:
        found = [d.args for d in level.children(name)]
        if found:
            return found
    return []


def one(levels: list[Directive], name: str) -> list[str]:
    found = effective(levels, name)
    assert len(found) == 1, f"{name}: expected exactly one, got {found}"
    return found[0]


def route(nginx: Directive, server: Directive, path: str) -> tuple[list[Directive], str, str]:
    """(levels from location out to http, upstream name, path as the upstream sees it)."""
    loc = locate(server, path)
    levels = [loc, server, nginx]
    (target,) = one(levels, "proxy_pass")
    parts = urlsplit(target)
    assert parts.scheme == "http", target
    prefix = loc.args[-1]
    if parts.path:  # a URI in proxy_pass replaces the matched part of the request path
        upstream_path = parts.path if loc.args[0] == "=" else parts.path + path[len(prefix):]
    else:
        upstream_path = path
    return levels, parts.netloc, upstream_path


def upstream_servers(nginx: Directive, name: str) -> list[Directive]:
    (ups,) = [u for u in nginx.children("upstream") if u.args == [name]]
    servers = ups.children("server")
    assert servers, f"upstream {name} has no server"
    return servers


# --- .dockerignore helpers -------------------------------------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.index("]", i)
            body = pattern[i + 1:j]
            out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules() -> list[tuple[re.Pattern[str], bool, str]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:].strip() if negated else line
        pattern = pattern.strip("/")
        rules.append((_ignore_regex(pattern), negated, line))
    return rules


def ignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative, posix) out of the build context: the last
    matching rule wins, and a rule that matches a parent directory matches its files."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for regex, negated, _ in dockerignore_rules():
        if any(regex.match(c) for c in candidates):
            result = not negated
    return result


# --- compose: services, images, commands -----------------------------------------------------


def test_compose_is_spec_format_with_all_services(compose: dict, services: dict) -> None:
    assert "version" not in compose, "the compose spec has no `version:` key"
    assert ALL_SERVICES <= set(services), f"missing services: {ALL_SERVICES - set(services)}"


def test_kafka_image_is_the_pom_kafka_version(services: dict) -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(KAFKA_POM).getroot()  # noqa: S314 - the project's own pom.xml
    version = pom.findtext("m:properties/m:kafka.version", None, ns)
    assert version and re.fullmatch(r"\d+\.\d+\.\d+", version), version
    repo, _, tag = services["kafka"]["image"].partition(":")
    assert repo == "apache/kafka"
    assert tag.split(".")[0] == "4", f"Kafka 4.x expected, got {tag!r}"
    assert tag == version, f"compose runs Kafka {tag}, deploy/kafka/pom.xml tests {version}"


def test_app_services_build_and_run_the_app_image(services: dict) -> None:
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["image"] == APP_IMAGE, name
        build = svc["build"]
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT, name
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE.resolve(), name
    for name in ALL_SERVICES - set(APP_SERVICES):
        assert services[name].get("image") != APP_IMAGE, name


def test_app_commands_are_enms_subcommands(services: dict, image: dict) -> None:
    # compose's `command:` replaces CMD but is appended to any ENTRYPOINT.
    for name, sub in APP_SERVICES.items():
        argv = image["entrypoint"] + argv_of(services[name].get("command"))
        assert argv[:1] == ["enms"], f"{name}: runs {argv}"
        assert argv[1] in SUBCOMMANDS, f"{name}: unknown subcommand {argv[1:2]}"
        assert argv[1] == sub, f"{name} must run `enms {sub}`, runs {argv}"
    sim = argv_of(services["simulator"]["command"])
    assert "--speed" in sim and float(sim[sim.index("--speed") + 1]) > 0, sim
    assert "demo" in services["simulator"].get("profiles", []), "simulator is demo-only"


# --- compose: settings -----------------------------------------------------------------------


def test_every_enms_variable_is_a_setting(compose_text: str, image: dict) -> None:
    used = set(re.findall(r"\bENMS_[A-Z0-9_]+", compose_text))
    used |= {k for k in image["env"] if k.startswith("ENMS_")}
    assert used, "no ENMS_* variables found at all"
    unknown = used - SETTINGS_VARS
    assert not unknown, f"not fields of streams.settings.Settings: {sorted(unknown)}"


def test_app_services_settings_parse_and_agree(services: dict, image: dict) -> None:
    settings = {}
    for name in APP_SERVICES:
        env = {k: v for k, v in image["env"].items() if k.startswith("ENMS_")}
        env.update(env_of(services[name]))
        settings[name] = Settings.from_env(env)  # raises on a value of the wrong type
    for name, s in settings.items():
        assert s.kafka_bootstrap == "kafka:9092", name
        assert s.redis_url == "redis://redis:6379/0", name
    # The topics job and the worker must agree on the readings topic's partition count.
    assert len({s.readings_partitions for s in settings.values()}) == 1
    assert len({s.app_id for s in settings.values()}) == 1
    api = settings["api"]
    assert api.api_host == "0.0.0.0", "the API must listen on all interfaces in a container"  # noqa: S104


def test_kafka_is_single_node_kraft_reachable_as_bootstrap(compose: dict, services: dict) -> None:
    kafka = services["kafka"]
    env = env_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = int(env["KAFKA_NODE_ID"])
    listen = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert listen["PLAINTEXT"][1] == 9092 and listen[controller][1] == 9093
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:{listen[controller][1]}"
    protocol_map = dict(
        p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listen) <= set(protocol_map), "every listener needs a security protocol"
    assert controller not in advertised, "a controller listener is never advertised"
    host, port = advertised["PLAINTEXT"]
    assert host == "kafka" and port == listen["PLAINTEXT"][1]
    for name in APP_SERVICES:
        assert env_of(services[name])["ENMS_KAFKA_BOOTSTRAP"] == f"{host}:{port}", name
    # One node: every internal topic must be creatable with one replica.
    factors = {k: v for k, v in env.items() if k.endswith("_REPLICATION_FACTOR")}
    assert {"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"} <= set(factors)
    assert set(factors.values()) == {"1"}, factors
    assert all(v == "1" for k, v in env.items() if k.endswith("_MIN_ISR")), env
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    if "CLUSTER_ID" in env:  # must be a base64 (url-safe, unpadded) UUID
        raw = base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")
        assert len(raw) == 16
        assert base64.urlsafe_b64encode(raw).decode().rstrip("=") == env["CLUSTER_ID"]
    # The data directory lives on a declared named volume.
    mounts = named_volumes_mounted(kafka)
    assert env["KAFKA_LOG_DIRS"] in mounts, "Kafka's log.dirs must be on a volume"
    assert mounts[env["KAFKA_LOG_DIRS"]] in (compose.get("volumes") or {})
    probe = " ".join(healthcheck_argv(kafka)[1:])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in probe
    assert f"--bootstrap-server localhost:{listen['PLAINTEXT'][1]}" in probe


def test_redis_service_matches_the_redis_url(services: dict) -> None:
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert healthcheck_argv(redis)[1:] in (["redis-cli", "ping"], ["redis-cli ping"])
    assert "command" not in redis, "a custom command could move Redis off port 6379"
    for name in APP_SERVICES:
        url = urlsplit(env_of(services[name])["ENMS_REDIS_URL"])
        assert (url.scheme, url.hostname, url.port or 6379) == ("redis", "redis", 6379), name


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for target, volume in named_volumes_mounted(svc).items():
            assert volume in declared, f"{name}: volume {volume} ({target}) is not declared"


# --- compose: start order --------------------------------------------------------------------


def test_dependencies_wait_for_healthy_kafka_and_redis(services: dict) -> None:
    for name, svc in services.items():
        for dep, condition in depends_of(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep}'s health, but {dep} has no healthcheck")
            elif condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", (
                    f"{dep} is a one-shot job: restart must be the string \"no\"")
            if "profiles" in services[dep]:
                profiles = services[dep]["profiles"]
                assert set(profiles) <= set(svc.get("profiles", [])), (
                    f"{name} depends on {dep}, which only runs in profiles {profiles}")
    for name in ("worker", "api"):
        assert {"kafka", "redis"} <= closure(services, name), f"{name}: wait for kafka and redis"
    for name in APP_SERVICES:
        for dep, condition in depends_of(services[name]).items():
            if dep in {"kafka", "redis"}:
                assert condition == "service_healthy", (name, dep, condition)
    assert depends_of(services["topics"]) == {"kafka": "service_healthy"}
    assert services["topics"].get("restart") == "no"
    assert depends_of(services["worker"]).get("topics") == "service_completed_successfully"
    assert "api" in depends_of(services["nginx"])


def test_no_dependency_cycles(services: dict) -> None:
    for name in services:
        assert name not in closure(services, name), f"{name} depends on itself"


# --- compose + nginx: ports and routes -------------------------------------------------------


def test_api_port_agrees_with_nginx_upstream(services: dict, nginx: Directive,
                                             image: dict) -> None:
    api = services["api"]
    port = int(env_of(api)["ENMS_API_PORT"])
    (srv,) = upstream_servers(nginx, UPSTREAM)
    host, _, up_port = srv.args[0].rpartition(":")
    assert host == "api", "the upstream must be the compose service `api`"
    assert int(up_port) == port, f"nginx proxies to {up_port}, the API listens on {port}"
    assert [int(str(p).split("/")[0]) for p in api.get("expose", [])] == [port]
    probe = " ".join(healthcheck_argv(api))
    assert f"127.0.0.1:{port}/health" in probe or f"localhost:{port}/health" in probe, probe
    exposed = {int(p.split("/")[0]) for s in image["chain"] for a in s.args("EXPOSE")
               for p in a.split()}
    assert port in exposed, "the image should EXPOSE the API port"


def test_nginx_service_mounts_this_config_and_publishes_its_port(services: dict,
                                                                 server: Directive) -> None:
    ngx = services["nginx"]
    assert ngx["image"].startswith("nginx:1.27")
    mounts = {}
    for vol in ngx["volumes"]:
        source, target, *mode = vol.split(":")
        mounts[target] = (source, mode)
    source, mode = mounts["/etc/nginx/conf.d/default.conf"]
    assert (COMPOSE_FILE.parent / source).resolve() == NGINX_CONF.resolve()
    assert mode == ["ro"]
    (listen,) = [d.args for d in server.children("listen")]
    container_ports = {str(p).rsplit(":", 1)[-1] for p in ngx["ports"]}
    assert container_ports == {listen[0]}, (
        f"nginx listens on {listen[0]}, compose publishes {container_ports}")
    assert {str(p).split(":")[0] for p in ngx["ports"]} == {"8080"}


def test_nginx_upstream_resolution(nginx: Directive, services: dict) -> None:
    (ups,) = [u for u in nginx.children("upstream") if u.args == [UPSTREAM]]
    for srv in ups.children("server"):
        if "resolve" in srv.args:
            # open-source nginx supports `resolve` from 1.27.3; it needs a zone and a resolver
            assert ups.children("zone"), "`server ... resolve` needs a shared-memory zone"
            assert nginx.children("resolver") or ups.children("resolver")
            tag = services["nginx"]["image"].split(":")[1].split("-")[0]
            version = tuple(int(x) for x in tag.split("."))
            assert version >= (1, 27, 3) or version == (1, 27), tag


def test_nginx_upgrade_map(nginx: Directive) -> None:
    (m,) = [d for d in nginx.children("map") if d.args == ["$http_upgrade", "$connection_upgrade"]]
    entries = {d.name: d.args for d in m.block or []}
    assert entries == {"default": ["upgrade"], "": ["close"]}, entries


@pytest.mark.parametrize("path", [
    *(f"/api/v1/ws/{c}" for c in WS_CHANNELS),
    *(f"/api/analytics/api/v1/ws/{c}" for c in WS_CHANNELS),
])
def test_nginx_proxies_websockets(nginx: Directive, server: Directive, path: str) -> None:
    levels, upstream, upstream_path = route(nginx, server, path)
    assert upstream == UPSTREAM
    assert upstream_path == path.removeprefix("/api/analytics")
    assert one(levels, "proxy_http_version") == ["1.1"]
    headers = {args[0].lower(): args[1:] for args in effective(levels, "proxy_set_header")}
    assert headers.get("upgrade") == ["$http_upgrade"], headers
    assert headers.get("connection") == ["$connection_upgrade"], headers
    for name in ("host", "x-forwarded-for", "x-forwarded-proto"):
        assert name in headers, f"{path}: no {name} header"
    for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = one(levels, timeout)
        assert nginx_seconds(value) >= 1800, f"{path}: {timeout} {value} < 1800s"
    assert one(levels, "proxy_buffering") == ["off"]


@pytest.mark.parametrize(("path", "expected"), [
    ("/", "/"),
    ("/static/app.js", "/static/app.js"),
    ("/health", "/health"),
    ("/api/v1/machines", "/api/v1/machines"),
    ("/api/analytics/", "/"),
    ("/api/analytics/health", "/health"),
    ("/api/analytics/api/v1/machines", "/api/v1/machines"),
])
def test_nginx_routes(nginx: Directive, server: Directive, path: str, expected: str) -> None:
    _, upstream, upstream_path = route(nginx, server, path)
    assert upstream == UPSTREAM
    assert upstream_path == expected


def test_nginx_declares_the_expected_locations(server: Directive) -> None:
    locations = [tuple(loc.args) for loc in server.children("location")]
    assert ("/api/analytics/",) in locations
    assert ("=", "/health") in locations
    assert ("/",) in locations


def test_nginx_seconds() -> None:
    assert nginx_seconds("1800s") == nginx_seconds("1800") == nginx_seconds("30m") == 1800
    assert nginx_seconds("1h 30m") == 5400
    with pytest.raises(AssertionError):
        nginx_seconds("soon")


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_bases_are_python_311_slim(image: dict) -> None:
    names = set()
    for stage in image["stages"]:
        assert stage.base == "python:3.11-slim" or stage.base in names, stage.base
        if stage.name:
            names.add(stage.name)


def test_dockerfile_runs_as_a_created_non_root_user(image: dict) -> None:
    final = image["chain"][-1]
    assert final.args("USER"), "the final stage must set USER itself"
    user = image["user"].split(":")[0]
    assert user not in {"root", "0"}, "the image must not run as root"
    runs = " ".join(a for s in image["chain"] for a in s.args("RUN"))
    assert re.search(r"\b(useradd|adduser)\b", runs), "the user must be created"
    if user.isdigit():
        assert re.search(rf"--uid[= ]{user}\b", runs), f"no user with uid {user} is created"
    else:
        assert re.search(rf"\b(useradd|adduser)\b[^&;]*\b{re.escape(user)}\b", runs)


def test_dockerfile_installs_the_package_where_the_final_stage_finds_it(image: dict) -> None:
    stages = image["stages"]
    install = re.compile(r"\bpip3?\s+install\b(?:\s+-{1,2}[\w-]+(?:=\S+)?)*\s+\.(?:\s|$)")
    installers = [i for i, s in enumerate(stages) if any(install.search(a) for a in s.args("RUN"))]
    assert installers, "no `pip install .`"
    final_index = len(stages) - 1
    final_chain = lineage(stages, final_index)
    if not any(stages[i] in final_chain for i in installers):
        # Multi-stage: the final stage copies the installed environment from the builder.
        sources = {stages[i].name or str(i) for i in installers}
        copies = [a for a in final_chain[-1].args("COPY")
                  if (m := re.search(r"--from=(\S+)", a)) and m.group(1) in sources]
        assert copies, "the final stage does not COPY --from the stage that ran pip install ."
        venvs = {m.group(1) for i in installers for a in stages[i].args("RUN")
                 for m in re.finditer(r"-m\s+venv\s+(\S+)", a)}
        for venv in venvs:
            assert any(venv in c.split() for c in copies), f"{venv} is not copied"
            assert f"{venv}/bin" in image["env"].get("PATH", ""), f"{venv}/bin not on PATH"


def test_dockerfile_default_command_is_enms_api(image: dict) -> None:
    argv = image["entrypoint"] + image["cmd"]
    assert argv[:2] == ["enms", "api"], argv
    assert not image["entrypoint"], "no ENTRYPOINT: compose commands start with `enms`"


def test_dockerfile_api_listens_on_all_interfaces(image: dict) -> None:
    env = {k: v for k, v in image["env"].items() if k.startswith("ENMS_")}
    assert Settings.from_env(env).api_host == "0.0.0.0", "`docker run -p` would not reach it"  # noqa: S104


# --- .dockerignore ---------------------------------------------------------------------------


def test_dockerignore_keeps_local_state_out() -> None:
    for path in (".git/HEAD", ".venv/bin/python", ".cache/kafka-libs/kafka.jar",
                 ".run/kafka/meta.properties", "bench/results/latency.json",
                 "streams/__pycache__/app.cpython-311.pyc", "tests/unit/test_x.py"):
        assert ignored(path), f"{path} would be sent to the Docker build"


def test_dockerignore_keeps_what_pip_install_needs() -> None:
    project = tomllib.loads(PYPROJECT.read_text())
    readme = project["project"].get("readme")
    needed = ["pyproject.toml"]
    if readme:
        needed.append(readme["file"] if isinstance(readme, dict) else readme)
    tool = project["tool"]["setuptools"]
    needed += [f"{pkg.replace('.', '/')}/__init__.py" for pkg in tool["packages"]]
    for pkg, globs in tool.get("package-data", {}).items():
        needed += [f"{pkg}/{g.replace('*', 'file')}" for g in globs]
    for stage in dockerfile_stages():
        for args in stage.args("COPY"):
            words = [w for w in args.split() if not w.startswith("--")]
            if "--from" not in args:
                needed += [w for w in words[:-1] if w != "."]
    for path in needed:
        assert not ignored(path), f".dockerignore drops {path}, which the image build needs"
