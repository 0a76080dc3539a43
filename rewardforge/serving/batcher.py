"""Dynamic micro-batching: requests that arrive together are scored in one model call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")  # what `score` gives an item: a reward, or a PRM's step rewards


class BatcherClosed(RuntimeError):
    """The server shut down before this request was scored."""


@dataclass
class _Pending(Generic[Item, Result]):
    items: Sequence[Item]
    future: asyncio.Future[list[Result]]


class MicroBatcher(Generic[Item, Result]):
    """Collects the items of concurrent requests and scores them together.

    The first waiting request opens a batch; requests keep joining until the batch holds
    `max_batch_items` items or `max_wait_s` has passed, then one call to `score` handles them
    all in a worker thread (one at a time, so the model is never run concurrently) and every
    request gets its own slice of the results. A batch never exceeds `max_batch_items` unless
    one request alone does, and then that request is scored alone. `on_batch(items, seconds)`
    reports each model call, for metrics.
    """

    def __init__(
        self,
        score: Callable[[list[Item]], list[Result]],
        max_batch_items: int = 64,
        max_wait_s: float = 0.01,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.score = score
        self.max_batch_items = max_batch_items
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[Item, Result]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._taken: list[_Pending[Item, Result]] = []  # out of the queue, not yet answered
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reward-model")

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Results for `items`, in order, scored together with whatever else is waiting."""
        if not items:
            return []
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(items, future))
        return await future

    async def close(self) -> None:
        """Stop the worker; every request still waiting gets `BatcherClosed`."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        waiting = list(self._taken)
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for pending in waiting:
            if not pending.future.done():
                pending.future.set_exception(
                    BatcherClosed("the server shut down before this request was scored")
                )
        self._taken = []
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        carried: _Pending[Item, Result] | None = None  # arrived when the last batch was full
        while True:
            batch = [carried or await self._queue.get()]
            self._taken = batch
            carried = None
            size = len(batch[0].items)
            deadline = loop.time() + self.max_wait_s
            while size < self.max_batch_items:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                if size + len(pending.items) > self.max_batch_items:
                    carried = pending  # it opens the next batch instead
                    self._taken = [*batch, carried]
                    break
                batch.append(pending)
                size += len(pending.items)
            # A client that went away cancelled its future: its items are not scored.
            batch = [pending for pending in batch if not pending.future.cancelled()]
            if batch:
                await self._score(loop, batch)
            self._taken = [carried] if carried else []

    async def _score(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Pending[Item, Result]]
    ) -> None:
        items = [item for pending in batch for item in pending.items]
        started = time.perf_counter()
        try:
            rewards = await loop.run_in_executor(self._executor, self.score, items)
        except Exception as error:  # hand the failure to every waiting request
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        if self.on_batch is not None:
            self.on_batch(len(items), time.perf_counter() - started)
        start = 0
        for pending in batch:
            end = start + len(pending.items)
            if not pending.future.done():
                pending.future.set_result(rewards[start:end])
            start = end
