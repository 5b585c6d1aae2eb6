"""User-facing errors: the CLI prints these as one line and exits non-zero, without a traceback."""


class UserError(Exception):
    """A problem with the user's input (config, data, files); the message says what and where."""

    exit_code = 2


class Diverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3


class Interrupted(Exception):
    """Ctrl-C during training, after a checkpoint was written."""

    exit_code = 130


def one_line(e: BaseException) -> str:
    """The message on one line: a value quoted in it (a CSV cell, a file name) may hold newlines."""
    return str(e).replace("\r", "\\r").replace("\n", "\\n")
