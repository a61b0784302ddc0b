"""Developer tooling for replicant: pinned tool builds and the local control plane.

A package (not loose scripts) so `python -m tools.cluster` works from the repo root
and the e2e fixtures can import the cluster manager instead of shelling out to it.
"""
