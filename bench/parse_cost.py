"""
DAG parse cost: a DAG file of 100 MPS operators against the same DAG of 100 BashOperators / EmptyOperators.

Each measurement runs in a fresh Python process that does what Airflow's DAG processor does for
one file: the parent has imported Airflow and pre-imported the ``airflow.*`` modules the file
names (``[dag_processor] parsing_pre_import_modules``, on by default; a provider package such as
``airflow_provider_mps`` is *not* pre-imported, so its import is part of every parse), then the
file is parsed into a DagBag and serialized.  The three files are measured in turn, many times,
and the medians compared.  The MPS file's process must end without ``tencentcloud`` imported.

Run: ``.venv/bin/python -m bench.parse_cost`` (``--tiny`` for a quick check; ``--preload`` to measure a
deployment whose ``airflow_local_settings.py`` imports the provider before the DAG processor forks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_2_PLUS, AIRFLOW_V_3_3_PLUS
from bench._common import REPO_ROOT, Figures, base_parser, median, print_machine

OPERATORS = 100

#: How the installed Airflow line writes each piece, as its users (and its DAG processor) do.
_DAG_MODULE = "airflow.sdk" if AIRFLOW_V_3_0_PLUS else "airflow"
_CORE_OPERATORS = "airflow.providers.standard.operators" if AIRFLOW_V_3_0_PLUS else "airflow.operators"
#: The DAG processor's DagBag and serializer on the installed line (a BundleDagBag from 3.2).
_PROCESSOR = {
    "dagbag": "airflow.dag_processing.dagbag.BundleDagBag"
    if AIRFLOW_V_3_2_PLUS
    else "airflow.models.dagbag.DagBag",
    "bundle": AIRFLOW_V_3_2_PLUS,
    "serializer": "airflow.serialization.serialized_objects."
    + ("DagSerialization" if AIRFLOW_V_3_3_PLUS else "SerializedDAG"),
}

_HEADER = f"""from __future__ import annotations

import pendulum
from {_DAG_MODULE} import DAG
"""

DAG_FILES = {
    "mps": _HEADER
    + """from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator

