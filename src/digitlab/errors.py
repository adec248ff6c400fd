"""The project's error types.

Every error we raise on purpose derives from DigitlabError; its message is one line that says
what went wrong and where, and the CLI prints it as is with a non-zero exit code.
"""


class DigitlabError(Exception):
    """Base of every error the CLI reports as one line."""


class DataError(DigitlabError):
    """A data file or array is missing, corrupt or inconsistent."""


class ConfigError(DigitlabError):
    """A configuration value or flag is invalid."""


class ModelError(DigitlabError):
    """A model file or model description is invalid or does not fit."""


class NumericError(DigitlabError):
    """A non-finite value appeared during training or evaluation."""


class StorageError(DigitlabError):
    """A file could not be written: the disk is full, the folder is gone or read-only."""
