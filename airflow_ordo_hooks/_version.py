"""The package's version, in a leaf of its own so that modules and metadata can read it without the package root."""

__version__ = "0.1.0"
