"""
What every benchmark shares: the machine description, the emulator as a separate process, figures.

Every benchmark prints its raw numbers, then one line per ratio::

    RATIO <name> = <value> (target <= <target>: met | MISSED)

and, with ``--json PATH``, writes the same figures to ``PATH`` for :mod:`bench.run_all`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The service quota every benchmark runs the emulator at (requests per second per action).
QUOTA = 20.0


def machine() -> dict[str, Any]:
    """The machine and software the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "airflow": version("apache-airflow"),
        "tencentcloud-sdk-python-mps": version("tencentcloud-sdk-python-mps"),
        "tencentcloud-sdk-python-common": version("tencentcloud-sdk-python-common"),
        "provider": version("airflow-provider-tencentcloud-mps"),
        # What bench.parse_vs_dbt_cloud compares the operators with (the `bench` extra).
        "apache-airflow-providers-dbt-cloud": version("apache-airflow-providers-dbt-cloud"),
        "platform": platform.platform(),
    }


def print_machine() -> None:
    """Print :func:`machine` as one line per item."""
    for key, value in machine().items():
        print(f"machine.{key}: {value}")


@dataclass
class Figures:
    """
    The raw numbers and ratios of one benchmark, printed as they are recorded.

    :param name: the benchmark's name, the prefix of every figure.
    """

    name: str
    raw: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, key: str, value: Any, unit: str = "") -> None:
        """Record and print one raw number."""
        if isinstance(value, float):
            value = round(value, 6)
        self.raw[key] = value
        print(f"RAW {self.name}.{key} = {value}{(' ' + unit) if unit else ''}", flush=True)

    def ratio(self, key: str, value: float, target: float | None = None, *, what: str) -> None:
        """Record and print one ratio, with its target when it has one."""
        verdict = None if target is None else ("met" if value <= target else "MISSED")
        self.ratios[key] = {"value": round(value, 4), "target": target, "verdict": verdict, "what": what}
        suffix = "" if target is None else f" (target <= {target}: {verdict})"
        print(f"RATIO {self.name}.{key} = {value:.3f}{suffix}  -- {what}", flush=True)

    def note(self, text: str) -> None:
        """Record and print a sentence that belongs next to the figures."""
        self.notes.append(text)
        print(f"NOTE {self.name}: {text}", flush=True)

    def write(self, path: str | None) -> None:
        """Write the figures to ``path`` as JSON (nothing when ``path`` is None)."""
        if path:
            Path(path).write_text(
                json.dumps(
                    {"name": self.name, "raw": self.raw, "ratios": self.ratios, "notes": self.notes}, indent=2
                )
            )


def start_figures(name: str, **settings: Any) -> Figures:
    """
    Print the machine (:func:`print_machine`), then return the benchmark's figures, its settings recorded.

    :param name: the benchmark's name, the prefix of every figure.
    :param settings: the run's settings (sizes, rates), recorded as raw figures in this order.
    """
    print_machine()
    figures = Figures(name)
    for key, value in settings.items():
        figures.record(key, value)
    return figures


def base_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes: ``--tiny`` and ``--json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tiny", action="store_true", help="a tiny size that only checks the script runs")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def max_per_second(times: list[float]) -> tuple[int, float | None]:
    """The most events inside any one-second window of ``times`` (epoch seconds), and when it began."""
    ordered = sorted(times)
    best, at, start = 0, None, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= 1.0:
            start += 1
        if end - start + 1 > best:
            best, at = end - start + 1, ordered[start]
    return best, at


class EmulatorProcess:
    """
    The MPS emulator (``mps-emulator``) in its own process, as the real service is remote.

    :param knobs: command-line knobs, e.g. ``{"rate_limit": 20, "wait_seconds": 1}``.
    """

    def __init__(self, **knobs: Any) -> None:
        self.knobs = knobs
        self.process: subprocess.Popen[str] | None = None
        self.handle: Any = None

    def __enter__(self) -> Any:
        from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
        from airflow_provider_mps.emulator.server import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

        command = [sys.executable, "-m", "airflow_provider_mps.emulator.server", "--port", "0"]
        command += ["--log-level", "warning"]
        for name, value in self.knobs.items():
            command += ["--" + name.replace("_", "-"), str(value)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            self.__exit__()
            raise RuntimeError(f"The emulator did not start: {line!r}")
        self.handle = EmulatorHandle(match.group(1), DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY)
        return self.handle

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def use_emulator_connection(handle: Any) -> None:
    """Point this process's default MPS connection at the emulator."""
    os.environ["AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT"] = handle.airflow_connection()


def wall() -> float:
    """A monotonic clock for durations."""
    return time.perf_counter()
