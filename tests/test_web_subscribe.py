"""Subscribing through the web form, and confirming from the mail: double opt-in, same answer for every address."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from conftest import Clock, Site
from web_support import (
    WebSite,
    deliveries,
    make_web,
    plan_requests,
    sqlite_only,
    stored_requests,
    subscribe,
    subscribe_and_plan,
)

from syndicate.app import App
from syndicate.pipeline import build
from syndicate.plan import subscribers as removal
from syndicate.store import subscribers as store
from syndicate.subscribers import Status
from syndicate.tokens import Secrets, confirm_expiry
from syndicate.web.forms import COOKIE

MakeWeb = Callable[..., WebSite]


@pytest.fixture
def make(site: Site, make_app: Callable[[Site], App]) -> MakeWeb:
    """A web site with an English and a Turkish statement; ``extra`` adds TOML to the config."""

    def make(extra: str = "") -> WebSite:
        site.extra = extra
        site.statement("one.md", "One", "2026-11-20T10:00:00Z", categories=["News"])
        site.statement("bir.md", "Bir", "2026-11-20T11:00:00Z", categories=["Haberler"], lang="tr")
        app = make_app(site)
        build(app)
        return make_web(app)

    return make


@pytest.fixture
def web(make: MakeWeb) -> WebSite:
    return make()


def confirmations(web: WebSite, subscriber_id: int) -> list[dict[str, Any]]:
    return [d for d in deliveries(web.app) if d["target"] == str(subscriber_id)]


# -- the form --


@sqlite_only
def test_form_offers_the_languages_categories_and_frequencies_of_the_site(web: WebSite) -> None:
    response = web.client.get("/subscribe")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<label for="email">' in html
    assert '<input id="email" name="email" type="email"' in html
    for value in ("en", "tr"):
        assert f'name="languages" value="{value}"' in html
    for value in ("News", "Haberler"):
        assert f'name="categories" value="{value}"' in html
    for value in ("immediate", "daily", "weekly"):
        assert f'name="frequency" value="{value}"' in html
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


@sqlite_only
def test_the_form_speaks_the_browsers_language(web: WebSite) -> None:
    turkish = web.client.get("/subscribe", headers={"Accept-Language": "tr-TR,tr;q=0.9,en;q=0.5"})
    english = web.client.get("/subscribe?lang=en", headers={"Accept-Language": "tr"})
    assert '<html lang="tr">' in turkish.get_data(as_text=True)
    assert "Açıklamalara abone olun" in turkish.get_data(as_text=True)
    assert '<html lang="en">' in english.get_data(as_text=True)


# -- recording the request --


def test_subscribing_stores_a_request_the_tick_makes_pending_with_one_confirmation(web: WebSite, clock: Clock) -> None:
    response = subscribe(web, "Reader@Example.NET", languages=["en", "tr"], categories=["News"], frequency="daily")

    assert response.status_code == 200
    assert "Check your mail" in response.get_data(as_text=True)
    assert stored_requests(web.app) == ["reader@example.net"]
    with web.app.db.read() as conn:
        assert store.by_email(conn, "reader@example.net") is None, "the request itself touches no subscriber"
    clock.advance(seconds=30)  # the next tick
    assert plan_requests(web.app) == {"requests": 1, "confirmations": 1}
    assert stored_requests(web.app) == []
    stored = web.subscriber("reader@example.net")
    assert stored.status == Status.PENDING
    assert (stored.languages, stored.categories, stored.frequency) == (("en", "tr"), ("News",), "daily")
    assert stored.consent_at == clock.now - timedelta(seconds=30), "consent is given when asked, not when planned"
    assert stored.consent_method == "web form (client 127.0.0.1)"
    [planned] = confirmations(web, stored.id)
    assert (planned["channel"], planned["state"]) == ("email", "pending")


def test_the_answer_is_the_same_whether_or_not_the_address_is_known(web: WebSite) -> None:
    web.add("active@example.org")
    web.add("left@example.org", Status.UNSUBSCRIBED)
    web.add("bounced@example.org", Status.BOUNCED)
    subscribe_and_plan(web, "waiting@example.org")
    answers = {}
    for email in (
        "new@example.org",
        "waiting@example.org",
        "active@example.org",
        "left@example.org",
        "bounced@example.org",
    ):
        response = subscribe(web, email)
        body = response.get_data(as_text=True).replace(email, "ADDRESS")
        answers[email] = (response.status_code, sorted({name for name, _ in response.headers} - {"Date"}), body)
    assert len(set(map(repr, answers.values()))) == 1, "the answer tells known addresses apart"


def test_an_active_subscriber_gets_no_mail_and_keeps_their_choices(web: WebSite) -> None:
    before = web.add("active@example.org", languages=("tr",))

    subscribe_and_plan(web, "active@example.org", languages=["en"], frequency="weekly")

    assert web.subscriber("active@example.org") == before
    assert confirmations(web, before.id) == []


def test_an_unsubscribed_address_is_pending_again_with_a_new_consent_record(web: WebSite, clock: Clock) -> None:
    left = web.add("left@example.org", Status.UNSUBSCRIBED)
    later = clock.advance(days=3)

    subscribe_and_plan(web, "left@example.org", environ_base={"REMOTE_ADDR": "203.0.113.9"})

    again = web.subscriber("left@example.org")
    assert again.status == Status.PENDING
    assert (again.consent_at, again.consent_method) == (later, "web form (client 203.0.113.9)")
    assert again.unsubscribed_at is None
    assert len(confirmations(web, left.id)) == 1


def test_asking_twice_the_same_day_plans_one_confirmation(web: WebSite) -> None:
    subscribe_and_plan(web, "twice@example.org")
    subscribe_and_plan(web, "twice@example.org", frequency="weekly")

    stored = web.subscriber("twice@example.org")
    assert stored.frequency == "weekly"
    assert len(confirmations(web, stored.id)) == 1


def test_a_suppressed_address_is_not_mailed(web: WebSite) -> None:
    with web.app.db.write() as conn:
        store.suppress(conn, "gone@example.org", "550 no such user", web.app.clock())

    response = subscribe_and_plan(web, "gone@example.org")

    assert response.status_code == 200
    with web.app.db.read() as conn:
        assert store.by_email(conn, "gone@example.org") is None
    assert deliveries(web.app) == []


# -- what the form refuses --


@sqlite_only
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not an address"}, "valid e-mail address"),
        ({"email": "a@b@example.org"}, "valid e-mail address"),
        ({"languages": ["xx"]}, "options listed"),
        ({"categories": ["Not a category"]}, "options listed"),
        ({"frequency": "hourly"}, "options listed"),
    ],
)
def test_a_bad_form_is_shown_again_with_the_reason_and_nothing_is_stored(
    web: WebSite, fields: dict[str, Any], message: str
) -> None:
    fields = dict(fields)  # the parameters are shared by both engines' runs
    response = subscribe(web, fields.pop("email", "ok@example.org"), **fields)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'role="alert"' in html
    assert stored_requests(web.app) == []
    plan_requests(web.app)
    with web.app.db.read() as conn:
        assert store.counts(conn)["pending"] == 0


@sqlite_only
def test_no_language_chosen_means_the_language_of_the_page(web: WebSite) -> None:
    subscribe_and_plan(web, "tr@example.org", languages=[], lang="tr")
    assert web.subscriber("tr@example.org").languages == ("tr",)


@sqlite_only
def test_a_post_without_the_cookie_the_token_is_bound_to_is_refused(web: WebSite) -> None:
    token = web.form_token("/subscribe")
    stranger = web.flask.test_client()  # another browser: no cookie

    response = stranger.post("/subscribe", data={"email": "victim@example.org", "form_token": token})

    assert response.status_code == 403
    assert "sent from another site" in response.get_data(as_text=True)
    assert stranger.get_cookie(COOKIE) is not None, "the page sets a cookie so the next try works"
    assert stored_requests(web.app) == []
    plan_requests(web.app)
    assert deliveries(web.app) == []


@sqlite_only
@pytest.mark.parametrize("token", ["", "garbage", "99999999999.00", "1.2.3"])
def test_a_missing_or_forged_token_is_refused(web: WebSite, token: str) -> None:
    web.client.get("/subscribe")
    response = web.client.post("/subscribe", data={"email": "x@example.org", "form_token": token})
    assert response.status_code == 403
    assert stored_requests(web.app) == []
    plan_requests(web.app)
    assert deliveries(web.app) == []


@sqlite_only
def test_a_token_from_yesterday_is_refused(web: WebSite, clock: Clock) -> None:
    token = web.form_token("/subscribe")
    clock.advance(hours=25)
    response = web.client.post("/subscribe", data={"email": "late@example.org", "form_token": token})
    assert response.status_code == 403


@sqlite_only
def test_a_post_the_browser_marks_cross_site_is_refused_even_with_a_token(web: WebSite) -> None:
    response = subscribe(web, "x@example.org", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert stored_requests(web.app) == []
    plan_requests(web.app)
    assert deliveries(web.app) == []


@sqlite_only
def test_a_same_origin_post_is_accepted(web: WebSite) -> None:
    assert subscribe(web, "x@example.org", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


# -- rate limits --


def test_a_flood_from_one_client_is_answered_429_and_the_limit_lifts_by_itself(make: MakeWeb, clock: Clock) -> None:
    web = make("[web]\nsubscribe_per_client = 5\nrate_window_seconds = 60\n")
    token = web.form_token("/subscribe")

    def send(i: int) -> Any:
        return web.client.post(
            "/subscribe", data={"email": f"flood{i}@example.org", "languages": ["en"], "form_token": token}
        )

    answers = [send(i) for i in range(50)]

    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert {a.status_code for a in answers[5:]} == {429}
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    plan_requests(web.app)
    with web.app.db.read() as conn:
        assert store.counts(conn)["pending"] == 5
    clock.advance(seconds=60)
    assert send(99).status_code == 200


@sqlite_only
def test_other_clients_are_not_held_up_by_a_flood(make: MakeWeb) -> None:
    web = make("[web]\nsubscribe_per_client = 2\n")
    for i in range(5):
        subscribe(web, f"a{i}@example.org", environ_base={"REMOTE_ADDR": "198.51.100.1"})
    other = subscribe(web, "b@example.org", environ_base={"REMOTE_ADDR": "198.51.100.2"})
    assert other.status_code == 200


@sqlite_only
def test_one_address_cannot_be_mail_bombed_from_many_clients(make: MakeWeb) -> None:
    web = make("[web]\nsubscribe_per_address = 2\n")
    answers = [
        subscribe(web, "target@example.org", environ_base={"REMOTE_ADDR": f"198.51.100.{i}"}).status_code
        for i in range(4)
    ]
    assert answers == [200, 200, 429, 429]


# -- confirm --


def test_the_confirmation_link_activates_and_says_so(web: WebSite, clock: Clock) -> None:
    subscribe_and_plan(web, "new@example.org")
    pending = web.subscriber("new@example.org")
    clock.advance(hours=2)

    response = web.client.get(f"/confirm/{web.sign('confirm', pending, confirm_expiry(clock.now))}")

    assert response.status_code == 200
    assert "Subscription confirmed" in response.get_data(as_text=True)
    active = web.subscriber("new@example.org")
    assert (active.status, active.confirmed_at) == (Status.ACTIVE, clock.now)
    assert "/preferences/" in response.get_data(as_text=True)


def test_confirming_twice_says_it_is_already_done(web: WebSite) -> None:
    subscribe_and_plan(web, "new@example.org")
    link = f"/confirm/{web.sign('confirm', web.subscriber('new@example.org'), confirm_expiry(web.app.clock()))}"
    web.client.get(link)
    again = web.client.get(link)
    assert again.status_code == 200
    assert "Already confirmed" in again.get_data(as_text=True)


def test_an_expired_confirmation_link_changes_nothing(web: WebSite, clock: Clock) -> None:
    subscribe_and_plan(web, "slow@example.org")
    token = web.sign("confirm", web.subscriber("slow@example.org"), confirm_expiry(clock.now))
    clock.advance(days=8)

    response = web.client.get(f"/confirm/{token}")

    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert web.subscriber("slow@example.org").status == Status.PENDING


def test_a_forged_confirmation_link_changes_nothing(web: WebSite) -> None:
    subscribe_and_plan(web, "victim@example.org")
    victim = web.subscriber("victim@example.org")
    forged = Secrets(b"not our secret").sign("confirm", victim.id, victim.email, confirm_expiry(web.app.clock()))

    response = web.client.get(f"/confirm/{forged}")

    assert response.status_code == 403
    assert "not valid" in response.get_data(as_text=True)
    assert web.subscriber("victim@example.org").status == Status.PENDING


@sqlite_only
@pytest.mark.parametrize("token", ["garbage", "c", "c1", "c1.2", "cX.0.abc", "c1.0.abc.def", "c" + "1" * 300])
def test_a_malformed_confirmation_link_changes_nothing(web: WebSite, token: str) -> None:
    subscribe_and_plan(web, "x@example.org")
    response = web.client.get(f"/confirm/{token}")
    assert response.status_code == 400
    assert "incomplete" in response.get_data(as_text=True)
    assert web.subscriber("x@example.org").status == Status.PENDING


@sqlite_only
def test_an_unsubscribe_token_does_not_confirm(web: WebSite) -> None:
    subscribe_and_plan(web, "x@example.org")
    response = web.client.get(f"/confirm/{web.sign('unsubscribe', web.subscriber('x@example.org'))}")
    assert response.status_code == 400
    assert web.subscriber("x@example.org").status == Status.PENDING


def test_a_link_for_a_subscriber_no_longer_stored_is_not_valid(web: WebSite) -> None:
    subscribe_and_plan(web, "x@example.org")
    token = web.sign("confirm", web.subscriber("x@example.org"), confirm_expiry(web.app.clock()))
    with web.app.db.write() as conn:
        removal.remove(conn, "x@example.org", web.app.clock())
    assert web.client.get(f"/confirm/{token}").status_code == 403


def test_an_old_confirmation_link_does_not_bring_back_someone_who_left(web: WebSite) -> None:
    subscribe_and_plan(web, "x@example.org")
    pending = web.subscriber("x@example.org")
    token = web.sign("confirm", pending, confirm_expiry(web.app.clock()))
    with web.app.db.write() as conn:
        store.set_status(conn, pending.id, Status.UNSUBSCRIBED, web.app.clock())

    response = web.client.get(f"/confirm/{token}")

    assert response.status_code == 409
    assert web.subscriber("x@example.org").status == Status.UNSUBSCRIBED


@sqlite_only
def test_the_confirmation_page_speaks_the_subscribers_language(web: WebSite) -> None:
    subscribe_and_plan(web, "okur@example.org", languages=["tr"])
    token = web.sign("confirm", web.subscriber("okur@example.org"), confirm_expiry(web.app.clock()))
    html = web.client.get(f"/confirm/{token}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="tr">' in html
    assert "Abonelik onaylandı" in html
