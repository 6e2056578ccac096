"""Rendering: feeds, partner payloads and newsletter editions, from stored revisions and templates."""
