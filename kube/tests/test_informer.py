"""The generic informer against the fake API server: list, watch, relist on 410, backoff, synced."""

from __future__ import annotations

from typing import Any

import pytest

from kube.backoff import Backoff
from kube.errors import AccessDeniedError, ApiUnavailableError, NotFoundError
from kube.informer import Informer, Key
from kube.tests.fakes import Clock, FakeKube, deployment, running, until
from kube.views import DeploymentView, deployment_view

pytestmark = pytest.mark.asyncio

PATH = "/apis/apps/v1/deployments"


def make(
    kube: FakeKube, clock: Clock | None = None, page_size: int = 500
) -> Informer[DeploymentView]:
    return Informer(
        kube,
        resource="deployments",
        path=PATH,
        convert=deployment_view,
        page_size=page_size,
        backoff=Backoff(uniform=lambda _low, _high: 0.0),
        clock=clock or Clock(),
    )


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    fake.objects[PATH] = [deployment("a", f"d{i}", replicas=i) for i in range(5)]
    return fake


async def test_informer_lists_every_page_then_is_synced(kube: FakeKube) -> None:
    informer = make(kube, page_size=2)
    synced_before = informer.synced
    async with running(informer):
        await kube.next_watch(1)
        assert (synced_before, informer.synced) == (False, True)
        assert len(informer) == 5
        assert [c.get("continue") for c in kube.list_calls] == [None, "2", "4"]
        view = informer.get(("a", "d3"))
        assert view is not None
        assert view.spec_replicas == 3


async def test_informer_watches_from_list_version_with_bookmarks_and_timeouts(
    kube: FakeKube,
) -> None:
    informer = make(kube)
    async with running(informer):
        watch = await kube.next_watch(1)
    assert watch.query["resourceVersion"] == "100"
    assert watch.query["allowWatchBookmarks"] == "true"
    assert watch.query["watch"] == "true"
    assert 300 <= int(watch.query["timeoutSeconds"]) <= 600  # client-go's 5-10 min


async def test_informer_applies_events_and_notifies_subscribers(kube: FakeKube) -> None:
    informer = make(kube)
    seen: list[tuple[Key, int | None, int | None]] = []
    informer.subscribe(
        lambda key, old, new: seen.append(
            (key, old.spec_replicas if old else None, new.spec_replicas if new else None)
        )
    )
    async with running(informer):
        watch = await kube.next_watch(1)
        seen.clear()
        watch.events.put_nowait({"type": "ADDED", "object": deployment("b", "new", 7, rv=101)})
        watch.events.put_nowait({"type": "MODIFIED", "object": deployment("a", "d1", 9, rv=102)})
        watch.events.put_nowait({"type": "DELETED", "object": deployment("a", "d2", rv=103)})
        await until(lambda: len(seen) == 3)
    assert seen == [(("b", "new"), None, 7), (("a", "d1"), 1, 9), (("a", "d2"), 2, None)]
    assert informer.get(("a", "d2")) is None
    assert informer.items_after(None, 9)[-1][0] == ("b", "new")


async def test_informer_resumes_watch_from_last_bookmark(kube: FakeKube) -> None:
    informer = make(kube)
    async with running(informer):
        first = await kube.next_watch(1)
        first.events.put_nowait(
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "555"}}}
        )
        first.events.put_nowait(None)  # server-side timeout ends the watch
        second = await kube.next_watch(2)
    assert second.query["resourceVersion"] == "555"
    assert len(kube.list_calls) == 1  # a normal watch end does not relist


