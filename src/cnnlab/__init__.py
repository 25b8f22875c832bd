"""cnnlab: run, compare and explain convolutional-network image-classification studies."""

from cnnlab.version import __version__

__all__ = ["__version__", "load_model", "load_spec", "open_store", "run_study"]


def __getattr__(name: str):
    # The API pulls in torch; import it on first use so `cnnlab --help` and `cnnlab spec` stay fast.
    if name in ("load_model", "load_spec", "open_store", "run_study"):
        from cnnlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
