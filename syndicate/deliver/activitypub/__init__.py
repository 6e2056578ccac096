"""Delivering to the fediverse: the actor's keys, and (to come) signed activities to followers' inboxes."""
