"""The roles a syndicate process runs in, when several share one database."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """What a daemon's ticks do: everything, the planning half, or the delivering half."""

    ALL = "all"  # ingest, render, plan and deliver: a single node
    SCHEDULER = "scheduler"  # ingest, render and plan (the stages of role SCHEDULER)
    WORKER = "worker"  # deliver: the stages of role WORKER

    def runs(self, stage_role: Role) -> bool:
        """Whether a node in this role runs a stage of ``stage_role``."""
        return self is Role.ALL or self is stage_role

    @property
    def plans(self) -> bool:
        """Whether this role ingests, renders feeds and plans (every role but WORKER)."""
        return self is not Role.WORKER
