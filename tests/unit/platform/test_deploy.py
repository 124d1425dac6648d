"""deploy/ kept honest without Docker: the compose file, the Dockerfile and the Kubernetes manifests, read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
SERVICES = {"auth": 8081, "ingest": 8082, "feed": 8083, "webhook": 8084, "sync": 8085, "mail": 8086, "web": 8087}
# Services with no background work of their own: an API deployment only.
API_ONLY = {"web"}

# The contract's environment table (CONTRACT.md, "Environment"), and the platform's own optional
# settings (shared/settings.py, shared/service.py) that deploy files may set too.
CONTRACT_ENV = {
    "KALENDS_ACCESS_TOKEN_TTL",
    "KALENDS_AMQP_URL",
    "KALENDS_AUTH_PORT",
    "KALENDS_AUTH_URL",
    "KALENDS_DATABASE_URL",
    "KALENDS_DKIM_DOMAIN",
    "KALENDS_DKIM_KEY",
    "KALENDS_DKIM_SELECTOR",
    "KALENDS_ENCRYPTION_KEYS",
    "KALENDS_FEED_PORT",
    "KALENDS_GEOIP_DB",
    "KALENDS_GOOGLE_API_URL",
    "KALENDS_GOOGLE_AUTH_URL",
    "KALENDS_GOOGLE_BATCH_URL",
    "KALENDS_GOOGLE_CLIENT_ID",
    "KALENDS_GOOGLE_CLIENT_SECRET",
    "KALENDS_GOOGLE_REVOKE_URL",
    "KALENDS_GOOGLE_TOKEN_URL",
    "KALENDS_GOOGLE_USERINFO_URL",
    "KALENDS_HOST",
    "KALENDS_INGEST_PORT",
    "KALENDS_LOG_FORMAT",
    "KALENDS_MAIL_FROM",
    "KALENDS_MAIL_INBOUND_PORT",
    "KALENDS_MAIL_PORT",
    "KALENDS_MAIL_RETRY_SCHEDULE",
    "KALENDS_PUBLIC_API_URL",
    "KALENDS_PUBLIC_FEED_URL",
    "KALENDS_PUBLIC_SYNC_URL",
    "KALENDS_PUBLIC_WEB_URL",
    "KALENDS_REFRESH_TOKEN_TTL",
    "KALENDS_SMTP_URL",
    "KALENDS_SYNC_ALLOW_PRIVATE",
    "KALENDS_SYNC_PORT",
    "KALENDS_TOKEN_ALG",
    "KALENDS_TRUSTED_PROXIES",
    "KALENDS_WEBHOOK_ALLOW_PRIVATE",
    "KALENDS_WEBHOOK_PORT",
    "KALENDS_WEBHOOK_RETRY_SCHEDULE",
    "KALENDS_WEBHOOK_TIMEOUT",
    "KALENDS_WEB_PORT",
}
# What every deployed service is given explicitly: where the servers and the other services are, and
# the settings whose local defaults would be wrong in a deployment. The rest keep their defaults
# unless an operator opts in (Google client, SMTP, DKIM, GeoIP...), so a deploy file may set them
# but need not.
DEPLOY_ENV = {
    "KALENDS_DATABASE_URL",
    "KALENDS_AMQP_URL",
    "KALENDS_HOST",
    "KALENDS_AUTH_PORT",
    "KALENDS_INGEST_PORT",
    "KALENDS_FEED_PORT",
    "KALENDS_WEBHOOK_PORT",
    "KALENDS_AUTH_URL",
    "KALENDS_PUBLIC_FEED_URL",
    "KALENDS_ACCESS_TOKEN_TTL",
    "KALENDS_REFRESH_TOKEN_TTL",
    "KALENDS_WEBHOOK_RETRY_SCHEDULE",
    "KALENDS_WEBHOOK_TIMEOUT",
    "KALENDS_WEBHOOK_ALLOW_PRIVATE",
    "KALENDS_LOG_FORMAT",
}
PLATFORM_ENV = {
    "KALENDS_LOG_LEVEL",
    "KALENDS_DB_POOL_MIN",
    "KALENDS_DB_POOL_MAX",
    "KALENDS_ROLE",
    "KALENDS_HEALTHCHECK_URL",
    *(f"KALENDS_{name.upper()}_WORKERS" for name in SERVICES),
}


# Service settings beyond the contract: any KALENDS_* name the code reads is a valid thing to set.
CODE_ENV = {
    name
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]
    for name in re.findall(r"KALENDS_[A-Z0-9_]+", path.read_text(errors="replace"))
}
KNOWN_ENV = CONTRACT_ENV | PLATFORM_ENV | CODE_ENV


def contract_env_names() -> set[str]:
    """The names in CONTRACT.md's environment table, when the document is beside the repository."""
    for candidate in (ROOT.parent / "shared" / "CONTRACT.md", ROOT.parent.parent / "shared" / "CONTRACT.md"):
        if candidate.exists():
            text = candidate.read_text()
            section = text.split("## Environment", 1)[1].split("\n## ", 1)[0]
            return set(re.findall(r"`(KALENDS_[A-Z_]+)`", section))
    return set()


