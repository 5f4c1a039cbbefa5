"""User-facing errors: the CLI prints them on one line and exits with code 2, no traceback."""

from pathlib import Path


class AdaptError(Exception):
    """A problem the user can fix (bad input, bad flag, missing model); never a bug in adapt."""


class InputError(AdaptError):
    """Malformed input, located by file and line so the user can go straight to it."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line


class ShardDone(Exception):
    """A `--shard` run scored its part; the message says what to do next. Here, not in the
    pipeline, so that the CLI catches it without importing torch on every command."""
