"""Reading one statement file: front matter, dates, defaults, and every way a file can be bad.

Each bad input must give one clear problem naming the line (where there is
one) and its severity: an error skips the file, a warning lets it through.
"""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from syndicate.config import from_mapping
from syndicate.model import Problem, Severity, Statement
from syndicate.sources.files import FilesSource
from syndicate.sources.frontmatter import FrontMatterError, split
from syndicate.sources.reader import Reader

ISTANBUL = timezone(timedelta(hours=3))
ERROR, WARNING = Severity.ERROR, Severity.WARNING


@pytest.fixture
def reader(tmp_path: Path) -> Reader:
    """A reader for the test site: Istanbul time, https://example.org, no default author."""
    config = from_mapping(
        {"site": {"title": "Example Org", "url": "https://example.org/", "timezone": "Europe/Istanbul"}},
        tmp_path,
    )
    return Reader(config.site)


def doc(text: str) -> bytes:
    """A statement file's bytes from an indented literal."""
    return textwrap.dedent(text).lstrip("\n").encode()


def read_ok(reader: Reader, text: str | bytes, ref: str = "statement.md") -> tuple[Statement, list[Problem]]:
    """Read a file that must give a statement."""
    statement, problems = reader.read(ref, text if isinstance(text, bytes) else doc(text))
    assert statement is not None, problems
    return statement, problems


def read_bad(reader: Reader, text: str | bytes, ref: str = "bad.md") -> Problem:
    """Read a file that must be skipped with exactly one problem; return it."""
    statement, problems = reader.read(ref, text if isinstance(text, bytes) else doc(text))
    assert statement is None
    assert len(problems) == 1, problems
    assert problems[0].path == ref
    assert problems[0].severity == ERROR
    return problems[0]


TOML_OK = """
    +++
    title = "Statement on the harvest"
    published = 2013-09-12T10:00:00+03:00
    +++

    The harvest was good.
"""

YAML_OK = """
    ---
    title: Statement on the harvest
    published: 2013-09-12T10:00:00+03:00
    ---

    The harvest was good.
"""


# -- front matter: both syntaxes, and how it fails --


@pytest.mark.parametrize("text", [TOML_OK, YAML_OK], ids=["toml", "yaml"])
def test_toml_and_yaml_front_matter_read_the_same(reader, text):
    statement, problems = read_ok(reader, text)
    assert problems == []
    assert statement.title == "Statement on the harvest"
    assert statement.published == datetime(2013, 9, 12, 7, 0, tzinfo=UTC)
    assert statement.body_html == "<p>The harvest was good.</p>\n"


def test_split_gives_meta_body_and_key_lines():
    document = split('+++\ntitle = "T"\n\npublished = 2013-09-12\n+++\nBody\n')
    assert document.meta["title"] == "T"
    assert document.body == "Body\n"
    assert document.body_line == 6
    assert document.key_lines == {"title": 2, "published": 4}


def test_key_lines_know_quoted_keys_but_not_text_inside_values():
    document = split("---\n'title': T\npublished: 2013-09-12\nsummary: |\n  title: not a key\n---\n")
    assert document.key_lines == {"title": 2, "published": 3, "summary": 4}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('+++\ntitle = "T"\npublished = 2013-09-12\ncolour = [1,\n+++\nBody\n', 5, "TOML front matter does not parse"),
        ('+++\ntitle = "T"\npublished = \n+++\nBody\n', 3, "TOML front matter does not parse: Invalid value"),
        ('+++\ntitle = "T"\ntitle = "U"\n+++\n', 3, "TOML front matter does not parse"),
        ("---\ntitle: T\npublished: 2013-09-12\n  extra: [\n---\nBody\n", 4, "YAML front matter does not parse"),
        ("---\ntitle: T\n\tpublished: 2013-09-12\n---\n", 3, "YAML front matter does not parse"),
        ("---\n- a list\n- not a table\n---\n", 2, "YAML front matter must be a table of keys, not list"),
    ],
    ids=["toml-unclosed-array", "toml-empty-value", "toml-key-twice", "yaml-bad-indent", "yaml-tab", "yaml-list"],
)
def test_front_matter_that_does_not_parse_names_its_line(text, line, message):
    with pytest.raises(FrontMatterError) as caught:
        split(text)
    assert caught.value.line == line
    assert message in caught.value.message


def test_yaml_unclosed_quote_names_where_the_quote_began():
    with pytest.raises(FrontMatterError) as caught:
        split('---\ntitle: "Half a title\npublished: 2013-09-12\n---\n')
    assert "quoted scalar started on line 2" in caught.value.message


