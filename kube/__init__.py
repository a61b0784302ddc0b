"""Kubernetes access, the only package that talks to the API server (import contract).

Requirement: reads from a watch-based cache, desired state in a custom resource, scaling through
the API. Raw JSON seam (client), list+watch caches (informer, resources, views), the writes, and
one error hierarchy (errors).
"""
