"""Allow `python -m nu_keras`, same as the `nu-keras` console script."""

from nu_keras.cli import entry_point

entry_point()
