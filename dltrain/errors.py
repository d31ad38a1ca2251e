"""The one family of exceptions dltrain raises for problems a user can fix."""


class DltrainError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits 2."""


class ConfigError(DltrainError):
    """The config file or an override is invalid."""


class DataError(DltrainError):
    """A dataset cannot be found, read or matched to the model."""


class RunError(DltrainError):
    """A run directory or saved model cannot be used as asked."""


class Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl-C does, but exit 143 as the signal asks."""
