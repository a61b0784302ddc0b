"""Issue 23 item 2: undecodable requests over real mTLS leave nothing alive behind them.

One shared exception re-raised per call grew its traceback by one entry each time, and every
entry kept that call's frames, grpc's ServicerContext among them, alive for good.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import grpc
import pytest

if TYPE_CHECKING:
    from server.tests.conftest import Harness

pytestmark = pytest.mark.asyncio

REQUESTS = 3000
UNDECODABLE = b"\xff\xff\xff"  # a truncated varint: no message decodes from it


def _contexts() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "_ServicerContext")


@pytest.mark.parametrize(
    ("method", "who"),
    [
        ("/replicant.v1.ReplicaService/GetReplicas", "reader"),
        ("/grpc.health.v1.Health/Check", "nobody"),  # any certificate from the client CA
    ],
)
async def test_thousands_of_undecodable_requests_leave_no_live_contexts(
    harness: Harness, method: str, who: str
) -> None:
    async with harness.channel(who) as chan:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = chan.unary_unary(method)
        codes: set[grpc.StatusCode] = set()
        for _ in range(REQUESTS // 10):  # warm up: grpc's own pools and caches fill
            try:
                await call(UNDECODABLE)
            except grpc.aio.AioRpcError as err:
                codes.add(err.code())
        before = _contexts()
        for _ in range(REQUESTS):
            try:
                await call(UNDECODABLE)
            except grpc.aio.AioRpcError as err:
                codes.add(err.code())
        after = _contexts()
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    assert after - before < 10  # flat: not one per request
