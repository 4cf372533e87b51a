"""Allow `python -m nu_keras`, same as the `nu-keras` console script."""

from nu_keras.cli import entry_point

if __name__ == "__main__":
    entry_point()
