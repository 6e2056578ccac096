"""Reports as the receiving side writes them, for the inbound tests.

Written from RFC 3464 (delivery status notifications), RFC 5965 (ARF
feedback reports), RFC 3834 (auto-replies) and the formats the common MTAs
document and send: Postfix's bounce(8) notice, Exim's, Microsoft 365's NDR
and Gmail's. Each one quotes the original the way its MTA does: whole
(message/rfc822) or headers only (text/rfc822-headers).
"""

from __future__ import annotations

ORIGINAL_HEADERS = (
    "Return-Path: <{return_path}>\r\n"
    "From: Example Org <newsletter@example.org>\r\n"
    "To: {recipient}\r\n"
    "Subject: News\r\n"
    "Message-ID: <syndicate.{delivery}@example.org>\r\n"
    "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
)


def postfix_dsn(return_path: str, recipient: str, delivery: int, status: str = "5.1.1", action: str = "failed",
                diagnostic: str = "smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown") -> bytes:  # fmt: skip
    """What Postfix's bounce daemon sends (multipart/report, the original's headers)."""
    diagnostic = diagnostic.format(recipient=recipient)
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@mx.receiver.test (Mail Delivery System)\r\n"
        f"To: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"\r\n'
        "\r\n"
        "--B0UND\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.receiver.test.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        f"<{recipient}>: host mx.receiver.test said: {diagnostic}\r\n"
        "\r\n"
        "--B0UND\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.receiver.test\r\n"
        "X-Postfix-Queue-ID: 4F3A21C0042\r\n"
        f"X-Postfix-Sender: rfc822; {return_path}\r\n"
        "Arrival-Date: Thu, 26 Nov 2026 10:00:01 +0000 (UTC)\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mx.receiver.test\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        "--B0UND\r\n"
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        + ORIGINAL_HEADERS.format(return_path=return_path, recipient=recipient, delivery=delivery)
        + "\r\n--B0UND--\r\n"
    ).encode()


def exim_dsn(return_path: str, recipient: str, delivery: int) -> bytes:
    """Exim 4's bounce: X-Failed-Recipients, and a multipart/report with the original message."""
    return (
        "From: Mail Delivery System <Mailer-Daemon@exim.receiver.test>\r\n"
        f"To: {return_path}\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\n"
        f"X-Failed-Recipients: {recipient}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=1700000000-eximdsn-42\r\n"
        "\r\n"
        "--1700000000-eximdsn-42\r\n"
        "Content-type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {recipient}\r\n    host mx.receiver.test [192.0.2.25]\r\n"
        "    SMTP error from remote mail server after RCPT TO:<x>:\r\n    550 5.1.1 No such user\r\n"
        "\r\n"
        "--1700000000-eximdsn-42\r\n"
        "Content-type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; exim.receiver.test\r\n"
        "\r\n"
        f"Action: failed\r\n"
        f"Final-Recipient: rfc822;{recipient}\r\n"
        "Status: 5.0.0\r\n"
        "Remote-MTA: dns; mx.receiver.test\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n"
        "\r\n"
        "--1700000000-eximdsn-42\r\n"
        "Content-type: message/rfc822\r\n"
        "\r\n"
        + ORIGINAL_HEADERS.format(return_path=return_path, recipient=recipient, delivery=delivery)
        + "\r\nBody of the newsletter.\r\n"
        "\r\n--1700000000-eximdsn-42--\r\n"
    ).encode()


def microsoft_ndr(return_path: str, recipient: str, delivery: int) -> bytes:
    """Microsoft 365's non-delivery report: an HTML notice, then the DSN with status 5.1.10."""
    return (
        "From: postmaster@outlook.test\r\n"
        f"To: {return_path}\r\n"
        "Subject: Undeliverable: News\r\n"
        "Content-Language: en-US\r\n"
        "X-MS-Exchange-Message-Is-Ndr:\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="_000_ndr_"\r\n'
        "\r\n"
        "--_000_ndr_\r\n"
        'Content-Type: multipart/alternative; boundary="_002_ndr_"\r\n'
        "\r\n"
        "--_002_ndr_\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        f"Your message to {recipient} couldn't be delivered.\r\n"
        "The email address wasn't found at the destination domain.\r\n"
        "\r\n"
        "--_002_ndr_\r\n"
        "Content-Type: text/html; charset=us-ascii\r\n"
        "\r\n"
        f"<html><body><p>Your message to {recipient} couldn't be delivered.</p></body></html>\r\n"
        "\r\n"
        "--_002_ndr_--\r\n"
        "\r\n"
        "--_000_ndr_\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.test\r\n"
        "Received-From-MTA: dns;mail.example.org\r\n"
        "Arrival-Date: Thu, 26 Nov 2026 10:00:01 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822;{recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.10\r\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\r\n"
        "\r\n"
        "--_000_ndr_\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        + ORIGINAL_HEADERS.format(return_path=return_path, recipient=recipient, delivery=delivery)
        + "\r\nBody.\r\n"
        "\r\n--_000_ndr_--\r\n"
    ).encode()


