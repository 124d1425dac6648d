"""client_credentials grants of concurrent requests written together (shared.grouping)."""

from __future__ import annotations

import asyncpg

from services.auth.adapters import repository as repo
from shared.grouping import Grouped


class FamilyGrants:
    """The token endpoint's statement (`repo.grant_families`) for concurrent requests, grouped: one
    statement looks up many requests' clients and writes their families, with one commit.

    Per grant, the pool's acquire and release, the round trip and PostgreSQL's per-statement work
    and commit were most of the grant's database cost; a group shares them. Each request is still
    answered only after its family is committed, and a grouped statement that fails is tried again
    one grant at a time, so one grant's failure is its own request's only.
    """

    def __init__(self, pool: asyncpg.Pool, max_group: int = 64) -> None:
        self._pool = pool
        self._grouped: Grouped[repo.AskedGrant, repo.Row | None] = Grouped(
            self._grant_many, max_group=max_group, name="auth-family-grants"
        )

    @property
    def statements(self) -> int:
        """Grouped statements sent (tests and benchmarks read it)."""
        return self._grouped.calls

    async def grant(self, asked: repo.AskedGrant) -> repo.Row | None:
        """`repo.grant_families` of one grant: the client's row with `granted`, or None (unknown client)."""
        return await self._grouped(asked)

    async def _grant_many(self, asked: list[repo.AskedGrant]) -> list[repo.Row | None]:
        async with self._pool.acquire() as conn:
            return await repo.grant_families(conn, asked)
