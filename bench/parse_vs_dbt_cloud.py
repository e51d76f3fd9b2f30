"""
Parse cost against the dbt Cloud provider's ``DbtCloudRunJobOperator`` (issue 16), Bash for reference.

Each DAG file builds 100 operators, each given its one required argument as a literal:
``MpsCreateAigcImageTaskOperator(prompt=...)``, ``DbtCloudRunJobOperator(job_id=...)`` and
``BashOperator(bash_command=...)``.  Three measurements, every kind interleaved with the others:

- warm: the same loop, run in an already-warm process (every module imported, two DAGs of each
  kind built before), into a new DAG each round; microseconds per operator, the median over the
  rounds of each of several such processes, then the median of those.
- fresh: the DAG file in a fresh ``python -c`` process that has imported Airflow and the file's
  header (``pendulum``, the ``DAG`` class): the operator module's import, then the file's parse into
  a DagBag, each timed; median over the processes.  ``file`` is both together (every operator pays
  for its import); ``dag_processor`` leaves out the import of an ``airflow.*`` module, which
  Airflow 3's DAG processor pre-imports once in its parent (``parsing_pre_import_modules``), as
  :mod:`bench.parse_cost` measures (a provider outside the ``airflow.*`` names pays it on every parse).
- breakdown: where one operator's construction goes, with public means only (the provider's code
  is used as it is).  Timing variants, warm, interleaved with the rest: ``EmptyOperator`` (Airflow's
  floor: ``BaseOperator.__init__`` in its ``apply_defaults`` wrapper, the DAG's ``add_task``); a
  ``BaseOperator`` subclass whose ``__init__`` only calls ``super()`` (each class defining
  ``__init__`` gets its own ``apply_defaults`` layer), the same with ``ResumableJobMixin`` (whose
  ``__init__`` is one more layer, which ours skip: ``airflow_provider_mps/operators/_create.py``);
  each operator subclassed with ``template_fields = ()`` (the walk for XComArgs over the template
  fields); ours with more arguments.  So, by differences of medians, both ``mps`` and
  ``dbt_cloud = floor + layer + template fields + own __init__``.  Then cProfile of building the 100
  operators (interleaved too), split along the ``__init__`` chain: its figures are inflated by the
  profiler, only their proportions (e.g. validation within the own ``__init__``) carry over.

Needs ``apache-airflow-providers-dbt-cloud`` (``pip install -e '.[bench]'``, which ``make bench``
does); without it the dbt Cloud rows are skipped with a note and the rest still runs.

Run: ``.venv/bin/python -m bench.parse_vs_dbt_cloud`` (``--tiny`` for a quick check).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from typing import Any

from bench._common import REPO_ROOT, Figures, base_parser, median, start_figures
from bench._parse import (
    CHILD_PREAMBLE,
    CHILD_REPORT,
    CORE_OPERATORS,
    DAG_MODULE,
    OPERATORS,
    PROCESSOR,
    Kind,
    dag_file,
    finish,
    measure_dag_files,
    record_median_ms,
    record_sdk_modules,
    sizes,
)
from bench._warm import builder, measure_warm, paired_ratios, profile_breakdown, profile_warm
from bench.parse_cost import MPS_ARGS

DBT_CLOUD_MODULE = "airflow.providers.dbt.cloud.operators.dbt"


#: The three operators compared, in the warm process and in fresh processes.
COMPARED = {
    "mps": Kind(
        "airflow_provider_mps.operators.mps", "MpsCreateAigcImageTaskOperator", 'prompt=f"Product {n}"'
    ),
    "dbt_cloud": Kind(DBT_CLOUD_MODULE, "DbtCloudRunJobOperator", "job_id=1000 + n"),
    "bash": Kind(f"{CORE_OPERATORS}.bash", "BashOperator", 'bash_command=f"echo product {n}"'),
}
#: Warm-only variants for the breakdown; the classes named ``_HERE`` are :func:`breakdown_classes`.
_HERE = "bench.parse_vs_dbt_cloud"
VARIANTS = {
    "empty": Kind(f"{CORE_OPERATORS}.empty", "EmptyOperator", ""),
    "plain_init": Kind(_HERE, "PlainInit", ""),
    "resumable_init": Kind(_HERE, "ResumableInit", ""),
    "mps_without_template_fields": Kind(_HERE, "MpsWithoutTemplateFields", COMPARED["mps"].args),
    "dbt_cloud_without_template_fields": Kind(
        _HERE, "DbtCloudWithoutTemplateFields", COMPARED["dbt_cloud"].args
    ),
    # The arguments of bench.parse_cost's MPS file: a templated prompt, a model, extra parameters.
    "mps_more_args": Kind(COMPARED["mps"].module, COMPARED["mps"].cls, MPS_ARGS),
}


def dbt_cloud_missing() -> str | None:
    """Why the dbt Cloud rows cannot be measured here, or None when they can."""
    try:
        importlib.import_module(DBT_CLOUD_MODULE)
    except ImportError as error:
        return f"apache-airflow-providers-dbt-cloud is not importable ({error}); pip install -e '.[bench]'"
    return None


# --- warm ------------------------------------------------------------------------------------------


def breakdown_classes(*, dbt_cloud: bool) -> dict[str, type]:
    """Classes of the variants: public subclassing only, the provider's code is used as it is."""
    from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin

    from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator

    class PlainInit(BaseOperator):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)

        def execute(self, context: Any) -> None:
            return None

    class ResumableInit(ResumableJobMixin, BaseOperator):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)

        def execute(self, context: Any) -> None:
            return None

        def submit_job(self, context: Any) -> Any:
            return None

        def get_job_status(self, external_id: Any, context: Any) -> str:
            return ""

        def is_job_active(self, status: str) -> bool:
            return False

        def is_job_succeeded(self, status: str) -> bool:
            return True

        def poll_until_complete(self, external_id: Any, context: Any) -> None:
            return None

        def get_job_result(self, external_id: Any, context: Any) -> Any:
            return None

    class MpsWithoutTemplateFields(MpsCreateAigcImageTaskOperator):
        template_fields = ()

    classes: dict[str, type] = {"PlainInit": PlainInit, "ResumableInit": ResumableInit}
    classes["MpsWithoutTemplateFields"] = MpsWithoutTemplateFields
    if dbt_cloud:
        from airflow.providers.dbt.cloud.operators.dbt import DbtCloudRunJobOperator

        class DbtCloudWithoutTemplateFields(DbtCloudRunJobOperator):
            template_fields = ()  # type: ignore[assignment]  # typed there as its 10 names

        classes["DbtCloudWithoutTemplateFields"] = DbtCloudWithoutTemplateFields
    return classes


