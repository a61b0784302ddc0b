"""Fixtures for the server's unit tests: dev PKI, a fake API server, a running app, leak checks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from server import tls
from tools import devcerts

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

# grpc reads the cipher list once, when it first builds credentials: set it before any test does.
tls.apply_cipher_policy()


@pytest_asyncio.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)  # let cancelled tasks finish unwinding
    leaked = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()}
    assert not leaked, f"test leaked asyncio tasks: {leaked}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    devcerts.generate(out)
    return out
