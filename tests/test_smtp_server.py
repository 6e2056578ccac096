"""Tests of the loopback SMTP servers: the fault server (servers.smtp) and the benchmarks' sink
(servers.smtp_sink), the first on aiosmtpd, the second on its own fast state machine (servers.smtp_session).

Driven with plain smtplib, and with a bare socket where pipelining matters (a whole
MAIL/RCPT/DATA group in one write, replies checked in order).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from types import TracebackType
from typing import Any, Self

import pytest
from servers import smtp_blast, smtp_sink_server
from servers.smtp import Drop, Fault, Reply, SMTPServer, Stage, ThreadSafeList
from servers.smtp_session import unstuff
from servers.smtp_sink import start_sink

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 3.0  # client timeout for exchanges meant to succeed
QUICK = 0.5  # client timeout for servers meant to hang
FROM = "news@example.org"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every server thread started by a test is gone when the test ends."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before]
    assert leaked == []


def make_message(subject: str = "Hello", message_id: str = "<1@example.org>", body: str = "Hi.\n") -> bytes:
    """A small RFC 5322 message, CRLF line ends."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = FROM
    message["To"] = "reader@example.org"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(body)
    return message.as_bytes()


def smtp(server: SMTPServer, timeout: float = TIMEOUT) -> smtplib.SMTP:
    """An smtplib client connected to `server`."""
    return smtplib.SMTP(server.host, server.port, timeout=timeout)


