"""Web articles stay current (issue 13): refresh re-fetches with validators and reports unchanged /
changed / gone; sitemaps and feeds served on 127.0.0.1 ingest every page; hostile sitemaps and feeds
are refused within the limits and change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.errors import QuotebotError
from index.ingest.fetch import FetchPolicy
from index.library import Library
from index.settings import LibrarySettings
from tests.support.http import LocalServer, Request, Response

C = "local"


def page(title: str, body: str) -> bytes:
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{body}</p></article></body></html>"
    ).encode()


class Site:
    """Pages served from a dict; hits and conditional requests counted."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}  # path -> (content type, body)
        self.conditional = 0
        self.not_modified = 0

    def answer(self, request: Request) -> Response | None:
        hit = self.pages.get(request.path)
        if hit is None:
            return None  # 404
        ctype, body = hit
        etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
        if request.header("If-None-Match"):
            self.conditional += 1
            if request.header("If-None-Match") == etag:
                self.not_modified += 1
                return Response(status=304, headers={"ETag": etag}, length=None)
        return Response(body=body, headers={"Content-Type": ctype, "ETag": etag})


SITE = Site()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    routes = {"/loop.xml": Response(status=302, headers={"Location": "/loop.xml"}, length=None)}
    with LocalServer(routes, fallback=SITE.answer) as server:
        yield server.base


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    SITE.pages.clear()
    SITE.conditional = SITE.not_modified = 0
    policy = FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_s=10)
    library = Library(
        LibrarySettings(data_dir=tmp_path, threshold=0.0, fetch=policy, max_bulk_urls=50),
        embedder=FakeEmbedder(),
    )
    yield library
    library.close()


HTML = "text/html; charset=utf-8"


def test_refresh_reports_unchanged_changed_and_gone(lib: Library, base: str) -> None:
    for name, body in [
        ("a", "Alpha pages say the river floods in spring."),
        ("b", "Beta pages say bees sleep."),
        ("c", "Gamma pages say crows count."),
    ]:
        SITE.pages[f"/{name}"] = (HTML, page(name.upper(), body))
        assert lib.add_url(C, f"{base}/{name}?utm_source=chat").status == "added"
    assert lib.add_url(C, f"{base}/a").status == "unchanged"  # the same page by its canonical URL
    SITE.pages["/b"] = (HTML, page("B", "Beta pages now say bees dance at noon."))
    del SITE.pages["/c"]
    report = lib.refresh(C)
    assert [a.title for a in report.unchanged] == ["A"]
    assert [a.title for a in report.changed] == ["B"]
    assert [a.title for a, _ in report.gone] == ["C"] and report.failed == []
    assert SITE.not_modified >= 1  # "a" was not sent again
    ans = lib.ask(C, "What do bees do?")
    assert ans.quote is not None and "dance" in ans.quote.text
    assert lib.count(C) == 3  # gone is reported, kept unless asked
    report = lib.refresh(C, remove_gone=True)
    assert [a.title for a, _ in report.gone] == ["C"] and lib.count(C) == 2


def test_a_sitemap_served_locally_ingests_every_page(lib: Library, base: str) -> None:
    locs = []
    for i in range(5):
        SITE.pages[f"/p{i}"] = (HTML, page(f"Page {i}", f"Page {i} tells that owl{i} hoots at night."))
        locs.append(f"<url><loc>{base}/p{i}</loc></url>")
    SITE.pages["/part.xml"] = (
        "application/xml",
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{"".join(locs[2:])}</urlset>'.encode(),
    )
    SITE.pages["/sitemap.xml"] = (
        "application/xml",
        (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{base}/part.xml</loc></sitemap></sitemapindex>"
        ).encode(),
    )
    SITE.pages["/flat.xml"] = (
        "text/xml",
        f"<urlset>{''.join(locs[:2])}<url><loc>{base}/missing</loc></url></urlset>".encode(),
    )
    res = lib.add_sitemap(C, f"{base}/sitemap.xml")
    assert res.counts() == {"added": 3, "replaced": 0, "unchanged": 0, "failed": 0}
    res = lib.add_sitemap(C, f"{base}/flat.xml")
    assert res.counts()["added"] == 2 and [u for u, _ in res.failed] == [f"{base}/missing"]
    ans = lib.ask(C, "What does owl3 do?")
    assert ans.quote is not None and "owl3" in ans.quote.text


