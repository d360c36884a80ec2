"""The one error type for user mistakes.

Anything a user can get wrong (a bad option, a missing path, a checkpoint of another architecture)
raises :class:`SlimlabError`; the CLI prints its message on one line and exits with code 2.
"""


class SlimlabError(ValueError):
    """A user-facing error: the message names the problem in one line. A ``ValueError``, so that a library user
    who catches the losses' and functions' ``ValueError`` for bad input catches slimlab's own checks too."""