@pytest.mark.parametrize("fence", ["+++", "---"])
def test_front_matter_never_closed(reader, fence):
    problem = read_bad(reader, f"{fence}\ntitle = 'T'\npublished = 2013-09-12\n\nBody\n".encode())
    assert problem.line == 1
    assert problem.message == f"front matter opened with {fence} on line 1 is never closed"


def test_file_without_front_matter(reader):
    problem = read_bad(reader, b"# Just Markdown\n\nNo front matter.\n")
    assert problem.line == 1
    assert "no front matter" in problem.message


def test_front_matter_error_is_reported_by_the_reader_with_its_line(reader):
    problem = read_bad(reader, b'+++\ntitle = "T"\npublished = 2013-09-12\ncolour = \n+++\n')
    assert problem.line == 4
    assert problem.message.startswith("TOML front matter does not parse")


# -- required keys and their values --


def test_missing_title(reader):
    problem = read_bad(reader, b"+++\npublished = 2013-09-12\n+++\nBody\n")
    assert (problem.line, problem.message) == (1, "title is required")


@pytest.mark.parametrize(
    ("title", "message"),
    [('""', "title is empty"), ("'  '", "title is empty"), ("1915", "title must be text, not 1915")],
)
def test_title_that_is_not_usable_text(reader, title, message):
    problem = read_bad(reader, f"---\npublished: 2013-09-12\ntitle: {title}\n---\n".encode())
    assert (problem.line, problem.message) == (3, message)


def test_missing_published(reader):
    problem = read_bad(reader, b'+++\ntitle = "T"\n+++\nBody\n')
    assert problem.line == 1
    assert problem.message.startswith("published is required")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"yesterday"', "published 'yesterday' is not a date-time"),
        ('"2013-09-31"', "published '2013-09-31' is not a date-time"),
        ("10:00:00", "published 10:00:00 is a time of day without a date"),
        ("true", "published True is not a date-time"),
    ],
)
def test_unparseable_date_in_toml(reader, value, message):
    problem = read_bad(reader, f'+++\ntitle = "T"\n\npublished = {value}\n+++\nBody\n'.encode())
    assert problem.line == 4
    assert problem.message.startswith(message)


def test_impossible_toml_date_is_reported_by_the_parser(reader):
    problem = read_bad(reader, b'+++\ntitle = "T"\npublished = 2013-02-30\n+++\n')
    assert problem.line == 3
    assert "Invalid date" in problem.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2013-02-30", "'2013-02-30' is not a valid timestamp (day is out of range for month)"),
        ("2013-13-01", "'2013-13-01' is not a valid timestamp (month must be in 1..12)"),
        ("2013-09-12 25:00:00", "'2013-09-12 25:00:00' is not a valid timestamp"),
    ],
)
def test_impossible_yaml_date_is_a_report_not_a_crash(reader, value, message):
    problem = read_bad(reader, f"---\ntitle: T\npublished: {value}\n---\nBody\n".encode())
    assert problem.line == 3
    assert message in problem.message


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("id", '"has space"', "id 'has space' must be letters, digits"),
        ("lang", '"english please"', "lang 'english please' is not a language tag"),
        ("canonical_url", '"/relative"', "canonical_url '/relative' must be an absolute http(s) URL"),
        ("draft", '"yes"', "draft must be true or false, not 'yes'"),
        ("categories", "[1, 2]", "categories must be a list of names, not [1, 2]"),
        ("author", "42", "author must be text, not 42"),
    ],
)
def test_wrong_value_names_the_key_line(reader, key, value, message):
    problem = read_bad(reader, f'+++\ntitle = "T"\npublished = 2013-09-12\n{key} = {value}\n+++\n'.encode())
    assert problem.line == 4
    assert problem.message.startswith(message)


def test_a_huge_wrong_value_is_quoted_short(reader):
    problem = read_bad(
        reader, ('+++\ntitle = "T"\npublished = 2013-09-12\nid = "' + "x " * 50_000 + '"\n+++\n').encode()
    )
    assert problem.message.startswith("id 'x x x")
    assert len(problem.message) < 200


# -- bytes that are not clean text --


def test_bytes_that_are_not_utf8(reader):
    data = '+++\ntitle = "Çağrı"\npublished = 2013-09-12\n+++\n'.encode("iso-8859-9")
    problem = read_bad(reader, data)
    assert problem.line == 2
    assert problem.message == "not UTF-8: byte 0xc7 cannot be decoded (save the file as UTF-8)"