class RawClient:
    """A bare socket SMTP client, for pipelined writes and for watching hang-ups."""

    def __init__(self, host: str, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        """Write `data` in one sendall."""
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        """Read one reply, joining the lines of a multi-line one."""
        lines: list[bytes] = []
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError(f"connection closed after {lines!r}")
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(item[4:].decode().rstrip() for item in lines)

    def codes(self, count: int) -> list[int]:
        """The codes of the next `count` replies."""
        return [self.reply()[0] for _ in range(count)]

    def at_eof(self) -> bool:
        """Whether the server hung up (True) or is still connected after the timeout."""
        try:
            return self.file.read(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        """Close the socket."""
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def raw(server: Any, greet: bool = True) -> RawClient:
    """A RawClient on `server` (an SMTPServer or a sink), past the greeting and EHLO."""
    client = RawClient(server.host, server.port)
    if greet:
        assert client.reply()[0] == 220
        client.send(b"EHLO client.test\r\n")
        assert client.reply()[0] == 250
    return client


# --------------------------------------------------------------------------- normal service


def test_delivers_and_records_the_message() -> None:
    body = "Hi.\n.A line that starts with a dot.\n"
    with SMTPServer() as server:
        with smtp(server) as client:
            refused = client.sendmail(FROM, ["a@example.org", "b@example.org"], make_message(body=body))
        assert refused == {}
        [received] = server.messages
        assert received.sender == FROM
        assert received.recipients == ("a@example.org", "b@example.org")
        assert received.message["Subject"] == "Hello"
        assert received.message.get_content() == body
        assert b"\r\n.A line" in received.raw  # the transparency dot is gone, the line's own dot kept
        assert (received.connection, received.transaction, received.maybe_delivered) == (1, 1, False)
        events = server.events.wait_for(lambda items: items[-1].kind == "disconnect")
    assert [(e.kind, e.command, e.code) for e in events] == [
        ("connect", "", None),
        ("reply", "GREETING", 220),
        ("reply", "EHLO", 250),
        ("reply", "MAIL", 250),
        ("reply", "RCPT", 250),
        ("reply", "RCPT", 250),
        ("reply", "DATA", 354),
        ("stored", "", None),
        ("reply", "END_OF_DATA", 250),
        ("reply", "QUIT", 221),
        ("disconnect", "", None),
    ]


def test_ehlo_advertises_pipelining_and_no_auth_unless_configured() -> None:
    with SMTPServer() as server, smtp(server) as client:
        client.ehlo()
        for keyword in ("pipelining", "8bitmime", "smtputf8", "size"):
            assert client.has_extn(keyword), keyword
        assert not client.has_extn("auth")
        assert not client.has_extn("starttls")


def test_null_reverse_path_is_recorded_as_empty_sender() -> None:
    with SMTPServer() as server, smtp(server) as client:
        client.sendmail("<>", ["a@example.org"], make_message())
        assert server.messages[0].sender == ""


# --------------------------------------------------------------------------- pipelining


def test_pipelined_groups_are_answered_in_order() -> None:
    with SMTPServer([Fault.rcpt(550, recipients="gone@example.org")]) as server, raw(server) as client:
        client.send(
            b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\n"
            b"RCPT TO:<gone@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
        )
        assert client.codes(5) == [250, 250, 550, 250, 354]
        # the dot, then the next transaction in the same write (RFC 2920 section 3.1)
        client.send(
            b"Subject: one\r\n\r\n..dot\r\n.\r\nMAIL FROM:<news@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
        )
        assert client.codes(4) == [250, 250, 250, 354]
        client.send(b"Subject: two\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert client.codes(2) == [250, 221]
        assert [m.recipients for m in server.messages] == [("a@example.org", "b@example.org"), ("c@example.org",)]
        assert server.messages[0].message.get_content() == ".dot\n"
        assert [(e.address, e.code) for e in server.replies("RCPT")] == [
            ("a@example.org", 250),
            ("gone@example.org", 550),
            ("b@example.org", 250),
            ("c@example.org", 250),
        ]


def test_pipelined_data_is_refused_when_every_recipient_was() -> None:
    with SMTPServer([Fault.rcpt(550)]) as server, raw(server) as client:
        client.send(b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\nDATA\r\nRSET\r\nNOOP\r\n")
        # the commands after the refused DATA are read as commands, not as message content
        assert client.codes(5) == [250, 550, 503, 250, 250]
        assert server.codes("DATA") == [503]
        assert len(server.messages) == 0


def test_commands_pipelined_behind_a_421_get_no_reply() -> None:
    with SMTPServer([Fault.rcpt(421)]) as server, raw(server) as client:
        client.send(b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert client.codes(2) == [250, 421]
        assert client.at_eof()
        events = server.events.wait_for(lambda items: items[-1].kind == "disconnect")
        assert [e.kind for e in events[-2:]] == ["close", "disconnect"]
        assert server.codes("RCPT") == [421]
        assert server.codes("DATA") == []


def test_pipelined_commands_before_a_half_close_are_all_answered() -> None:
    with SMTPServer() as server, raw(server) as client:
        client.send(b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\nRSET\r\nQUIT\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        assert client.codes(4) == [250, 250, 250, 221]


def test_oversized_content_and_overlong_lines_are_refused_after_the_dot() -> None:
    with SMTPServer(data_size_limit=1000) as server, raw(server) as client:
        client.send(b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n")
        assert client.codes(3) == [250, 250, 354]
        client.send(b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" + b"y" * 50 + b"\r\n.\r\n")
        assert client.reply()[0] == 552
        client.send(b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n")
        assert client.codes(3) == [250, 250, 354]
        client.send(b"Subject: long\r\n\r\n" + b"z" * 1200 + b"\r\n.\r\nNOOP\r\n")
        assert client.codes(2) == [500, 250]
        assert len(server.messages) == 0


# --------------------------------------------------------------------------- greeting faults


def test_greeting_421_refuses_the_connection() -> None:
    with SMTPServer([Fault.greeting(421)]) as server:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtp(server)
        assert refused.value.smtp_code == 421
        assert server.codes("GREETING") == [421]
        assert server.replies("GREETING")[0].injected


def test_greeting_fault_for_the_first_connection_only() -> None:
    with SMTPServer([Fault.greeting(421, connections={1})]) as server:
        with pytest.raises(smtplib.SMTPConnectError):
            smtp(server)
        with smtp(server) as client:
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert server.codes("GREETING") == [421, 220]
        assert [m.connection for m in server.messages] == [2]


# --------------------------------------------------------------------------- MAIL and RCPT faults


@pytest.mark.parametrize("code", [451, 550, 552])
def test_rcpt_fault_refuses_one_recipient(code: int) -> None:
    with SMTPServer([Fault.rcpt(code, recipients="bad@example.org")]) as server, smtp(server) as client:
        refused = client.sendmail(FROM, ["good@example.org", "bad@example.org"], make_message())
        assert {rcpt: reply[0] for rcpt, reply in refused.items()} == {"bad@example.org": code}
        assert [m.recipients for m in server.messages] == [("good@example.org",)]
        [event] = [e for e in server.replies("RCPT") if e.code == code]
        assert (event.address, event.injected) == ("bad@example.org", True)


def test_rcpt_fault_on_every_recipient_refuses_the_message() -> None:
    fault = Fault.rcpt(550, recipients=lambda address: address.endswith("@gone.example"))
    with SMTPServer([fault]) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(FROM, ["a@gone.example", "b@gone.example"], make_message())
        assert {rcpt: reply[0] for rcpt, reply in refused.value.recipients.items()} == {
            "a@gone.example": 550,
            "b@gone.example": 550,
        }
        assert len(server.messages) == 0
        assert fault.fired == 2


def test_mail_421_throttles_and_hangs_up() -> None:
    with SMTPServer([Fault.mail(421)]) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert refused.value.smtp_code == 421
        events = server.events.wait_for(lambda items: items[-1].kind == "disconnect")
        assert [(e.kind, e.command) for e in events[-3:]] == [("reply", "MAIL"), ("close", "MAIL"), ("disconnect", "")]
        assert len(server.messages) == 0


def test_mail_454_throttles_but_keeps_the_session() -> None:
    with SMTPServer([Fault.mail(454, times=1)]) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert refused.value.smtp_code == 454
        client.sendmail(FROM, ["a@example.org"], make_message())  # same connection, fault spent
        assert server.codes("MAIL") == [454, 250]
        assert [m.transaction for m in server.messages] == [2]


def test_rcpt_421_throttles_and_hangs_up() -> None:
    with SMTPServer([Fault.rcpt(421)]) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(FROM, ["a@example.org", "b@example.org"], make_message())
        assert refused.value.recipients == {
            "a@example.org": (421, b"4.3.2 Service not available, closing transmission channel")
        }
        server.events.wait_for(lambda items: items[-1].kind == "disconnect")
        assert server.codes("RCPT") == [421]


def test_rcpt_454_throttles_one_recipient() -> None:
    with SMTPServer([Fault.rcpt(454, recipients="b@example.org")]) as server, smtp(server) as client:
        refused = client.sendmail(FROM, ["a@example.org", "b@example.org"], make_message())
        assert refused == {"b@example.org": (454, b"4.7.0 Temporary failure, slow down")}
        assert server.messages[0].recipients == ("a@example.org",)


def test_faults_can_be_added_and_cleared_while_running() -> None:
    with SMTPServer() as server, smtp(server) as client:
        server.add_fault(Fault.rcpt(451))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail(FROM, ["a@example.org"], make_message())
        server.clear_faults()
        client.sendmail(FROM, ["a@example.org"], make_message())
        assert server.codes("RCPT") == [451, 250]


# --------------------------------------------------------------------------- DATA faults


def test_data_command_refused() -> None:
    with SMTPServer([Fault.data(451)]) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert refused.value.smtp_code == 451
        assert server.codes("DATA") == [451]
        assert server.codes("END_OF_DATA") == []


def test_554_after_data_for_the_third_message_only() -> None:
    with SMTPServer([Fault.end_of_data(554, transactions={3})]) as server, smtp(server) as client:
        outcomes = []
        for number in range(1, 5):
            try:
                client.sendmail(FROM, ["a@example.org"], make_message(message_id=f"<{number}@example.org>"))
                outcomes.append(250)
            except smtplib.SMTPDataError as error:
                outcomes.append(error.smtp_code)
        assert outcomes == [250, 250, 554, 250]
        assert [m.message["Message-ID"] for m in server.messages] == [
            "<1@example.org>",
            "<2@example.org>",
            "<4@example.org>",
        ]
        assert server.codes("END_OF_DATA") == [250, 250, 554, 250]


def test_transient_fault_picked_by_message_id() -> None:
    fault = Fault.end_of_data(451, message=lambda m: m["Message-ID"] == "<b@example.org>", times=1)
    with SMTPServer([fault]) as server, smtp(server) as client:
        client.sendmail(FROM, ["a@example.org"], make_message(message_id="<a@example.org>"))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(FROM, ["a@example.org"], make_message(message_id="<b@example.org>"))
        assert refused.value.smtp_code == 451
        client.sendmail(FROM, ["a@example.org"], make_message(message_id="<b@example.org>"))  # the retry
        assert [m.message["Message-ID"] for m in server.messages] == ["<a@example.org>", "<b@example.org>"]
        assert fault.fired == 1


def test_drop_in_the_middle_of_data() -> None:
    big = "A line of the newsletter that goes on for a while.\n" * 2000
    with SMTPServer([Fault.drop_in_body(after_bytes=1000)]) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.sendmail(FROM, ["a@example.org"], make_message(body=big))
        events = server.events.wait_for(lambda items: items[-1].kind == "disconnect")
        assert [(e.kind, e.command) for e in events[-2:]] == [("drop", "BODY"), ("disconnect", "")]
        assert len(server.messages) == 0
        assert server.codes("END_OF_DATA") == []


def test_drop_in_data_before_the_final_dot_was_sent() -> None:
    with SMTPServer([Fault.drop_in_body(after_bytes=50)]) as server, raw(server) as client:
        client.send(b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n")
        assert client.codes(3) == [250, 250, 354]
        client.send(b"Subject: cut short\r\n\r\n" + b"x" * 70 + b"\r\n")  # past 50 bytes, no dot
        assert client.at_eof()
        assert len(server.messages) == 0


def test_drop_in_data_of_a_short_message_happens_at_the_dot() -> None:
    with SMTPServer([Fault.drop_in_body(after_bytes=100_000)]) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert len(server.messages) == 0


def test_hang_after_the_final_dot_until_the_client_gives_up() -> None:
    with SMTPServer([Fault.hang_after_data()]) as server, smtp(server, timeout=QUICK) as client:
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert time.monotonic() - started >= QUICK * 0.9
        assert len(server.messages) == 0
        assert [e.command for e in server.events if e.kind == "hang"] == ["END_OF_DATA"]


def test_hung_sessions_do_not_block_shutdown() -> None:
    server = SMTPServer([Fault.hang_after_data(store=True)]).start()
    with raw(server) as client:
        client.send(b"MAIL FROM:<news@example.org>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n")
        assert client.codes(3) == [250, 250, 354]
        client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        server.events.wait_for(lambda items: items[-1].kind == "hang")
        server.stop()  # the client is still connected and waiting: the server hangs up, not the client
        assert server.events[-1].kind == "disconnect"
        assert client.at_eof()
    [stored] = server.messages
    assert stored.maybe_delivered


def test_accept_then_drop_is_recorded_as_maybe_delivered() -> None:
    with SMTPServer([Fault.drop_after_data(transactions={1})]) as server:
        with smtp(server) as client, pytest.raises(smtplib.SMTPServerDisconnected):
            client.sendmail(FROM, ["a@example.org"], make_message())
        with smtp(server) as client:  # the client's retry makes a duplicate
            client.sendmail(FROM, ["a@example.org"], make_message())
        first, retry = server.messages
        assert (first.maybe_delivered, retry.maybe_delivered) == (True, False)
        assert first.message["Message-ID"] == retry.message["Message-ID"]
        assert [e.command for e in server.events if e.kind == "drop"] == ["END_OF_DATA"]
        assert [e.injected for e in server.events if e.kind == "stored"] == [True, False]
        assert server.codes("END_OF_DATA") == [250]  # only the retry was answered


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="store"):
        Fault(Stage.RCPT, Reply(550), store=True)
    with pytest.raises(ValueError, match="BODY faults must be Drop"):
        Fault(Stage.BODY, Reply(554))
    with pytest.raises(ValueError, match="no recipients"):
        Fault.mail(421, recipients="a@example.org")
    with pytest.raises(ValueError, match="after_bytes"):
        Fault(Stage.RCPT, Drop(after_bytes=10))


# --------------------------------------------------------------------------- AUTH and TLS


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_with_the_right_password(mechanism: str) -> None:
    with SMTPServer(credentials=("user", "s3cret")) as server, smtp(server) as client:
        client.ehlo()
        assert set(client.esmtp_features["auth"].split()) == {"LOGIN", "PLAIN"}
        client.user, client.password = "user", "s3cret"
        authenticator = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        assert client.auth(mechanism, authenticator)[0] == 235
        client.sendmail(FROM, ["a@example.org"], make_message())
        assert server.messages[0].login == "user"


def test_auth_with_a_wrong_password() -> None:
    with SMTPServer(credentials=("user", "s3cret")) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("user", "wrong")
        assert refused.value.smtp_code == 535


def test_auth_is_required_before_mail() -> None:
    with SMTPServer(credentials=("user", "s3cret")) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert refused.value.smtp_code == 530


def test_starttls_then_auth() -> None:
    with SMTPServer(tls="starttls", credentials=("user", "s3cret"), auth_requires_tls=True) as server:
        with smtp(server) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert not client.has_extn("auth")  # not before TLS
            client.starttls(context=server.client_tls_context())
            client.ehlo()
            assert client.has_extn("auth")
            client.login("user", "s3cret")
            client.sendmail(FROM, ["a@example.org"], make_message())
        [received] = server.messages
        assert (received.tls, received.login) == (True, "user")
        assert "tls" in [e.kind for e in server.events]


def test_require_starttls_refuses_mail_in_clear() -> None:
    with SMTPServer(tls="starttls", require_starttls=True) as server, smtp(server) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert refused.value.smtp_code == 530


def test_smtps_implicit_tls_with_auth() -> None:
    with SMTPServer(tls="implicit", credentials=("user", "s3cret")) as server:
        context = server.client_tls_context()
        with smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT, context=context) as client:
            client.login("user", "s3cret")
            client.sendmail(FROM, ["a@example.org"], make_message())
        [received] = server.messages
        assert (received.tls, received.login) == (True, "user")


def test_smtps_rejects_a_plain_client() -> None:
    with SMTPServer(tls="implicit") as server, pytest.raises(smtplib.SMTPServerDisconnected):
        smtp(server, timeout=QUICK)


def test_client_that_does_not_trust_the_certificate_fails() -> None:
    with SMTPServer(tls="starttls") as server, smtp(server) as client, pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(context=ssl.create_default_context())


# --------------------------------------------------------------------------- life cycle


def test_stop_closes_the_port() -> None:
    with SMTPServer() as server:
        port = server.port
        assert port > 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, port), timeout=TIMEOUT).close()


def test_serves_on_ipv6_loopback() -> None:
    with SMTPServer(host="::1") as server, smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as client:
        client.sendmail(FROM, ["a@example.org"], make_message())
        assert len(server.messages) == 1


def test_thread_safe_list_waits_and_times_out() -> None:
    items: ThreadSafeList[int] = ThreadSafeList()
    timer = threading.Timer(0.05, items.append, args=(1,))
    timer.start()
    assert items.wait_for_len(1, timeout=TIMEOUT) == [1]
    timer.join()
    with pytest.raises(TimeoutError):
        items.wait_for_len(2, timeout=0.05)
    assert (len(items), items[0], items[:], list(items)) == (1, 1, [1], [1])


# --------------------------------------------------------------------------- the benchmark sink


class FakeTransport:
    """Collects what a SinkSession writes."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        """Keep `data`."""
        self.written += data

    def close(self) -> None:
        """Note the close."""
        self.closed = True


def _sink_session() -> tuple[Any, FakeTransport, Any]:
    counters = bytearray(8 * len(smtp_sink_server.SLOTS))
    worker = smtp_sink_server.Worker(memoryview(counters).cast("q"), 0, 1, None, size_limit=1000)
    protocol = smtp_sink_server.SinkSession(worker)
    transport = FakeTransport()
    protocol.transport = transport
    return protocol, transport, worker


def test_sink_frames_data_split_at_any_byte() -> None:
    protocol, transport, worker = _sink_session()
    stream = (
        b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n"
        b".\r\n"  # an empty message
        b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
        b"Subject: s\r\n\r\n..one\r\n.\r\r\n\r\n.\r\n"  # stuffed dot, a dot line that is not the end
        b"NOOP\r\nQUIT\r\n"
    )
    for at in range(len(stream)):
        protocol.feed(stream[at : at + 1])
    codes = [line[:3] for line in bytes(transport.written).split(b"\r\n") if line[3:4] != b"-" and line]
    assert codes == [b"250", b"250", b"250", b"250", b"354", b"250", b"250", b"250", b"354", b"250", b"250", b"221"]
    assert transport.closed
    totals = worker.totals()
    assert (totals["messages"], totals["recipients"], totals["sessions"]) == (2, 3, 1)
    assert totals["bytes"] == len(b"Subject: s\r\n\r\n.one\r\n\r\r\n\r\n")  # every line's first dot goes


def test_sink_refuses_out_of_order_and_oversized() -> None:
    protocol, transport, worker = _sink_session()
    protocol.feed(
        b"MAIL FROM:<a@x>\r\nEHLO x\r\nRCPT TO:<b@x>\r\nDATA\r\nMAIL FROM:<a@x> SIZE=5000\r\nMAIL FROM:<a@x>\r\n"
        b"MAIL FROM:<a@x>\r\nDATA\r\nRCPT TO:<b@x>\r\nDATA\r\n" + b"x" * 1200 + b"\r\n.\r\nBOGUS\r\n"
    )
    codes = [line[:3] for line in bytes(transport.written).split(b"\r\n") if line and line[3:4] != b"-"]
    assert codes == [b"503", b"250", b"503", b"503", b"552", b"250", b"503", b"503", b"250", b"354", b"552", b"500"]
    assert (worker.totals()["messages"], worker.totals()["rejected"]) == (0, 1)


def test_sink_message_id_and_unstuffing_helpers() -> None:
    framed = b"\r\nSubject: x\r\nMessage-Id:\r\n <folded@example.org>\r\n\r\n.hidden\r\n..dot\r\n"
    end = len(framed) - 2
    assert smtp_sink_server.message_id(framed, 0, end) == "<folded@example.org>"
    assert smtp_sink_server.message_id(b"\r\nSubject: x\r\n\r\nbody\r\n", 0, 20) is None
    assert unstuff(b"..a\r\nb\r\n.\r\n") == b".a\r\nb\r\n\r\n"


def test_sink_process_counts_and_finds_duplicates() -> None:
    messages = [make_message(message_id="<1@x>"), make_message(message_id="<2@x>", body=".dot\n")]
    with start_sink(track_ids=True) as sink, smtplib.SMTP(sink.host, sink.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.has_extn("pipelining")
        assert client.has_extn("smtputf8")
        client.sendmail(FROM, ["a@example.org", "b@example.org"], messages[0])
        client.sendmail(FROM, ["a@example.org"], messages[1])
        client.sendmail(FROM, ["a@example.org"], messages[0])  # a duplicate
        stats = sink.stats()
    assert (stats.messages, stats.recipients, stats.sessions, stats.workers) == (3, 4, 1, 1)
    assert stats.bytes == sum(len(m) for m in (messages[0], messages[1], messages[0]))
    assert stats.cpu > 0
    assert sink.final is not None
    assert sink.final.messages == 3
    assert sink.duplicates() == {"<1@x>": 2}
    assert sink.process.returncode == 0


def test_sink_answers_pipelined_groups_in_order() -> None:
    with start_sink() as sink, raw(sink) as client:
        client.send(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n")
        assert client.codes(4) == [250, 250, 250, 354]
        client.send(b"Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@x>\r\nDATA\r\nRSET\r\nSTATS\r\nQUIT\r\n")
        assert client.codes(3) == [250, 250, 503]
        assert client.reply()[0] == 250
        code, stats = client.reply()
        assert code == 250
        assert "messages=1 recipients=2" in stats
        assert client.reply()[0] == 221
        assert client.at_eof()


def test_sink_with_two_workers_adds_up() -> None:
    with start_sink(workers=2) as sink:
        for _ in range(4):
            with smtplib.SMTP(sink.host, sink.port, timeout=TIMEOUT) as client:
                for _ in range(3):
                    client.sendmail(FROM, ["a@example.org"], make_message())
        stats = sink.stats()
        final = sink.stop()
    assert (stats.messages, stats.sessions, stats.workers) == (12, 4, 2)
    assert (final.messages, final.workers) == (12, 2)
    assert final.cpu > 0


def test_sink_on_ipv6_loopback() -> None:
    with start_sink(host="::1") as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=TIMEOUT) as client:
            client.sendmail(FROM, ["a@example.org"], make_message())
        assert sink.stats().messages == 1


@pytest.mark.parametrize("greedy", [False, True])
def test_sink_selftest(greedy: bool, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--messages", "300", "--connections", "3", "--rcpts", "2", "--track-ids"]
    assert smtp_blast.main([*argv, "--greedy"] if greedy else argv) == 0
    out = capsys.readouterr().out
    assert "300 messages in" in out
    assert "duplicates 0" in out
