"""The outbox state machine on both engines: claims under lease, fencing, hand-off, reaping, abandoning."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from syndicate.outbox import DeliveryState, Outbox, Outcome, Result, RetryPolicy
from syndicate.store import nodes
from syndicate.store.db import Database
from syndicate.store.schema import deliveries, migrate

POLICIES = {"email": RetryPolicy(waits=(60, 300)), "webhook": RetryPolicy(waits=(5,), unknown_after_handoff=False)}


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    migrate(database)
    yield database
    database.dispose()


def plan(db: Database, clock, count: int, channel: str = "email") -> None:
    rows = [
        {"channel": channel, "source_kind": "edition", "source_id": 1, "target": str(i), "state": "pending",
         "attempts": 0, "due_at": clock(), "created_at": clock()}
        for i in range(count)
    ]  # fmt: skip
    with db.write() as conn:
        conn.execute(deliveries.insert(), rows)


def states(db: Database) -> dict[int, str]:
    with db.read() as conn:
        return {r.id: r.state for r in conn.execute(select(deliveries.c.id, deliveries.c.state))}


def outbox(db: Database, node: str = "node-a", lease: float = 60) -> Outbox:
    return Outbox(db, node, POLICIES, lease)


def test_two_nodes_claiming_at_once_never_get_the_same_delivery(db, clock):
    plan(db, clock, 400)
    taken: dict[str, list[int]] = {}

    def claim_all(node: str) -> None:
        box = outbox(db, node)
        mine = taken.setdefault(node, [])
        while claims := box.claim("email", 25, clock()):
            mine += [c.id for c in claims]

    threads = [threading.Thread(target=claim_all, args=(f"node-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [i for ids in taken.values() for i in ids]
    assert len(everything) == len(set(everything)) == 400


def test_a_finish_from_a_node_whose_lease_was_taken_over_changes_nothing(db, clock):
    plan(db, clock, 1)
    slow = outbox(db, "slow", lease=5)
    [stale] = slow.claim("email", 10, clock())
    clock.advance(seconds=10)
    outbox(db, "reaper").reap(clock())
    [fresh] = outbox(db, "fast").claim("email", 10, clock())
    slow.finish([Result(stale, Outcome.FAILED, "too late")], clock())
    assert states(db)[stale.id] == "in_flight", "the stale node's word does not count"
    outbox(db, "fast").finish([Result(fresh, Outcome.SENT)], clock())
    assert states(db)[fresh.id] == "sent"


def test_an_expired_lease_is_claimed_again_before_hand_off_and_unknown_after_it(db, clock):
    plan(db, clock, 2)
    dead = outbox(db, "dead", lease=5)
    before, after = dead.claim("email", 10, clock())
    assert dead.handoff([after], clock()) == {after.id}
    clock.advance(seconds=6)
    counts = outbox(db, "survivor").reap(clock())
    assert counts["reclaimable"] == 1
    assert counts["email_after_handoff"] == 1
    assert states(db) == {before.id: "pending", after.id: "unknown"}


def test_a_webhook_handed_off_by_a_dead_node_is_retried_not_left_unknown(db, clock):
    plan(db, clock, 1, channel="webhook")
    dead = outbox(db, "dead", lease=5)
    [claim] = dead.claim("webhook", 10, clock())
    dead.handoff([claim], clock())
    clock.advance(seconds=6)
    outbox(db, "survivor").reap(clock())
    assert states(db)[claim.id] == "pending"


def test_leases_are_kept_only_for_work_in_hand(db, clock):
    plan(db, clock, 2)
    box = outbox(db, lease=5)
    first, second = box.claim("email", 10, clock())
    assert box.extend(clock()) == 2
    box.finish([Result(first, Outcome.SENT)], clock())
    assert box.extend(clock()) == 1, "a finished delivery's lease is not extended"
    box.release()
    assert box.extend(clock()) == 0, "after the sender let go, the lease runs out on its own"
    clock.advance(seconds=6)
    outbox(db, "other").reap(clock())
    assert states(db)[second.id] == "pending"


def test_a_send_that_fails_half_way_gives_back_what_it_had_not_handed_off(db, clock):
    plan(db, clock, 3)
    box = outbox(db)
    claims = box.claim("email", 10, clock())
    box.handoff(claims[:1], clock())
    assert box.abandon(clock()) == 2
    assert sorted(states(db).values()) == ["in_flight", "pending", "pending"]
    assert box.extend(clock()) == 0, "the handed-off one is left for the reaper"


def test_retry_policy_waits_grow_and_give_up(db, clock):
    plan(db, clock, 1)
    box = outbox(db)
    for _ in range(2):
        [claim] = box.claim("email", 1, clock())
        box.finish([Result(claim, Outcome.RETRY, "451 try later")], clock())
        assert states(db)[claim.id] == "pending"
        clock.advance(seconds=301)
    [claim] = box.claim("email", 1, clock())
    box.finish([Result(claim, Outcome.RETRY, "451 still")], clock())
    assert states(db)[claim.id] == "failed"
    assert RetryPolicy(waits=(60,), give_up_after=30).next_try(1, clock(), clock()) is None
    assert RetryPolicy(waits=(60,)).next_try(1, clock(), clock()) == clock() + timedelta(seconds=60)


def test_a_requeued_delivery_does_not_count_as_an_attempt(db, clock):
    plan(db, clock, 1)
    box = outbox(db)
    [claim] = box.claim("email", 1, clock())
    box.finish([Result(claim, Outcome.REQUEUE, "throttled", clock() + timedelta(minutes=5))], clock())
    with db.read() as conn:
        row = conn.execute(select(deliveries)).one()
    assert row.state == DeliveryState.PENDING
    assert row.attempts == 0
    assert row.due_at == clock() + timedelta(minutes=5)


def test_a_reply_nobody_asked_for_ends_the_session_instead_of_crashing():
    import socket

    from syndicate.deliver.email.smtp import Reply, SmtpConnection
    from syndicate.deliver.email.wire import Session

    ours, theirs = socket.socketpair()
    try:
        connection = SmtpConnection("127.0.0.1", 25)
        connection.sock = ours
        session = Session(connection, timeout=5)
        with pytest.raises(ConnectionError, match="unexpected reply 421"):
            session.on_reply(Reply(421, "4.3.2 shutting down"), [], lambda: True)
        assert not session.alive
    finally:
        ours.close()
        theirs.close()


def test_the_claims_of_a_node_silent_for_three_beats_move_on_before_its_lease_runs_out(db, clock):
    plan(db, clock, 4)
    silent, late = outbox(db, "silent", lease=120), outbox(db, "late", lease=120)
    with db.write() as conn:
        nodes.register(conn, "silent", "worker", clock())
        nodes.register(conn, "late", "worker", clock())
    unsent, handed = silent.claim("email", 2, clock())
    silent.handoff([handed], clock())
    kept = late.claim("email", 2, clock())
    clock.advance(seconds=25)
    with db.write() as conn:
        nodes.beat(conn, "late", clock())  # alive, though its beats come late
    clock.advance(seconds=10)  # "silent" has not beaten for 35 s; "late" for 10 s; no lease has run out
    counts = outbox(db, "reaper").reap(clock(), silent_for=timedelta(seconds=30))
    assert counts["reclaimable"] == 1 and counts["email_after_handoff"] == 1
    assert states(db)[unsent.id] == "pending" and states(db)[handed.id] == "unknown"
    assert {states(db)[c.id] for c in kept} == {"in_flight"}, "a live node's work is never taken"
    assert late.handoff(kept, clock()) == {c.id for c in kept}


def test_settle_records_ends_and_hands_off_in_one_commit_fenced_on_the_lease(db, clock):
    plan(db, clock, 3)
    box = outbox(db, "node", lease=60)
    done, next_one, taken = box.claim("email", 3, clock())
    assert box.settle([], [done], clock()) == {done.id}
    with db.write() as conn:  # another node took one over meanwhile
        conn.execute(deliveries.update().where(deliveries.c.id == taken.id).values(lease_token="other"))
    held = box.settle([Result(done, Outcome.SENT)], [next_one, taken], clock())
    assert held == {next_one.id}, "what another node holds is not handed off"
    assert states(db)[done.id] == "sent"
    box.settle([Result(next_one, Outcome.RETRY, "451 later")], [], clock())
    assert states(db)[next_one.id] == "pending"


def test_a_dead_sending_process_leaves_unknown_only_what_it_had_handed_off(db, clock):
    plan(db, clock, 3)
    box = outbox(db, "node", lease=60)
    claims = box.claim("email", 3, clock())
    box.settle([], [claims[0]], clock())
    assert box.orphaned(claims, clock()) == {claims[0].id}
    assert states(db) == {claims[0].id: "unknown", claims[1].id: "pending", claims[2].id: "pending"}
