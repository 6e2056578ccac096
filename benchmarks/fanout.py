"""Newsletter fan-out: one edition to 100,000 subscribers over loopback SMTP, three ways, one run.

    .venv/bin/python benchmarks/fanout.py [--subscribers 100000] [--naive 1000] [--no-memory]

Prints messages per second for:
  (a) the naive baseline: render the template, build an EmailMessage and open a
      new SMTP connection (smtplib) for every message;
  (b) the ceiling: the same pre-rendered bytes through syndicate's own SMTP client
      over the same connections: no database, no personalisation;
  (c) syndicate: plan the edition into the outbox, claim, personalise, send,
      record every outcome (SQLite).
Goals: (c) >= 10x (a) and >= 70% of (b). Then peak memory (max RSS) of a
process doing (c) for 20,000 and for 200,000 subscribers: goal <= 1.2x.

With --dkim, three signed cases follow, in the same run:
  (d) syndicate with an RSA-2048 DKIM signature on every message;
  (e) with RSA and Ed25519 signatures on every message;
  (f) (d) with dkimpy signing instead of OpenSSL (the before-figure; --dkimpy subscribers).
Goals: (d) >= 3x (a) and >= 8x (f); (e) within 15% of (d). OpenSSL's own RSA-2048
signing rate on one core (`openssl speed`) is printed beside them as the ceiling.

With --relays 2, the edition goes over two relays (two sinks, equal weights) and
one sink is stopped a quarter of the way through: nothing may be lost (every
delivery sent, or unknown where the sink died under a message) and nothing
doubled; the rate is printed beside (c)'s.
The sink is tests/servers/smtp_sink_server.py in its own process; its CPU use is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the loopback servers: `servers.…`, as the tests import them

import jinja2  # noqa: E402
from servers.smtp_sink import SinkProcess, start_sink  # noqa: E402
from sqlalchemy import select  # noqa: E402

from syndicate.app import build_app  # noqa: E402
from syndicate.config import load  # noqa: E402
from syndicate.deliver.email.transports import Batch, SmtpTransport, send_all  # noqa: E402
from syndicate.deliver.email.wire import RelaySettings, WireSettings  # noqa: E402
from syndicate.mail import Letter, MessageTemplate  # noqa: E402
from syndicate.outbox import Channel, Claim  # noqa: E402
from syndicate.pipeline import build, tick  # noqa: E402
from syndicate.store import subscribers as subscriber_store  # noqa: E402
from syndicate.store.editions import get as get_edition  # noqa: E402
from syndicate.store.schema import deliveries  # noqa: E402
from syndicate.subscribers import Frequency, NewSubscriber  # noqa: E402

CONNECTIONS = 4
BATCH = 200
CONFIG = """
[site]
title = "IMKANDER"
url = "https://www.imkander.org"
timezone = "Europe/Istanbul"
rights = "All rights reserved; quote only with an active link."

[email]
transport = "smtp"
from_address = "news@imkander.org"
batch = {batch}

