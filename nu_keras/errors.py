"""The one exception type users see: the CLI prints its message as one line and exits with 2."""


class NuKerasError(Exception):
    """A problem the user can act on (bad flag, missing artifact, unreadable data)."""
