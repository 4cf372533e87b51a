"""nu_keras: train the 784-10-10 MNIST network and publish what its hidden neurons do."""

import sys

__version__ = "0.1.0"


def _one_line_for_an_early_interrupt(kind, value, traceback, default=sys.excepthook) -> None:
    """Ctrl-C while the command is still starting, before `cli.main` handles signals: one line, no traceback.

    Set here, the first module of ours Python imports, to shrink the window to Python's own start-up.
    """
    if issubclass(kind, KeyboardInterrupt):
        sys.stderr.write("nu-keras: interrupted\n")
    else:
        default(kind, value, traceback)


sys.excepthook = _one_line_for_an_early_interrupt
