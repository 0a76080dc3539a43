import asyncio

import pytest

from rewardforge.serving.batcher import MicroBatcher


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_model_calls_and_keep_their_order():
    calls: list[list[int]] = []

    def score(items: list[int]) -> list[float]:
        calls.append(list(items))
        return [float(item) * 10 for item in items]

    async def main():
        batcher = MicroBatcher(score, max_batch_items=6, max_wait_s=0.05)
        requests = [batcher.submit([i, i + 100]) for i in range(6)]
        results = await asyncio.gather(*requests)
        await batcher.close()
        return results

    results = run(main())
    assert results == [[i * 10.0, (i + 100) * 10.0] for i in range(6)]
    assert sum(len(call) for call in calls) == 12
    assert len(calls) == 2 and all(len(call) == 6 for call in calls)  # 3 requests per call


def test_a_lone_request_waits_at_most_max_wait():
    async def main():
        batcher = MicroBatcher(lambda items: [1.0] * len(items), max_wait_s=0.01)
        result = await asyncio.wait_for(batcher.submit(["a"]), timeout=2)
        await batcher.close()
        return result

    assert run(main()) == [1.0]


def test_a_failure_reaches_every_waiting_request_and_the_batcher_goes_on():
    def score(items):
        if "bad" in items:
            raise RuntimeError("model failed")
        return [0.0] * len(items)

    async def main():
        batcher = MicroBatcher(score, max_batch_items=10, max_wait_s=0.05)
        outcomes = await asyncio.gather(
            batcher.submit(["bad"]), batcher.submit(["ok"]), return_exceptions=True
        )
        after = await batcher.submit(["ok"])
        await batcher.close()
        return outcomes, after

    outcomes, after = run(main())
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    assert after == [0.0]


def test_empty_request():
    async def main():
        return await MicroBatcher(lambda items: pytest.fail("not called")).submit([])

    assert run(main()) == []


def test_a_batch_never_grows_past_max_batch_items():
    calls: list[int] = []

    def score(items):
        calls.append(len(items))
        return [0.0] * len(items)

    async def main():
        batcher = MicroBatcher(score, max_batch_items=4, max_wait_s=0.05)
        results = await asyncio.gather(*(batcher.submit(["x"] * 3) for _ in range(4)))
        alone = await batcher.submit(["y"] * 9)  # larger than a batch: scored alone
        await batcher.close()
        return results, alone

    results, alone = run(main())
    assert [len(result) for result in results] == [3, 3, 3, 3] and len(alone) == 9
    assert calls == [3, 3, 3, 3, 9]


def test_a_client_that_goes_away_does_not_break_the_batcher():
    scored: list[str] = []

    def score(items):
        scored.extend(items)
        return [1.0] * len(items)

    async def main():
        batcher = MicroBatcher(score, max_batch_items=8, max_wait_s=0.05)
        gone = asyncio.create_task(batcher.submit(["gone"]))
        await asyncio.sleep(0)  # queued
        gone.cancel()
        stays = await batcher.submit(["stays"])
        later = await batcher.submit(["later"])
        await batcher.close()
        return gone, stays, later

    gone, stays, later = run(main())
    assert gone.cancelled() and stays == [1.0] and later == [1.0]
    assert "gone" not in scored


def test_close_answers_every_request_still_waiting():
    import threading

    from rewardforge.serving.batcher import BatcherClosed

    release = threading.Event()
    started = threading.Event()

    def slow_score(items):
        started.set()
        release.wait(5)
        return [0.0] * len(items)

    async def main():
        batcher = MicroBatcher(slow_score, max_batch_items=1, max_wait_s=0.001)
        in_model = asyncio.ensure_future(batcher.submit(["scoring now"]))
        while not started.is_set():
            await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(batcher.submit([f"queued {i}"])) for i in range(3)]
        await asyncio.sleep(0.05)  # the first queued one waits as the next batch's opener
        await batcher.close()
        release.set()
        outcomes = await asyncio.wait_for(
            asyncio.gather(in_model, *queued, return_exceptions=True), timeout=5
        )
        return outcomes

    outcomes = run(main())
    assert len(outcomes) == 4
    assert all(isinstance(outcome, BatcherClosed) for outcome in outcomes), outcomes
