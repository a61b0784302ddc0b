"""Developer tooling for replicant: a package so `python -m tools.cluster` and the other tools run
from the repository root and the tests can import them."""