[email.smtp]
host = "127.0.0.1"
port = {port}
connections = {connections}
"""
DKIM = """
[email.dkim]
domain = "imkander.org"
selector = "rsa2026"
key_file = "{rsa}"
"""
ED25519 = """algorithms = ["rsa-sha256", "ed25519-sha256"]
ed25519_selector = "ed2026"
ed25519_key_file = "{ed25519}"
"""
BODY = "\n\n".join(["The association continues its work with immigrants, war widows and orphans. " * 6] * 6)


def make_site(root: Path, port: int, subscribers: int, signing: str = "") -> Path:
    """A site whose database holds ``subscribers`` active subscribers and one statement ready to mail.

    ``signing``: "" unsigned, "rsa" or "rsa+ed25519" (keys made by openssl in ``root``).
    """
    (root / "statements").mkdir(parents=True)
    shutil.copytree(ROOT / "templates", root / "templates")
    config_path = root / "config.toml"
    text = CONFIG.format(port=port, batch=BATCH, connections=CONNECTIONS)
    if signing:
        rsa, ed25519 = root / "rsa.pem", root / "ed25519.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(rsa)],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "ED25519", "-out", str(ed25519)], check=True, capture_output=True
        )
        text += DKIM.format(rsa=rsa) + (ED25519.format(ed25519=ed25519) if "ed25519" in signing else "")
    config_path.write_text(text, encoding="utf-8")
    app = build_app(load(config_path))
    try:
        tick(app)  # the planning cursor starts here
        with app.db.write() as conn:
            for start in range(0, subscribers, 10_000):
                chunk = range(start, min(start + 10_000, subscribers))
                people = [
                    NewSubscriber(f"reader{i}@example.org", ("en",), (), Frequency.IMMEDIATE, True, "benchmark")
                    for i in chunk
                ]
                subscriber_store.add_many(conn, people, app.clock())
    finally:
        app.close()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    text = f'+++\ntitle = "Solidarity continues: Dayanışma sürüyor"\npublished = {now}\ncategories = ["Statements"]\n+++\n\n{BODY}\n'
    (root / "statements" / "news.md").write_text(text, encoding="utf-8")
    return config_path


def syndicate_run(config_path: Path) -> dict[str, Any]:
    """(c): ingest, then plan and send the edition with every state change recorded."""
    app = build_app(load(config_path))
    try:
        build(app)
        began = time.perf_counter()
        planned = app.stage("plan-email").run(app.clock(), lambda: False)
        planning = time.perf_counter() - began
        sent = app.stage("send-email").run(app.clock(), lambda: False)
        total = time.perf_counter() - began
        with app.db.read() as conn:
            edition = get_edition(conn, 1)
    finally:
        app.close()
    assert edition is not None
    return {"planned": planned, "sent": sent, "planning": planning, "seconds": total, "template": edition.message}


def ceiling_run(port: int, template: bytes, count: int) -> float:
    """(b): the same bytes through syndicate's SMTP client and connections; no database."""
    data = MessageTemplate.from_bytes(template).fill(
        dict.fromkeys(
            (b"syndicatemessageidx", b"SYNDICATEUNSUBSCRIBEX", b"SYNDICATEPREFERENCESX", b"SYNDICATECONFIRMX"), b"x"
        )
        | {b"syndicatetox@syndicate.invalid": b"reader@example.org"}
    )
    now = datetime.now(UTC)
    relay = RelaySettings("sink", "127.0.0.1", port, "none", 30.0, "bench", None, CONNECTIONS, 0.0)
    transport = SmtpTransport(WireSettings((relay,)), BATCH, lambda: now, None, in_process=False)  # as syndicate sends
    finished = {1: MessageTemplate((data,))}  # the same bytes for everyone: nothing to fill in
    claims = {i: Claim(i, Channel.EMAIL, "edition", 1, str(i), 1, now, "t") for i in range(count)}
    letters = [Letter(i, "news@imkander.org", "reader@example.org", 1, {}) for i in range(count)]
    began = time.perf_counter()
    for start in range(0, count, BATCH * CONNECTIONS):
        chunk = Batch(letters[start : start + BATCH * CONNECTIONS], claims, finished)
        report = send_all(transport, chunk, lambda: False)
        assert all(r.outcome == "sent" for r in report.recorded)
    transport.close()
    return time.perf_counter() - began


def naive_run(port: int, count: int) -> float:
    """(a): render, build an EmailMessage, and open a new connection, for every message."""
    env = jinja2.Environment(autoescape=True)
    html = env.from_string("<html><body><h1>{{ title }}</h1>{% for p in paragraphs %}<p>{{ p }}</p>{% endfor %}"
                           "<p><a href='https://news.imkander.org/unsubscribe/{{ token }}'>Unsubscribe</a></p></body></html>")  # fmt: skip
    text = env.from_string("{{ title }}\n\n{% for p in paragraphs %}{{ p }}\n\n{% endfor %}Unsubscribe: {{ token }}\n")
    paragraphs = BODY.split("\n\n")
    began = time.perf_counter()
    for i in range(count):
        context = {"title": "Solidarity continues: Dayanışma sürüyor", "paragraphs": paragraphs, "token": f"t{i}"}
        message = EmailMessage()
        message["From"] = "IMKANDER <news@imkander.org>"
        message["To"] = f"reader{i}@example.org"
        message["Subject"] = context["title"]
        message.set_content(text.render(context))
        message.add_alternative(html.render(context), subtype="html")
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.send_message(message)
    return time.perf_counter() - began


