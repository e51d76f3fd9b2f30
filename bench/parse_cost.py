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

import sys
from typing import Any

from bench._common import Figures, base_parser, start_figures
from bench._parse import (
    CHILD_PREAMBLE,
    CHILD_REPORT,
    CORE_OPERATORS,
    OPERATORS,
    PROCESSOR,
    Kind,
    dag_file,
    dag_source,
    finish,
    measure_dag_files,
    record_median_ms,
    record_sdk_modules,
    sizes,
)

#: The arguments of the MPS files' create operator: a templated prompt, a model, extra parameters.
MPS_ARGS = (
    'prompt=f"Studio photo of product {n} for {{{{ ds }}}}", model_name="GEM", '
    'extra_parameters={"AspectRatio": "1:1", "OutputFormat": "png"}'
)
#: The DAG files measured: ``count`` operators of one class (a :class:`~bench._parse.Kind`), or a
#: ``str.format`` template of ``count``.
DAG_FILES: dict[str, Kind | str] = {
    "mps": Kind("airflow_provider_mps.operators.mps", "MpsCreateAigcImageTaskOperator", MPS_ARGS),
    "mps_batch": Kind(
        "airflow_provider_mps.operators.mps_batch",
        "MpsCreateAigcImageBatchOperator",
        """requests="{{ ti.xcom_pull(task_ids='rows') }}", """
        'shared_fields={"model_name": "GEM", "extra_parameters": {"AspectRatio": "1:1"}}',
    ),
    # A production shape: create -> wait -> store chains, the same number of operators in all.
    "mps_pipeline": dag_source(
        "bench_parse_mps_pipeline",
        """from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator
""",
        """    for n in range(0, {count}, 3):
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
    ),
    "bash": Kind(
        f"{CORE_OPERATORS}.bash", "BashOperator", 'bash_command=f"echo product {n} for {{{{ ds }}}}"'
    ),
    # The same chains of BashOperators: create, then wait, then store, each downstream of the last.
    "bash_pipeline": dag_source(
        "bench_parse_bash_pipeline",
        f"from {CORE_OPERATORS}.bash import BashOperator\n",
        """    for n in range(0, {count}, 3):
        create = BashOperator(
            task_id=f"create_{{n}}", bash_command=f"echo product {{n}} for {{{{{{{{ ds }}}}}}}}"
        )
        pull = "echo {{{{ ti.xcom_pull('create') }}}}"
        if n + 1 < {count}:
            create >> BashOperator(task_id=f"wait_{{n}}", bash_command=pull)
        if n + 2 < {count}:
            create >> BashOperator(task_id=f"store_{{n}}", bash_command=pull)
""",
    ),
    "empty": Kind(f"{CORE_OPERATORS}.empty", "EmptyOperator", ""),
}
#: Files of one operator class: their marginal cost per operator is reported too.
HOMOGENEOUS = tuple(kind for kind, spec in DAG_FILES.items() if isinstance(spec, Kind))


def dag_text(kind: str, count: int) -> str:
    """
    The DAG file of ``kind`` with ``count`` operators.

    :param kind: which of :data:`DAG_FILES`.
    :param count: how many operators it builds.
    """
    spec = DAG_FILES[kind]
    if isinstance(spec, Kind):
        return dag_file(f"bench_parse_{kind}", spec, count)
    return spec.format(count=count)


#: What one measuring process runs: the DAG processor's steps for one file, timed.  The provider is
#: not imported before the clock starts, so the MPS files pay for its import as in a real parse.
_CHILD = (
    CHILD_PREAMBLE
    + r"""
Serializer = load(processor["serializer"])
from airflow.utils.file import iter_airflow_imports
for module in iter_airflow_imports(path):
    importlib.import_module(module)
started = time.perf_counter()
bag = DagBag(dag_folder=path, load_op_links=False, **bundle)
parsed = time.perf_counter()
for dag in bag.dags.values():
    Serializer.to_dict(dag)
serialized = time.perf_counter()
timings = {"parse": parsed - started, "serialize": serialized - parsed}
"""
    + CHILD_REPORT
)


#: ``airflow_local_settings.py`` of ``--preload``: the DAG processor's parent imports it with Airflow.
_PRELOAD_SETTINGS = """import airflow_provider_mps.operators.mps
import airflow_provider_mps.sensors.mps
import airflow_provider_mps.transfers.mps_to_object_storage
"""


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
    count, repetitions = sizes(args)
    figures = start_figures(
        "parse_cost",
        operators_per_dag=count,
        repetitions=repetitions,
        provider_preloaded_by_airflow_local_settings=args.preload,
    )
    samples = measure_files(count, repetitions, preload=args.preload)
    for kind, runs in samples.items():
        assert all(run["tasks"] == (1 if kind.endswith("_one") else count) for run in runs), kind
        record_median_ms(figures, f"{kind}.parse_median_ms", [run["parse"] for run in runs])
        record_median_ms(
            figures,
            f"{kind}.parse_and_serialize_median_ms",
            [run["parse"] + run["serialize"] for run in runs],
        )
    for kind in HOMOGENEOUS:
        marginal = (figures.raw[f"{kind}.parse_median_ms"] - figures.raw[f"{kind}_one.parse_median_ms"]) / (
            count - 1
        )
        figures.record(f"{kind}.per_operator_us", marginal * 1000, "us")
    sdk = record_sdk_modules(
        figures, (run for kind in ("mps", "mps_batch", "mps_pipeline") for run in samples[kind])
    )
    record_ratios(figures)
    return finish(figures, sdk, args.json)


def measure_files(count: int, repetitions: int, *, preload: bool) -> dict[str, list[dict[str, Any]]]:
    """
    Measure every DAG file, with ``count`` operators and (``<kind>_one``) with one.

    :param repetitions: how many times each file is measured, after a warm-up.
    :param preload: give the processes an ``airflow_local_settings.py`` importing the provider.
    """
    # Each file with one operator too: its parse time is the fixed cost (imports, the DAG).
    texts = {
        kind + suffix: dag_text(kind, size)
        for kind in DAG_FILES
        for size, suffix in ((count, ""), (1, "_one"))
    }
    return measure_dag_files(
        texts,
        "bench_parse_",
        repetitions,
        _CHILD,
        lambda _: PROCESSOR,
        local_settings=_PRELOAD_SETTINGS if preload else None,
    )


def record_ratios(figures: Figures) -> None:
    """Record the ratios of the medians :func:`main` recorded, and the MPS file's extra fixed cost."""

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


if __name__ == "__main__":
    sys.exit(main())
