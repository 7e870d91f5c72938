"""The demo application's queue worker ends when the application closes, whenever the cancellation lands.

redis-py (8.2) can return normally from a command whose task was cancelled meanwhile: the cancellation is then
gone. The worker used to loop on after it, and the application's close() (the demo's Ctrl-C, the tests' cleanup)
waited on it for ever: a CI run hung there for 15 minutes."""

from __future__ import annotations

import asyncio
import random
import threading
import time

from demo.app import DemoApp
from harness.servers import LocalRedis


async def _close_after_random_starts(redis_url: str, stuck: list[str]) -> None:
    rng = random.Random(7)
    for i in range(40):
        app = DemoApp("postgresql://nobody@127.0.0.1:1/none", redis_url)  # the engine connects lazily
        app.work_every = 0.001  # rounds back to back: most cancellations land in a Redis command
        await app.start()
        await asyncio.sleep(rng.uniform(0.0, 0.01))
        worker = app._worker
        assert worker is not None
        closing = asyncio.create_task(app.close())
        await asyncio.wait({closing, worker}, timeout=15, return_when=asyncio.ALL_COMPLETED)
        if not (closing.done() and worker.done()):
            stuck.append(f"round {i}: close() done {closing.done()}, worker done {worker.done()}")
            return


def test_the_worker_ends_at_close_whenever_it_is_cancelled(redis_server: LocalRedis) -> None:
    # In a thread of its own with its own event loop: a worker that never ends would also hang the loop's own
    # shutdown (it cancels and waits on every task), so a regression here must not take the test session with it.
    stuck: list[str] = []
    thread = threading.Thread(target=asyncio.run, args=(_close_after_random_starts(redis_server.url(), stuck),),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while thread.is_alive() and not stuck and time.monotonic() < deadline:
        thread.join(0.1)
    assert not stuck and not thread.is_alive(), stuck or "the rounds did not end"