def test_the_contract_environment_list_here_matches_the_contract_document() -> None:
    names = contract_env_names()
    if not names:
        pytest.skip("CONTRACT.md is not beside this checkout")
    assert names == CONTRACT_ENV


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def kalends_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services that run a Kalends service (`python -m services.<name> ...`)."""
    return {
        name: spec
        for name, spec in compose["services"].items()
        if str(spec.get("command", ["", "", ""])[2]).startswith("services.")
    }


def test_every_service_of_the_contract_runs_with_its_command_and_role(compose: dict[str, Any]) -> None:
    commands = {name: spec["command"] for name, spec in kalends_services(compose).items()}
    for service in SERVICES:
        mine = [c for c in commands.values() if c[:3] == ["python", "-m", f"services.{service}"]]
        assert mine, f"no compose service runs python -m services.{service}"
        roles = {c[c.index("--role") + 1] for c in mine if "--role" in c} or {"all"}
        assert roles <= {"api", "worker", "all"}
        # The HTTP API and the background work both run somewhere.
        assert "all" in roles or roles == ({"api"} if service in API_ONLY else {"api", "worker"}), (service, roles)
    for command in commands.values():
        assert command[0:2] == ["python", "-m"]


def test_each_api_publishes_its_contract_port_and_listens_on_it(compose: dict[str, Any]) -> None:
    published: dict[str, int] = {}
    for name, spec in kalends_services(compose).items():
        service = spec["command"][2].removeprefix("services.")
        role = spec["command"][spec["command"].index("--role") + 1] if "--role" in spec["command"] else "all"
        ports = spec.get("ports", [])
        if role in ("api", "all"):
            assert ports, f"{name} serves the {service} API but publishes no port"
            host, container = str(ports[0]).rsplit(":", 2)[-2:]
            assert int(host) == int(container) == SERVICES[service], name
            published[service] = int(host)
        else:
            assert not ports, f"{name} is a worker: it publishes nothing"
        assert spec["environment"][f"KALENDS_{service.upper()}_PORT"] == str(SERVICES[service])
        assert spec["environment"]["KALENDS_HOST"] == "0.0.0.0"
    assert published == SERVICES


def test_every_container_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        check = spec.get("healthcheck", {}).get("test")
        assert check, f"{name} has no healthcheck"
    for spec in kalends_services(compose).values():
        assert spec["healthcheck"]["test"] == ["CMD", "python", "-m", "shared.healthcheck"]


def test_services_wait_for_healthy_postgresql_and_rabbitmq(compose: dict[str, Any]) -> None:
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert compose["services"]["rabbitmq"]["image"].startswith("rabbitmq:")
    for name, spec in kalends_services(compose).items():
        depends = spec["depends_on"]
        for server in ("postgres", "rabbitmq"):
            assert depends[server] == {"condition": "service_healthy"}, name


def test_environment_names_are_the_contracts_or_the_platforms(compose: dict[str, Any]) -> None:
    for name, spec in kalends_services(compose).items():
        env = spec["environment"]
        assert set(env) <= KNOWN_ENV, (name, set(env) - KNOWN_ENV)
        assert set(env) >= DEPLOY_ENV, (name, DEPLOY_ENV - set(env))
        assert env["KALENDS_AUTH_URL"] == "http://auth:8081"
        assert (
            env["KALENDS_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["KALENDS_DATABASE_URL"]
        )
        assert env["KALENDS_AMQP_URL"].startswith("amqp://") and "@rabbitmq:5672/" in env["KALENDS_AMQP_URL"]


def test_the_auth_url_names_a_compose_service_that_serves_auth(compose: dict[str, Any]) -> None:
    auth = compose["services"]["auth"]
    assert auth["command"][:3] == ["python", "-m", "services.auth"]


def test_every_kalends_image_builds_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    for name, spec in kalends_services(compose).items():
        build = spec["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT, name
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile", name


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            if word.isupper():
                out.append((word, rest.strip()))
    return out


def test_the_dockerfile_is_python_3_11_slim_installs_the_project_and_runs_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "pip install" in runs and "useradd" in runs
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    copies = [rest for word, rest in instructions if word == "COPY"]
    assert any(c.startswith("shared") for c in copies) and any(c.startswith("services") for c in copies)
    assert any(word == "HEALTHCHECK" and "shared.healthcheck" in rest for word, rest in instructions)
    assert any(word == "CMD" and "services." in rest for word, rest in instructions)
    assert "KALENDS_HOST=0.0.0.0" in " ".join(rest for word, rest in instructions if word == "ENV")


def test_the_healthcheck_module_exists_where_the_image_runs_it() -> None:
    assert (ROOT / "shared" / "healthcheck.py").exists()


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    files = sorted((DEPLOY / "k8s").glob("*.yaml"))
    assert files
    for path in files:
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return documents


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


def test_every_manifest_parses_and_names_its_kind_and_namespace(manifests: list[dict[str, Any]]) -> None:
    for document in manifests:
        assert document["apiVersion"] and document["kind"] and document["metadata"]["name"]
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "kalends", document["metadata"]["name"]


def test_every_service_has_an_api_and_a_worker_deployment_with_probes(manifests: list[dict[str, Any]]) -> None:
    deployments = of_kind(manifests, "Deployment")
    assert set(deployments) == {f"{s}-api" for s in SERVICES} | {f"{s}-worker" for s in SERVICES if s not in API_ONLY}
    for name, deployment in deployments.items():
        service, role = name.split("-")
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{service}", "--role", role]
        assert container["ports"][0]["containerPort"] == SERVICES[service]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] in ("http", SERVICES[service])
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_deployments_take_the_contract_environment_from_the_config_map_and_secret(
    manifests: list[dict[str, Any]],
) -> None:
    config = of_kind(manifests, "ConfigMap")["kalends-config"]["data"]
    secret = of_kind(manifests, "Secret")["kalends-secrets"]["stringData"]
    assert set(config) | set(secret) >= DEPLOY_ENV
    assert set(config) | set(secret) <= KNOWN_ENV
    assert config["KALENDS_HOST"] == "0.0.0.0"
    assert config["KALENDS_AUTH_URL"].startswith("http://auth.")
    for deployment in of_kind(manifests, "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"kalends-config", "kalends-secrets"}
        for extra in container.get("env", []):
            assert extra["name"] in KNOWN_ENV


def test_each_api_has_a_service_on_its_contract_port(manifests: list[dict[str, Any]]) -> None:
    services = of_kind(manifests, "Service")
    for name, port in SERVICES.items():
        spec = services[name]["spec"]
        assert spec["selector"] == {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "api"}
        assert spec["ports"][0]["port"] == port


def test_feed_api_scales_with_a_horizontal_pod_autoscaler(manifests: list[dict[str, Any]]) -> None:
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "feed-api"}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "feed-api" in of_kind(manifests, "Deployment")


def test_rabbitmq_is_a_three_node_cluster_and_postgresql_has_replicas(manifests: list[dict[str, Any]]) -> None:
    (rabbit,) = of_kind(manifests, "RabbitmqCluster").values()
    assert rabbit["apiVersion"].startswith("rabbitmq.com/")
    assert rabbit["spec"]["replicas"] == 3
    (postgres,) = of_kind(manifests, "Cluster").values()
    assert postgres["apiVersion"].startswith("postgresql.cnpg.io/")
    assert postgres["spec"]["instances"] >= 3
    secret = of_kind(manifests, "Secret")["kalends-secrets"]["stringData"]
    assert f"{postgres['metadata']['name']}-rw." in secret["KALENDS_DATABASE_URL"]
    assert f"{rabbit['metadata']['name']}." in secret["KALENDS_AMQP_URL"]


def test_the_container_healthcheck_probes_the_services_ports_or_the_url_it_is_given() -> None:
    from shared.healthcheck import candidate_urls

    assert candidate_urls({}) == [f"http://127.0.0.1:{port}/healthz" for port in SERVICES.values()]
    assert candidate_urls({"KALENDS_FEED_PORT": "9000"})[2] == "http://127.0.0.1:9000/healthz"
    assert candidate_urls({"KALENDS_HEALTHCHECK_URL": "http://127.0.0.1:1/healthz"}) == ["http://127.0.0.1:1/healthz"]