def test_xml_illegal_control_characters_are_stripped_with_a_warning(reader):
    data = b'+++\ntitle = "Bell\x07 and null"\npublished = 2013-09-12\n+++\n\nBody\x01 text\x1b.\n'
    statement, problems = read_ok(reader, data)
    assert statement.title == "Bell and null"
    assert statement.body_html == "<p>Body text.</p>\n"
    assert problems == [
        Problem(
            "statement.md",
            "removed 3 control or non-character(s) that XML cannot carry (first: U+0007)",
            2,
            WARNING,
        )
    ]


@pytest.mark.parametrize(
    "text",
    [
        '+++\ntitle = "Line one\\nline two"\npublished = 2013-09-12\n+++\nBody\n',
        '+++\ntitle = "Line one\\r\\nline two"\npublished = 2013-09-12\n+++\nBody\n',
        '+++\ntitle = "Line one\\rline two"\npublished = 2013-09-12\n+++\nBody\n',
        '+++\ntitle = """Line one\nline two"""\npublished = 2013-09-12\n+++\nBody\n',
        "---\ntitle: |\n  Line one\n  line two\npublished: 2013-09-12\n---\nBody\n",
        '---\ntitle: "Line one\\rline two"\npublished: 2013-09-12\n---\nBody\n',
    ],
    ids=["toml-lf", "toml-crlf", "toml-cr", "toml-multiline", "yaml-block", "yaml-cr"],
)
def test_line_break_in_title_is_folded_with_a_warning(reader, text):
    statement, problems = read_ok(reader, text.encode())
    assert statement.title == "Line one line two"
    assert problems == [Problem("statement.md", "title has a line break; joined into one line", 2, WARNING)]


@pytest.mark.parametrize("data", [b"", b"   \n\n\t\n"], ids=["zero-bytes", "white-space"])
def test_empty_file(reader, data):
    problem = read_bad(reader, data)
    assert (problem.line, problem.message) == (1, "file is empty")


def test_windows_line_endings_and_byte_order_mark(reader):
    data = b'\xef\xbb\xbf+++\r\ntitle = "T"\r\npublished = 2013-09-12\r\n+++\r\n\r\nBody\r\n'
    statement, problems = read_ok(reader, data)
    assert problems == []
    assert statement.body_html == "<p>Body</p>\n"


def test_unknown_keys_are_warned_about_and_ignored(reader):
    text = '+++\ntitle = "T"\npublished = 2013-09-12\ntags = ["a"]\ncolour = "red"\n+++\nBody\n'
    statement, problems = read_ok(reader, text.encode())
    assert statement.categories == ()
    assert problems == [
        Problem("statement.md", "unknown front-matter key 'tags'; ignored", 4, WARNING),
        Problem("statement.md", "unknown front-matter key 'colour'; ignored", 5, WARNING),
    ]


def test_unknown_key_close_to_a_known_one_gets_a_hint(reader):
    _, problems = read_ok(reader, b"---\ntitle: T\npublished: 2013-09-12\ncategores: [a]\n---\nBody\n")
    assert problems[0].message == "unknown front-matter key 'categores' (did you mean 'categories'?); ignored"
    assert (problems[0].line, problems[0].severity) == (4, WARNING)


def test_statement_without_a_body_is_warned_about(reader):
    statement, problems = read_ok(reader, b'+++\ntitle = "T"\npublished = 2013-09-12\n+++\n\n')
    assert statement.body_html == ""
    assert problems == [Problem("statement.md", "statement has no body", 5, WARNING)]


# -- dates --


