"""Email delivery: compose each message from its edition, send it over SMTP (or to files), record the outcome."""
