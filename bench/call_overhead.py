"""
Call overhead: ``MpsHook.describe_aigc_image_task`` against a raw SDK call of the same request.

Both describe the same DONE task on the emulator (a separate process, at the real quota of 20
requests/s: the calls are paced to stay under it).  The raw call is what a user would write: one
``MpsClient`` with the default profile, reused.  Calls alternate hook/raw and raw/hook so drift
hits both alike; each call's latency is timed and the medians compared.  The same is done for
the async path (``adescribe_aigc_image_task`` against the SDK's async client), which the
triggers use.

Run: ``.venv/bin/python -m bench.call_overhead`` (``--tiny`` for a quick check).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench._common import (
    QUOTA,
    EmulatorProcess,
    base_parser,
    median,
    start_figures,
    use_emulator_connection,
    wall,
)


def raw_clients(handle: Any) -> tuple[Any, Any]:
    """The sync and async SDK clients a user would build by hand (default profile, reused)."""
    from tencentcloud.common.credential import Credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.mps.v20190612 import mps_client, mps_client_async

    parts = urlsplit(handle.endpoint)

    def profile() -> Any:
        return ClientProfile(httpProfile=HttpProfile(protocol=parts.scheme, endpoint=parts.netloc))

    credential = Credential(handle.secret_id, handle.secret_key)
    return (
        mps_client.MpsClient(credential, "ap-guangzhou", profile()),
        mps_client_async.MpsClient(credential, "ap-guangzhou", profile()),
    )


def raw_request(task_id: str) -> Any:
    from tencentcloud.mps.v20190612 import models

    request = models.DescribeAigcImageTaskRequest()
    request.TaskId = task_id
    return request


class Pacer:
    """Space calls ``1 / rate`` seconds apart so the emulator never refuses one for quota."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    def wait(self) -> None:
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.next = max(self.next, time.monotonic()) + self.interval

    async def await_slot(self) -> None:
        delay = self.next - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.next = max(self.next, time.monotonic()) + self.interval


def timed(call: Any) -> float:
    started = wall()
    call()
    return wall() - started


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[1])
    parser.add_argument("--pairs", type=int, default=300, help="hook/raw pairs of sync calls")
    args = parser.parse_args(argv)
    pairs = 10 if args.tiny else args.pairs
    figures = start_figures("call_overhead", pairs=pairs, emulator_rate_limit_per_s=QUOTA)
    with EmulatorProcess(rate_limit=QUOTA, wait_seconds=0, run_seconds=0) as handle:
        use_emulator_connection(handle)
        from airflow_provider_mps.hooks.mps import MpsHook

        hook = MpsHook()
        task_id = hook.create_aigc_image_task(prompt="A lighthouse at dawn")
        raw, raw_async = raw_clients(handle)
        request = raw_request(task_id)
        pacer = Pacer(QUOTA * 0.9)

        def hook_call() -> None:
            assert hook.describe_aigc_image_task(task_id)["Status"] == "DONE"

        def raw_call() -> None:
            assert raw.DescribeAigcImageTask(request).Status == "DONE"

        for call in (hook_call, raw_call):  # warm-up: connections, lazy imports
            pacer.wait()
            call()
        sync: dict[str, list[float]] = {"hook": [], "raw": []}
        for n in range(pairs):
            order = (("hook", hook_call), ("raw", raw_call))
            for name, call in order if n % 2 == 0 else order[::-1]:
                pacer.wait()
                sync[name].append(timed(call))

        async def async_pairs() -> dict[str, list[float]]:
            async def hook_acall() -> None:
                assert (await hook.adescribe_aigc_image_task(task_id))["Status"] == "DONE"

            async def raw_acall() -> None:
                assert (await raw_async.DescribeAigcImageTask(request)).Status == "DONE"

            for acall in (hook_acall, raw_acall):
                await pacer.await_slot()
                await acall()
            samples: dict[str, list[float]] = {"hook": [], "raw": []}
            order = (("hook", hook_acall), ("raw", raw_acall))
            for n in range(pairs):
                for name, acall in order if n % 2 == 0 else order[::-1]:
                    await pacer.await_slot()
                    started = wall()
                    await acall()
                    samples[name].append(wall() - started)
            await hook.aclose()
            await raw_async.close()
            return samples

        asynchronous = asyncio.run(async_pairs())
        calls = handle.requests()
    describes = [call for call in calls if call["Action"] == "DescribeAigcImageTask"]
    figures.record("describe_calls_at_emulator", len(describes))
    figures.record("describe_errors_at_emulator", sum(1 for call in describes if call["ErrorCode"]))
    for path, samples in (("sync", sync), ("async", asynchronous)):
        for name in ("hook", "raw"):
            figures.record(f"{path}.{name}_median_ms", median(samples[name]) * 1000, "ms")
            ordered = sorted(samples[name])
            figures.record(f"{path}.{name}_p90_ms", ordered[int(0.9 * (len(ordered) - 1))] * 1000, "ms")
    figures.ratio(
        "hook_over_raw_sync",
        figures.raw["sync.hook_median_ms"] / figures.raw["sync.raw_median_ms"],
        1.05,
        what="median latency, MpsHook.describe_aigc_image_task vs the raw SDK client",
    )
    figures.ratio(
        "hook_over_raw_async",
        figures.raw["async.hook_median_ms"] / figures.raw["async.raw_median_ms"],
        1.05,
        what="median latency, MpsHook.adescribe_aigc_image_task vs the raw async SDK client",
    )
    figures.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