@pytest.mark.parametrize(
    ("toml_value", "expected"),
    [
        ("2013-09-12", datetime(2013, 9, 12, 0, 0, tzinfo=ISTANBUL)),
        ("2013-09-12T10:00:00", datetime(2013, 9, 12, 10, 0, tzinfo=ISTANBUL)),
        ("2013-09-12 10:00:00", datetime(2013, 9, 12, 10, 0, tzinfo=ISTANBUL)),
        ("2013-09-12T10:00:00Z", datetime(2013, 9, 12, 10, 0, tzinfo=UTC)),
        ("2013-09-12T10:00:00-04:00", datetime(2013, 9, 12, 14, 0, tzinfo=UTC)),
        ('"2013-09-12T10:00:00+02:00"', datetime(2013, 9, 12, 8, 0, tzinfo=UTC)),
        ('"2013-09-12T10:00"', datetime(2013, 9, 12, 10, 0, tzinfo=ISTANBUL)),
        ('"2013-09-12"', datetime(2013, 9, 12, 0, 0, tzinfo=ISTANBUL)),
        ('"Thu, 12 Sep 2013 10:00:00 +0200"', datetime(2013, 9, 12, 8, 0, tzinfo=UTC)),
        ('"Thu, 12 Sep 2013 10:00:00 GMT"', datetime(2013, 9, 12, 10, 0, tzinfo=UTC)),
        ('"Thu, 12 Sep 2013 10:00:00 -0000"', datetime(2013, 9, 12, 10, 0, tzinfo=UTC)),
        ('"12 Sep 2013 10:00:00"', datetime(2013, 9, 12, 10, 0, tzinfo=ISTANBUL)),
    ],
    ids=[
        "date-only",
        "naive",
        "naive-space",
        "utc",
        "offset",
        "iso-string",
        "iso-string-naive",
        "iso-string-date",
        "rfc2822",
        "rfc2822-gmt",
        "rfc2822-unknown-zone",
        "rfc2822-naive",
    ],
)
def test_published_forms(reader, toml_value, expected):
    statement, _ = read_ok(reader, f'+++\ntitle = "T"\npublished = {toml_value}\n+++\nBody\n'.encode())
    assert statement.published == expected
    assert statement.published.tzinfo is not None


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ("2013-09-12", datetime(2013, 9, 12, 0, 0, tzinfo=ISTANBUL)),
        ("2013-09-12 10:00:00", datetime(2013, 9, 12, 10, 0, tzinfo=ISTANBUL)),
        ("2013-09-12 10:00", datetime(2013, 9, 12, 10, 0, tzinfo=ISTANBUL)),
        ("2013-09-12T10:00:00+05:00", datetime(2013, 9, 12, 5, 0, tzinfo=UTC)),
        ('"Thu, 12 Sep 2013 10:00:00 +0000"', datetime(2013, 9, 12, 10, 0, tzinfo=UTC)),
    ],
    ids=["date-only", "naive", "naive-no-seconds", "offset", "rfc2822"],
)
def test_published_forms_in_yaml(reader, yaml_value, expected):
    statement, _ = read_ok(reader, f"---\ntitle: T\npublished: {yaml_value}\n---\nBody\n".encode())
    assert statement.published == expected


def test_site_zone_follows_summer_time(tmp_path):
    site = from_mapping({"site": {"title": "O", "url": "https://o.example", "timezone": "Europe/Berlin"}}, tmp_path)
    winter, _ = Reader(site.site).read("w.md", b'+++\ntitle = "W"\npublished = 2013-01-10T12:00:00\n+++\nB\n')
    summer, _ = Reader(site.site).read("s.md", b'+++\ntitle = "S"\npublished = 2013-07-10T12:00:00\n+++\nB\n')
    assert winter is not None
    assert summer is not None
    assert winter.published.astimezone(UTC).hour == 11
    assert summer.published.astimezone(UTC).hour == 10


def test_updated_is_read_like_published(reader):
    statement, _ = read_ok(reader, b'+++\ntitle = "T"\npublished = 2013-09-12\nupdated = 2013-09-13T09:30:00\n+++\nB\n')
    assert statement.updated == datetime(2013, 9, 13, 9, 30, tzinfo=ISTANBUL)


def test_updated_absent_is_none(reader):
    statement, _ = read_ok(reader, TOML_OK)
    assert statement.updated is None


# -- defaults --


def test_defaults_come_from_the_file_name_and_the_site(reader):
    statement, _ = read_ok(reader, TOML_OK, ref="2013/Harvest Statement.md")
    assert statement.id == "harvest-statement"
    assert statement.canonical_url == "https://example.org/statements/harvest-statement"
    assert statement.author == "Example Org"
    assert statement.lang == "en"
    assert statement.categories == ()
    assert (statement.draft, statement.retracted, statement.translation_of) == (False, False, None)
    assert statement.source_ref == "2013/Harvest Statement.md"


def test_site_author_is_the_default_author(tmp_path):
    config = from_mapping(
        {"site": {"title": "Example Org", "url": "https://example.org", "author": "Press Office"}}, tmp_path
    )
    statement, _ = Reader(config.site).read("a.md", doc(TOML_OK))
    assert statement is not None
    assert statement.author == "Press Office"


