"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class TotesError(Exception):
    """A failure with a message that says what failed and what to do about it."""

    exit_code = 1


class ConfigError(TotesError):
    """A setting is missing or malformed."""

    exit_code = 2


class ConnectionFailed(TotesError):
    """A database or object store could not be reached or refused the credentials."""

    exit_code = 3


class RunInProgress(TotesError):
    """Another run holds the warehouse: this one did nothing, which is not a failure."""

    exit_code = 0
