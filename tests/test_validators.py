"""The strict feed validators in tests/validators accept valid documents and
name the specific problem in invalid ones."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from feedgen.feed import FeedGenerator
from jsonschema import Draft202012Validator
from validators import validate_atom, validate_json_feed, validate_rss
from validators.atom import atom_rng
from validators.jsonfeed import FORMAT_CHECKER, SCHEMA_PATH


def mutate(doc: bytes, old: str, new: str) -> bytes:
    """``doc`` with the first ``old`` replaced by ``new`` (which must be there)."""
    assert old.encode() in doc, f"test fixture does not contain {old!r}"
    return doc.replace(old.encode(), new.encode(), 1)


def assert_reports(problems: list[str], expected: str) -> None:
    assert any(expected in p for p in problems), f"{expected!r} not in {problems!r}"


# --- Atom ---------------------------------------------------------------------

ATOM_MINIMAL = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Example Feed</title>
  <link href="http://example.org/"/>
  <updated>2003-12-13T18:30:02Z</updated>
  <author><name>John Doe</name></author>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <entry>
    <title>Atom-Powered Robots Run Amok</title>
    <link href="http://example.org/2003/12/13/atom03"/>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <updated>2003-12-13T18:30:02Z</updated>
    <summary>Some text.</summary>
  </entry>
</feed>
"""

ATOM_RICH = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-GB"
      xml:base="https://news.example.org/feeds/"
      xmlns:fh="http://purl.org/syndication/history/1.0"
      xmlns:at="http://purl.org/atompub/tombstones/1.0"
      xmlns:dc="http://purl.org/dc/elements/1.1/">
  <title type="html">Syndicate &amp;lt;news&amp;gt;</title>
  <subtitle type="xhtml">
    <div xmlns="http://www.w3.org/1999/xhtml">All the <em>news</em></div>
  </subtitle>
  <id>tag:news.example.org,2024:feed/main</id>
  <updated>2024-03-01T12:00:00.250+01:00</updated>
  <author><name>Newsroom</name><email>news@example.org</email><uri>/about</uri></author>
  <contributor><name>Ana Lyst</name></contributor>
  <category term="policy" scheme="https://news.example.org/categories" label="Policy"/>
  <generator uri="https://example.org/syndicate" version="0.1.0">syndicate</generator>
  <icon>/icon.png</icon>
  <logo>https://news.example.org/logo.png</logo>
  <rights>© 2024 Example</rights>
  <link rel="self" type="application/atom+xml" href="archive/2024-03.xml"/>
  <link rel="alternate" type="text/html" href="https://news.example.org/"/>
  <link rel="alternate" type="text/html" hreflang="fr" href="https://news.example.org/fr/"/>
  <link rel="current" href="main.xml"/>
  <link rel="prev-archive" href="archive/2024-02.xml"/>
  <link rel="next-archive" href="archive/2024-04.xml"/>
  <link rel="hub" href="https://hub.example.net/"/>
  <link rel="http://example.org/rels/custom" href="https://news.example.org/x"/>
  <fh:archive/>
  <at:deleted-entry ref="tag:news.example.org,2024:entry/0" when="2024-02-28T09:00:00Z">
    <at:by><name>Editor</name><email>editor@example.org</email></at:by>
    <at:comment xml:lang="en">Published by mistake.</at:comment>
    <link href="https://news.example.org/0"/>
  </at:deleted-entry>
  <at:deleted-entry ref="tag:news.example.org,2024:entry/00" when="2024-02-28T10:00:00Z"/>
  <entry xml:base="https://news.example.org/2024/">
    <title>First</title>
    <id>tag:news.example.org,2024:entry/1</id>
    <updated>2024-03-01T11:00:00Z</updated>
    <published>2024-03-01T10:00:00-05:00</published>
    <link href="first"/>
    <link rel="enclosure" type="audio/mpeg" length="1337" href="first.mp3"/>
    <content type="xhtml" xml:lang="de">
      <div xmlns="http://www.w3.org/1999/xhtml"><p>Hallo <a href="first">Welt</a>!</p></div>
    </content>
    <dc:subject>news</dc:subject>
  </entry>
  <entry>
    <title>First, revised</title>
    <id>tag:news.example.org,2024:entry/1</id>
    <updated>2024-03-01T11:30:00Z</updated>
    <content type="html">&lt;p&gt;Revised&lt;/p&gt;</content>
    <source>
      <id>tag:other.example.org,2020:feed</id>
      <title>Other</title>
      <updated>2024-01-01T00:00:00Z</updated>
    </source>
  </entry>
  <entry>
    <title>Out of line</title>
    <id>urn:uuid:5b1b8a5c-4d2b-4c8e-9a55-0c6a2d7f5e11</id>
    <updated>2024-03-01T11:00:00Z</updated>
    <author><name>Guest</name></author>
    <content type="application/pdf" src="https://news.example.org/report.pdf"/>
    <summary>A report.</summary>
  </entry>
  <entry>
    <title>Inline binary</title>
    <id>https://news.example.org/2024/binary</id>
    <updated>2024-03-01T11:00:00Z</updated>
    <content type="image/png">iVBORw0KGgo=</content>
    <summary type="text">A picture.</summary>
  </entry>
