"""Kubernetes access: the only package that imports `kubernetes` or `aiohttp`.

Public surface: `client.connect`/`KubeApi` (raw JSON seam), `informer.Informer` (generic list+watch
cache), `resources.InformerGroup` (per-namespace informers as one cache), `views` (frozen views and
converters), `probe.ApiServerProbe`, and `errors` (the domain error hierarchy).
"""
