"""nu_keras: train the 784-10-10 MNIST network and publish what its hidden neurons do."""

__version__ = "0.1.0"
