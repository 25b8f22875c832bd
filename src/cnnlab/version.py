"""The package version, in one place every room may import (the root package imports the API)."""

__version__ = "0.1.0"
