"""Waiting for a loopback server in a child process: its lines on stdout, the port it listens on.

A server started with `subprocess.Popen(..., stdout=PIPE)` binds first, then prints its
port (or a JSON line naming its URLs), so once the line is read it accepts connections.
"""

from __future__ import annotations

import selectors
import subprocess
from typing import Any


def read_line(process: subprocess.Popen[Any], what: str, timeout: float) -> str:
    """The child's next line of stdout, waited for at most `timeout` s; RuntimeError if none.

    Only for children that write a line and then wait to be asked again: a line already in
    the pipe's read buffer would not wake the wait.
    """
    stdout = process.stdout
    if stdout is None:
        raise RuntimeError(f"{what}: its stdout is not a pipe")
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        ready = selector.select(timeout)
    line = stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"{what} said nothing within {timeout} s (exit code {process.poll()})")
    return line.decode() if isinstance(line, bytes) else str(line)


def wait_for_port(process: subprocess.Popen[Any], what: str, timeout: float) -> int:
    """The port the child prints, alone on its first line, once it listens."""
    line = read_line(process, what, timeout)
    if not line.strip().isdigit():
        raise RuntimeError(f"{what} did not start: {line!r}")
    return int(line)
