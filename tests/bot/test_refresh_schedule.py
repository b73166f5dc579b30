"""`[ingest] refresh_hours`: the bot re-fetches every served server's web articles on a timer (in the
fetch lane), replacing the changed ones; off by default."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import IngestSettings
from tests.bot.conftest import GUILD_A, GUILD_B, Recorder, local_fetch, make_settings, page, running_bot
from tests.support.http import LocalServer


def html(body: str) -> bytes:
    return f"<html><head><title>Hours</title></head><body><article><p>{body}</p></article></body></html>".encode()


async def test_the_scheduled_refresh_updates_changed_pages(
    data_dir: Path, no_webhook_network: list[Recorder], site: LocalServer
) -> None:
    settings = local_fetch(make_settings(data_dir), ingest=IngestSettings(refresh_hours=6))
    library = Library(settings.library_settings(), embedder=FakeEmbedder())
    site.routes["/hours"] = page(html("The library opens at nine every weekday morning."))
    library.add_url(str(GUILD_A), f"{site.base}/hours")
    library.add_url(str(GUILD_B), f"{site.base}/hours")
    site.routes["/hours"] = page(html("The library opens at ten every weekday morning."))
    try:
        async with running_bot(settings, no_webhook_network, library) as h:
            await h.settle()
            cog: Any = h.bot.get_cog("Admin")
            loop = asyncio.get_running_loop()
            assert (
                cog._refresh_timer is not None
                and abs(cog._refresh_timer.when() - loop.time() - 6 * 3600) < 60
            )
            report = await cog.refresh_all()
            assert report[str(GUILD_A)] == (0, 1, 0, 0) and report[str(GUILD_B)] == (0, 1, 0, 0)
            ans = library.ask(str(GUILD_A), "When does the library open?")
            assert ans.best is not None and "ten" in ans.best.text and "nine" not in ans.best.text
            assert (await cog.refresh_all())[str(GUILD_A)] == (1, 0, 0, 0)
    finally:
        library.close()
    assert cog._refresh_timer is None


async def test_no_refresh_timer_by_default(data_dir: Path, no_webhook_network: list[Recorder]) -> None:
    async with running_bot(make_settings(data_dir), no_webhook_network) as h:
        await h.settle()
        assert h.bot.get_cog("Admin")._refresh_timer is None  # type: ignore[union-attr]
