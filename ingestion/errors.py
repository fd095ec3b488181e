"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class TotesError(Exception):
    """A failure with a message that says what failed and what to do about it."""

    exit_code = 1


class ConfigError(TotesError):
    """A setting is missing or malformed."""

    exit_code = 2


class ConnectionFailed(TotesError):
    """A database refused the connection for good: bad credentials, an unknown database."""

    exit_code = 3


class UnsupportedServer(TotesError):
    """A database runs a PostgreSQL major older than the supported range: nothing was done."""

    exit_code = 2

    def __init__(self, message: str, role: str) -> None:
        super().__init__(message)
        self.role = role  # "source" or "warehouse"


class ContractViolation(TotesError):
    """The source's schema broke the data contract: the tables named were held back, the others
    ran. Retrying does not help; a person must fix the source or the contract."""

    exit_code = 65  # EX_DATAERR

    def __init__(self, message: str, tables: list[str]) -> None:
        super().__init__(message)
        self.tables = tables  # the tables held back


class SlaBreached(TotesError):
    """The warehouse is further behind the source than the SLA allows (`totes status`)."""

    exit_code = 4


class TransientFailure(TotesError):
    """A transient failure (network, server restart, S3 5xx) outlasted the retries: the next
    scheduled run will probably succeed, and nothing was lost."""

    exit_code = 75  # EX_TEMPFAIL


class RunInProgress(TotesError):
    """Another run holds the warehouse: this one did nothing, which is not a failure."""

    exit_code = 0


class RunStopped(TotesError):
    """The run was asked to stop (SIGTERM) and did, between two stages: each stage before it
    finished, and the next run goes on from there. Not a failure."""

    exit_code = 0


class FxSourceError(TotesError):
    """The FX API answered with something that is not a time series of rates."""
