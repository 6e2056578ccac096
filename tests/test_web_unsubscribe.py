"""Unsubscribing: a page with one button, RFC 8058 one-click, and links that survive a secret rotation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import Site
from web_support import WebSite, form_token, make_web, sqlite_only

from syndicate.app import App
from syndicate.store.subscribers import Subscriber
from syndicate.subscribers import Status
from syndicate.tokens import Secrets

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def web(site: Site, make_app: Callable[[Site], App]) -> WebSite:
    return make_web(make_app(site))


@pytest.fixture
def reader(web: WebSite) -> Subscriber:
    return web.add("reader@example.org")


def link(web: WebSite, subscriber: Subscriber) -> str:
    return f"/unsubscribe/{web.sign('unsubscribe', subscriber)}"


def test_opening_the_link_shows_one_button_and_changes_nothing(web: WebSite, reader: Subscriber) -> None:
    response = web.client.get(link(web, reader))

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count("<button") == 1
    assert 'method="post"' in html
    assert "reader@example.org" in html
    assert web.subscriber("reader@example.org") == reader


def test_pressing_the_button_unsubscribes_at_once(web: WebSite, reader: Subscriber) -> None:
    token = web.form_token(link(web, reader))

    response = web.client.post(link(web, reader), data={"form_token": token})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    left = web.subscriber("reader@example.org")
    assert (left.status, left.unsubscribed_at) == (Status.UNSUBSCRIBED, web.app.clock())


@sqlite_only
def test_a_post_that_is_neither_one_click_nor_from_the_page_is_refused(web: WebSite, reader: Subscriber) -> None:
    for data in ({}, {"form_token": "1.forged"}, {"List-Unsubscribe": "Yes"}):
        response = web.client.post(link(web, reader), data=data)
        assert response.status_code == 400
        assert 'role="alert"' in response.get_data(as_text=True)
    assert web.subscriber("reader@example.org").status == Status.ACTIVE


@sqlite_only
def test_a_button_token_only_works_for_its_own_link(web: WebSite, reader: Subscriber) -> None:
    other = web.add("other@example.org")
    token = web.form_token(link(web, other))
    assert web.client.post(link(web, reader), data={"form_token": token}).status_code == 400


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda client, url: client.post(url, data={"List-Unsubscribe": "One-Click"}), id="urlencoded"),
        pytest.param(
            lambda client, url: client.post(
                url, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
            ),
            id="multipart",
        ),
        pytest.param(
            lambda client, url: client.post(url, data=ONE_CLICK, content_type="application/x-www-form-urlencoded"),
            id="raw-urlencoded",
        ),
    ],
)
def test_rfc_8058_one_click_unsubscribes_with_200_and_no_redirect(
    web: WebSite, reader: Subscriber, send: Callable[[Any, str], Any]
) -> None:
    provider = web.flask.test_client(use_cookies=False)  # mail providers send no cookies

    response = send(provider, link(web, reader))

    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert web.subscriber("reader@example.org").status == Status.UNSUBSCRIBED


@sqlite_only
def test_a_multipart_one_click_body_as_a_mail_provider_writes_it(web: WebSite, reader: Subscriber) -> None:
    boundary = "----provider"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    )
    response = web.flask.test_client(use_cookies=False).post(
        link(web, reader), data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 200
    assert web.subscriber("reader@example.org").status == Status.UNSUBSCRIBED


def test_one_click_twice_is_still_200(web: WebSite, reader: Subscriber) -> None:
    for _ in range(2):
        assert web.client.post(link(web, reader), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert web.subscriber("reader@example.org").status == Status.UNSUBSCRIBED


@sqlite_only
def test_the_page_of_someone_already_unsubscribed_says_so_without_a_button(web: WebSite, reader: Subscriber) -> None:
    web.client.post(link(web, reader), data={"List-Unsubscribe": "One-Click"})
    html = web.client.get(link(web, reader)).get_data(as_text=True)
    assert "You are unsubscribed" in html
    assert "<button" not in html


def test_a_bounced_subscriber_stays_bounced(web: WebSite) -> None:
    bounced = web.add("bounced@example.org", Status.BOUNCED)
    response = web.client.post(link(web, bounced), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert web.subscriber("bounced@example.org").status == Status.BOUNCED


@sqlite_only
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_link_changes_nothing(web: WebSite, reader: Subscriber, method: str) -> None:
    forged = Secrets(b"guessed").sign("unsubscribe", reader.id, reader.email)
    response = getattr(web.client, method)(f"/unsubscribe/{forged}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 403
    assert "not valid" in response.get_data(as_text=True)
    assert web.subscriber("reader@example.org").status == Status.ACTIVE


@sqlite_only
def test_a_link_for_another_address_changes_nothing(web: WebSite, reader: Subscriber) -> None:
    borrowed = web.app.secrets.sign("unsubscribe", reader.id, "someone-else@example.org")
    response = web.client.post(f"/unsubscribe/{borrowed}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 403
    assert web.subscriber("reader@example.org").status == Status.ACTIVE


@sqlite_only
def test_an_expired_link_changes_nothing(web: WebSite, reader: Subscriber) -> None:
    stale = web.sign("unsubscribe", reader, expires=int(web.app.clock().timestamp()) - 60)
    response = web.client.post(f"/unsubscribe/{stale}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 410
    assert web.subscriber("reader@example.org").status == Status.ACTIVE


@sqlite_only
@pytest.mark.parametrize("token", ["x", "u", "u1", "u1.0", "p1.0.abc", "u1.0.a.b", "u" + "9" * 400])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_malformed_link_changes_nothing(web: WebSite, reader: Subscriber, token: str, method: str) -> None:
    response = getattr(web.client, method)(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert "incomplete" in response.get_data(as_text=True)
    assert web.subscriber("reader@example.org").status == Status.ACTIVE


def test_links_signed_before_a_secret_rotation_still_work(
    site: Site, make_app: Callable[[Site], App], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", "the old secret")
    before = make_web(make_app(site))
    reader = before.add("reader@example.org")
    old_link = link(before, reader)
    monkeypatch.setenv("SYNDICATE_SECRET", "the new secret")
    monkeypatch.setenv("SYNDICATE_OLD_SECRETS", "an older one, the old secret")
    site.extra = '[web]\nprevious_secrets_env = "SYNDICATE_OLD_SECRETS"\n'
    after = make_web(make_app(site))

    page = after.client.get(old_link)
    response = after.client.post(old_link, data={"form_token": form_token(page.get_data(as_text=True))})

    assert response.status_code == 200
    assert after.subscriber("reader@example.org").status == Status.UNSUBSCRIBED


@sqlite_only
def test_the_page_speaks_the_subscribers_language(web: WebSite) -> None:
    okur = web.add("okur@example.org", languages=("tr",))
    html = web.client.get(link(web, okur), headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="tr">' in html
    assert "Abonelikten çık" in html
