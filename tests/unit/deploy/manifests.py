"""Reading deploy/k8s and checking it offline: Kubernetes' own schemas (kubernetes-validate) for built-in
kinds, the operators' published CRD schemas (vendored in deploy/crds/) for RabbitmqCluster and Cluster."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
CRDS = ROOT / "deploy" / "crds"
# The Kubernetes version the manifests are checked against (the newest kubernetes-validate ships).
KUBERNETES_VERSION = "1.37.0"


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every non-empty YAML document under deploy/k8s, in apply order."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found.append((path.name, doc))
    return found


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused, as `kubectl apply` (field validation Strict) refuses them:
    an object schema listing properties, without x-kubernetes-preserve-unknown-fields or its own
    additionalProperties, gets additionalProperties: false."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict openAPIV3Schema of every served version of the vendored CRDs."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                schemas[f"{group}/{version['name']}", kind] = _strict(schema)
    return schemas


def crd_errors(doc: dict[str, Any]) -> list[str]:
    """Every way `doc` breaks its CRD's schema (empty when valid); KeyError when no CRD is vendored for it."""
    schema = crd_schemas()[doc["apiVersion"], doc["kind"]]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]
