"""Request bodies fed to blocking sinks without blocking the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.concurrency import run_in_threadpool

from dataloft.storage.blobs.base import BlobStore, BlobWriter

BATCH = 1 << 20


async def pump(body: AsyncIterator[bytes], sink: Callable[[bytes], object]) -> None:
    """Feed `body` to `sink` ~1 MiB at a time, on the threadpool: a sink may block (an S3
    writer sends a part once its buffer fills)."""
    batch = bytearray()
    async for chunk in body:
        batch += chunk
        if len(batch) >= BATCH:
            await run_in_threadpool(sink, bytes(batch))
            batch.clear()
    if batch:
        await run_in_threadpool(sink, bytes(batch))


@asynccontextmanager
async def blob_writer(blobs: BlobStore, max_bytes: int) -> AsyncIterator[BlobWriter]:
    """`blobs.writer(max_bytes)` for async code: leaving it (which aborts an uncommitted
    upload: an S3 call) happens on the threadpool. Commit with
    `await run_in_threadpool(writer.commit)` and write through `pump`."""
    writer = blobs.writer(max_bytes)
    try:
        yield writer
    finally:
        await run_in_threadpool(writer.abort)
