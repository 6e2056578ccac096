"""Hearing back: the reports that come after the SMTP reply (bounces, complaints, mailto unsubscribes).

Every way in (the listener, a mailbox, a provider's webhook) stores the report
raw first, then the one processing path classifies it and acts on it:
:mod:`syndicate.inbound.receive`.
"""