def memory_child(subscribers: int) -> None:
    """Run (c) for ``subscribers`` in this process and print its peak memory as JSON."""
    with start_sink() as sink:
        root = Path(tempfile.mkdtemp(prefix="syndicate-fanout-mem-"))
        try:
            result = syndicate_run(make_site(root, sink.port, subscribers))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"subscribers": subscribers, "peak_mib": peak_kib / 1024, "sent": result["sent"].get("sent", 0)}))


def memory(subscribers: int) -> dict[str, Any]:
    """Peak memory of a fresh process doing (c) for ``subscribers``."""
    output = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(subscribers)], capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def signed_rounds(sink: SinkProcess, subscribers: int, count: int, signing: str, dkimpy: bool = False) -> list[float]:
    """(d), (e) or (f): ``count`` fresh sites sending one signed edition; msg/s of each."""
    rates = []
    os.environ.pop("SYNDICATE_DKIM_SIGNER", None)
    if dkimpy:
        os.environ["SYNDICATE_DKIM_SIGNER"] = "dkimpy"  # the sending process signs with dkimpy
    try:
        for _ in range(count):
            root = Path(tempfile.mkdtemp(prefix="syndicate-fanout-dkim-"))
            try:
                result = syndicate_run(make_site(root, sink.port, subscribers, signing))
                rates.append(result["sent"].get("sent", 0) / result["seconds"])
            finally:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        os.environ.pop("SYNDICATE_DKIM_SIGNER", None)
    return rates


def relays_run(subscribers: int) -> dict[str, Any]:
    """Two sinks as two relays; the first is stopped a quarter of the way through the send."""
    with start_sink(track_ids=True) as first, start_sink(track_ids=True) as second:
        root = Path(tempfile.mkdtemp(prefix="syndicate-fanout-relays-"))
        try:
            config_path = make_site(root, first.port, subscribers)
            relays = "".join(
                f'[[email.relays]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\nconnections = {CONNECTIONS // 2}\n'
                f"timeout_seconds = 5.0\n\n"
                for name, port in (("first", first.port), ("second", second.port))
            )
            config_path.write_text(config_path.read_text() + relays, encoding="utf-8")
            stopped_at: list[int] = []

            def stop_first() -> None:
                while first.stats().messages < subscribers // 4:
                    time.sleep(0.01)
                stopped_at.append(first.stop().messages)

            stopper = threading.Thread(target=stop_first, daemon=True)
            stopper.start()
            result = syndicate_run(config_path)
            stopper.join(timeout=30)
            app = build_app(load(config_path))
            try:
                with app.db.read() as conn:
                    states = dict(conn.execute(select(deliveries.c.id, deliveries.c.state)).all())
            finally:
                app.close()
            second.stop()
            arrived = first.message_ids() + second.message_ids()
        finally:
            shutil.rmtree(root, ignore_errors=True)
    copies = [arrived.get(f"<syndicate.{i}@imkander.org>", 0) for i in states]
    sent = [arrived.get(f"<syndicate.{i}@imkander.org>", 0) for i, state in states.items() if state == "sent"]
    return {
        "rate": result["sent"].get("sent", 0) / result["seconds"],
        "outcomes": result["sent"],
        "first_took": stopped_at[0] if stopped_at else 0,
        "lost": sum(
            1 for i, state in states.items() if state == "sent" and not arrived.get(f"<syndicate.{i}@imkander.org>")
        ),
        "doubled": sum(1 for n in copies if n > 1),
        "sent_once": all(n == 1 for n in sent),
    }


def openssl_rsa_rate() -> float:
    """OpenSSL's RSA-2048 signatures per second on one core, as `openssl speed` measures it now."""
    output = subprocess.run(["openssl", "speed", "-seconds", "2", "rsa2048"], capture_output=True, text=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("rsa 2048"))
    return float(line.split()[-2])


