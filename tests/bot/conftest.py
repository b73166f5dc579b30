"""Bot test harness: a real QuoteBot over a real Library (fake embedder), driven through discord.py's own
dispatch (CommandTree._call, parse_interaction_create, parse_message_create) with the HTTP layer replaced
by a recorder. Nothing touches the network except attachment downloads served from 127.0.0.1.

Any unexpected error (logged at ERROR, or reaching the error handler as something other than a
user-facing QuotebotError / check failure) fails the test at teardown.

    harness            the usual bot (fake embedder, default settings) over the `library` fixture
    running_bot(...)   another bot (its own settings, embedder or library; a restart), closed on exit
    site, page(...)    a web server on 127.0.0.1 for URL / sitemap / feed adds (`local_fetch` settings)
    file_server        Discord's attachment CDN, for uploads (`attachment_option`)
    MOD                who= for a command run by a moderator
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.webhook.async_ import AsyncWebhookAdapter

from bot.checks import NotAllowed
from bot.client import QuoteBot
from bot.config import BotConfig, Settings
from index.embedding import Embedder, FakeEmbedder
from index.errors import QuotebotError
from index.ingest.fetch import FetchPolicy
from index.library import Library
from index.settings import IndexSettings
from tests.conftest import FAKE_THRESHOLD
from tests.support.http import LocalServer, Request, Response

APP_ID = 700000000000000001
BOT_USER_ID = APP_ID
GUILD_A = 800000000000000001
GUILD_B = 800000000000000002
CHANNEL_A = 810000000000000001
CHANNEL_B = 810000000000000002
MEMBER = 900000000000000001
MODERATOR = 900000000000000002
ADMIN = 900000000000000003
ROLE_CURATOR = 820000000000000001

MANAGE_MESSAGES = discord.Permissions(manage_messages=True).value
ADMINISTRATOR = discord.Permissions(administrator=True).value
MEMBER_PERMS = discord.Permissions(
    send_messages=True, read_message_history=True, use_application_commands=True
).value
BOT_PERMS = discord.Permissions(
    send_messages=True, embed_links=True, read_message_history=True, use_application_commands=True
).value
MOD: dict[str, Any] = {"user_id": MODERATOR, "permissions": MANAGE_MESSAGES}

_ids = itertools.count(950000000000000000)


def snowflake() -> int:
    return next(_ids)


def user_payload(user_id: int, *, bot: bool = False, name: str | None = None) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name or f"user{user_id % 1000}",
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
    }


def message_payload(
    content: str,
    channel_id: int = CHANNEL_A,
    *,
    author: int = MEMBER,
    guild_id: int | None = GUILD_A,
    bot: bool = False,
    mentions: list[int] | None = None,
    message_id: int | None = None,
) -> dict[str, Any]:
    """A MESSAGE_CREATE payload as the gateway sends it. `mentions`: the users it mentions (default:
    the bot when the content mentions it); `guild_id=None`: a direct message."""
    if mentions is None:
        mentions = [BOT_USER_ID] if f"<@{BOT_USER_ID}>" in content else []
    msg: dict[str, Any] = {
        "id": str(message_id or snowflake()),
        "channel_id": str(channel_id),
        "author": user_payload(author, bot=bot),
        "content": content,
        "timestamp": "2025-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [user_payload(m, bot=m == BOT_USER_ID) for m in mentions],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": [],
    }
    if guild_id is not None:
        msg["guild_id"] = str(guild_id)
        msg["member"] = {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False}
    return msg


@dataclass
class Call:
    """One request the bot made: method, path (no /api/v10 prefix), JSON body, query params."""

    method: str
    path: str
    json: Any
    params: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The message body: for an interaction callback, its `data`."""
        body = self.json if isinstance(self.json, dict) else {}
        return body.get("data", body) if "type" in body and self.path.endswith("/callback") else body

    @property
    def content(self) -> str:
        return str(self.data.get("content") or "")

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & 64)


