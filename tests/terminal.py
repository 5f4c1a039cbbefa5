"""A pseudo-terminal for the CLI: what a user's terminal shows of a command (standard library
only, so scripts/walkthrough.py runs it in a clone installed without the test extras)."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def in_terminal(
    args: list[str],
    columns: int = 80,
    type_ctrl_c_when: Callable[[str], bool] | None = None,
    timeout: float = 300,
) -> tuple[int, str]:
    """Exit code and screen text (escapes removed) of `adapt ARGS` in a pty of `columns`."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty, sized before adapt starts
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        # As a shell starts a foreground command: Ctrl-C raises SIGINT's default. A caller
        # started in the background (`cmd &` in a script) has SIGINT ignored, Python then
        # installs no KeyboardInterrupt, and the typed Ctrl-C would be lost.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        os.execve(sys.executable, [sys.executable, "-m", "adapt", *args], {**env, "TERM": "xterm"})
    chunks, typed, deadline = [], False, time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data.decode(errors="replace"))
        if type_ctrl_c_when and not typed and type_ctrl_c_when(ANSI.sub("", "".join(chunks))):
            os.write(fd, b"\x03")  # what a user types; the terminal turns it into SIGINT
            typed = True
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), ANSI.sub("", "".join(chunks))
