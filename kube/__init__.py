"""Kubernetes access, the only package that talks to the API server (import contract): the
watch-based caches, the custom resource, the writes and one error hierarchy (errors)."""
