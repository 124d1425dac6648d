"""`python -m services.auth.admin`: accounts, clients, API keys, console users and signing keys, from the command line.

Works whether or not the service runs: it migrates the auth schema first, then acts on the
database directly. Messages it causes (`account.created`, `api_key.*`, `client.disabled`/`enabled`,
`account.disabled`/`enabled`) wait in the outbox for the service's relay. Each command prints one
JSON object on stdout; errors go to stderr, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.auth import revocations, services, users
from services.auth.app import MIGRATIONS, SCHEMA
from services.auth.keys import ensure_signing_key, seal_signing_keys
from services.auth.settings import AuthSettings
from shared import db
from shared.logging import configure_logging
from shared.settings import SettingsError

Command = Callable[[asyncpg.Pool, AuthSettings, argparse.Namespace], Awaitable[dict[str, Any]]]


async def _rotate(pool: asyncpg.Pool, settings: AuthSettings, args: argparse.Namespace) -> dict[str, Any]:
    async with pool.acquire() as conn:
        await seal_signing_keys(conn, settings.secret_box)
        kid = await ensure_signing_key(conn, settings, force=True)
    return {"kid": kid}


async def _republish(pool: asyncpg.Pool, settings: AuthSettings, args: argparse.Namespace) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"republished": await revocations.republish(conn, settings.access_token_ttl)}


COMMANDS: dict[str, Command] = {
    "create-account": lambda pool, _, a: services.create_account(pool, a.code, a.name),
    "create-client": lambda pool, _, a: services.create_client(
        pool, a.code, a.grant_types.split(","), [s for s in a.scope.split(",") if s]
    ),
    "create-api-key": lambda pool, _, a: services.create_api_key(pool, a.code),
    "revoke-api-key": lambda pool, _, a: services.revoke_api_key(pool, a.api_key),
    "disable-client": lambda pool, _, a: services.set_client_disabled(pool, a.client_id, True),
    "enable-client": lambda pool, _, a: services.set_client_disabled(pool, a.client_id, False),
    "disable-account": lambda pool, _, a: services.set_account_disabled(pool, a.code, True),
    "enable-account": lambda pool, _, a: services.set_account_disabled(pool, a.code, False),
    "create-user": lambda pool, settings, a: users.create_user(pool, settings, a.code, a.email),
    "password-link": lambda pool, settings, a: users.password_link(pool, settings, a.email),
    "rotate-signing-key": _rotate,
    "republish-denylist": _republish,
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m services.auth.admin", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    account = commands.add_parser("create-account", help="a new account and its first OAuth client")
    account.add_argument("code", help="1-63 lowercase letters, digits, '-' or '_'")
    account.add_argument("--name", required=True)
    client = commands.add_parser("create-client", help="another OAuth client of an account")
    client.add_argument("code")
    client.add_argument(
        "--grant-types", default=",".join(services.GRANT_TYPES), help="comma-separated grants the client may use"
    )
    client.add_argument(
        "--scope",
        default="",
        help=f"comma-separated platform scopes ({', '.join(services.SCOPES)}): calendar-pages is the web"
        " service's client, which reads calendars and subscribes page visitors for every account",
    )
    commands.add_parser("create-api-key", help="an API key (x-api-key) of an account").add_argument("code")
    commands.add_parser("revoke-api-key", help="revoke an API key").add_argument("api_key")
    for name in ("disable-client", "enable-client"):
        commands.add_parser(name, help=f"{name.split('-')[0]} an OAuth client").add_argument("client_id")
    for name in ("disable-account", "enable-account"):
        commands.add_parser(name, help=f"{name.split('-')[0]} an account").add_argument("code")
    user = commands.add_parser("create-user", help="a console user of an account, with a one-time set-password link")
    user.add_argument("code")
    user.add_argument("email")
    link = commands.add_parser("password-link", help="a new one-time set-password link for a console user")
    link.add_argument("email")
    commands.add_parser("rotate-signing-key", help="sign with a new key from now on (old tokens stay valid)")
    commands.add_parser(
        "republish-denylist", help="announce every current revocation and disabled client/account again (new services)"
    )
    return top


async def run(settings: AuthSettings, args: argparse.Namespace) -> dict[str, Any]:
    await db.prepare_database(settings.platform.database_url, SCHEMA, MIGRATIONS)
    async with db.pool_context(settings.platform.database_url, min_size=1, max_size=2) as pool:
        return await COMMANDS[args.command](pool, settings, args)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = AuthSettings.from_env()
    except SettingsError as exc:
        print(f"kalends auth admin: {exc}", file=sys.stderr)
        return 2
    # Logs go to stderr at warning level so stdout carries exactly one JSON object.
    configure_logging("console" if sys.stderr.isatty() else "json", "warning", "auth-admin")
    try:
        result = asyncio.run(run(settings, args))
    except (services.AdminError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot reach the database: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