with DAG("bench_parse_mps", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    for n in range({count}):
        MpsCreateAigcImageTaskOperator(
            task_id=f"product_{{n}}",
            prompt=f"Studio photo of product {{n}} for {{{{{{{{ ds }}}}}}}}",
            model_name="GEM",
            extra_parameters={{"AspectRatio": "1:1", "OutputFormat": "png"}},
        )
""",
    "mps_batch": _HEADER
    + """from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageTasksOperator

with DAG("bench_parse_mps_batch", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    for n in range({count}):
        MpsCreateAigcImageTasksOperator(
            task_id=f"products_{{n}}",
            requests="{{{{ ti.xcom_pull(task_ids='rows') }}}}",
            shared_fields={{"model_name": "GEM", "extra_parameters": {{"AspectRatio": "1:1"}}}},
        )
""",
    # A production shape: create -> wait -> store chains, the same number of operators in all.
    "mps_pipeline": _HEADER
    + """from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

with DAG("bench_parse_mps_pipeline", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    for n in range(0, {count}, 3):
        create = MpsCreateAigcImageTaskOperator(
            task_id=f"create_{{n}}",
            prompt=f"Studio photo of product {{n}} for {{{{{{{{ ds }}}}}}}}",
            model_name="GEM",
            extra_parameters={{"AspectRatio": "1:1", "OutputFormat": "png"}},
        )
        if n + 1 < {count}:
            MpsAigcImageTaskSensor(task_id=f"wait_{{n}}", mps_task_id=create.output, deferrable=True)
        if n + 2 < {count}:
            MpsAigcImagesToObjectStorageOperator(
                task_id=f"store_{{n}}",
                mps_task_id=create.output,
                destination="file:///data/images/{{{{ ds }}}}",
            )
""",
    "bash": _HEADER
    + f"from {_CORE_OPERATORS}.bash import BashOperator\n"
    + """
with DAG("bench_parse_bash", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    for n in range({count}):
        BashOperator(task_id=f"product_{{n}}", bash_command=f"echo product {{n}} for {{{{{{{{ ds }}}}}}}}")
""",
    # The same chains of BashOperators: create, then wait, then store, each downstream of the last.
    "bash_pipeline": _HEADER
    + f"from {_CORE_OPERATORS}.bash import BashOperator\n"
    + """
with DAG("bench_parse_bash_pipeline", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    for n in range(0, {count}, 3):
        create = BashOperator(
            task_id=f"create_{{n}}", bash_command=f"echo product {{n}} for {{{{{{{{ ds }}}}}}}}"
        )
        pull = "echo {{{{ ti.xcom_pull('create') }}}}"
        if n + 1 < {count}:
            create >> BashOperator(task_id=f"wait_{{n}}", bash_command=pull)
        if n + 2 < {count}:
            create >> BashOperator(task_id=f"store_{{n}}", bash_command=pull)
""",
    "empty": _HEADER
    + f"from {_CORE_OPERATORS}.empty import EmptyOperator\n"
    + """
with DAG("bench_parse_empty", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    for n in range({count}):
        EmptyOperator(task_id=f"product_{{n}}")
""",
}

#: Files of one operator class: their marginal cost per operator is reported too.
HOMOGENEOUS = ("mps", "mps_batch", "bash", "empty")

#: What one measuring process runs: the DAG processor's steps for one file, timed.  The provider is
#: not imported before the clock starts, so the MPS files pay for its import as in a real parse.
_CHILD = r"""
import importlib, json, os, sys, time
path, processor = sys.argv[1], json.loads(sys.argv[2])
import airflow
def load(name):
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)
DagBag, Serializer = load(processor["dagbag"]), load(processor["serializer"])
bundle = {"bundle_path": os.path.dirname(path), "bundle_name": "bench"} if processor["bundle"] else {}
from airflow.utils.file import iter_airflow_imports
for module in iter_airflow_imports(path):
    importlib.import_module(module)
started = time.perf_counter()
bag = DagBag(dag_folder=path, load_op_links=False, **bundle)
parsed = time.perf_counter()
for dag in bag.dags.values():
    Serializer.to_dict(dag)
serialized = time.perf_counter()
assert not bag.import_errors, bag.import_errors
print(json.dumps({
    "parse": parsed - started,
    "serialize": serialized - parsed,
    "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
    "sdk_modules": sorted(m for m in sys.modules if m.split(".")[0] == "tencentcloud"),
}))
"""


#: ``airflow_local_settings.py`` of ``--preload``: the DAG processor's parent imports it with Airflow.
_PRELOAD_SETTINGS = """import airflow_provider_mps.operators.mps
import airflow_provider_mps.sensors.mps
import airflow_provider_mps.transfers.mps_to_object_storage
"""


def measure(path: Path, pycache: Path, airflow_home: Path | None = None) -> dict:
    """
    Parse ``path`` once in a fresh process, as the DAG processor would.

    Every module's bytecode is cached under ``pycache`` (as pip's compile step does for an
    installed wheel), so no variant pays for compiling source that a real deployment would not.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if airflow_home is not None:
        env["AIRFLOW_HOME"] = str(airflow_home)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), json.dumps(_PROCESSOR)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[1])
    parser.add_argument("--repetitions", type=int, default=15, help="fresh processes per DAG file")
    parser.add_argument("--operators", type=int, default=OPERATORS, help="operators per DAG file")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="measure a deployment whose airflow_local_settings.py imports the provider's modules",
    )
    args = parser.parse_args(argv)
    repetitions = 2 if args.tiny else args.repetitions
    count = 5 if args.tiny else args.operators
    print_machine()
    figures = Figures("parse_cost")
    figures.record("operators_per_dag", count)
    figures.record("repetitions", repetitions)
    figures.record("provider_preloaded_by_airflow_local_settings", args.preload)
    with tempfile.TemporaryDirectory(prefix="mps-bench-parse-") as folder:
        airflow_home = None
        if args.preload:
            airflow_home = Path(folder) / "airflow_home"
            (airflow_home / "config").mkdir(parents=True)
            (airflow_home / "config" / "airflow_local_settings.py").write_text(_PRELOAD_SETTINGS)
        paths = {}
        for kind, template in DAG_FILES.items():
            # The same file with one operator: its parse time is the fixed cost (imports, the DAG).
            for size, suffix in ((count, ""), (1, "_one")):
                paths[kind + suffix] = Path(folder) / f"bench_parse_{kind}{suffix}.py"
                paths[kind + suffix].write_text(template.format(count=size))
        pycache = Path(folder) / "pycache"
        for path in paths.values():  # warm-up: fills the bytecode cache, not measured
            measure(path, pycache, airflow_home)
        samples: dict[str, list[dict]] = {kind: [] for kind in paths}
        for _ in range(repetitions):
            for kind, path in paths.items():  # interleaved, so drift hits every kind alike
                samples[kind].append(measure(path, pycache, airflow_home))
    for kind, runs in samples.items():
        assert all(run["tasks"] == (1 if kind.endswith("_one") else count) for run in runs), kind
        figures.record(f"{kind}.parse_median_ms", median([run["parse"] for run in runs]) * 1000, "ms")
        figures.record(
            f"{kind}.parse_and_serialize_median_ms",
            median([run["parse"] + run["serialize"] for run in runs]) * 1000,
            "ms",
        )
    for kind in HOMOGENEOUS:
        marginal = (figures.raw[f"{kind}.parse_median_ms"] - figures.raw[f"{kind}_one.parse_median_ms"]) / (
            count - 1
        )
        figures.record(f"{kind}.per_operator_us", marginal * 1000, "us")
    sdk = sorted(
        {
            module
            for kind in ("mps", "mps_batch", "mps_pipeline")
            for run in samples[kind]
            for module in run["sdk_modules"]
        }
    )
    figures.record("tencentcloud_modules_after_parsing", sdk)

    def parse(kind: str, *, serialize: bool = False) -> float:
        key = "parse_and_serialize_median_ms" if serialize else "parse_median_ms"
        return figures.raw[f"{kind}.{key}"]

    figures.ratio("mps_over_bash", parse("mps") / parse("bash"), 1.0, what="parse time, 100 MPS vs 100 Bash")
    figures.ratio("mps_over_empty", parse("mps") / parse("empty"), what="parse time, 100 MPS vs 100 Empty")
    figures.ratio(
        "mps_over_bash_per_operator",
        figures.raw["mps.per_operator_us"] / figures.raw["bash.per_operator_us"],
        what="marginal parse cost of one more operator, MPS vs Bash (the file's fixed cost left out)",
    )
    figures.record(
        "mps_fixed_cost_over_bash_ms",
        figures.raw["mps_one.parse_median_ms"] - figures.raw["bash_one.parse_median_ms"],
        "ms",
    )
    figures.ratio(
        "mps_over_bash_with_serialization",
        parse("mps", serialize=True) / parse("bash", serialize=True),
        what="parse + serialize, 100 MPS vs 100 Bash",
    )
    figures.ratio(
        "mps_batch_over_bash", parse("mps_batch") / parse("bash"), what="parse time, 100 batch vs 100 Bash"
    )
    figures.ratio(
        "mps_pipeline_over_bash_pipeline",
        parse("mps_pipeline") / parse("bash_pipeline"),
        what="parse time, 34 create -> sensor / transfer chains vs the same chains of BashOperators",
    )
    figures.ratio(
        "mps_pipeline_over_bash_pipeline_with_serialization",
        parse("mps_pipeline", serialize=True) / parse("bash_pipeline", serialize=True),
        what="parse + serialize, the same two pipelines",
    )
    if sdk:
        figures.note(f"Parsing imported the Tencent SDK: {sdk}.")
    figures.write(args.json)
    return 1 if sdk else 0


if __name__ == "__main__":
    sys.exit(main())