def test_a_feed_served_locally_ingests_its_entries(lib: Library, base: str) -> None:
    items = []
    for i in range(3):
        SITE.pages[f"/post{i}"] = (HTML, page(f"Post {i}", f"Post {i} explains why fox{i} jumps high."))
        items.append(f"<item><title>Post {i}</title><link>{base}/post{i}</link></item>")
    SITE.pages["/feed.rss"] = (
        "application/rss+xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>{"".join(items)}</channel></rss>'.encode(),
    )
    res = lib.add_feed(C, f"{base}/feed.rss")
    assert res.counts()["added"] == 3
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        f'<entry><title>P</title><link href="{base}/post1"/><id>1</id></entry></feed>'
    )
    SITE.pages["/feed.atom"] = ("application/atom+xml", atom.encode())
    assert lib.add_feed(C, f"{base}/feed.atom").counts()["unchanged"] == 1


def test_gzip_pages_are_accepted(lib: Library, base: str) -> None:
    # Served gzip-compressed although not asked: accepted and decoded.
    zipped = Response(
        body=page("Zipped", "Zipped pages say the kettle whistles."),
        headers={"Content-Type": HTML},
        gzip=True,
    )
    with LocalServer(fallback=lambda request: zipped) as server:
        res = lib.add_url(C, f"{server.base}/z")
        assert res.status == "added"
        ans = lib.ask(C, "What does the kettle do?")
        assert ans.quote is not None and "whistles" in ans.quote.text


def _billion_laughs() -> str:
    ents = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (
        f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(ents)}]>'
        '<rss version="2.0"><channel><title>&lol9;</title><item><link>http://x/</link></item></channel></rss>'
    )


BOMB = _billion_laughs()


@pytest.mark.parametrize(
    ("kind", "path", "body", "message"),
    [
        ("sitemap", "/huge.xml", None, "more than 50 URLs"),
        ("sitemap", "/million.xml", None, "larger than"),
        ("feed", "/bomb.rss", BOMB.encode(), "entities|not a readable"),
        ("sitemap", "/loop.xml", None, "loop"),
        ("sitemap", "/notxml.xml", b"this is not xml at all", "not a readable sitemap|not a sitemap"),
    ],
)
def test_hostile_sitemaps_and_feeds_are_refused_and_change_nothing(
    lib: Library, base: str, kind: str, path: str, body: bytes | None, message: str
) -> None:
    if path == "/huge.xml":
        body = (
            "<urlset>" + "".join(f"<url><loc>{base}/u{i}</loc></url>" for i in range(5_000)) + "</urlset>"
        ).encode()
    if path == "/million.xml":  # 1,000,000 URLs: ~60 MB, over the fetcher's 10 MB cap
        body = (
            b"<urlset>"
            + b"".join(b"<url><loc>%s/u%d</loc></url>" % (base.encode(), i) for i in range(1_000_000))
            + b"</urlset>"
        )
    if body is not None:
        SITE.pages[path] = ("application/xml", body)
    lib.add_text(C, "A stored article stays as it is.", title="keep")
    before = lib.store.counts(C)
    add = lib.add_sitemap if kind == "sitemap" else lib.add_feed
    with pytest.raises(QuotebotError, match=message):
        add(C, base + path)
    assert lib.store.counts(C) == before


def test_a_feed_on_a_private_address_is_refused_without_allow_networks(tmp_path: Path, base: str) -> None:
    lib = Library(LibrarySettings(data_dir=tmp_path), embedder=FakeEmbedder())
    try:
        with pytest.raises(QuotebotError, match=r"private|local|not allowed|public"):
            lib.add_feed(C, f"{base}/feed.rss")
        assert lib.count(C) == 0
    finally:
        lib.close()
