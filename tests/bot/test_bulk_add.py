"""/articles add in bulk through discord.py's real dispatch: a .zip or .jsonl upload, a sitemap and
a feed URL (served on 127.0.0.1), an edited file uploaded again updating its article."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.config import FetchConfig
from index.embedding import FakeEmbedder
from index.library import Library
from tests.bot.conftest import (
    GUILD_A,
    MANAGE_MESSAGES,
    MODERATOR,
    Harness,
    Recorder,
    attachment_option,
    make_settings,
    start_bot,
)

MOD = {"user_id": MODERATOR, "permissions": MANAGE_MESSAGES}
SITE: dict[str, tuple[str, bytes]] = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        hit = SITE.get(self.path)
        if hit is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", hit[0])
        self.send_header("Content-Length", str(len(hit[1])))
        self.end_headers()
        self.wfile.write(hit[1])


@pytest.fixture
def site() -> Iterator[str]:
    SITE.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
async def bot(data_dir: Path, no_webhook_network: list[Recorder]) -> AsyncIterator[Harness]:
    settings = make_settings(data_dir).model_copy(
        update={"fetch": FetchConfig(allow_networks=["127.0.0.0/8"])}
    )
    library = Library(settings.library_settings(), embedder=FakeEmbedder())
    h = await start_bot(settings, library, no_webhook_network)
    try:
        yield h
        await h.settle()
    finally:
        await h.bot.close()
        library.close()


def final_edit(calls: list[Any]) -> str:
    return [c.content for c in calls if c.method == "PATCH"][-1]


async def upload(h: Harness, base: str, files: dict[str, bytes], name: str, body: bytes) -> str:
    options, resolved = attachment_option(base, files, name, body)
    data = h.command_data("articles", options, sub="add")
    data["resolved"] = resolved
    return final_edit(await h.call(h.payload(2, data, **MOD)))


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


async def test_zip_and_jsonl_uploads_and_an_edited_file_again(
    bot: Harness, file_server: tuple[str, dict[str, bytes]]
) -> None:
    base, files = file_server
    archive = zipped(
        {"a/kites.txt": b"Kites fly best in steady winds.", "b/boats.md": b"# Boats\n\nSailboats tack.\n"}
    )
    assert (await upload(bot, base, files, "guide.zip", archive)).startswith("guide.zip: 2 added")
    hostile = zipped({"../escape.txt": b"Outside."})
    reply = await upload(bot, base, files, "bad.zip", hostile)
    assert reply.startswith("Could not add the article:") and "unsafe path" in reply
    records = "".join(
        json.dumps({"id": f"r{i}", "title": f"Rule {i}", "text": f"Rule {i} says be kind {i} times."}) + "\n"
        for i in range(3)
    )
    reply = await upload(bot, base, files, "rules.jsonl", records.encode())
    assert reply.count("Added **Rule") == 3, reply
    assert (await upload(bot, base, files, "notes.txt", b"The ferry leaves at seven.")).startswith(
        "Added **notes**"
    )
    assert (await upload(bot, base, files, "notes.txt", b"The ferry leaves at nine.")).startswith(
        "Updated **notes**"
    )
    assert bot.library.count(str(GUILD_A)) == 6


async def test_sitemap_and_feed_urls(bot: Harness, site: str) -> None:
    for i in range(3):
        SITE[f"/p{i}"] = (
            "text/html",
            f"<html><title>P{i}</title><body><p>Page {i} says owls{i} hoot.</p></body></html>".encode(),
        )
    SITE["/sitemap.xml"] = (
        "application/xml",
        ("<urlset>" + "".join(f"<url><loc>{site}/p{i}</loc></url>" for i in range(3)) + "</urlset>").encode(),
    )
    calls = await bot.slash("articles", {"sitemap": f"{site}/sitemap.xml"}, sub="add", **MOD)
    assert final_edit(calls).startswith(f"{site}/sitemap.xml: 3 added, 0 updated"), final_edit(calls)
    SITE["/feed.rss"] = (
        "application/rss+xml",
        (
            '<rss version="2.0"><channel><title>B</title>'
            + "".join(f"<item><title>P{i}</title><link>{site}/p{i}</link></item>" for i in range(3))
            + f"<item><title>gone</title><link>{site}/missing</link></item></channel></rss>"
        ).encode(),
    )
    calls = await bot.slash("articles", {"feed": f"{site}/feed.rss"}, sub="add", **MOD)
    reply = final_edit(calls)
    assert "0 added, 0 updated, 3 already had, 1 failed" in reply and "/missing" in reply, reply
    calls = await bot.slash("articles", {"url": f"{site}/p0", "feed": f"{site}/feed.rss"}, sub="add", **MOD)
    assert calls[-1].ephemeral and "not several" in calls[-1].content


async def test_refresh_command(bot: Harness, site: str) -> None:
    SITE["/r"] = ("text/html", b"<html><title>R</title><body><p>The shop opens at nine.</p></body></html>")
    await bot.slash("articles", {"url": f"{site}/r"}, sub="add", **MOD)
    SITE["/r"] = ("text/html", b"<html><title>R</title><body><p>The shop opens at ten.</p></body></html>")
    calls = await bot.slash("articles", {}, sub="refresh", **MOD)
    assert final_edit(calls).startswith("Refreshed: 0 unchanged, 1 changed, 0 gone"), final_edit(calls)
    calls = await bot.slash("articles", {}, sub="refresh")  # a member
    assert calls[-1].ephemeral and "moderator" in calls[-1].content.lower()
