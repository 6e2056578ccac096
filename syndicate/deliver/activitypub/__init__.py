"""Delivering the actor's activities to followers' inboxes: signed POSTs through the outbox."""
