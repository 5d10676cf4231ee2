"""Lethe: privacy operations on AWS. Handlers live in functions/; this package is logic and data access."""