</feed>
""".encode()

ATOM_ENTRY = b"""<?xml version="1.0" encoding="utf-8"?>
<entry xmlns="http://www.w3.org/2005/Atom">
  <title>Standalone</title>
  <id>https://example.org/entries/1</id>
  <updated>2024-05-05T05:05:05Z</updated>
  <author><name>Jo</name></author>
  <content>Just text.</content>
</entry>
"""


def feedgen_feed() -> FeedGenerator:
    fg = FeedGenerator()
    fg.id("https://example.org/feed")
    fg.title("Example")
    fg.author({"name": "Jo Doe", "email": "jo@example.org"})
    fg.link(href="https://example.org/", rel="alternate")
    fg.link(href="https://example.org/feed.xml", rel="self")
    fg.subtitle("Things that happened")
    fg.language("en")
    for n in (1, 2):
        fe = fg.add_entry()
        fe.id(f"https://example.org/posts/{n}")
        fe.title(f"Post {n}")
        fe.link(href=f"https://example.org/posts/{n}")
        fe.description(f"Summary {n}")
        fe.content(f"<p>Body {n}</p>", type="html")
        fe.author({"name": "Jo Doe", "email": "jo@example.org"})
        fe.published(dt.datetime(2024, 1, n, tzinfo=dt.UTC))
        fe.updated(dt.datetime(2024, 1, n, 12, tzinfo=dt.UTC))
        fe.guid(f"https://example.org/posts/{n}", permalink=True)
        fe.category(term="news")
    return fg


@pytest.mark.parametrize("doc", [ATOM_MINIMAL, ATOM_RICH, ATOM_ENTRY], ids=["minimal", "rich", "entry-document"])
def test_atom_accepts_valid_documents(doc: bytes) -> None:
    assert validate_atom(doc) == []


def test_atom_accepts_feedgen_output() -> None:
    assert validate_atom(feedgen_feed().atom_str(pretty=True)) == []


def test_atom_schema_is_the_rfc_grammar() -> None:
    rng = atom_rng()
    assert 'xmlns:local=""' not in rng
    assert '<define name="extensionElement">' in rng
    assert '<define name="atomFeed">' in rng


SCHEMA = "RFC 4287 Appendix B schema"
ENTRY_ID = "<id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>"
ENTRY_UPDATED = "<updated>2003-12-13T18:30:02Z</updated>\n    <summary>"
ENTRY_LINK = '<link href="http://example.org/2003/12/13/atom03"/>'
FEED_ID = "<id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>"
ENTRY = "<entry>"
FEED_AUTHOR = "<author><name>John Doe</name></author>"
DELETED = '<at:deleted-entry ref="tag:news.example.org,2024:entry/00" when="2024-02-28T10:00:00Z"/>'
XHTML_DIV = '<div xmlns="http://www.w3.org/1999/xhtml"><p>Hallo <a href="first">Welt</a>!</p></div>'


@pytest.mark.parametrize(
    ("doc", "old", "new", "expected"),
    [
        (ATOM_MINIMAL, "</feed>", "", "XML is not well-formed"),
        (
            ATOM_MINIMAL,
            'xmlns="http://www.w3.org/2005/Atom"',
            'xmlns="http://purl.org/rss/1.0/"',
            "is not atom:feed or atom:entry",
        ),
        (ATOM_MINIMAL, FEED_ID, "", "<feed> (line 2) must contain exactly one atom:id, found 0"),
        (ATOM_MINIMAL, ENTRY_ID, "", "<entry> (line 8) must contain exactly one atom:id, found 0"),
        (ATOM_MINIMAL, ENTRY_ID, ENTRY_ID + ENTRY_ID, "exactly one atom:id, found 2"),
        (ATOM_MINIMAL, "<title>Atom-Powered Robots Run Amok</title>", "", "exactly one atom:title, found 0"),
        (ATOM_MINIMAL, ENTRY_UPDATED, "<summary>", "exactly one atom:updated, found 0"),
        (
            ATOM_MINIMAL,
            ENTRY_UPDATED,
            "<updated>2003-12-13 18:30:02Z</updated><summary>",
            "'2003-12-13 18:30:02Z' is not an RFC 3339 date-time",
        ),
        (
            ATOM_MINIMAL,
            ENTRY_UPDATED,
            "<updated>2003-12-13T18:30:02</updated><summary>",
            "'2003-12-13T18:30:02' is not an RFC 3339 date-time with a time zone",
        ),
        (
            ATOM_MINIMAL,
            ENTRY_UPDATED,
            "<updated>2003-12-13t18:30:02z</updated><summary>",
            "requires an uppercase 'T' and 'Z'",
        ),
        (
            ATOM_MINIMAL,
            ENTRY_UPDATED,
            "<updated>2003-02-30T18:30:02Z</updated><summary>",
            "'2003-02-30T18:30:02Z' is not a valid date-time",
        ),
        (ATOM_MINIMAL, ENTRY_ID, "<id>entry-1</id>", "'entry-1' is not an absolute IRI"),
        (ATOM_MINIMAL, ENTRY_ID, "<id>urn:x:a b</id>", "contains the character ' '"),
        (ATOM_MINIMAL, ENTRY_ID, "<id>http://ex%ample.org/</id>", "'%' not followed by two hex"),
        (
            ATOM_MINIMAL,
            ENTRY_LINK,
            '<link href="/2003/atom03"/>',
            "relative reference '/2003/atom03' has no absolute xml:base in scope",
        ),
        (ATOM_MINIMAL, ENTRY_LINK, '<link href="http://exa mple.org/"/>', "contains the character ' '"),
        (ATOM_MINIMAL, FEED_AUTHOR, "", "has no atom:author, and neither has its atom:source"),
        (ATOM_MINIMAL, ENTRY_LINK, "", "has no atom:content, so it must have a rel=alternate"),
        (
            ATOM_MINIMAL,
            ENTRY_LINK,
            '<link rel="related" href="http://example.org/r"/>',
            "must have a rel=alternate atom:link",
        ),
        (
            ATOM_MINIMAL,
            "</feed>",
            "<entry>" + ENTRY_ID + ENTRY_UPDATED + "x</summary>" + ENTRY_LINK + "<title>Again</title></entry></feed>",
            "repeats atom:id",
        ),
        (
            ATOM_MINIMAL,
            '<link href="http://example.org/"/>',
            '<link href="http://example.org/"/><link rel="alternate" href="http://example.org/b"/>',
            "has 2 rel=alternate links with type=None and hreflang=None",
        ),
        (
            ATOM_MINIMAL,
            "<summary>Some text.</summary>",
            '<content type="xhtml"><p xmlns="http://www.w3.org/1999/xhtml">x</p></content>',
            'type="xhtml" content must be exactly one xhtml:div',
        ),
        (
            ATOM_MINIMAL,
            "<summary>Some text.</summary>",
            '<summary type="xhtml">loose <div xmlns="http://www.w3.org/1999/xhtml">x</div></summary>',
            'type="xhtml" content must be exactly one xhtml:div',
        ),
        (
            ATOM_MINIMAL,
            "<summary>Some text.</summary>",
            '<content type="application/pdf" src="http://example.org/x.pdf"/>',
            "so it must have an atom:summary",
        ),
        (
            ATOM_MINIMAL,
            "<summary>Some text.</summary>",
            '<summary>s</summary><content type="image/png">not base64!</content>',
            "content is not valid Base64",
        ),
        (
            ATOM_MINIMAL,
            "<summary>Some text.</summary>",
            '<summary>s</summary><content type="multipart/mixed">YQ==</content>',
            "is a composite media type",
        ),
        (
            ATOM_MINIMAL,
            "<summary>Some text.</summary>",
            '<content type="text/plain"><b>bold</b></content>',
            "must not contain child elements",
        ),
        (
            ATOM_MINIMAL,
            ENTRY_LINK,
            '<link rel="a/b" href="http://example.org/"/>',
            "is neither an IRI nor an isegment-nz-nc",
        ),
        (ATOM_MINIMAL, ENTRY_LINK, '<link title="no href"/>', SCHEMA),
        (ATOM_MINIMAL, FEED_AUTHOR, "<author><name>J</name><email>nobody</email></author>", SCHEMA),
        (ATOM_MINIMAL, "<summary>Some text.</summary>", "<summary>a</summary><summary>b</summary>", SCHEMA),
        (ATOM_MINIMAL, FEED_AUTHOR, FEED_AUTHOR + "<unknown>x</unknown>", SCHEMA),
        (ATOM_MINIMAL, FEED_AUTHOR, FEED_AUTHOR + "<subtitle><b>no</b></subtitle>", SCHEMA),
        (ATOM_RICH, "<fh:archive/>", "<fh:archive>yes</fh:archive>", "must be an empty child of atom:feed"),
        (ATOM_RICH, DELETED, '<at:deleted-entry ref="tag:news.example.org,2024:entry/00"/>', "has no 'when' attribute"),
        (ATOM_RICH, DELETED, '<at:deleted-entry when="2024-02-28T10:00:00Z"/>', "has no 'ref' attribute"),
        (
            ATOM_RICH,
            DELETED,
            '<at:deleted-entry ref="tag:news.example.org,2024:entry/00" when="yesterday"/>',
            "when: 'yesterday' is not an RFC 3339 date-time",
        ),
        (
            ATOM_RICH,
            DELETED,
            '<at:deleted-entry ref="entry-00" when="2024-02-28T10:00:00Z"/>',
            "ref: 'entry-00' is not an absolute IRI",
        ),
        (
            ATOM_RICH,
            DELETED,
            DELETED.replace("entry/00", "entry/0").replace("10:00", "09:00"),
            "repeats ref 'tag:news.example.org,2024:entry/0' with the same 'when'",
        ),
        (ATOM_RICH, DELETED, "", None),  # a control: the mutation helper itself is sound
        (ATOM_RICH, "</feed>", DELETED + "</feed>", "follows an atom:entry"),
        (ATOM_RICH, XHTML_DIV, "<p>not in a div</p>", "must be exactly one xhtml:div"),
        (ATOM_ENTRY, "<author><name>Jo</name></author>", "", "has no atom:author"),
        (ATOM_ENTRY, "<content>Just text.</content>", "", "must have a rel=alternate"),
    ],
)
def test_atom_rejects(doc: bytes, old: str, new: str, expected: str | None) -> None:
    problems = validate_atom(mutate(doc, old, new))
    if expected is None:
        assert problems == []
    else:
        assert_reports(problems, expected)


def test_xml_errors_belong_to_the_document_at_hand() -> None:
    # A failed RELAX NG run leaves messages in libxml2's per-thread log; they
    # must not leak into the next document's well-formedness report.
    assert validate_atom(mutate(ATOM_MINIMAL, FEED_ID, ""))
    problems = validate_rss(b'<rss version="2.0"><channel></rss>')
    assert problems
    assert all(p.startswith("XML is not well-formed: line 1:") for p in problems), problems


# --- RSS ----------------------------------------------------------------------

RSS_MINIMAL = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>Example</title>
    <link>https://example.org/</link>
    <description>Things that happened.</description>
  </channel>
</rss>
"""