@dataclass
class Recorder:
    """Stands in for Discord's REST API (bot HTTP and interaction webhooks) and records every call."""

    calls: list[Call] = field(default_factory=list)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    # (method, path or "*suffix") -> HTTP status: that request fails as Discord would answer it
    failures: dict[tuple[str, str], int] = field(default_factory=dict)

    def message(
        self, body: dict[str, Any] | None, channel_id: int, message_id: int | None = None
    ) -> dict[str, Any]:
        body = body or {}
        mid = message_id or snowflake()
        old = self.messages.get(mid, {})
        msg = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": user_payload(BOT_USER_ID, bot=True, name="quotebot"),
            "content": body.get("content", old.get("content", "")) or "",
            "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds", old.get("embeds", [])) or [],
            "pinned": False,
            "type": 0,
            "flags": int(body.get("flags", 0) or 0),
            "components": body.get("components", old.get("components", [])) or [],
            "application_id": str(APP_ID),
            "webhook_id": str(APP_ID),
        }
        self.messages[mid] = msg
        return msg

    def respond(self, method: str, path: str, body: Any) -> Any:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return {
                **user_payload(BOT_USER_ID, bot=True, name="quotebot"),
                "verified": True,
                "mfa_enabled": False,
            }
        if path == "/oauth2/applications/@me":
            return {
                "id": str(APP_ID),
                "name": "quotebot",
                "description": "",
                "icon": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": user_payload(ADMIN),
                "verify_key": "0" * 64,
                "flags": 0,
            }
        if parts[0] == "applications" and parts[-1] == "commands":
            return [
                {
                    "description": "",
                    **c,
                    "id": str(snowflake()),
                    "application_id": str(APP_ID),
                    "version": "1",
                }
                for c in (body or [])
            ]
        if parts[0] == "interactions" and parts[-1] == "callback":
            out: dict[str, Any] = {"interaction": {"id": parts[1], "type": 2}}
            if body and body.get("type") == 4:
                out["resource"] = {"type": 4, "message": self.message(body.get("data"), CHANNEL_A)}
            return out
        if parts[0] == "webhooks":
            if method == "POST":
                return self.message(body, CHANNEL_A)
            if len(parts) >= 5 and parts[3] == "messages":
                mid = None if parts[4] == "@original" else int(parts[4])
                if mid is None:
                    mid = self.original_ids.setdefault(parts[2], snowflake())
                if method in ("PATCH", "GET"):
                    return self.message(body if method == "PATCH" else {}, CHANNEL_A, mid)
            return None
        if parts[0] == "channels" and parts[-1] == "messages" and method == "POST":
            return self.message(body, int(parts[1]))
        if parts[0] == "channels" and parts[-1] == "threads" and method == "POST":
            # A thread started from a message has the message's id (POST .../messages/{id}/threads).
            return thread_payload(int(parts[3]), int(parts[1]), (body or {}).get("name", "thread"))
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members" and method == "GET":
            uid = int(parts[3])
            return {
                "user": user_payload(uid),
                "roles": [],
                "joined_at": "2024-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        return None

    original_ids: dict[str, int] = field(default_factory=dict)

    def record(self, method: str, url: str, body: Any, params: dict[str, Any] | None = None) -> Any:
        path = url.split("/api/v10", 1)[-1]
        self.calls.append(Call(method, path, body, params))
        status = self.failures.get((method, path))
        for (m, pattern), code in self.failures.items():  # "*/threads": any path ending so
            if status is None and m == method and pattern.startswith("*") and path.endswith(pattern[1:]):
                status = code
        if status is not None:
            response = SimpleNamespace(status=status, reason="refused by the test")
            error = {"code": 10003 if status == 404 else 50013, "message": f"{status} from the test"}
            raise (discord.NotFound if status == 404 else discord.Forbidden)(response, error)  # type: ignore[arg-type]
        return self.respond(method, path, body)

    # -- queries ----------------------------------------------------------------------------------

    def since(self, n: int) -> list[Call]:
        return self.calls[n:]

    def interaction_calls(self, n: int = 0) -> list[Call]:
        return [c for c in self.calls[n:] if c.path.startswith(("/interactions/", "/webhooks/"))]


class Harness:
    """One bot instance with helpers to send it Discord events."""

    def __init__(self, bot: QuoteBot, recorder: Recorder, library: Library) -> None:
        self.bot = bot
        self.rec = recorder
        self.library = library
        self.errors: list[BaseException] = []
        self.ignore: set[asyncio.Task[Any]] = set()  # test-side tasks settle() must not wait for

    @property
    def state(self) -> Any:
        return self.bot._connection

    def add_guild(self, guild_id: int, channel_id: int, roles: list[tuple[int, str]] = ()) -> None:  # type: ignore[assignment]
        self.state.parse_guild_create(
            {
                "id": str(guild_id),
                "name": f"guild {guild_id % 1000}",
                "owner_id": str(ADMIN),
                "roles": [
                    {
                        "id": str(guild_id),
                        "name": "@everyone",
                        "permissions": str(MEMBER_PERMS),
                        "position": 0,
                        "color": 0,
                        "hoist": False,
                        "managed": False,
                        "mentionable": False,
                    }
                ]
                + [
                    {
                        "id": str(rid),
                        "name": name,
                        "permissions": "0",
                        "position": 1,
                        "color": 0,
                        "hoist": False,
                        "managed": False,
                        "mentionable": True,
                    }
                    for rid, name in roles
                ],
                "channels": [
                    {
                        "id": str(channel_id),
                        "type": 0,
                        "name": "general",
                        "position": 0,
                        "permission_overwrites": [],
                        "nsfw": False,
                        "parent_id": None,
                    }
                ],
                "members": [],
                "member_count": 3,
                "emojis": [],
                "stickers": [],
                "features": [],
                "unavailable": False,
            }
        )

    def member(self, user_id: int, permissions: int, roles: list[int] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        return {
            "user": user_payload(user_id),
            "roles": [str(r) for r in roles],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(permissions),
        }

    def payload(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        guild_id: int | None = GUILD_A,
        user_id: int = MEMBER,
        permissions: int = MEMBER_PERMS,
        roles: list[int] = (),  # type: ignore[assignment]
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        channel_id = CHANNEL_A if guild_id != GUILD_B else CHANNEL_B
        p: dict[str, Any] = {
            "id": str(snowflake()),
            "application_id": str(APP_ID),
            "type": itype,
            "data": data,
            "token": f"token-{snowflake()}",
            "version": 1,
            "locale": "en-US",
            "attachment_size_limit": 10_000_000,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)} if guild_id else {"1": str(user_id)},
        }
        if guild_id is not None:
            p["guild_id"] = str(guild_id)
            p["guild_locale"] = "en-US"
            p["channel"] = {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": "general"}
            p["channel_id"] = str(channel_id)
            p["member"] = self.member(user_id, permissions, roles)
            p["app_permissions"] = str(BOT_PERMS)
            p["context"] = 0
        else:
            dm = snowflake()
            p["channel"] = {"id": str(dm), "type": 1, "recipients": [user_payload(user_id)]}
            p["channel_id"] = str(dm)
            p["user"] = user_payload(user_id)
            p["app_permissions"] = str(BOT_PERMS)
            p["context"] = 1
        if message is not None:
            p["message"] = message
        return p

    def command_data(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        sub: str | None = None,
        ctype: int = 1,
    ) -> dict[str, Any]:
        opts = options or []
        if sub is not None:
            opts = [{"name": sub, "type": 1, "options": opts}]
        return {"id": str(snowflake()), "name": name, "type": ctype, "options": opts}

    async def call(self, payload: dict[str, Any]) -> list[Call]:
        """An application command (or autocomplete) through the real CommandTree dispatch."""
        n = len(self.rec.calls)
        interaction = discord.Interaction(data=payload, state=self.state)  # type: ignore[arg-type]
        await self.bot.tree._call(interaction)
        await self.settle()
        return self.rec.since(n)

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        sub: str | None = None,
        option_types: dict[str, int] | None = None,
        **who: Any,
    ) -> list[Call]:
        types = option_types or {}
        opts = [{"name": k, "type": types.get(k, 3), "value": v} for k, v in (options or {}).items()]
        return await self.call(self.payload(2, self.command_data(name, opts, sub=sub), **who))

    async def gateway(self, payload: dict[str, Any]) -> list[Call]:
        """An INTERACTION_CREATE as the gateway delivers it (components, modals)."""
        n = len(self.rec.calls)
        self.state.parse_interaction_create(payload)
        await self.settle()
        return self.rec.since(n)

    async def click(self, custom_id: str, message_id: int, **who: Any) -> list[Call]:
        msg = self.rec.messages.get(message_id)
        if msg is None:  # a message we did not record (another process, before a restart)
            button = {"type": 2, "style": 2, "label": "button", "custom_id": custom_id}
            msg = self.rec.message(
                {"components": [{"type": 1, "components": [button]}]}, CHANNEL_A, message_id
            )
        data = {"custom_id": custom_id, "component_type": 2}
        return await self.gateway(self.payload(3, data, message=msg, **who))

    async def settle(self, timeout_s: float = 20.0, exclude: set[asyncio.Task[Any]] | None = None) -> None:
        """Wait until every task the bot started has finished."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        me = asyncio.current_task()
        while True:
            await asyncio.sleep(0)
            pending = [
                t
                for t in asyncio.all_tasks()
                if t is not me
                and not t.done()
                and t not in (exclude or set())
                and t not in self.ignore
                and "timeout_task_impl" not in getattr(t.get_coro(), "__qualname__", "")  # view/modal timers
            ]
            if not pending:
                return
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"tasks still running: {pending}")
            await asyncio.wait(pending, timeout=min(left, 0.5))


def thread_payload(thread_id: int, parent_id: int, name: str, guild_id: int = GUILD_A) -> dict[str, Any]:
    """A public thread as Discord describes it (THREAD_CREATE, an interaction's channel)."""
    return {
        "id": str(thread_id),
        "type": 11,
        "guild_id": str(guild_id),
        "parent_id": str(parent_id),
        "owner_id": str(BOT_USER_ID),
        "name": name,
        "last_message_id": None,
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2025-01-01T00:00:00+00:00",
            "locked": False,
        },
    }


def expected_error(e: BaseException) -> bool:
    if isinstance(e, app_commands.CommandInvokeError):
        e = e.original
    return isinstance(e, QuotebotError | NotAllowed | app_commands.CheckFailure)


def make_settings(data_dir: Path, **bot: Any) -> Settings:
    cfg = {"dev_guild_id": GUILD_A, "moderator_role": "Curator", "admin_role": "", **bot}
    return Settings(index=IndexSettings(data_dir=data_dir, threshold=FAKE_THRESHOLD), bot=BotConfig(**cfg))


def local_fetch(settings: Settings, **changes: Any) -> Settings:
    """`settings` (with other sections replaced by `changes`) that may fetch from 127.0.0.1 (`site`)."""
    return settings.model_copy(update={"fetch": FetchPolicy(allow_networks=["127.0.0.0/8"]), **changes})


@pytest.fixture
def no_webhook_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Recorder]]:
    """Route interaction webhooks (responses, follow-ups) to the recorder of the bot that owns them."""
    owners: list[Recorder] = []

    async def request(self: AsyncWebhookAdapter, route: Any, session: Any, **kwargs: Any) -> Any:
        assert owners, "no recorder"
        return owners[-1].record(route.method, route.url, kwargs.get("payload"), kwargs.get("params"))

    monkeypatch.setattr(AsyncWebhookAdapter, "request", request)
    yield owners


