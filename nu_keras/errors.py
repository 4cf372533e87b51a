"""The one exception type users see: the CLI prints its message as one line and exits with 2; the Python API
(`nu_keras.NuKerasError`) raises it, with a one-line message, for every bad input."""

import errno

# Errors of a write that did not fit (a full disk or quota, a file past the size limit): the path to name is
# the one being written, never the source of a copy.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class NuKerasError(Exception):
    """A problem the user can act on (bad flag, missing artifact, unreadable data)."""
