"""The mathematics, pure: tensors in, tensors out; no configs, files or CLI error types.

An argument the mathematics is undefined for raises ``InvalidInput`` (a ValueError, as scikit-learn
users expect); the job wrapper in job.py prints it as the CLI's one-line error.
"""


class InvalidInput(ValueError):
    """An argument the mathematics is undefined for; the message names it and the fix."""