async def test_informer_relists_on_410_and_drops_objects_deleted_in_the_gap(
    kube: FakeKube,
) -> None:
    informer = make(kube)
    deleted: list[Key] = []
    informer.subscribe(lambda key, old, new: deleted.append(key) if new is None else None)
    async with running(informer):
        watch = await kube.next_watch(1)
        # d4 is deleted while the watch cannot see it; the server then says "too old".
        kube.objects[PATH] = kube.objects[PATH][:4]
        watch.events.put_nowait({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
        await kube.next_watch(2)
    assert informer.get(("a", "d4")) is None
    assert deleted == [("a", "d4")]
    assert len(kube.list_calls) == 2


async def test_informer_backs_off_and_retries_after_list_errors(kube: FakeKube) -> None:
    kube.list_errors = [ApiUnavailableError("refused"), AccessDeniedError("403")]
    informer = make(kube)
    async with running(informer):
        await kube.next_watch(1)
    assert informer.synced
    assert len(kube.list_calls) == 3


async def test_informer_stays_synced_through_a_short_outage_but_not_a_long_one(
    kube: FakeKube,
) -> None:
    clock = Clock()
    informer, ceilings = with_ceilings(kube, clock)
    async with running(informer):
        watch = await kube.next_watch(1)
        kube.down = True
        watch.events.put_nowait(ApiUnavailableError("connection reset"))
        await until(lambda: len(ceilings.ceilings) >= 1)  # failed, backing off
        clock.now += 7.9
        short_outage = informer.synced
        clock.now += 0.2
        long_outage = informer.synced
        kube.down = False
        await kube.next_watch(2)
        assert (short_outage, long_outage, informer.synced) == (True, False, True)


async def test_informer_survives_a_failing_subscriber(kube: FakeKube) -> None:
    informer = make(kube)

    def broken(key: Key, old: object, new: object) -> None:
        raise RuntimeError("bug in subscriber")

    informer.subscribe(broken)
    async with running(informer):
        watch = await kube.next_watch(1)
        watch.events.put_nowait({"type": "ADDED", "object": deployment("b", "x", rv=101)})
        await until(lambda: informer.get(("b", "x")) is not None)
        assert informer.synced


def malformed(ns: str, name: str, rv: int = 1) -> dict[str, Any]:
    """A Deployment whose spec is not an object: the converter cannot read it."""
    obj = deployment(ns, name, rv=rv)
    obj["spec"] = "not an object"
    return obj


async def test_informer_leaves_out_a_malformed_listed_object_and_keeps_the_rest(
    kube: FakeKube,
) -> None:
    kube.objects[PATH] = [*kube.objects[PATH], malformed("a", "broken")]
    informer = make(kube)
    async with running(informer):
        await kube.next_watch(1)
        assert (informer.synced, len(informer), informer.get(("a", "broken"))) == (True, 5, None)


async def test_informer_drops_an_object_whose_watch_event_is_malformed(kube: FakeKube) -> None:
    informer = make(kube)
    removed: list[Key] = []
    informer.subscribe(lambda key, old, new: removed.append(key) if new is None else None)
    async with running(informer):
        watch = await kube.next_watch(1)
        watch.events.put_nowait({"type": "MODIFIED", "object": malformed("a", "d1", rv=101)})
        watch.events.put_nowait({"type": "ADDED", "object": "not an object"})
        watch.events.put_nowait({"type": "ADDED", "object": deployment("b", "after", rv=102)})
        await until(lambda: informer.get(("b", "after")) is not None)
        assert informer.synced
    assert informer.get(("a", "d1")) is None
    assert removed == [("a", "d1")]
    assert len(kube.list_calls) == 1  # no relist: the watch went on


async def test_informer_says_the_resource_is_not_served_when_its_collection_is_missing(
    kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    kube.list_errors = [NotFoundError("not found")]
    informer = make(kube)
    async with running(informer):
        await kube.next_watch(1)
    missing = [r for r in caplog.records if "CustomResourceDefinition" in r.getMessage()]
    assert [r.__dict__["path"] for r in missing] == [PATH]
    assert informer.synced  # retried, not crashed: it recovers once the CRD exists


class CeilingLog:
    """Backoff's random draw, replaced: records each ceiling and waits 0 s."""

    def __init__(self) -> None:
        self.ceilings: list[float] = []

    def __call__(self, _low: float, high: float) -> float:
        self.ceilings.append(high)
        return 0.0


def with_ceilings(kube: FakeKube, clock: Clock) -> tuple[Informer[DeploymentView], CeilingLog]:
    ceilings = CeilingLog()
    informer = Informer(
        kube,
        resource="deployments",
        path=PATH,
        convert=deployment_view,
        backoff=Backoff(base=1.0, cap=30.0, uniform=ceilings),
        clock=clock,
    )
    return informer, ceilings


BOOKMARK_150 = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}}


@pytest.mark.parametrize(
    ("events", "resumed_at"),
    [
        ([{"type": "MODIFIED", "object": deployment("a", "d1", 9, rv=101)}], "101"),
        ([{"type": "ADDED", "object": deployment("b", "x", rv=101)}, BOOKMARK_150], "150"),
        ([{"type": "DELETED", "object": deployment("a", "d2", rv=120)}], "120"),
    ],
)
async def test_informer_resumes_from_the_last_applied_event_after_a_mid_stream_failure(
    kube: FakeKube, events: list[dict[str, Any]], resumed_at: str
) -> None:
    informer = make(kube)
    async with running(informer):
        first = await kube.next_watch(1)
        for event in events:
            first.events.put_nowait(event)
        first.events.put_nowait(ApiUnavailableError("connection reset"))
        second = await kube.next_watch(2)
    assert second.query["resourceVersion"] == resumed_at
    assert len(kube.list_calls) == 1  # resumed, not relisted


async def test_informer_treats_a_watch_that_ends_at_once_with_nothing_as_a_failure(
    kube: FakeKube,
) -> None:
    informer, ceilings = with_ceilings(kube, Clock())
    async with running(informer):
        for n in (1, 2, 3):
            (await kube.next_watch(n)).events.put_nowait(None)  # closed before any event
        await kube.next_watch(4)
    # Each empty watch waits longer than the one before: 1, 2, 4 s ceilings.
    assert ceilings.ceilings == [1.0, 2.0, 4.0]
    assert informer.synced  # the API server still answers: the cache is not stale


async def test_informer_reopens_a_quiet_watch_that_stayed_open_without_backoff(
    kube: FakeKube,
) -> None:
    clock = Clock()
    informer, ceilings = with_ceilings(kube, clock)
    async with running(informer):
        first = await kube.next_watch(1)
        clock.now += 1.5  # a quiet collection: nothing to say, but the watch stayed open
        first.events.put_nowait(None)
        second = await kube.next_watch(2)
    assert ceilings.ceilings == []
    assert second.query["resourceVersion"] == "100"


async def test_informer_resets_its_backoff_only_after_a_watch_that_delivered_an_event(
    kube: FakeKube,
) -> None:
    informer, ceilings = with_ceilings(kube, Clock())
    async with running(informer):
        (await kube.next_watch(1)).events.put_nowait(None)  # empty: 1 s
        # Connected, then failed before any event: still no reset, 2 s.
        (await kube.next_watch(2)).events.put_nowait(ApiUnavailableError("reset"))
        delivering = await kube.next_watch(3)
        delivering.events.put_nowait(BOOKMARK_150)
        delivering.events.put_nowait(ApiUnavailableError("reset"))  # after a reset: 1 s again
        await kube.next_watch(4)
    assert ceilings.ceilings == [1.0, 2.0, 1.0]


async def test_informer_counts_an_outage_through_watches_that_deliver_nothing(
    kube: FakeKube,
) -> None:
    clock = Clock()
    ceilings = CeilingLog()

    def draw(low: float, high: float) -> float:
        # No wait for 20 retries, then a long one, to look at the cache between two watches.
        ceilings(low, high)
        return 0.0 if len(ceilings.ceilings) <= 20 else 3600.0

    informer = Informer(
        kube,
        resource="deployments",
        path=PATH,
        convert=deployment_view,
        backoff=Backoff(uniform=draw),
        clock=clock,
    )
    async with running(informer):
        (await kube.next_watch(1)).events.put_nowait(ApiUnavailableError("connection reset"))
        # A proxy now accepts every watch and closes it at once, for longer than STALE_AFTER_S.
        for n in range(2, 22):
            clock.now += 0.5
            (await kube.next_watch(n)).events.put_nowait(None)
        await until(lambda: len(ceilings.ceilings) == 21)
        assert not informer.synced