def test_declared_values_win_over_defaults(reader):
    statement, problems = read_ok(
        reader,
        """
        +++
        id = "harvest-2013"
        title = "Hasat açıklaması"
        published = 2013-09-12T10:00:00+03:00
        lang = "tr"
        author = "Dernek Başkanı"
        summary = "Kısa özet."
        canonical_url = "https://example.org/tr/hasat"
        categories = ["Açıklamalar", "Tarım"]
        draft = true
        translation_of = "harvest-en"
        +++

        Metin.
        """,
    )
    assert problems == []
    assert statement.id == "harvest-2013"
    assert statement.lang == "tr"
    assert statement.author == "Dernek Başkanı"
    assert statement.summary == "Kısa özet."
    assert statement.canonical_url == "https://example.org/tr/hasat"
    assert statement.categories == ("Açıklamalar", "Tarım")
    assert statement.draft is True
    assert statement.translation_of == "harvest-en"


def test_id_default_keeps_turkish_and_russian_letters(reader):
    turkish, _ = read_ok(reader, TOML_OK, ref="Çağrı İçin.md")
    russian, _ = read_ok(reader, TOML_OK, ref="Заявление.md")
    assert turkish.id == "cagri-icin"
    assert russian.id == "заявление"


def test_file_name_that_gives_no_id_asks_for_one(reader):
    problem = read_bad(reader, TOML_OK, ref="!!!.md")
    assert problem.line == 1
    assert "set id" in problem.message


def test_explicit_id_may_be_a_number(reader):
    statement, _ = read_ok(reader, "---\nid: 2013\ntitle: T\npublished: 2013-09-12\n---\nB\n")
    assert statement.id == "2013"
    assert statement.canonical_url == "https://example.org/statements/2013"


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"Basın"', ("Basın",)), ('["Basın", "Haber", "Basın"]', ("Basın", "Haber")), ("[]", ())],
    ids=["string", "list-with-repeat", "empty"],
)
def test_categories_as_string_or_list(reader, value, expected):
    statement, _ = read_ok(reader, f'+++\ntitle = "T"\npublished = 2013-09-12\ncategories = {value}\n+++\nB\n')
    assert statement.categories == expected


def test_categories_as_yaml_string(reader):
    statement, _ = read_ok(reader, "---\ntitle: T\npublished: 2013-09-12\ncategories: Заявления\n---\nB\n")
    assert statement.categories == ("Заявления",)


# -- bodies, text and summaries --


def test_turkish_and_russian_text_survive(reader):
    statement, problems = read_ok(
        reader,
        """
        ---
        title: "Şükrü Öztürk: İstanbul'da ılık bir gün / Заявление председателя"
        published: 2013-09-12
        ---

        Çiğdem ğ ü ş ı İ ö ç — «Ёлка» и щука.
        """,
    )
    assert problems == []
    assert statement.title == "Şükrü Öztürk: İstanbul'da ılık bir gün / Заявление председателя"
    assert "Çiğdem ğ ü ş ı İ ö ç — «Ёлка» и щука." in statement.body_html
    assert statement.body_text == "Çiğdem ğ ü ş ı İ ö ç — «Ёлка» и щука."


def test_markdown_is_rendered_and_text_is_written_from_the_source(reader):
    statement, _ = read_ok(
        reader,
        """
        +++
        title = "T"
        published = 2013-09-12
        +++

        A *strong* statement with [a link](https://example.org/more).

        | a | b |
        |---|---|
        | 1 | 2 |
        """,
    )
    assert "<em>strong</em>" in statement.body_html
    assert '<a href="https://example.org/more">a link</a>' in statement.body_html
    assert "<table>" in statement.body_html
    assert statement.body_text.startswith("A *strong* statement with a link <https://example.org/more>.")


def test_html_statement_body_is_kept_as_html(reader):
    statement, problems = read_ok(
        reader,
        """
        ---
        title: Заявление
        published: 2013-09-12
        lang: ru
        ---
        <p>Первый абзац с <a href="https://example.org/x">ссылкой</a>.</p>
        <style>p { color: red }</style>
        <p>Второй *абзац*.</p>
        """,
        ref="zayavlenie.html",
    )
    assert problems == []
    assert statement.body_html.startswith('<p>Первый абзац с <a href="https://example.org/x">ссылкой</a>.</p>')
    assert "<p>Второй *абзац*.</p>" in statement.body_html
    assert statement.body_text == "Первый абзац с ссылкой <https://example.org/x>.\n\nВторой *абзац*."
    assert statement.summary == "Первый абзац с ссылкой <https://example.org/x>. Второй *абзац*."