RSS_RICH = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"
     xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:fh="http://purl.org/syndication/history/1.0">
  <channel>
    <title>Syndicate news</title>
    <link>https://news.example.org/</link>
    <description>All the news — &lt;b&gt;escaped&lt;/b&gt; HTML is fine.</description>
    <language>en-GB</language>
    <copyright>© 2024 Example</copyright>
    <managingEditor>editor@news.example.org (Ed Itor)</managingEditor>
    <webMaster>webmaster@news.example.org</webMaster>
    <pubDate>Fri, 01 Mar 2024 12:00:00 +0100</pubDate>
    <lastBuildDate>1 Mar 2024 12:30 GMT</lastBuildDate>
    <category domain="https://news.example.org/cats">Policy/Energy</category>
    <category>Politics</category>
    <generator>syndicate 0.1.0</generator>
    <docs>https://www.rssboard.org/rss-specification</docs>
    <cloud domain="rpc.example.org" port="80" path="/RPC2"
           registerProcedure="pingMe" protocol="soap"/>
    <ttl>60</ttl>
    <image>
      <url>https://news.example.org/logo.png</url>
      <title>Syndicate news</title>
      <link>https://news.example.org/</link>
      <width>144</width>
      <height>400</height>
      <description>Logo</description>
    </image>
    <rating>(PICS-1.1 "http://www.rsac.org/ratingsv01.html" l gen true r (n 0 s 0 v 0 l 0))</rating>
    <textInput>
      <title>Search</title>
      <description>Search the news</description>
      <name>q</name>
      <link>https://news.example.org/search</link>
    </textInput>
    <skipHours><hour>0</hour><hour>23</hour></skipHours>
    <skipDays><day>Saturday</day><day>Sunday</day></skipDays>
    <atom:link rel="self" type="application/rss+xml" href="https://news.example.org/rss.xml"/>
    <atom:link rel="hub" href="https://hub.example.net/"/>
    <atom:link rel="prev-archive" href="https://news.example.org/rss/2024-02.xml"/>
    <atom:link rel="next-archive" href="https://news.example.org/rss/2024-04.xml"/>
    <fh:archive/>
    <item>
      <title>First</title>
      <link>https://news.example.org/2024/first</link>
      <description>&lt;p&gt;First post&lt;/p&gt;</description>
      <content:encoded><![CDATA[<p>First <em>post</em></p>]]></content:encoded>
      <author>ana@news.example.org (Ana Lyst)</author>
      <dc:creator>Ana Lyst</dc:creator>
      <category>Energy</category>
      <category domain="https://news.example.org/tags">solar</category>
      <comments>https://news.example.org/2024/first#comments</comments>
      <enclosure url="https://news.example.org/first.mp3" length="12216320" type="audio/mpeg"/>
      <guid>https://news.example.org/2024/first</guid>
      <pubDate>Fri, 01 Mar 2024 11:00:00 GMT</pubDate>
      <source url="https://other.example.org/rss.xml">Other news</source>
    </item>
    <item>
      <description>A note without a title.</description>
      <guid isPermaLink="false">note-2024-0002</guid>
      <pubDate>Fri, 01 Mar 2024 11:30:00 EST</pubDate>
    </item>
    <item>
      <title>Only a title</title>
      <guid isPermaLink="true">https://news.example.org/2024/third</guid>
    </item>
  </channel>