# --- fresh -----------------------------------------------------------------------------------------

#: One fresh process: Airflow and the file's header imported, then the operator module's import and
#: the file's parse, each timed.
_CHILD = (
    CHILD_PREAMBLE
    + r"""
import pendulum
importlib.import_module(processor["dag_module"])
operator_module = processor["module"]
started = time.perf_counter()
importlib.import_module(operator_module)
imported = time.perf_counter()
bag = DagBag(dag_folder=path, load_op_links=False, **bundle)
parsed = time.perf_counter()
timings = {"import": imported - started, "parse": parsed - imported}
"""
    + CHILD_REPORT
)


def warm_child(kinds: list[str], count: int, rounds: int) -> None:
    """One warm process: build every kind's DAG (:func:`measure_warm`), print the samples as JSON."""
    classes = breakdown_classes(dbt_cloud="dbt_cloud" in kinds)
    specs = {**COMPARED, **VARIANTS}
    builds = {kind: builder(kind, specs[kind], classes)[1] for kind in kinds}
    print(json.dumps(measure_warm(builds, count, rounds)))


def warm_in_processes(kinds: list[str], count: int, rounds: int, processes: int) -> list[dict[str, Any]]:
    """
    The samples of :func:`warm_child` in ``processes`` processes, one after the other.

    Several processes, not one: a process's figures move together by a few percent (where its
    objects and strings landed in memory, its hash seed), which more rounds in the same process
    do not average out.
    """
    command = [sys.executable, "-m", "bench.parse_vs_dbt_cloud", "--warm-child", ",".join(kinds)]
    command += ["--operators", str(count), "--rounds", str(rounds)]
    runs = []
    for _ in range(processes):
        result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return runs