async def start_bot(
    settings: Settings, library: Library, owners: list[Recorder], errors: list[BaseException] | None = None
) -> Harness:
    """A logged-in QuoteBot (setup_hook run: cogs loaded, commands synced) over the recorder."""
    bot = QuoteBot(settings, library)
    rec = Recorder()
    owners.append(rec)

    async def request(route: Any, **kwargs: Any) -> Any:
        return rec.record(route.method, route.url, kwargs.get("json"), kwargs.get("params"))

    bot.http.request = request  # type: ignore[method-assign]
    h = Harness(bot, rec, library)
    if errors is not None:
        h.errors = errors
    handler = bot.on_app_command_error

    async def recording_handler(interaction: discord.Interaction, error: Exception, /) -> None:
        h.errors.append(error)
        await handler(interaction, error)

    bot.on_app_command_error = recording_handler  # type: ignore[method-assign]
    bot.tree.on_error = recording_handler  # type: ignore[method-assign]
    await bot.login("test-token")
    h.add_guild(GUILD_A, CHANNEL_A, [(ROLE_CURATOR, "Curator")])
    h.add_guild(GUILD_B, CHANNEL_B)
    return h


@asynccontextmanager
async def running_bot(
    settings: Settings,
    owners: list[Recorder],
    library: Library | None = None,
    *,
    embedder: Embedder | None = None,
    errors: list[BaseException] | None = None,
) -> AsyncIterator[Harness]:
    """A started bot (`start_bot`), closed on exit. `library`: one the caller owns (left open);
    without it, a Library over `settings` with `embedder` (the fake one by default), closed too."""
    lib = (
        library
        if library is not None
        else Library(settings.library_settings(), embedder=embedder or FakeEmbedder())
    )
    try:
        h = await start_bot(settings, lib, owners, errors)
        try:
            yield h
        finally:
            await h.bot.close()
    finally:
        if library is None:
            lib.close()