def test_summary_is_an_excerpt_of_the_body_when_not_given(reader):
    words = " ".join(f"word{i}" for i in range(100))
    statement, _ = read_ok(reader, f'+++\ntitle = "T"\npublished = 2013-09-12\n+++\n\n# Heading\n\n{words}\n')
    assert statement.summary == "Heading " + " ".join(f"word{i}" for i in range(39)) + "…"


def test_short_body_is_its_own_summary(reader):
    statement, _ = read_ok(reader, TOML_OK)
    assert statement.summary == "The harvest was good."


def test_given_summary_is_folded_to_one_line(reader):
    statement, _ = read_ok(reader, '+++\ntitle = "T"\npublished = 2013-09-12\nsummary = """One\ntwo."""\n+++\nB\n')
    assert statement.summary == "One two."


# -- the files source around the reader --


def test_files_source_reports_an_oversized_file_and_reads_the_rest(tmp_path, reader):
    root = tmp_path / "statements"
    root.mkdir()
    big = doc(TOML_OK) + b"x" * 10_000_000
    (root / "big.md").write_bytes(big)
    (root / "small.md").write_bytes(doc(TOML_OK))
    scan = FilesSource(root, reader, max_bytes=1_000_000).scan({})
    assert [s.source_ref for s in scan.statements] == ["small.md"]
    assert scan.unreadable == {"big.md"}
    message = f"file is {len(big):,} bytes, over source.max_bytes (1,000,000); skipped"
    assert scan.problems == [Problem(str(root / "big.md"), message)]


def test_files_source_reads_md_and_html_in_subfolders_only(tmp_path, reader):
    root = tmp_path / "statements"
    for name in ["a.md", "2013/b.html", "2014/C.MD", "notes.txt", ".hidden.md", ".drafts/d.md", "e.md~"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(doc(TOML_OK))
    scan = FilesSource(root, reader, max_bytes=1_000_000).scan({})
    assert sorted(s.source_ref for s in scan.statements) == ["2013/b.html", "2014/C.MD", "a.md"]
    assert scan.problems == []


def test_files_source_reports_problems_with_the_operators_path(tmp_path, reader):
    root = tmp_path / "statements"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "bad.md").write_bytes(b"+++\ntitle = 'T'\n+++\n")
    scan = FilesSource(root, reader, max_bytes=1_000_000).scan({})
    assert scan.problems == [Problem(str(root / "sub" / "bad.md"), scan.problems[0].message, 1)]
    assert scan.problems[0].message.startswith("published is required")


def test_files_source_skips_unchanged_files_and_rereads_racy_ones(tmp_path, reader):
    root = tmp_path / "statements"
    root.mkdir()
    old, fresh = root / "old.md", root / "fresh.md"
    old.write_bytes(doc(TOML_OK))
    fresh.write_bytes(doc(TOML_OK))
    an_hour_ago = datetime.now(UTC).timestamp() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    first = FilesSource(root, reader, max_bytes=1_000_000).scan({})
    known = {s.source_ref: s.fingerprint for s in first.statements}
    second = FilesSource(root, reader, max_bytes=1_000_000).scan(known)
    # A file saved just now may be saved again within the same timestamp tick: it is not trusted yet.
    assert second.unchanged == {"old.md"}
    assert [s.source_ref for s in second.statements] == ["fresh.md"]


class BrokenReader(Reader):
    """A reader with a bug that one file sets off."""

    def read(self, ref, data, fingerprint=""):
        if ref == "trigger.md":
            raise RuntimeError("bug")
        return super().read(ref, data, fingerprint)


def test_files_source_reports_a_reader_failure_and_reads_the_rest(tmp_path, reader, caplog):
    root = tmp_path / "statements"
    root.mkdir()
    (root / "trigger.md").write_bytes(doc(TOML_OK))
    (root / "fine.md").write_bytes(doc(TOML_OK))
    scan = FilesSource(root, BrokenReader(reader.site), max_bytes=1_000_000).scan({})
    assert [s.source_ref for s in scan.statements] == ["fine.md"]
    assert scan.unreadable == {"trigger.md"}
    assert scan.problems == [Problem(str(root / "trigger.md"), "could not be read (RuntimeError: bug); skipped")]
    assert "RuntimeError: bug" in caplog.text


def test_files_source_without_its_folder_reports_it(tmp_path, reader):
    scan = FilesSource(tmp_path / "missing", reader, max_bytes=1000).scan({})
    assert scan.complete is False
    assert scan.problems == [Problem(str(tmp_path / "missing"), "statements folder does not exist")]
