"""Stage: serving. Online micro-batching: concurrent scoring requests share one Predictor call.

Reads and writes nothing. Single-shipment requests that arrive together are scored in one
`Predictor.predict_shipments` call (in a worker thread), so throughput grows with concurrency while each
request still gets its own rows back. `prepare` (the contract check of the rows) runs on the whole batch in
the same thread. When a batch fails on its input (`ValueError`), each request is re-run alone so only the bad
one gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from serving.http.observability import ApiMetrics
from serving.online.predictor import Predictor

__all__ = ["MicroBatcher"]


@dataclass
class _Item:
    predictor: Predictor
    frame: pl.DataFrame
    future: asyncio.Future[pl.DataFrame]


def _settle(future: asyncio.Future[pl.DataFrame], outcome: pl.DataFrame | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class MicroBatcher:
    """Groups concurrent scoring requests into one Predictor call (one worker task per event loop).

    Args:
        window_s: how long to wait for more requests after the first one.
        max_rows: most rows in one call.
        metrics: rows-per-batch histogram.
        prepare: applied to a batch's rows before scoring (e.g. the contract check, without unique ids:
            requests may share ids); raises ValueError on bad rows.
    """

    def __init__(
        self,
        window_s: float,
        max_rows: int,
        metrics: ApiMetrics | None = None,
        prepare: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    ) -> None:
        self.window_s = window_s
        self.max_rows = max_rows
        self.metrics = metrics
        self.prepare = prepare
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def score(self, predictor: Predictor, frame: pl.DataFrame) -> pl.DataFrame:
        """`predictor.predict_shipments(prepare(frame))`, possibly computed together with other requests.

        Raises:
            ValueError: the request's own rows are invalid (other requests of the batch are unaffected).
        """
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done() or self._loop is not loop:
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        future: asyncio.Future[pl.DataFrame] = loop.create_future()
        self._queue.put_nowait(_Item(predictor, frame, future))
        return await future

    async def close(self) -> None:
        """Stop the worker."""
        if self._worker is not None and self._loop is asyncio.get_running_loop():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _collect(self, queue: asyncio.Queue[_Item]) -> list[_Item]:
        items = [await queue.get()]
        rows = items[0].frame.height
        deadline = asyncio.get_running_loop().time() + self.window_s
        while rows < self.max_rows:
            left = deadline - asyncio.get_running_loop().time()
            try:
                item = queue.get_nowait() if left <= 0 else await asyncio.wait_for(queue.get(), left)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            items.append(item)
            rows += item.frame.height
        return items

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = await self._collect(queue)
            groups: dict[int, list[_Item]] = {}
            for item in items:  # during a swap, requests hold different predictors
                groups.setdefault(id(item.predictor), []).append(item)
            for group in groups.values():
                await self._execute(group)

    def _predict(self, predictor: Predictor, frame: pl.DataFrame) -> pl.DataFrame:
        rows = frame if self.prepare is None else self.prepare(frame)
        # Booking features never read shipment_id; unique internal ids let requests share ids.
        return predictor.predict_shipments(
            rows.with_columns(pl.format("b{}", pl.int_range(pl.len())).alias("shipment_id"))
        )

    async def _execute(self, items: list[_Item]) -> None:
        live = [i for i in items if not i.future.done()]
        if not live:
            return
        heights = [i.frame.height for i in live]
        frame = pl.concat([i.frame for i in live], how="vertical_relaxed")
        if self.metrics is not None:
            self.metrics.batch_rows.observe(frame.height)
        try:
            out = await asyncio.to_thread(self._predict, live[0].predictor, frame)
        except ValueError as exc:
            if len(live) > 1:  # let each request get its own error
                for item in live:
                    await self._execute([item])
                return
            _settle(live[0].future, exc)
            return
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            for item in live:
                _settle(item.future, exc)
            return
        offset = 0
        for item, h in zip(live, heights, strict=True):
            _settle(item.future, out.slice(offset, h).with_columns(item.frame.get_column("shipment_id")))
            offset += h