def assert_clean(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """No unexpected error reached the error handler, and nothing was logged at ERROR."""
    unexpected = [e for e in h.errors if not expected_error(e)]
    assert not unexpected, f"unexpected errors: {unexpected!r}"
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, f"errors logged: {[r.getMessage() for r in bad]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def library(data_dir: Path) -> Iterator[Library]:
    lib = Library(make_settings(data_dir).library_settings(), embedder=FakeEmbedder())
    yield lib
    lib.close()


@pytest.fixture
async def harness(
    data_dir: Path, library: Library, no_webhook_network: list[Recorder], caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Harness]:
    caplog.set_level(logging.WARNING)
    async with running_bot(make_settings(data_dir), no_webhook_network, library) as h:
        yield h
        await h.settle()
    assert_clean(h, caplog)


@pytest.fixture
def file_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on 127.0.0.1 standing in for Discord's attachment CDN: (base url, path -> body)."""
    files: dict[str, bytes] = {}

    def serve(request: Request) -> Response:
        body = files.get(request.path)
        return Response(200 if body is not None else 404, body or b"")

    with LocalServer(fallback=serve) as server:
        yield server.base, files


@pytest.fixture
def site() -> Iterator[LocalServer]:
    """A web site on 127.0.0.1 (for `local_fetch` settings): tests put `page(...)`s in site.routes."""
    with LocalServer() as server:
        yield server


def page(body: bytes, content_type: str = "text/html") -> Response:
    return Response(body=body, headers={"Content-Type": content_type})


def attachment_option(
    base: str, files: dict[str, bytes], name: str, body: bytes, size: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    aid = str(snowflake())
    files[f"/{name}"] = body
    att = {
        "id": aid,
        "filename": name,
        "size": len(body) if size is None else size,
        "url": f"{base}/{name}",
        "proxy_url": f"{base}/{name}",
        "content_type": "text/plain; charset=utf-8",
    }
    return [{"name": "file", "type": 11, "value": aid}], {"attachments": {aid: att}}


def rain_article(n: int) -> str:
    """An article of `n` sentences (station readings), for uploads big enough to show progress."""
    return " ".join(f"Station {i} of the survey recorded {i * 7 % 97} millimetres of rain." for i in range(n))


def custom_ids(call: Any) -> list[str]:
    """The custom_ids of a message's buttons."""
    return [c["custom_id"] for row in call.json.get("components", []) for c in row["components"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_run(embedder: Callable[[], Embedder]) -> Recorder:
    """For a script that drives `quotebot run` in a subprocess: the bot's Library gets `embedder()`
    instead of the real model, and Discord's HTTP API is answered by the returned Recorder."""
    import bot.cli.run as run

    class OfflineLibrary(Library):
        def __init__(self, settings: Any) -> None:
            super().__init__(settings, embedder=embedder())

    run.Library = OfflineLibrary  # type: ignore[misc]
    rec = Recorder()

    async def request(self: Any, route: Any, **kwargs: Any) -> Any:
        return rec.record(route.method, route.url, kwargs.get("json"), kwargs.get("params"))

    discord.http.HTTPClient.request = request  # type: ignore[method-assign]
    return rec
