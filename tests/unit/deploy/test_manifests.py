"""Every Kubernetes manifest under deploy/ is one a cluster would accept, and says what operators expect."""

from __future__ import annotations

from collections import Counter
from typing import Any

import kubernetes_validate
import pytest

from tests.unit.deploy.manifests import KUBERNETES_VERSION, crd_errors, crd_schemas, documents

DOCS = documents()
CUSTOM = {("rabbitmq.com/v1beta1", "RabbitmqCluster"), ("postgresql.cnpg.io/v1", "Cluster")}


def ident(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


@pytest.mark.parametrize(("file", "doc"), DOCS, ids=[f"{f}:{ident(d)}" for f, d in DOCS])
def test_each_manifest_passes_the_schema_of_its_kind_with_unknown_fields_refused(
    file: str, doc: dict[str, Any]
) -> None:
    if (doc["apiVersion"], doc["kind"]) in CUSTOM:
        assert crd_errors(doc) == []
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_checks_refuse_a_misspelt_field_in_a_built_in_and_in_a_custom_resource() -> None:
    deployment = of_kind("Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    (cluster,) = of_kind("Cluster")
    assert crd_errors({**cluster, "spec": {**cluster["spec"], "instance": 3}})
    assert crd_errors({**cluster, "spec": {**cluster["spec"], "instances": "three"}})


def test_the_vendored_crds_are_the_two_operators_kinds() -> None:
    assert set(crd_schemas()) >= CUSTOM


def test_every_object_has_a_unique_name_per_kind_in_the_kalends_namespace() -> None:
    names = Counter(ident(doc) for _, doc in DOCS)
    assert [name for name, count in names.items() if count > 1] == []
    namespaced = [doc for _, doc in DOCS if doc["kind"] != "Namespace"]
    assert {doc["metadata"].get("namespace") for doc in namespaced} == {"kalends"}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def pod_labels() -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"] for doc in of_kind("Deployment")}


def test_every_deployment_has_a_disruption_budget_that_selects_its_pods() -> None:
    budgets = of_kind("PodDisruptionBudget")
    for name, labels in pod_labels().items():
        covering = [pdb for pdb in budgets if selects(pdb["spec"]["selector"], labels)]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"


def test_every_container_requests_cpu_and_memory_and_caps_memory() -> None:
    for doc in of_kind("Deployment") + of_kind("Job"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), ident(doc)
            assert "memory" in resources.get("limits", {}), ident(doc)


def env_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return {entry["name"]: entry for entry in container.get("env", [])}


def test_each_service_connects_to_postgresql_as_its_own_role_with_a_password_from_a_secret() -> None:
    roles = {}
    for doc in of_kind("Deployment"):
        service = doc["metadata"]["labels"]["app.kubernetes.io/name"]
        env = env_of(doc)
        url = env["KALENDS_DATABASE_URL"]["value"]
        assert url.startswith(f"postgresql://kalends_{service}@"), ident(doc)
        assert "sslmode=verify-full" in url, ident(doc)
        secret = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": f"kalends-db-{service}", "key": "password"}, ident(doc)
        roles[service] = secret["name"]
    (cluster,) = of_kind("Cluster")
    managed = {role["name"]: role for role in cluster["spec"]["managed"]["roles"]}
    for service, secret in roles.items():
        assert managed[f"kalends_{service}"]["passwordSecret"]["name"] == secret
        assert managed[f"kalends_{service}"]["login"] is True
    secrets = {doc["metadata"]["name"]: doc for doc in of_kind("Secret")}
    for secret in roles.values():
        assert secrets[secret]["type"] == "kubernetes.io/basic-auth"
    # No database credentials in the shared secret or the ConfigMap any more.
    assert "KALENDS_DATABASE_URL" not in secrets["kalends-secrets"]["stringData"]
    (config,) = of_kind("ConfigMap")[:1]
    assert not any("postgresql://" in value for value in config["data"].values())


def test_services_fetch_the_jwks_over_tls() -> None:
    config = next(doc for doc in of_kind("ConfigMap") if doc["metadata"]["name"] == "kalends-config")
    assert config["data"]["KALENDS_AUTH_URL"].startswith("https://")


def test_every_public_host_is_served_over_tls_with_a_rate_limit_per_ingress() -> None:
    ingresses = of_kind("Ingress")
    assert ingresses
    limits = set()
    for ingress in ingresses:
        hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
        tls_hosts = {host for entry in ingress["spec"]["tls"] for host in entry["hosts"]}
        assert hosts <= tls_hosts, ident(ingress)
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
        limits.add((ingress["metadata"]["name"], int(annotations["nginx.ingress.kubernetes.io/limit-rps"])))
    by_name = dict(limits)
    # The token endpoint is the tightest, feeds (polled by every calendar app) the loosest.
    assert by_name["auth-token"] < by_name["api"] < by_name["feeds"]


def policy_allows(policy: dict[str, Any], labels: dict[str, str], port: int) -> list[dict[str, Any]]:
    """The `from` peers a NetworkPolicy lets reach pods with `labels` on `port`."""
    if not selects(policy["spec"]["podSelector"], labels):
        return []
    peers = []
    for rule in policy["spec"].get("ingress", []):
        ports = {entry["port"] for entry in rule.get("ports", [])}
        if not ports or port in ports:
            peers.extend(rule.get("from", [{}]))
    return peers


def test_network_policies_open_feed_to_the_internet_other_apis_to_the_gateway_and_postgresql_to_the_services() -> None:
    policies = of_kind("NetworkPolicy")
    default = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert default and default[0]["spec"]["policyTypes"] == ["Ingress"], "a default deny of ingress"

    def peers(labels: dict[str, str], port: int) -> list[dict[str, Any]]:
        return [peer for policy in policies for peer in policy_allows(policy, labels, port)]

    feed = peers(pod_labels()["feed-api"], 8083)
    assert {"ipBlock": {"cidr": "0.0.0.0/0"}} in feed
    gateway = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    for name, port in (("auth-api", 8081), ("ingest-api", 8082), ("webhook-api", 8084), ("mail-api", 8086)):
        found = peers(pod_labels()[name], port)
        assert gateway in found, name
        assert not any("ipBlock" in peer for peer in found), f"{name} is reachable from outside the gateway"
    database = peers({"cnpg.io/cluster": "kalends-pg", "cnpg.io/podRole": "instance"}, 5432)
    services = [peer["podSelector"] for peer in database if "podSelector" in peer and "namespaceSelector" not in peer]
    kalends = [s for s in services if s.get("matchLabels") == {"app.kubernetes.io/part-of": "kalends"}]
    assert kalends and kalends[0]["matchExpressions"][0]["values"] == ["api", "worker", "db-roles"]
    assert not any("ipBlock" in peer or peer == {} for peer in database), database


def test_the_roles_job_applies_exactly_what_scripts_db_roles_prints() -> None:
    from scripts.db_roles import render

    config = next(doc for doc in of_kind("ConfigMap") if doc["metadata"]["name"] == "kalends-db-roles")
    assert config["data"]["roles.sql"] == render(), "regenerate deploy/k8s/35-db-roles.yaml from scripts/db_roles.py"


def test_feed_reads_from_the_replicas_as_its_own_role() -> None:
    (feed,) = [doc for doc in of_kind("Deployment") if doc["metadata"]["name"] == "feed-api"]
    url = env_of(feed)["KALENDS_FEED_READ_DATABASE_URL"]["value"]
    assert url.startswith("postgresql://kalends_feed@kalends-pg-ro.") and "sslmode=verify-full" in url
