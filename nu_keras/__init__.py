"""nu_keras: train the 784-10-10 MNIST network and publish what its hidden neurons do.

Importing nu_keras changes no global state: the command line's own settings (thread counts, Ctrl-C at
start-up) are made by its entry point, `nu_keras.cli.entry_point`.
"""

__version__ = "0.1.0"
