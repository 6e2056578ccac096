"""Preferences: what a subscriber receives, changed from the link in every newsletter; unsubscribing from there."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import Site
from web_support import WebSite, make_web, sqlite_only

from syndicate.app import App
from syndicate.pipeline import build
from syndicate.store.subscribers import Subscriber
from syndicate.subscribers import Status
from syndicate.tokens import Secrets


@pytest.fixture
def web(site: Site, make_app: Callable[[Site], App]) -> WebSite:
    site.statement("one.md", "One", "2026-11-20T10:00:00Z", categories=["News", "Speeches"])
    site.statement("bir.md", "Bir", "2026-11-20T11:00:00Z", lang="tr")
    app = make_app(site)
    build(app)
    return make_web(app)


@pytest.fixture
def reader(web: WebSite) -> Subscriber:
    return web.add("reader@example.org")


def link(web: WebSite, subscriber: Subscriber) -> str:
    return f"/preferences/{web.sign('preferences', subscriber)}"


def test_the_page_shows_what_the_subscriber_receives_now(web: WebSite, reader: Subscriber) -> None:
    response = web.client.get(link(web, reader))

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'value="en" checked' in html
    assert 'value="tr">' in html
    assert 'value="immediate" checked' in html
    assert 'name="categories" value="News"' in html
    assert 'name="categories" value="Speeches"' in html
    assert 'name="action" value="unsubscribe"' in html
    assert web.subscriber("reader@example.org") == reader


def test_saving_changes_languages_categories_and_frequency(web: WebSite, reader: Subscriber) -> None:
    token = web.form_token(link(web, reader))

    response = web.client.post(
        link(web, reader),
        data={"form_token": token, "languages": ["en", "tr"], "categories": ["Speeches"], "frequency": "weekly"},
    )

    assert response.status_code == 200
    assert "Your choices are saved" in response.get_data(as_text=True)
    saved = web.subscriber("reader@example.org")
    assert (saved.languages, saved.categories, saved.frequency) == (("en", "tr"), ("Speeches",), "weekly")
    assert saved.status == Status.ACTIVE


def test_unsubscribing_from_the_preferences_page(web: WebSite, reader: Subscriber) -> None:
    token = web.form_token(link(web, reader))

    response = web.client.post(link(web, reader), data={"form_token": token, "action": "unsubscribe"})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert web.subscriber("reader@example.org").status == Status.UNSUBSCRIBED


@sqlite_only
@pytest.mark.parametrize(
    "choice",
    [
        {"languages": []},
        {"languages": ["de"]},
        {"languages": ["en"], "categories": ["Gossip"]},
        {"languages": ["en"], "frequency": "monthly"},
    ],
)
def test_a_choice_not_on_offer_is_refused_and_nothing_changes(
    web: WebSite, reader: Subscriber, choice: dict[str, object]
) -> None:
    token = web.form_token(link(web, reader))
    response = web.client.post(link(web, reader), data={"form_token": token, **choice})
    assert response.status_code == 400
    assert web.subscriber("reader@example.org") == reader


@sqlite_only
def test_a_subscriber_keeps_a_language_no_statement_has_any_more(web: WebSite) -> None:
    old = web.add("old@example.org", languages=("de",))
    token = web.form_token(link(web, old))
    response = web.client.post(link(web, old), data={"form_token": token, "languages": ["de", "en"]})
    assert response.status_code == 200
    assert web.subscriber("old@example.org").languages == ("de", "en")


@sqlite_only
@pytest.mark.parametrize("token", ["", "1.forged"])
def test_a_post_without_the_pages_token_is_refused(web: WebSite, reader: Subscriber, token: str) -> None:
    response = web.client.post(link(web, reader), data={"form_token": token, "action": "unsubscribe"})
    assert response.status_code == 403
    assert web.subscriber("reader@example.org").status == Status.ACTIVE


@sqlite_only
def test_a_cross_site_post_is_refused(web: WebSite, reader: Subscriber) -> None:
    token = web.form_token(link(web, reader))
    response = web.client.post(
        link(web, reader), data={"form_token": token, "action": "unsubscribe"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403
    assert web.subscriber("reader@example.org").status == Status.ACTIVE


@sqlite_only
@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_and_malformed_links_change_nothing(web: WebSite, reader: Subscriber, method: str) -> None:
    forged = Secrets(b"guessed").sign("preferences", reader.id, reader.email)
    confirm_token = web.sign("confirm", reader, expires=int(web.app.clock().timestamp()) + 3600)
    for token, status in ((forged, 403), ("p1", 400), (confirm_token, 400)):
        response = getattr(web.client, method)(f"/preferences/{token}", data={"languages": ["tr"]})
        assert response.status_code == status
    assert web.subscriber("reader@example.org") == reader


@sqlite_only
def test_someone_who_left_sees_it_and_no_unsubscribe_button(web: WebSite) -> None:
    left = web.add("left@example.org", Status.UNSUBSCRIBED)
    html = web.client.get(link(web, left)).get_data(as_text=True)
    assert "does not receive statements at the moment (unsubscribed)" in html
    assert 'value="unsubscribe"' not in html