#: The ratios, ``<measure>_<numerator>_over_<denominator>``: measure, numerator, denominator, target,
#: what the ratio tells.  A measure is ``warm`` (us per operator) or one of :data:`FRESH_MEASURES`.
RATIOS: tuple[tuple[str, str, str, float | None, str], ...] = (
    (
        "warm",
        "mps",
        "dbt_cloud",
        1.0,
        "us per operator, 100 operators built in a warm process, MPS vs dbt Cloud",
    ),
    (
        "fresh",
        "mps",
        "dbt_cloud",
        1.1,
        "the 100-operator file in a fresh process (module import + parse), MPS vs dbt Cloud",
    ),
    (
        "fresh_dag_processor",
        "mps",
        "dbt_cloud",
        None,
        "the same, less the import of airflow.* modules (pre-imported by the DAG processor)",
    ),
    (
        "fresh_preloaded",
        "mps",
        "dbt_cloud",
        None,
        "the same, both modules imported before (ours preloaded by airflow_local_settings.py)",
    ),
    ("import", "mps", "dbt_cloud", None, "the operator module's import in a fresh process, MPS vs dbt Cloud"),
    ("warm", "dbt_cloud", "bash", None, "us per operator, warm, dbt Cloud vs Bash"),
    ("fresh", "dbt_cloud", "bash", None, "the file in a fresh process, dbt Cloud vs Bash"),
    ("warm", "mps", "bash", None, "us per operator, warm, MPS vs Bash"),
    ("fresh", "mps", "bash", None, "the file in a fresh process (module import + parse), MPS vs Bash"),
)
#: The fresh measures of :data:`RATIOS`: which ``fresh.<kind>.<figure>_median_ms`` each compares.
FRESH_MEASURES = {
    "fresh": "file",
    "fresh_dag_processor": "dag_processor",
    "fresh_preloaded": "parse",
    "import": "import",
}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[1])
    parser.add_argument("--repetitions", type=int, default=25, help="fresh processes per DAG file")
    parser.add_argument("--warm-processes", type=int, default=5, help="processes of the warm measurement")
    parser.add_argument("--rounds", type=int, default=40, help="warm builds of each kind in each of them")
    parser.add_argument("--operators", type=int, default=OPERATORS, help="operators per DAG")
    parser.add_argument("--warm-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warm_child:
        warm_child(args.warm_child.split(","), args.operators, args.rounds)
        return 0
    count, repetitions = sizes(args)
    rounds, processes = (3, 1) if args.tiny else (args.rounds, args.warm_processes)
    figures = start_figures(
        "parse_vs_dbt_cloud",
        operators_per_dag=count,
        warm_processes=processes,
        warm_rounds_per_process=rounds,
        fresh_repetitions=repetitions,
    )
    missing = dbt_cloud_missing()
    compared = {kind: spec for kind, spec in COMPARED.items() if not (missing and kind == "dbt_cloud")}
    if missing:
        figures.note(f"dbt Cloud rows skipped: {missing}.")
    for kind, spec in compared.items():
        figures.record(f"{kind}.call", f"{spec.cls}(task_id=..., {spec.args})")
    record_warm(figures, compared, count, rounds, processes)
    record_profile(figures, compared, count, 2 if args.tiny else 20)
    fresh = record_fresh(figures, compared, count, repetitions)
    sdk = record_sdk_modules(figures, fresh["mps"])
    for measure, numerator, denominator, target, what in RATIOS:
        if not (missing and "dbt_cloud" in (numerator, denominator)):
            name = f"{measure}_{numerator}_over_{denominator}"
            value = _figure(figures, numerator, measure) / _figure(figures, denominator, measure)
            figures.ratio(name, value, target, what=what)
    return finish(figures, sdk, args.json)


def _figure(figures: Figures, kind: str, measure: str) -> float:
    """The figure of ``kind`` a ratio of ``measure`` compares (see :data:`RATIOS`)."""
    if measure == "warm":
        return figures.raw[f"warm.{kind}.per_operator_us"]
    return figures.raw[f"fresh.{kind}.{FRESH_MEASURES[measure]}_median_ms"]


def record_warm(figures: Figures, compared: dict[str, Kind], count: int, rounds: int, processes: int) -> None:
    """
    Record the warm figures of ``compared`` and the variants, and the breakdown their differences give.

    :param compared: the operators compared (without dbt Cloud's when its provider is missing).
    :param count: operators per build.
    :param rounds: builds of each kind in each process.
    :param processes: how many warm processes.
    """
    dbt_cloud = "dbt_cloud" in compared
    variants = {kind: spec for kind, spec in VARIANTS.items() if dbt_cloud or "dbt_cloud" not in kind}
    runs = warm_in_processes([*compared, *variants], count, rounds, processes)
    for kind in [*compared, *variants]:  # the median of the processes' medians
        figures.record(f"warm.{kind}.per_operator_us", median([median(run[kind]) for run in runs]), "us")

    def us(kind: str) -> float:
        return figures.raw[f"warm.{kind}.per_operator_us"]

    # Differences of the warm medians: mps and dbt_cloud = floor + layer + template fields + own
    # __init__ (see the module's docstring); the mixin's layer is what ours would pay with super().
    figures.record("breakdown.airflow_floor_us", us("empty"), "us")
    figures.record("breakdown.own_init_layer_us", us("plain_init") - us("empty"), "us")
    figures.record("breakdown.resumable_job_mixin_us", us("resumable_init") - us("plain_init"), "us")
    for kind in ("mps", "dbt_cloud"):
        if kind in compared:
            walk = us(kind) - us(f"{kind}_without_template_fields")
            figures.record(f"breakdown.{kind}.template_fields_us", walk, "us")
            figures.record(f"breakdown.{kind}.own_init_us", us(kind) - us("plain_init") - walk, "us")
    figures.record("breakdown.more_args_us", us("mps_more_args") - us("mps"), "us")
    if dbt_cloud:
        for kind in ("mps", "dbt_cloud"):
            figures.record(f"warm.{kind}.process_medians_us", [round(median(run[kind]), 1) for run in runs])
        mps, dbt = ([sample for run in runs for sample in run[kind]] for kind in ("mps", "dbt_cloud"))
        for key, value in paired_ratios(mps, dbt).items():
            figures.record(f"warm.mps_over_dbt_cloud.paired_{key}", value)


def record_profile(figures: Figures, compared: dict[str, Kind], count: int, rounds: int) -> None:
    """
    Record :func:`profile_breakdown` of ``compared``, profiled in this process, ``rounds`` builds each.

    :param compared: the operators compared.
    :param count: operators per build.
    """
    classes = breakdown_classes(dbt_cloud="dbt_cloud" in compared)
    built = {kind: builder(kind, spec, classes) for kind, spec in compared.items()}
    profilers = profile_warm({kind: built[kind][1] for kind in compared}, count, rounds)
    for kind, profiler in profilers.items():
        cls, build = built[kind]
        for key, value in profile_breakdown(cls, build, profiler, count * rounds).items():
            figures.record(f"profile.{kind}.{key}", value, "us" if key.endswith("_us") else "")


def record_fresh(
    figures: Figures, compared: dict[str, Kind], count: int, repetitions: int
) -> dict[str, list[dict[str, Any]]]:
    """
    Record the fresh figures of ``compared``: each DAG file measured ``repetitions`` times; return the runs.

    :param compared: the operators compared.
    :param count: operators per DAG file.
    """
    fresh = measure_dag_files(
        {kind: dag_file(f"bench_vs_dbt_cloud_{kind}", spec, count) for kind, spec in compared.items()},
        "bench_vs_dbt_cloud_",
        repetitions,
        _CHILD,
        lambda kind: dict(PROCESSOR, dag_module=DAG_MODULE, module=compared[kind].module),
    )
    for kind, runs in fresh.items():
        assert all(run["tasks"] == count for run in runs), kind
        pre_imported = compared[kind].module.startswith("airflow.")
        record_median_ms(figures, f"fresh.{kind}.import_median_ms", [run["import"] for run in runs])
        record_median_ms(figures, f"fresh.{kind}.parse_median_ms", [run["parse"] for run in runs])
        record_median_ms(
            figures, f"fresh.{kind}.file_median_ms", [run["import"] + run["parse"] for run in runs]
        )
        record_median_ms(
            figures,
            f"fresh.{kind}.dag_processor_median_ms",
            [run["parse"] + (0 if pre_imported else run["import"]) for run in runs],
        )
    return fresh


if __name__ == "__main__":
    sys.exit(main())
