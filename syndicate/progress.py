"""How a long stage shows a person its progress: the CLI hands a :data:`Progress` to the tick, which hands it on."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeAlias

# Given the total, a context (a bar on the terminal) that yields "advance by n".
Progress: TypeAlias = Callable[[int], AbstractContextManager[Callable[[int], None]]]
