"""The one error type the CLI turns into a single clear line and a non-zero exit."""


class FactError(Exception):
    """A problem the user can fix: the message names it and says what to do.

    Raised below the CLI by loaders, schemas and experiments (core/ raises its own
    ``core.InvalidInput``, a ValueError, which the job wrapper in launch.py reports the same way).
    The CLI prints ``error: <message>`` as one line and exits with status 1; nothing else is printed.
    """