def rounds(
    sink: SinkProcess, subscribers: int, count: int
) -> tuple[list[float], list[float], dict[str, Any], float, float]:
    """(c) then (b), ``count`` times in turn on a fresh site each time: the machine is shared and noisy."""
    syndicate_rates, ceiling_rates = [], []
    result: dict[str, Any] = {}
    cores_b = cores_c = 0.0
    for _ in range(count):
        root = Path(tempfile.mkdtemp(prefix="syndicate-fanout-"))
        try:
            config_path = make_site(root, sink.port, subscribers)
            before = sink.stats()
            result = syndicate_run(config_path)
            cores_c = sink.stats().since(before).cores
            syndicate_rates.append(result["sent"].get("sent", 0) / result["seconds"])
            before = sink.stats()
            ceiling_rates.append(subscribers / ceiling_run(sink.port, result["template"], subscribers))
            cores_b = sink.stats().since(before).cores
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return syndicate_rates, ceiling_rates, result, cores_b, cores_c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=1000, help="messages sent the naive way (it is slow)")
    parser.add_argument("--rounds", type=int, default=2, help="(c) and (b) are measured this many times, in turn")
    parser.add_argument("--no-memory", action="store_true", help="skip the 20k/200k peak-memory runs")
    parser.add_argument("--dkim", action="store_true", help="also measure the signed cases (d), (e) and (f)")
    parser.add_argument("--dkimpy", type=int, default=2000, help="subscribers of (f), signed by dkimpy (it is slow)")
    parser.add_argument("--relays", type=int, choices=[2], help="also send over two relays, one stopped half-way")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    with start_sink() as sink:
        cs, bs, result, cores_b, cores_c = rounds(sink, args.subscribers, args.rounds)
        if args.dkim:
            ds = signed_rounds(sink, args.subscribers, args.rounds, "rsa")
            es = signed_rounds(sink, args.subscribers, args.rounds, "rsa+ed25519")
            fs = signed_rounds(sink, args.dkimpy, 1, "rsa", dkimpy=True)
        naive = naive_run(sink.port, args.naive)
    relayed = relays_run(args.subscribers) if args.relays else None
    a = args.naive / naive
    b, c = sum(bs) / len(bs), sum(cs) / len(cs)
    each = lambda rates: ", ".join(f"{r:,.0f}" for r in rates)  # noqa: E731
    print(
        f"subscribers: {args.subscribers:,}; connections: {CONNECTIONS}; batch: {BATCH}; message: {len(result['template']):,} bytes; {args.rounds} rounds"
    )
    print(f"(a) naive (new connection per message, {args.naive:,} sent): {a:9,.0f} msg/s")
    print(
        f"(b) ceiling (syndicate's SMTP client, no database):      {b:9,.0f} msg/s   ({each(bs)})   sink used {cores_b:.2f} cores"
    )
    print(
        f"(c) syndicate (plan + send + state, SQLite):             {c:9,.0f} msg/s   ({each(cs)})   sink used {cores_c:.2f} cores"
    )
    print(
        f"    planning {result['planning']:.2f} s of {result['seconds']:.2f} s in the last round; outcomes {result['sent']}"
    )
    print(f"(c)/(a) = {c / a:5.1f}x (goal >= 10x);  (c)/(b) = {c / b:5.0%} (goal >= 70%)")
    if args.dkim:
        d, e, f = (sum(rates) / len(rates) for rates in (ds, es, fs))
        print(f"(d) syndicate + DKIM RSA-2048 (OpenSSL):                {d:9,.0f} msg/s   ({each(ds)})")
        print(f"(e) syndicate + DKIM RSA-2048 and Ed25519:              {e:9,.0f} msg/s   ({each(es)})")
        print(f"(f) syndicate + DKIM RSA-2048 by dkimpy ({args.dkimpy:,} sent):     {f:9,.0f} msg/s")
        print(f"    OpenSSL alone signs {openssl_rsa_rate():,.0f} RSA-2048 signatures/s on one core (the ceiling)")
        print(
            f"(d)/(a) = {d / a:5.1f}x (goal >= 3x);  (d)/(f) = {d / f:5.1f}x (goal >= 8x);  (e)/(d) = {e / d:5.0%} (goal >= 85%)"
        )
    if relayed is not None:
        print(
            f"(g) two relays, the first stopped after {relayed['first_took']:,} messages: {relayed['rate']:9,.0f} msg/s"
            f" ({relayed['rate'] / c:.0%} of (c)); outcomes {relayed['outcomes']}; lost {relayed['lost']},"
            f" doubled {relayed['doubled']}, every sent one arrived once: {relayed['sent_once']}"
        )
    if not args.no_memory:
        small, large = memory(20_000), memory(200_000)
        ratio = large["peak_mib"] / small["peak_mib"]
        print(
            f"peak memory: {small['peak_mib']:.1f} MiB at 20,000; {large['peak_mib']:.1f} MiB at 200,000; {ratio:.2f}x (goal <= 1.2x)"
        )


if __name__ == "__main__":
    main()
