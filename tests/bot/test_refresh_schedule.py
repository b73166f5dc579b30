"""`[ingest] refresh_hours`: the bot re-fetches every served server's web articles on a timer (in the
fetch lane), replacing the changed ones; off by default."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.config import FetchConfig, IngestConfig
from index.embedding import FakeEmbedder
from index.library import Library
from tests.bot.conftest import GUILD_A, GUILD_B, Recorder, make_settings, start_bot

PAGES: dict[str, bytes] = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def html(body: str) -> bytes:
    return f"<html><head><title>Hours</title></head><body><article><p>{body}</p></article></body></html>".encode()


async def test_the_scheduled_refresh_updates_changed_pages(
    data_dir: Path, no_webhook_network: list[Recorder], site: str
) -> None:
    settings = make_settings(data_dir).model_copy(
        update={
            "ingest": IngestConfig(refresh_hours=6),
            "fetch": FetchConfig(allow_networks=["127.0.0.0/8"]),
        }
    )
    library = Library(settings.library_settings(), embedder=FakeEmbedder())
    PAGES["/hours"] = html("The library opens at nine every weekday morning.")
    library.add_url(str(GUILD_A), f"{site}/hours")
    library.add_url(str(GUILD_B), f"{site}/hours")
    PAGES["/hours"] = html("The library opens at ten every weekday morning.")
    h = await start_bot(settings, library, no_webhook_network)
    try:
        await h.settle()
        cog: Any = h.bot.get_cog("Admin")
        loop = asyncio.get_running_loop()
        assert cog._refresh_timer is not None and abs(cog._refresh_timer.when() - loop.time() - 6 * 3600) < 60
        report = await cog.refresh_all()
        assert report[str(GUILD_A)] == (0, 1, 0, 0) and report[str(GUILD_B)] == (0, 1, 0, 0)
        ans = library.ask(str(GUILD_A), "When does the library open?")
        assert ans.best is not None and "ten" in ans.best.text and "nine" not in ans.best.text
        assert (await cog.refresh_all())[str(GUILD_A)] == (1, 0, 0, 0)
    finally:
        await h.bot.close()
        library.close()
    assert cog._refresh_timer is None


async def test_no_refresh_timer_by_default(data_dir: Path, no_webhook_network: list[Recorder]) -> None:
    library = Library(make_settings(data_dir).library_settings(), embedder=FakeEmbedder())
    h = await start_bot(make_settings(data_dir), library, no_webhook_network)
    try:
        await h.settle()
        assert h.bot.get_cog("Admin")._refresh_timer is None  # type: ignore[union-attr]
    finally:
        await h.bot.close()
        library.close()
