"""Schemathesis against every service's /openapi.json, with account A's real codes and ids.

Each service gets a bounded run (examples per operation and seconds) of generated valid and invalid
requests, the coverage, fuzzing and stateful phases; it fails on any 5xx, an invalid document, a
status, content type or body its document does not declare, a secured route that answers without a
token, and a wrong answer to an unsupported method. Destructive operations aim at the "doomed" set.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate

from shared.testing import basic_auth
from tests.e2e.suites.conftest import CALENDAR, DOOMED, SUBSCRIBER, SUITE_SERVICES, World

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 8


def seconds_for(document: dict[str, Any]) -> int:
    """The run's time budget (fuzzing and stateful phases repeat until it is spent): by operation count."""
    operations = sum(len(methods) for methods in document["paths"].values())
    return min(15, 3 + operations // 2)


CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
)
# The contract names GET /v1/subscription/{accountCode}/{calendarCode}/{username} and PUT .../{subscriptionId}:
# one URL shape, so one aiohttp resource answers both and its 405 says `Allow: GET, PUT`, which can never
# match either documented path alone. Documenting them as one template breaks the contract's route names
# (tests/integration/ingest/test_http.py), so on ingest this one check is off; every other service keeps it.
# (A per-operation `[[operations]]` switch would be narrower: schemathesis merges it with the CLI's
# --checks in a way not yet tried here.)
UNCHECKABLE = {"ingest": {"allow_header_conformance"}}
# Not use_after_free / ensure_resource_availability: they assume a linked step uses the id the link
# gave, but the fixed path parameters above win over links (a DELETE aims at the doomed set).


def _toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()) + " }"


def config(world: World, token: str, document: dict[str, Any]) -> str:
    """schemathesis.toml: the bearer token, A's codes and ids as path parameters, the doomed set for
    DELETE, A's client credentials for the OAuth endpoints (blocks only where the document has such)."""
    a = world.a
    keep = {
        "path.accountCode": a.code,
        "path.merchantCode": a.code,
        "path.calendarCode": CALENDAR,
        "path.calCode": CALENDAR,
        "path.username": SUBSCRIBER,
        "path.eventId": a.ids["eventId"],
        "path.subscriptionId": a.ids["subscriptionId"],
        "path.webhookId": a.ids["webhookId"],
        "path.deliveryId": a.ids["deliveryId"],
    }
    doomed = {
        **keep,
        "path.calendarCode": DOOMED,
        "path.eventId": a.ids["doomedEventId"],
        "path.subscriptionId": a.ids["doomedSubscriptionId"],
        "path.webhookId": a.ids["doomedWebhookId"],
    }
    # Webhook URLs from a dictionary of the receiver's: valid ones get endpoints created (and the
    # stateful phase follows their links), and no generated host name is ever looked up in DNS.
    urls = [world.receiver.url(f"/st/{i}") for i in range(3)]
    lines = [
        f"headers = {_toml_table({'Authorization': f'Bearer {token}'})}",
        "request-timeout = 10",
        "[dictionaries.receiver]",
        f"values = {json.dumps(urls)}",
        "[parameters]",
        *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in keep.items()),
        '"body.url" = { dictionary = "receiver", probability = 0.8 }',
    ]
    methods = {method for operations in document["paths"].values() for method in operations}
    if "delete" in methods:
        lines += ["[[operations]]", 'include-method = "DELETE"', f"parameters = {_toml_table(doomed)}"]
    if any(path.startswith("/oauth2/") for path in document["paths"]):
        client = basic_auth(a.account["clientId"], a.account["clientSecret"])
        lines += [
            "[[operations]]",
            'include-path-regex = "^/oauth2/"',
            f"headers = {_toml_table({'Authorization': client})}",
        ]
    if "/v1/ics" in document["paths"]:
        lines += [
            "[[operations]]",
            'include-path = "/v1/ics"',
            f"headers = {_toml_table({'x-api-key': a.ids['apiKey']})}",
        ]
    return "\n".join([*lines, ""])


async def test_the_openapi_documents_are_valid_openapi(world: World) -> None:
    async with aiohttp.ClientSession() as session:
        for service in SUITE_SERVICES:
            async with session.get(world.stack.url(service) + "/openapi.json") as response:
                document = await response.json()
            validate(document)  # raises with the path of the first error


@pytest.mark.parametrize("service", SUITE_SERVICES)
async def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
    world: World, service: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "schemathesis.toml"
    async with aiohttp.ClientSession() as session, session.get(world.stack.url(service) + "/openapi.json") as r:
        document = await r.json()
    config_file.write_text(config(world, await world.a.token(), document))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(config_file),
        "run",
        world.stack.url(service) + "/openapi.json",
        "--checks",
        ",".join(c for c in CHECKS if c not in UNCHECKABLE.get(service, set())),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(seconds_for(document)),
        "--workers",
        "1",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), seconds_for(document) + 60)
    text = output.decode(errors="replace")
    print(text)
    assert process.returncode == 0, f"schemathesis on {service} ({process.returncode}):\n{text[-12000:]}"
