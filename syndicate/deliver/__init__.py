"""Delivery: draining the outbox over each channel (email over SMTP or to files; webhooks to partners)."""
