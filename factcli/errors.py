"""The one error type the CLI turns into a single clear line and a non-zero exit."""


class FactError(Exception):
    """A problem the user can fix: the message names it and says what to do.

    Raised anywhere below the CLI (loaders, experiments, the core's solvers). The CLI prints
    ``error: <message>`` as one line and exits with status 1; nothing else is printed.
    """
