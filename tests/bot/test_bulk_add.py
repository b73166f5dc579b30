"""/articles add in bulk through discord.py's real dispatch: a .zip or .jsonl upload, a sitemap and
a feed URL (served on 127.0.0.1), an edited file uploaded again updating its article."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot.conftest import (
    GUILD_A,
    MOD,
    Harness,
    Recorder,
    attachment_option,
    local_fetch,
    make_settings,
    page,
    running_bot,
)
from tests.support.http import LocalServer


@pytest.fixture
async def bot(data_dir: Path, no_webhook_network: list[Recorder]) -> AsyncIterator[Harness]:
    async with running_bot(local_fetch(make_settings(data_dir)), no_webhook_network) as h:
        yield h
        await h.settle()


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


async def test_sitemap_and_feed_urls(bot: Harness, site: LocalServer) -> None:
    for i in range(3):
        site.routes[f"/p{i}"] = page(
            f"<html><title>P{i}</title><body><p>Page {i} says owls{i} hoot.</p></body></html>".encode(),
            "text/html",
        )
    site.routes["/sitemap.xml"] = page(
        (
            "<urlset>" + "".join(f"<url><loc>{site.base}/p{i}</loc></url>" for i in range(3)) + "</urlset>"
        ).encode(),
        "application/xml",
    )
    calls = await bot.slash("articles", {"sitemap": f"{site.base}/sitemap.xml"}, sub="add", **MOD)
    assert final_edit(calls).startswith(f"{site.base}/sitemap.xml: 3 added, 0 updated"), final_edit(calls)
    site.routes["/feed.rss"] = page(
        (
            '<rss version="2.0"><channel><title>B</title>'
            + "".join(f"<item><title>P{i}</title><link>{site.base}/p{i}</link></item>" for i in range(3))
            + f"<item><title>gone</title><link>{site.base}/missing</link></item></channel></rss>"
        ).encode(),
        "application/rss+xml",
    )
    calls = await bot.slash("articles", {"feed": f"{site.base}/feed.rss"}, sub="add", **MOD)
    reply = final_edit(calls)
    assert "0 added, 0 updated, 3 already had, 1 failed" in reply and "/missing" in reply, reply
    calls = await bot.slash(
        "articles", {"url": f"{site.base}/p0", "feed": f"{site.base}/feed.rss"}, sub="add", **MOD
    )
    assert calls[-1].ephemeral and "not several" in calls[-1].content


async def test_refresh_command(bot: Harness, site: LocalServer) -> None:
    site.routes["/r"] = page(
        b"<html><title>R</title><body><p>The shop opens at nine.</p></body></html>", "text/html"
    )
    await bot.slash("articles", {"url": f"{site.base}/r"}, sub="add", **MOD)
    site.routes["/r"] = page(
        b"<html><title>R</title><body><p>The shop opens at ten.</p></body></html>", "text/html"
    )
    calls = await bot.slash("articles", {}, sub="refresh", **MOD)
    assert final_edit(calls).startswith("Refreshed: 0 unchanged, 1 changed, 0 gone"), final_edit(calls)
    calls = await bot.slash("articles", {}, sub="refresh")  # a member
    assert calls[-1].ephemeral and "moderator" in calls[-1].content.lower()
