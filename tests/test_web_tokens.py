"""A bad token, in a link or in a form, is a page with a 4xx status: never a 500, whatever the string."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from conftest import Site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_support import WebSite, make_web

from syndicate.app import App
from syndicate.subscribers import Status
from syndicate.tokens import MAX_ID

# Bounded, and reproducible: the same examples on every run, none kept on disk in the shared tree.
EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HUGE = 10**23
ROUTES = [
    ("GET", "confirm"),
    ("GET", "unsubscribe"),
    ("POST", "unsubscribe"),
    ("GET", "preferences"),
    ("POST", "preferences"),
]


@pytest.fixture
def web(site: Site, make_app: Callable[[Site], App]) -> WebSite:
    site.extra = "[web]\nsubscribe_per_client = 100000\n"  # every forged post must reach the token check
    web = make_web(make_app(site))
    web.add("reader@example.org")
    web.add("pending@example.org", Status.PENDING)
    return web


def numbers() -> st.SearchStrategy[str]:
    """Numbers as a token might carry them: small, past every integer column, signed, padded, in other scripts."""
    small = st.integers(min_value=-10, max_value=10**4)
    huge = st.integers(min_value=MAX_ID - 2, max_value=HUGE**2)  # hypothesis favours small numbers: ask for these
    odd = st.sampled_from(["", "00", "+1", " 1", "1_0", "١٢", "²", "1e9"])
    return st.one_of(small.map(str), huge.map(str), odd)


def tokens(purpose: str = "c") -> st.SearchStrategy[str]:
    """Strings shaped like tokens (mostly for ``purpose``: id, expiry, MAC), and any text at all."""
    shaped = st.builds(
        lambda letter, subscriber, expires, mac: f"{letter}{subscriber}.{expires}.{mac}",
        st.sampled_from([purpose, purpose, purpose, "p", "", "ç"]),
        numbers(),
        numbers(),
        st.text(max_size=40),
    )
    anything = st.text(st.characters(exclude_categories=["Cs"]), max_size=120)
    return st.one_of(shaped, shaped, anything)


def answer(web: WebSite, method: str, route: str, token: str, form_token: str = "") -> int:
    path = f"/{route}/{quote(token, safe='')}"
    return web.client.open(path, method=method, data={"form_token": form_token, "action": "save"}).status_code


@pytest.mark.parametrize(
    "token",
    [
        "c99999999999999999999999.0.x",  # the report: OverflowError, 500
        "c1.99999999999999999999999.x",
        f"c{MAX_ID + 1}.0.x",  # one past PostgreSQL's INTEGER
        "u99999999999999999999999.0.xxxxxxxxxxxxxxxxxxxxxxxx",
        "c١.0.x",  # digits of another script, which int() would read
        "c01.0.x",
    ],
)
def test_a_huge_or_odd_number_in_a_link_is_a_damaged_link(web: WebSite, token: str) -> None:
    route = "confirm" if token.startswith("c") else "unsubscribe"
    response = web.client.get(f"/{route}/{quote(token)}")
    assert response.status_code == 400
    assert "incomplete" in response.get_data(as_text=True)


def test_any_string_as_a_link_token_is_a_4xx_page(web: WebSite) -> None:
    @EXAMPLES
    @given(data=st.data(), method_route=st.sampled_from(ROUTES))
    def check(data: st.DataObject, method_route: tuple[str, str]) -> None:
        method, route = method_route
        token = data.draw(tokens("c" if route == "confirm" else "u"), label="token")
        status = answer(web, method, route, token)
        assert 400 <= status < 500, (method, route, token, status)

    check()


def test_any_string_as_a_form_token_is_refused_with_a_4xx(web: WebSite) -> None:
    reader = web.subscriber("reader@example.org")
    links = {"unsubscribe": web.sign("unsubscribe", reader), "preferences": web.sign("preferences", reader)}
    web.client.get("/subscribe")  # the cookie the subscribe form's token is bound to

    @EXAMPLES
    @given(form_token=st.one_of(tokens(), st.builds(lambda n, m: f"{n}.{m}", numbers(), st.text(max_size=70))))
    def check(form_token: str) -> None:
        for route, link in links.items():
            status = answer(web, "POST", route, link, form_token)
            assert 400 <= status < 500, (route, form_token, status)
        posted = web.client.post("/subscribe", data={"email": "x@example.org", "form_token": form_token})
        assert posted.status_code == 403, (form_token, posted.status_code)

    check()
    assert web.subscriber("reader@example.org").status == Status.ACTIVE, "no forged form unsubscribed anyone"
