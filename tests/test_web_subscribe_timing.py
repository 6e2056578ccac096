"""The subscribe answer takes as long for a known address as for a new one: its time tells nobody who is subscribed.

The test measures no absolute time: after a warm-up it posts pairs of requests,
one for an active address and one for a new one, back to back in a shuffled
order, and compares the two with each other: the median of their ratios must
be close to 1. (The code before the intake table gave 1.4 to 1.6 here: new
addresses did the inserts and the planning in the request.)
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable

import pytest
from conftest import Site
from web_support import WebSite, make_web

from syndicate.app import App
from syndicate.pipeline import build

WARM_UP = 20
SAMPLES = 150  # per kind: a few hundred requests in all, a second or two
TOLERANCE = 1.15  # equal work measures 0.97 to 1.03 here; the old code 1.4 to 1.6


@pytest.fixture
def web(site: Site, make_app: Callable[[Site], App]) -> WebSite:
    # The limits are out of the way: every request must reach the store.
    site.extra = "[web]\nsubscribe_per_client = 1000000\nsubscribe_per_address = 1000000\n"
    site.statement("one.md", "One", "2026-11-20T10:00:00Z", categories=["News"])
    app = make_app(site)
    build(app)
    return make_web(app)


def timed_pairs(web: WebSite, pairs: list[tuple[str, str]]) -> list[tuple[float, float]]:
    """Post the form for each (known, new) pair, one right after the other in a random order: their seconds."""
    token = web.form_token("/subscribe")
    shuffle = random.Random(9).shuffle
    timed = []
    for known, new in pairs:
        turn = [known, new]
        shuffle(turn)
        seconds = {email: timed_post(web, token, email) for email in turn}
        timed.append((seconds[known], seconds[new]))
    return timed[WARM_UP:]


def timed_post(web: WebSite, token: str, email: str) -> float:
    """Seconds the app takes to answer one subscribe post (in this process: the server's own time)."""
    data = {"email": email, "languages": ["en"], "frequency": "immediate", "form_token": token}
    started = time.perf_counter()
    response = web.client.post("/subscribe", data=data)
    took = time.perf_counter() - started
    assert response.status_code == 200, response.status
    return took


def test_a_known_address_is_answered_in_the_same_time_as_a_new_one(web: WebSite) -> None:
    count = WARM_UP + SAMPLES
    # Same length, same shape: only whether the address is on the list differs.
    pairs = [(web.add(f"known{i:04d}@example.org").email, f"fresh{i:04d}@example.org") for i in range(count)]
    gc.collect()
    gc.disable()  # a collection landing on one kind more than the other is noise, not signal
    try:
        timed = timed_pairs(web, pairs)
    finally:
        gc.enable()

    # Each pair ran back to back, so a burst of load elsewhere on the machine slows both alike.
    paired = statistics.median(new / known for known, new in timed)
    apart = statistics.median(n for _, n in timed) / statistics.median(k for k, _ in timed)
    assert 1 / TOLERANCE < paired < TOLERANCE, f"new/known: {paired:.2f} in pairs ({apart:.2f} of the medians)"