def gmail_dsn(return_path: str, recipient: str, delivery: int, status: str = "5.1.1", action: str = "failed") -> bytes:
    """Gmail's "Delivery Status Notification (Failure)"."""
    detail = (
        "smtp; 550-5.1.1 The email account that you tried to reach does not exist."
        if status.startswith("5")
        else "smtp; 452-4.2.2 The recipient's inbox is out of storage space."
    )
    return (
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        f"To: {return_path}\r\n"
        f"Subject: Delivery Status Notification ({'Failure' if action == 'failed' else 'Delay'})\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; boundary="000000000000gmail"; report-type=delivery-status\r\n'
        "\r\n"
        "--000000000000gmail\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "\r\n"
        f"** Address not found **\r\n\r\nYour message wasn't delivered to {recipient}.\r\n"
        "\r\n"
        "--000000000000gmail\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; googlemail.com\r\n"
        "Received-From-MTA: dns; mail.example.org\r\n"
        "Arrival-Date: Thu, 26 Nov 2026 02:00:01 -0800 (PST)\r\n"
        "X-Original-Message-ID: <syndicate.{delivery}@example.org>\r\n".format(delivery=delivery)
        + "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; gmail-smtp-in.l.google.com. (192.0.2.26, the server for the domain receiver.test.)\r\n"
        f"Diagnostic-Code: {detail}\r\n"
        "Last-Attempt-Date: Thu, 26 Nov 2026 02:00:02 -0800 (PST)\r\n"
        "\r\n"
        "--000000000000gmail\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        + ORIGINAL_HEADERS.format(return_path=return_path, recipient=recipient, delivery=delivery)
        + "\r\nBody.\r\n"
        "\r\n--000000000000gmail--\r\n"
    ).encode()


def arf_complaint(return_path: str, recipient: str, delivery: int, to: str = "fbl@example.org") -> bytes:
    """An RFC 5965 feedback report, as Yahoo's and Microsoft's feedback loops send: the original is quoted whole."""
    return (
        "From: Feedback Loop <feedback@fbl.receiver.test>\r\n"
        f"To: {to}\r\n"
        "Subject: FW: News\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="part1_13d"\r\n'
        "\r\n"
        "--part1_13d\r\n"
        "Content-Type: text/plain; charset=US-ASCII\r\n"
        "\r\n"
        "This is an email abuse report for an email message received from IP 192.0.2.1.\r\n"
        "\r\n"
        "--part1_13d\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: SomeGenerator/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Mail-From: <{return_path}>\r\n"
        f"Original-Rcpt-To: <{recipient}>\r\n"
        "Arrival-Date: Thu, 26 Nov 2026 10:00:01 +0000\r\n"
        "Source-IP: 192.0.2.1\r\n"
        "Reported-Domain: example.org\r\n"
        "\r\n"
        "--part1_13d\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Disposition: inline\r\n"
        "\r\n"
        + ORIGINAL_HEADERS.format(return_path=return_path, recipient=recipient, delivery=delivery)
        + "\r\nBody.\r\n"
        "\r\n--part1_13d--\r\n"
    ).encode()


def out_of_office(return_path: str, sender: str) -> bytes:
    """An RFC 3834 auto-reply (Microsoft's out-of-office answer sets these headers)."""
    return (
        f"From: {sender}\r\n"
        f"To: {return_path}\r\n"
        "Subject: Automatic reply: News\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "X-Auto-Response-Suppress: All\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "I am out of the office until Monday.\r\n"
    ).encode()


def unsubscribe_mail(to: str, sender: str, token: str = "") -> bytes:
    """What a mail client sends for the mailto: of List-Unsubscribe (RFC 2369): the subject as given."""
    return (
        f"From: {sender}\r\n"
        f"To: {to}\r\n"
        f"Subject: unsubscribe {token}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "This message was automatically generated by the mail client to unsubscribe.\r\n"
    ).encode()


def qmail_bounce(return_path: str, recipient: str) -> bytes:
    """qmail's plain-text bounce (no DSN): only a detector reads it."""
    return (
        "From: MAILER-DAEMON@qmail.receiver.test\r\n"
        f"To: {return_path}\r\n"
        "Subject: failure notice\r\n"
        "\r\n"
        "Hi. This is the qmail-send program at qmail.receiver.test.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
        "\r\n"
        f"<{recipient}>:\r\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\r\n"
        "\r\n"
        "--- Below this line is a copy of the message.\r\n"
        "\r\n"
        f"Return-Path: <{return_path}>\r\n"
        "Subject: News\r\n"
    ).encode()