</rss>
""".encode()

ITEM = "<item>"
FIRST_AUTHOR = "<author>ana@news.example.org (Ana Lyst)</author>"
FIRST_PUBDATE = "<pubDate>Fri, 01 Mar 2024 11:00:00 GMT</pubDate>"
ENCLOSURE = '<enclosure url="https://news.example.org/first.mp3" length="12216320" type="audio/mpeg"/>'


@pytest.mark.parametrize("doc", [RSS_MINIMAL, RSS_RICH], ids=["minimal", "rich"])
def test_rss_accepts_valid_documents(doc: bytes) -> None:
    assert validate_rss(doc) == []


def test_rss_accepts_feedgen_output() -> None:
    assert validate_rss(feedgen_feed().rss_str(pretty=True)) == []


@pytest.mark.parametrize(
    ("doc", "old", "new", "expected"),
    [
        (RSS_MINIMAL, "</channel>", "", "XML is not well-formed"),
        (RSS_MINIMAL, "<title>Example</title>", "<title>&nbsp;</title>", "XML is not well-formed"),
        (
            RSS_MINIMAL,
            '<rss version="2.0">',
            '<rss version="2.0" xmlns="http://example.org/">',
            "is not a namespace-less <rss>",
        ),
        (RSS_MINIMAL, 'version="2.0"', 'version="0.91"', "version is '0.91', must be '2.0'"),
        (RSS_MINIMAL, 'version="2.0"', "", "missing the required attribute 'version'"),
        (RSS_MINIMAL, "</rss>", "<channel/></rss>", "exactly one <channel>, found 2"),
        (RSS_MINIMAL, "<link>https://example.org/</link>", "", "is missing a non-empty required <link>"),
        (RSS_MINIMAL, "<title>Example</title>", "", "is missing a non-empty required <title>"),
        (
            RSS_MINIMAL,
            "<description>Things that happened.</description>",
            "<description/>",
            "is missing a non-empty required <description>",
        ),
        (
            RSS_MINIMAL,
            "<title>Example</title>",
            "<title>A</title><title>B</title>",
            "has 2 <title> elements; at most 1 allowed",
        ),
        (RSS_MINIMAL, "<link>https://example.org/</link>", "<link>/home</link>", "'/home' is not an absolute IRI"),
        (RSS_MINIMAL, "</channel>", "<language>en_GB</language></channel>", "'en_GB' is not a language tag"),
        (RSS_MINIMAL, "</channel>", "<ttl>sixty</ttl></channel>", "'sixty' is not a non-negative"),
        (
            RSS_MINIMAL,
            "</channel>",
            "<pubDate>2024-03-01T12:00:00Z</pubDate></channel>",
            "is not an RFC 822 date-time with a 4-digit year",
        ),
        (
            RSS_MINIMAL,
            "</channel>",
            "<pubDate>Sat, 07 Sep 02 00:00:01 GMT</pubDate></channel>",
            "is not an RFC 822 date-time with a 4-digit year",
        ),
        (
            RSS_MINIMAL,
            "</channel>",
            "<pubDate>Sat, 07 Sep 2002 00:00:01</pubDate></channel>",
            "is not an RFC 822 date-time",
        ),
        (
            RSS_MINIMAL,
            "</channel>",
            "<lastBuildDate>Mon, 07 Sep 2002 00:00:01 GMT</lastBuildDate></channel>",
            "2002-09-07 is a Saturday, not Mon",
        ),
        (RSS_MINIMAL, "</channel>", "<pubDate>30 Feb 2024 00:00:01 GMT</pubDate></channel>", "is not a valid date"),
        (
            RSS_MINIMAL,
            "</channel>",
            "<managingEditor>Ed Itor</managingEditor></channel>",
            "'Ed Itor' does not start with an e-mail address",
        ),
        (RSS_MINIMAL, "</channel>", "<foo>bar</foo></channel>", "<foo> (line 7) is not an element of <channel>"),
        (RSS_MINIMAL, "<channel>", '<channel id="x">', "has unknown attribute 'id'"),
        (
            RSS_MINIMAL,
            "</channel>",
            "<cloud domain='d' port='x' path='/' registerProcedure='p' protocol='smtp'/></channel>",
            "protocol 'smtp' is not xml-rpc",
        ),
        (
            RSS_MINIMAL,
            "</channel>",
            "<cloud domain='d' port='80' path='/' protocol='soap'/></channel>",
            "missing the required attribute 'registerProcedure'",
        ),
        (
            RSS_MINIMAL,
            "</channel>",
            "<skipDays><day>Funday</day></skipDays></channel>",
            "'Funday' is not one of Monday",
        ),
        (RSS_MINIMAL, "</channel>", "<skipHours><hour>24</hour></skipHours></channel>", "'24' is not an hour 0-23"),
        (RSS_RICH, "<width>144</width>", "<width>200</width>", "200 exceeds the maximum of 144"),
        (
            RSS_RICH,
            "<url>https://news.example.org/logo.png</url>",
            "",
            "<image> (line 23) is missing a non-empty required <url>",
        ),
        (RSS_RICH, "<name>q</name>", "", "is missing a non-empty required <name>"),
        (RSS_RICH, '<atom:link rel="hub" ', "<atom:link ", "has no rel attribute"),
        (RSS_RICH, 'href="https://hub.example.net/"', "", "has no href attribute"),
        (RSS_RICH, "<title>Only a title</title>", "", "must have a title or a description"),
        (RSS_RICH, FIRST_AUTHOR, "<author>Ana Lyst</author>", "'Ana Lyst' does not start with an e-mail address"),
        (RSS_RICH, FIRST_PUBDATE, "<pubDate>yesterday</pubDate>", "'yesterday' is not an RFC 822"),
        (RSS_RICH, FIRST_PUBDATE, FIRST_PUBDATE * 2, "has 2 <pubDate> elements"),
        (RSS_RICH, ENCLOSURE, ENCLOSURE * 2, "has 2 <enclosure> elements; at most 1 allowed"),
        (
            RSS_RICH,
            ENCLOSURE,
            '<enclosure url="https://news.example.org/a.mp3" type="audio/mpeg"/>',
            "missing the required attribute 'length'",
        ),
        (
            RSS_RICH,
            ENCLOSURE,
            '<enclosure url="ftp://news.example.org/a.mp3" length="1" type="audio/mpeg"/>',
            "is not an http(s) URL",
        ),
        (
            RSS_RICH,
            ENCLOSURE,
            '<enclosure url="https://news.example.org/a.mp3" length="1 MB" type="audio/mpeg"/>',
            "length '1 MB' is not a number of bytes",
        ),
        (
            RSS_RICH,
            ENCLOSURE,
            '<enclosure url="https://news.example.org/a.mp3" length="1" type="mp3"/>',
            "type 'mp3' is not a MIME type",
        ),
        (
            RSS_RICH,
            "<guid>https://news.example.org/2024/first</guid>",
            "<guid>first-post</guid>",
            "a permalink guid must be a URL",
        ),
        (
            RSS_RICH,
            '<guid isPermaLink="false">',
            '<guid isPermaLink="no">',
            "isPermaLink is 'no', must be 'true' or 'false'",
        ),
        (
            RSS_RICH,
            "<guid>https://news.example.org/2024/first</guid>",
            "<guid>https://news.example.org/2024/third</guid>",
            "guid 'https://news.example.org/2024/third' is used by 2 items",
        ),
        (
            RSS_RICH,
            '<source url="https://other.example.org/rss.xml">',
            "<source>",
            "missing the required attribute 'url'",
        ),
        (
            RSS_RICH,
            "<link>https://news.example.org/2024/first</link>",
            "<link>first</link>",
            "'first' is not an absolute IRI",
        ),
        (
            RSS_RICH,
            "<comments>https://news.example.org/2024/first#comments</comments>",
            "<comments>see below</comments>",
            "'see below' contains the character ' '",
        ),
        (
            RSS_RICH,
            "<description>&lt;p&gt;First post&lt;/p&gt;</description>",
            "<description><p>First post</p></description>",
            "must contain text only",
        ),
        (RSS_RICH, "<category>Energy</category>", "<tag>Energy</tag>", "is not an element of <item>"),
    ],
)
def test_rss_rejects(doc: bytes, old: str, new: str, expected: str) -> None:
    assert_reports(validate_rss(mutate(doc, old, new)), expected)


# --- JSON Feed ----------------------------------------------------------------

JSON_MINIMAL: dict[str, Any] = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Example",
    "items": [{"id": "1", "content_text": "Hello."}],
}

JSON_RICH: dict[str, Any] = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Syndicate news",
    "home_page_url": "https://news.example.org/",
    "feed_url": "https://news.example.org/feed.json",
    "description": "All the news",
    "user_comment": "Subscribe in any JSON Feed reader.",
    "next_url": "https://news.example.org/feed.json?page=2",
    "icon": "https://news.example.org/icon-512.png",
    "favicon": "https://news.example.org/favicon-64.png",
    "authors": [{"name": "Newsroom", "url": "mailto:news@example.org"}, {"avatar": "https://news.example.org/a.png"}],
    "language": "en-GB",
    "expired": False,
    "hubs": [{"type": "WebSub", "url": "https://hub.example.net/", "_x": {}}],
    "_syndicate": {"about": "https://news.example.org/ext", "edition": 7},
    "items": [
        {
            "id": "https://news.example.org/2024/first",
            "url": "https://news.example.org/2024/first",
            "external_url": "https://elsewhere.example.com/story",
            "title": "First",
            "content_html": "<p>First <em>post</em></p>",
            "content_text": "First post",
            "summary": "The first post.",
            "image": "https://news.example.org/first.jpg",
            "banner_image": "https://news.example.org/first-wide.jpg",
            "date_published": "2024-03-01T10:00:00-05:00",
            "date_modified": "2024-03-01T16:00:00.5Z",
            "authors": [{"name": "Ana Lyst", "_pronouns": {"value": "she/her"}}],
            "tags": ["energy", "solar"],
            "language": "de-CH",
            "attachments": [
                {
                    "url": "https://news.example.org/first.mp3",
                    "mime_type": "audio/mpeg",
                    "title": "Audio",
                    "size_in_bytes": 12216320,
                    "duration_in_seconds": 301.5,
                }
            ],
            "_syndicate": {"statement_id": 42},
        },
        {"id": "2", "content_html": "<p>Second</p>"},
    ],
}


def as_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def test_json_feed_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_json_feed_format_checker_really_checks() -> None:
    """jsonschema alone skips "uri" and "date-time" without optional packages."""
    assert {"uri", "date-time"} <= set(FORMAT_CHECKER.checkers)
    assert FORMAT_CHECKER.conforms("https://example.org/a?b#c", "uri")
    assert not FORMAT_CHECKER.conforms("/relative/path", "uri")
    assert FORMAT_CHECKER.conforms("2024-03-01T10:00:00+01:00", "date-time")
    assert not FORMAT_CHECKER.conforms("2024-03-01T10:00:00", "date-time")


@pytest.mark.parametrize("doc", [JSON_MINIMAL, JSON_RICH], ids=["minimal", "rich"])
def test_json_feed_accepts_valid_documents(doc: dict[str, Any]) -> None:
    assert validate_json_feed(as_bytes(doc)) == []


def with_changes(doc: dict[str, Any], path: str, value: object) -> bytes:
    """``doc`` with the member at dotted ``path`` set to ``value`` (deleted if None)."""
    copy = json.loads(json.dumps(doc))
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return as_bytes(copy)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("version", "https://jsonfeed.org/version/1", "$.version: 'https://jsonfeed.org/version/1.1' was expected"),
        ("version", None, "$: 'version' is a required property"),
        ("title", None, "$: 'title' is a required property"),
        ("items", None, "$: 'items' is a required property"),
        ("items.0.id", None, "$.items[0]: 'id' is a required property"),
        ("items.0.id", 1, "$.items[0].id: 1 is not of type 'string'"),
        (
            "items.1.id",
            "https://news.example.org/2024/first",
            "id 'https://news.example.org/2024/first' is used by 2 items",
        ),
        ("items.1.content_html", None, "$.items[1]: an item needs content_html or content_text"),
        ("items.0.date_published", "2024-03-01", "$.items[0].date_published: '2024-03-01' is not a 'date-time'"),
        ("items.0.date_modified", "2024-03-01T16:00:00", "is not an RFC 3339 date-time with a time zone"),
        ("items.0.date_modified", "2024-13-01T16:00:00Z", "is not a valid date-time"),
        ("home_page_url", "news.example.org", "$.home_page_url: 'news.example.org' is not a 'uri'"),
        ("feed_url", "/feed.json", "$.feed_url: '/feed.json' is not a 'uri'"),
        ("items.0.url", "https://news.example.org/a b", "contains the character ' '"),
        ("items.0.image", "https://news.example.org/café.jpg", "contains the character 'é'"),
        ("favicon", "http:///nohost", "has no host"),
        ("unknown", "x", "$: unknown member 'unknown': not a JSON Feed 1.1 field"),
        ("items.0.body", "x", "$.items[0]: unknown member 'body'"),
        ("_1", {}, "$: unknown member '_1'"),
        ("_ext", "not an object", "$['_ext']: 'not an object' is not of type 'object'"),
        ("authors", [{}], "$.authors[0]: an author object needs at least one of name, url"),
        ("authors", {"name": "x"}, "$.authors: {'name': 'x'} is not of type 'array'"),
        ("items.0.attachments.0.mime_type", None, "'mime_type' is a required property"),
        ("items.0.attachments.0.size_in_bytes", "12 MB", "'12 MB' is not of type 'number'"),
        ("hubs.0.url", None, "$.hubs[0]: 'url' is a required property"),
        ("items.0.tags", ["ok", 3], "$.items[0].tags[1]: 3 is not of type 'string'"),
        ("expired", "no", "$.expired: 'no' is not of type 'boolean'"),
        ("language", "en_GB", "$.language: 'en_GB' does not match"),
        ("items.0.title", None, None),  # control: title is optional on items
    ],
)
def test_json_feed_rejects(path: str, value: object, expected: str | None) -> None:
    problems = validate_json_feed(with_changes(JSON_RICH, path, value))
    if expected is None:
        assert problems == []
    else:
        assert_reports(problems, expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"version": ', "not valid JSON"),
        (b'{"title": NaN}', "not valid JSON: NaN is not a JSON value"),
        ('{"title": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
        (b"[]", "$: [] is not of type 'object'"),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "title": "a", "title": "b", "items": []}',
            "member 'title' appears 2 times",
        ),
    ],
)
def test_json_feed_rejects_bad_json(data: bytes, expected: str) -> None:
    assert_reports(validate_json_feed(data), expected)
