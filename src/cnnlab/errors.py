"""One exception type per stage, caught once in the CLI and printed as one paragraph."""


class CnnlabError(Exception):
    """Base for every error cnnlab reports to a user (exit status 2, no traceback)."""

    exit_status = 2


class SpecError(CnnlabError):
    """The study spec is malformed or asks for something impossible."""


class DataError(CnnlabError):
    """A dataset cannot be found, downloaded, verified or read."""


class ModelError(CnnlabError):
    """A layer list cannot be built into a model (shapes, sizes, unknown names)."""


class TrainError(CnnlabError):
    """Training cannot start or continue."""


class StoreError(CnnlabError):
    """The run store cannot be opened, read or written."""
