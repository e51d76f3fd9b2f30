"""
What the parse benchmarks share: DAG files, each parsed in a fresh process as Airflow's DAG processor does.

:mod:`bench.parse_cost` and :mod:`bench.parse_vs_dbt_cloud` write DAG files of many operators, then
parse each in turn, many times, each time in a fresh ``python -c`` process whose script begins with
:data:`CHILD_PREAMBLE` and ends with :data:`CHILD_REPORT`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_2_PLUS, AIRFLOW_V_3_3_PLUS
from bench._common import REPO_ROOT, Figures, median

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable

#: Operators per DAG file, by default.
OPERATORS = 100
#: How the installed Airflow line writes each piece, as its users (and its DAG processor) do.
DAG_MODULE = "airflow.sdk" if AIRFLOW_V_3_0_PLUS else "airflow"
CORE_OPERATORS = "airflow.providers.standard.operators" if AIRFLOW_V_3_0_PLUS else "airflow.operators"
#: The DAG processor's DagBag and serializer on the installed line (a BundleDagBag from 3.2).
PROCESSOR = {
    "dagbag": "airflow.dag_processing.dagbag.BundleDagBag"
    if AIRFLOW_V_3_2_PLUS
    else "airflow.models.dagbag.DagBag",
    "bundle": AIRFLOW_V_3_2_PLUS,
    "serializer": "airflow.serialization.serialized_objects."
    + ("DagSerialization" if AIRFLOW_V_3_3_PLUS else "SerializedDAG"),
}

HEADER = f"""from __future__ import annotations

import pendulum
from {DAG_MODULE} import DAG
"""

#: The start of a measuring process's script: its arguments (the DAG file, :data:`PROCESSOR` as JSON,
#: with what the benchmark adds), Airflow imported, the DAG processor's DagBag class loaded.
CHILD_PREAMBLE = r"""
import importlib, json, os, sys, time
path, processor = sys.argv[1], json.loads(sys.argv[2])
import airflow
def load(name):
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)
DagBag = load(processor["dagbag"])
bundle = {"bundle_path": os.path.dirname(path), "bundle_name": "bench"} if processor["bundle"] else {}
"""

#: The end of it: the ``timings`` the script took and what the parse in ``bag`` gave, as JSON.
CHILD_REPORT = r"""
assert not bag.import_errors, bag.import_errors
print(json.dumps({
    **timings,
    "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
    "sdk_modules": sorted(m for m in sys.modules if m.split(".")[0] == "tencentcloud"),
}))
"""


@dataclass(frozen=True)
class Kind:
    """One operator as a DAG file writes it: ``<cls>(task_id=f"product_{n}", <args>)``."""

    module: str
    cls: str
    args: str

    def call(self) -> str:
        """The operator's construction in the DAG file's loop (``n`` its index)."""
        return f'{self.cls}(task_id=f"product_{{n}}"{", " if self.args else ""}{self.args})'


def dag_source(dag_id: str, imports: str, loop: str) -> str:
    """
    The text of a DAG file: :data:`HEADER`, ``imports``, then DAG ``dag_id`` holding ``loop``.

    :param imports: the file's own import lines, each ending with a newline.
    :param loop: the indented body of the ``with DAG(...)`` block.
    """
    return (
        HEADER
        + imports
        + f'\nwith DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):\n'
        + loop
    )


def dag_file(dag_id: str, spec: Kind, count: int) -> str:
    """
    The DAG file of ``count`` operators of ``spec``.

    :param dag_id: the DAG's id.
    """
    loop = f"    for n in range({count}):\n        {spec.call()}\n"
    return dag_source(dag_id, f"from {spec.module} import {spec.cls}\n", loop)


def measure_dag_files(
    texts: dict[str, str],
    prefix: str,
    repetitions: int,
    script: str,
    processor: Callable[[str], dict[str, Any]],
    *,
    local_settings: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """
    Write DAG files to a temporary folder and measure each ``repetitions`` times, in fresh processes.

    Each file is measured once first, as a warm-up that fills the bytecode cache (every module's
    bytecode is cached, as pip's compile step does for an installed wheel, so no kind pays for
    compiling source that a real deployment would not); then the files take turns in every
    repetition, so drift hits every kind alike.

    :param texts: the text of each kind's file, written to ``<prefix><kind>.py``.
    :param prefix: the start of the files' names.
    :param repetitions: measurements of each file, after the warm-up.
    :param script: what each process runs: :data:`CHILD_PREAMBLE`, the timed steps, :data:`CHILD_REPORT`.
    :param processor: gives the JSON argument of a kind's process (:data:`PROCESSOR` and what
        ``script`` reads besides).
    :param local_settings: the ``airflow_local_settings.py`` of the processes' ``AIRFLOW_HOME``;
        ``None``: they keep this process's ``AIRFLOW_HOME``.
    :returns: each kind's reports, in measuring order.
    """
    with tempfile.TemporaryDirectory(prefix="mps-" + prefix.replace("_", "-")) as name:
        folder = Path(name)
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        if local_settings is not None:
            (folder / "airflow_home" / "config").mkdir(parents=True)
            (folder / "airflow_home" / "config" / "airflow_local_settings.py").write_text(local_settings)
            env["AIRFLOW_HOME"] = str(folder / "airflow_home")
        paths = {kind: folder / f"{prefix}{kind}.py" for kind in texts}
        for kind, path in paths.items():
            path.write_text(texts[kind])

        def measure(kind: str) -> dict[str, Any]:
            command = [sys.executable, "-c", script, str(paths[kind]), json.dumps(processor(kind))]
            result = subprocess.run(
                command, capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=env
            )
            return json.loads(result.stdout.strip().splitlines()[-1])

        for kind in paths:
            measure(kind)
        samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in paths}
        for _ in range(repetitions):
            for kind in paths:
                samples[kind].append(measure(kind))
        return samples


def sizes(args: argparse.Namespace) -> tuple[int, int]:
    """
    Return the operators per DAG file and the measurements of each: 5 and 2 for ``--tiny``.

    :param args: the parsed options, with ``--tiny``, ``--operators`` and ``--repetitions``.
    """
    return (5, 2) if args.tiny else (args.operators, args.repetitions)


def record_median_ms(figures: Figures, key: str, seconds: list[float]) -> None:
    """
    Record the median of ``seconds`` in milliseconds.

    :param key: the figure's name.
    """
    figures.record(key, median(seconds) * 1000, "ms")


def record_sdk_modules(figures: Figures, runs: Iterable[dict[str, Any]]) -> list[str]:
    """
    Record and return the Tencent SDK modules any of ``runs`` ended with (none is the aim).

    :param runs: the children's reports (:data:`CHILD_REPORT`).
    """
    sdk = sorted({module for run in runs for module in run["sdk_modules"]})
    figures.record("tencentcloud_modules_after_parsing", sdk)
    return sdk


def finish(figures: Figures, sdk: list[str], json_path: str | None) -> int:
    """
    Note an imported SDK, write the figures to ``json_path``; return the exit status (1: SDK imported).

    :param sdk: what :func:`record_sdk_modules` returned.
    """
    if sdk:
        figures.note(f"Parsing imported the Tencent SDK: {sdk}.")
    figures.write(json_path)
    return 1 if sdk else 0
