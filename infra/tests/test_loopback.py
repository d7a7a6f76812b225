"""The load tests' open loop and disk probe: what the benchmarks' latency figures rest on."""

from __future__ import annotations

import asyncio
import math
import time

from cityblocks.loopback import DiskProbe, OpenLoop, open_loop, percentile


async def test_open_loop_counts_latency_from_the_schedule_and_abandons_after_the_grace() -> None:
    calls = 0

    async def work() -> bool:
        nonlocal calls
        calls += 1
        this = calls
        if this == 3:
            await asyncio.sleep(10)  # never answers within the grace
        await asyncio.sleep(0.01)
        return this != 5  # the fifth is answered with a refusal

    loop = await open_loop(rate=100, seconds=0.1, work=work, grace=0.3)

    assert calls == 10
    assert len(loop.latencies) == len(loop.scheduled) == 10
    assert loop.abandoned == 1
    assert loop.failures == 2  # the abandoned one and the refused one
    assert sum(1 for latency in loop.latencies if math.isinf(latency)) == 1
    assert all(latency >= 0.01 for latency in loop.latencies if math.isfinite(latency))
    assert loop.at(0.99) == "abandoned (above the grace period)"


def test_windows_split_the_loop_by_scheduled_start() -> None:
    loop = OpenLoop(
        scheduled=[100.0 + i * 0.5 for i in range(20)],  # 10 s, two requests a second
        latencies=[0.010] * 10 + [0.010] * 9 + [0.400],  # the very last one is slow
    )

    windows = loop.windows(5.0)

    assert [(w["from_s"], w["requests"]) for w in windows] == [(0.0, 10), (5.0, 10)]
    assert windows[0]["p99_ms"] == 10.0
    assert windows[1]["p99_ms"] == 400.0
    assert windows[1]["p50_ms"] == 10.0
    assert OpenLoop().windows(5.0) == []


def test_disk_probe_reports_the_samples_of_a_window() -> None:
    with DiskProbe(interval_s=0.001) as disk:
        time.sleep(0.05)
        middle = time.perf_counter()
        time.sleep(0.05)

    everything, before, after = disk.figures(), disk.figures(until=middle), disk.figures(since=middle)

    assert everything["fsyncs"] == before["fsyncs"] + after["fsyncs"]
    assert before["fsyncs"] > 0 and after["fsyncs"] > 0
    assert disk.figures(since=middle + 3600) == {"fsyncs": 0}
    assert everything["fsync_max_ms"] >= everything["fsync_p50_ms"] > 0


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([1.0] * 99 + [9.0], 0.99) == 9.0
    assert math.isnan(percentile([], 0.99))
