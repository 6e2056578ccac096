"""The wire in a process of its own: composing and recording (the parent) and sending (the child) on two cores.

Python runs one thread at a time, so a sender that composes, records and
talks SMTP in one process spends its time taking turns. Here the parent
claims, composes, hands off and records; the child owns the SMTP sessions.
They talk over a pipe: each edition's template goes down once, then chunks
of letters (each already handed off), as they are: a letter brings only its
recipient's values; the fate of every letter comes back up, chunk by chunk.

If the child dies, every letter it held comes back ``MAYBE``: it may have
left, so it is not sent again on its own. If the parent dies, the child sees
the pipe close, drops its sessions and exits.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection

from syndicate.deliver.email.dkim import signer_for
from syndicate.deliver.email.smtp import Reply, SmtpError
from syndicate.deliver.email.wire import Attempt, Fate, Wire, WireSettings, session_opener
from syndicate.mail import Letter, MessageTemplate

log = logging.getLogger(__name__)


class RemoteWire:
    """A :class:`Wire` in a child process, with the same submit / pump / busy / close.

    The child is a fresh interpreter (``python -m syndicate.deliver.email.wire_process``)
    talking over a socket pair, so it shares no threads, locks or connections
    with the parent.
    """

    def __init__(self, settings: WireSettings) -> None:
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", __name__, str(theirs.fileno())]
        self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        self.pipe = Connection(ours.detach())
        self.pipe.send(settings)
        self.failure: SmtpError | None = None
        self.letters: dict[int, list[int]] = {}
        self.going = True

    def submit(self, chunk: int, letters: Sequence[Letter]) -> None:
        """Send a chunk down to the child."""
        self.letters[chunk] = [letter.id for letter in letters]
        # Letters cross as they are (they pickle as cheaply as plain tuples); each brings only its own
        # values: its edition crossed once (add_template).
        self.pipe.send(("chunk", chunk, list(letters)))

    def add_template(self, key: int, template: MessageTemplate) -> None:
        """Send an edition's template to the child, once."""
        self.pipe.send(("template", key, template))

    def busy(self) -> bool:
        """Whether a chunk sent down has not come back."""
        return bool(self.letters)

    def pump(self, going: bool, timeout: float = 0.05) -> list[tuple[int, list[Attempt]]]:
        """Tell the child whether to go on; collect the chunks it finished."""
        if going != self.going:
            self.going = going
            self.pipe.send(("going", going))
        done: list[tuple[int, list[Attempt]]] = []
        try:
            while self.pipe.poll(timeout if not done else 0):
                _, payload, failure = self.pipe.recv()
                self.failure = SmtpError(failure[0], failure[1]) if failure else None
                for chunk, attempts in payload:
                    self.letters.pop(chunk, None)
                    done.append((chunk, [_attempt(*fields) for fields in attempts]))
        except (EOFError, OSError):
            done += self._child_died()
        return done

    @property
    def dead(self) -> bool:
        """Whether the child has stopped (a new wire is needed)."""
        return self.process.poll() is not None

    def _child_died(self) -> list[tuple[int, list[Attempt]]]:
        log.error("the SMTP sending process stopped unexpectedly (exit code %s)", self.process.poll())
        self.failure = SmtpError("the SMTP sending process stopped")
        lost = [
            (chunk, [Attempt(i, Fate.MAYBE, "dot", None, "the sending process stopped") for i in indexes])
            for chunk, indexes in self.letters.items()
        ]
        self.letters.clear()
        return lost

    def close(self) -> None:
        """Ask the child to QUIT its sessions and exit."""
        with contextlib.suppress(OSError, EOFError):
            self.pipe.send(("close", None))
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.pipe.close()


def serve(pipe: Connection) -> None:
    """The child: run the wire until told to close, or until the parent is gone."""
    settings: WireSettings = pipe.recv()
    wire = Wire(session_opener(settings), settings.connections, signer_for(settings.dkim) if settings.dkim else None)
    wire.watch(pipe)
    going = True
    try:
        while True:
            while pipe.poll():
                kind, *args = pipe.recv()
                if kind == "close":
                    return
                if kind == "going":
                    going = args[0]
                elif kind == "chunk":
                    wire.submit(args[0], args[1])
                elif kind == "template":
                    wire.add_template(args[0], args[1])
            done = wire.pump(going, timeout=0.05)
            if done:
                failure = (str(wire.failure), wire.failure.code) if wire.failure else None
                pipe.send(("done", [(chunk, [_fields(a) for a in attempts]) for chunk, attempts in done], failure))
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the parent is gone: nothing is owed to anyone
    finally:
        wire.close()


def _fields(attempt: Attempt) -> tuple[int, str, str, int | None, str, str]:
    """An attempt as plain values for the pipe (unpickling dataclasses costs the parent dear)."""
    reply = attempt.reply
    return (
        attempt.id,
        attempt.fate.value,
        attempt.stage,
        reply.code if reply else None,
        reply.text if reply else "",
        attempt.detail,
    )


def _attempt(index: int, fate: str, stage: str, code: int | None, text: str, detail: str) -> Attempt:
    return Attempt(index, Fate(fate), stage, Reply(code, text) if code is not None else None, detail)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
