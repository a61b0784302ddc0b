"""Autoscalers.targeting over the HPA cache (fake API)."""

from __future__ import annotations

from typing import Any

import pytest

from kube.autoscalers import Autoscalers
from kube.tests.fakes import FakeKube, running

HPAS = "/apis/autoscaling/v2/horizontalpodautoscalers"


def hpa(ns: str, name: str, target: str, api_version: str = "apps/v1") -> dict[str, Any]:
    ref = {"apiVersion": api_version, "kind": "Deployment", "name": target}
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"scaleTargetRef": ref}}


@pytest.mark.asyncio
async def test_targeting_names_the_first_hpa_of_an_apps_deployment_in_its_namespace() -> None:
    kube = FakeKube()
    kube.objects[HPAS] = [
        hpa("a", "z-hpa", "web"),
        hpa("a", "b-hpa", "web"),
        hpa("a", "other", "api"),
        hpa("a", "legacy", "old", api_version="extensions/v1beta1"),
        hpa("b", "elsewhere", "db"),
    ]
    autoscalers = Autoscalers(kube, [])
    async with running(autoscalers.informers.informers[0]):
        await kube.next_watch(1)
        found = {name: autoscalers.targeting(("a", name)) for name in ("web", "api", "old", "db")}
    assert found == {"web": "b-hpa", "api": "other", "old": None, "db": None}
