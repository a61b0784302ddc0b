"""Fixtures for the reconciler's unit tests: fail any test that leaks an asyncio task."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest_asyncio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest_asyncio.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    yield
    await asyncio.sleep(0)  # let cancelled tasks finish unwinding
    leaked = asyncio.all_tasks() - {asyncio.current_task()}
    assert not leaked, f"test leaked asyncio tasks: {leaked}"
