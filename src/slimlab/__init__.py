"""slimlab: small, fast image classifiers that stay accurate when their training labels are wrong."""

__version__ = "0.1.0"
