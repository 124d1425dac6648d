"""The unsubscribe page's form post: a body aiohttp cannot parse is a 400 that says why, and changes nothing."""

from __future__ import annotations

from tests.integration.ingest.conftest import Harness


async def test_a_multipart_unsubscribe_post_without_a_boundary_is_a_400_and_leaves_the_subscription_active(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    response = await h.client.post(f"/v1/calendars/{m.code}", json={"code": "c", "name": "C"}, headers=m.headers)
    assert response.status == 201
    body = {"subscriberId": "a", "subscriptionMethod": "webcal"}
    response = await h.client.post(f"/v1/subscribe/{m.code}/c", json=body, headers=m.headers)
    sid = (await response.json())["subscriptionId"]

    broken = await h.client.post(
        f"/v1/unsubscribe/{sid}", data=b"reason=x", headers={"Content-Type": "multipart/form-data"}
    )
    body = await broken.json()
    assert broken.status == 400, body
    assert "boundary" in body["errors"][0]["reason"]
    page = await h.client.get(f"/v1/unsubscribe/{sid}")
    assert "Unsubscribe from" in await page.text()  # still active: the page offers to unsubscribe
