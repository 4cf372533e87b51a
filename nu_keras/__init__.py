"""nu_keras: train the 784-10-10 MNIST network and publish what its hidden neurons do.

Importing nu_keras changes no global state: the command line's own settings (thread counts, Ctrl-C at
start-up) are made by its entry point, `nu_keras.cli.entry_point`.
"""

__version__ = "0.1.0"

# The public API (nu_keras/api.py, documented in the README's "Python API"). Its modules load Keras, numpy and
# matplotlib, so they are imported on first use of a name (PEP 562): `import nu_keras` stays light.
__all__ = [
    "NuKerasError",
    "Measurements",
    "read_layer",
    "ablate",
    "predict_classes",
    "analyse",
    "publish",
    "figure",
    "figure_names",
    "load_run",
    "load_dataset",
    "__version__",
]
_PUBLIC_MODULES = {"NuKerasError": "nu_keras.errors", "Measurements": "nu_keras.record"}


def __getattr__(name: str):
    """`nu_keras.read_layer` and the rest of `__all__`, imported from their module when first asked for."""
    if name not in __all__ or name == "__version__":
        raise AttributeError(f"module 'nu_keras' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC_MODULES.get(name, "nu_keras.api")), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
