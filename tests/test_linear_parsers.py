"""No input is quadratic: every parser on the ingest path takes time linear in its input.

Hypothesis draws adversarial shapes (runs of Markdown and HTML syntax, nested
openers and closers) and each parser is timed on them at two sizes, beside a
plain statement of the same sizes. What is compared is a ratio of ratios: how
much dearer than plain text the shape is at the larger size, over how much
dearer it is at the smaller. A linear parser keeps that near 1, however slow
its constant; a quadratic one multiplies it by the growth in size (4 here).
No absolute time is asserted: the machine is shared and noisy. CPU time of
this process is measured (other processes do not count), best of a few runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.config import SiteConfig
from syndicate.render.excerpt import excerpt
from syndicate.sources.feed import FeedSource
from syndicate.sources.reader import Reader, markdown_to_text
from syndicate.text import MAX_DEPTH, html_to_text, sanitise_html

SMALL, LARGE = 16_000, 64_000  # large enough that fixed costs (a parser call, a sanitiser pass) no longer dominate
GROWTH_LIMIT = 2.5  # linear stays near 1; quadratic would be near LARGE / SMALL = 4
ROOT = Path(__file__).resolve().parent.parent
PLAIN = (ROOT / "statements" / "2013" / "un-overturned-campaign.md").read_text(encoding="utf-8").split("+++", 2)[2]

ATOMS = [
    "[", "]", "(", ")", "![", "*", "**", "_", "`", "<", ">", "&", "&#", "#", "\\", "-", "|", "\n", "\n\n",
    " ", "a", "<a>", "</a>", "<div>", "[a](", "[a]: ", "<!--", "<http://", "> ", "- ", "1. ", "~", ":", '"',
]  # fmt: skip
NESTINGS = [("[", "]"), ("(", ")"), ("*", "*"), ("<b>", "</b>"), ("> ", ""), ("[", "](x)"), ("<", ">"), ("`", "`")]

Shape = Callable[[int], str]


def repeated(unit: str) -> Shape:
    return lambda size: (unit * (size // len(unit) + 1))[:size]


def nested(pair: tuple[str, str]) -> Shape:
    opener, closer = pair
    return lambda size: (
        opener * (size // (2 * max(len(opener), 1))) + "x" + closer * (size // (2 * max(len(closer), 1)))
    )


shapes = st.one_of(
    st.lists(st.sampled_from(ATOMS), min_size=1, max_size=4).map("".join).map(repeated),
    st.sampled_from(NESTINGS).map(nested),
)


def cpu_cost(work: Callable[[], object], runs: int = 3) -> float:
    """The least CPU time of a few runs of ``work``."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return max(best, 1e-6)


def growth(parse: Callable[[str], object], shape: Shape) -> float:
    """How the cost of ``shape`` over plain text of the same size grows from SMALL to LARGE."""
    plain = repeated(PLAIN)
    ratios = [
        cpu_cost(lambda s=size: parse(shape(s))) / cpu_cost(lambda s=size: parse(plain(s))) for size in (SMALL, LARGE)
    ]
    return ratios[1] / ratios[0]


def assert_linear(parse: Callable[[str], object], shape: Shape) -> None:
    # A noisy sample is measured again before it counts (three times on a busy machine): a quadratic
    # parser fails every time.
    measured = [growth(parse, shape) for _ in range(3)]
    assert min(measured) < GROWTH_LIMIT, (
        f"cost over plain text grew {min(measured):.1f}x for {LARGE // SMALL}x the size"
    )


SITE = SiteConfig(title="Org", url="https://example.org", language="en", timezone="UTC", author="", rights="")
READER = Reader(SITE)
FRONT = '+++\ntitle = "T"\npublished = 2013-09-12T10:00:00Z\n+++\n'


def read_markdown(body: str) -> object:
    return READER.read("s.md", (FRONT + body).encode())


def read_html(body: str) -> object:
    return READER.read("s.html", (FRONT + body).encode())


def read_title(value: str) -> object:
    return READER.read("s.md", f"---\ntitle: {value!r}\npublished: 2013-09-12\n---\nBody.\n".encode())


def read_feed(body: str) -> object:
    source = FeedSource("https://cms.example.org/feed", SITE, None, None)  # type: ignore[arg-type]
    feed = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>CMS</title>'
        "<id>urn:cms</id><updated>2013-09-12T10:00:00Z</updated><entry><id>urn:1</id><title>T</title>"
        '<link href="https://cms.example.org/1"/><updated>2013-09-12T10:00:00Z</updated>'
        f'<content type="html">{escape(body)}</content></entry></feed>'
    )
    return source.parse(feed.encode(), {"content-type": "application/xml"}, {})


PARSERS = {
    "markdown statement": read_markdown,
    "html statement": read_html,
    "front-matter title": read_title,
    "feed entry": read_feed,
    "markdown_to_text": markdown_to_text,
    "html_to_text": lambda body: html_to_text(sanitise_html(body)[0]),
    "excerpt": lambda body: excerpt(sanitise_html(body)[0], 40),
}


@pytest.mark.parametrize("name", list(PARSERS))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(shape=shapes)
def test_parsers_stay_linear_on_adversarial_shapes(name, shape):
    assert_linear(PARSERS[name], shape)


@pytest.mark.parametrize("name", ["markdown statement", "markdown_to_text"])
def test_nested_brackets_are_linear(name):
    """The shape that took 24 s on 100 KB: an unclosed run of '[' before an inline-link pattern."""
    assert_linear(PARSERS[name], repeated("["))
    assert_linear(PARSERS[name], repeated("[a"))


@pytest.mark.parametrize("name", ["html statement", "markdown statement", "feed entry"])
def test_deep_nesting_is_linear(name):
    """Unclosed blocks: the HTML parser walks every open element at each one, unless the depth is bounded."""
    assert_linear(PARSERS[name], repeated("<div>"))
    assert_linear(PARSERS[name], repeated(" &#<ul>"))


def test_tags_past_the_depth_limit_are_shown_as_text_and_counted():
    deep = "<div>" * (MAX_DEPTH + 3) + "x" + "</div>" * (MAX_DEPTH + 3)
    safe, removed = sanitise_html(deep)
    assert safe.count("<div>") == MAX_DEPTH
    assert safe.count("&lt;div&gt;") == 3 and safe.count("&lt;/div&gt;") == 3
    assert removed is not None and removed.deep == 3 and "3 tag(s) nested deeper" in str(removed)
    shallow = "<div><p>a<p>b<ul><li>c<li>d</ul></div>" * 200  # siblings and implied ends do not add depth
    assert sanitise_html(shallow)[1] is None


def test_a_less_than_sign_in_a_script_or_a_comment_is_no_tag_and_adds_no_depth():
    hidden = "<script>" + "if (i<n) i++;" * (MAX_DEPTH + 10) + "</script><!--" + "<div>" * (MAX_DEPTH + 10) + "-->"
    safe, removed = sanitise_html(hidden + "<div><b>kept</b></div>")
    assert removed is None
    assert safe == "<div><b>kept</b></div>"
