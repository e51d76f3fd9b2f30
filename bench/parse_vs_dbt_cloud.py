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
  ``__init__`` is one more layer); each operator subclassed with ``template_fields = ()`` (the
  walk for XComArgs over the template fields); ours with more arguments.  So, by differences of
  medians, ``mps = floor + layer + mixin + template fields + own __init__`` and
  ``dbt_cloud = floor + layer + template fields + own __init__``.  Then cProfile of building the
  100 operators (interleaved too), split along the ``__init__`` chain: its figures are inflated by
  the profiler, only their proportions (e.g. validation within the own ``__init__``) carry over.

Needs ``apache-airflow-providers-dbt-cloud`` (``pip install -e '.[bench]'``, which ``make bench``
does); without it the dbt Cloud rows are skipped with a note and the rest still runs.

Run: ``.venv/bin/python -m bench.parse_vs_dbt_cloud`` (``--tiny`` for a quick check).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import REPO_ROOT, Figures, base_parser, median, print_machine
from bench.parse_cost import _CORE_OPERATORS, _DAG_MODULE, _HEADER, _PROCESSOR

OPERATORS = 100
DBT_CLOUD_MODULE = "airflow.providers.dbt.cloud.operators.dbt"


@dataclass(frozen=True)
class Kind:
    """One operator as a DAG file writes it: ``<cls>(task_id=f"product_{n}", <args>)``."""

    module: str
    cls: str
    args: str


#: The three operators compared, in the warm process and in fresh processes.
COMPARED = {
    "mps": Kind(
        "airflow_provider_mps.operators.mps", "MpsCreateAigcImageTaskOperator", 'prompt=f"Product {n}"'
    ),
    "dbt_cloud": Kind(DBT_CLOUD_MODULE, "DbtCloudRunJobOperator", "job_id=1000 + n"),
    "bash": Kind(f"{_CORE_OPERATORS}.bash", "BashOperator", 'bash_command=f"echo product {n}"'),
}
#: Warm-only variants for the breakdown; the classes named ``_HERE`` are :func:`_breakdown_classes`.
_HERE = "bench.parse_vs_dbt_cloud"
VARIANTS = {
    "empty": Kind(f"{_CORE_OPERATORS}.empty", "EmptyOperator", ""),
    "plain_init": Kind(_HERE, "PlainInit", ""),
    "resumable_init": Kind(_HERE, "ResumableInit", ""),
    "mps_without_template_fields": Kind(_HERE, "MpsWithoutTemplateFields", COMPARED["mps"].args),
    "dbt_cloud_without_template_fields": Kind(
        _HERE, "DbtCloudWithoutTemplateFields", COMPARED["dbt_cloud"].args
    ),
    # The arguments of bench.parse_cost's MPS file: a templated prompt, a model, extra parameters.
    "mps_more_args": Kind(
        COMPARED["mps"].module,
        COMPARED["mps"].cls,
        'prompt=f"Studio photo of product {n} for {{{{ ds }}}}", model_name="GEM", '
        'extra_parameters={"AspectRatio": "1:1", "OutputFormat": "png"}',
    ),
}


def dag_file(kind: str, spec: Kind, count: int) -> str:
    """The DAG file of ``count`` operators of ``spec``."""
    return (
        _HEADER
        + f"from {spec.module} import {spec.cls}\n\n"
        + f'with DAG("bench_vs_dbt_cloud_{kind}", schedule=None, '
        + 'start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):\n'
        + f"    for n in range({count}):\n"
        + f'        {spec.cls}(task_id=f"product_{{n}}", {spec.args})\n'
    )


def dbt_cloud_missing() -> str | None:
    """Why the dbt Cloud rows cannot be measured here, or None when they can."""
    try:
        importlib.import_module(DBT_CLOUD_MODULE)
    except ImportError as error:
        return f"apache-airflow-providers-dbt-cloud is not importable ({error}); pip install -e '.[bench]'"
    return None


# --- warm ------------------------------------------------------------------------------------------


def _breakdown_classes(*, dbt_cloud: bool) -> dict[str, type]:
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


def builder(kind: str, spec: Kind, classes: dict[str, type]) -> tuple[type, Any]:
    """The class of ``spec`` and a ``build(dag, count)`` running the DAG file's loop, same source."""
    cls = classes.get(spec.cls) or getattr(importlib.import_module(spec.module), spec.cls)
    source = (
        "def build(dag, count):\n    with dag:\n        for n in range(count):\n"
        f'            {spec.cls}(task_id=f"product_{{n}}", {spec.args})\n'
    )
    namespace: dict[str, Any] = {spec.cls: cls}
    exec(compile(source, f"<bench {kind}>", "exec"), namespace)
    return cls, namespace["build"]


def new_dag(name: str) -> Any:
    """An empty DAG as the files declare theirs."""
    import pendulum

    dag_class = importlib.import_module(_DAG_MODULE).DAG
    return dag_class(name, schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))


def measure_warm(builds: dict[str, Any], count: int, rounds: int) -> dict[str, list[float]]:
    """
    Microseconds per operator of each build, ``rounds`` times, after a warm-up.

    Every round builds each kind once, in a shuffled order (no kind always follows another), so
    the ``n``-th samples of two kinds were taken next to each other and can be paired.
    """
    for kind, build in builds.items():
        for warm_up in range(2):
            build(new_dag(f"warm_{kind}_{warm_up}"), count)
    gc.collect()
    gc.freeze()  # Airflow's own objects: no collection walks them again
    samples: dict[str, list[float]] = {kind: [] for kind in builds}
    for number, order in enumerate(_orders(list(builds), rounds)):
        for kind in order:
            dag = new_dag(f"bench_{kind}_{number}")
            gc.collect()  # the garbage of the previous build, not in this one's clock
            started = time.perf_counter()
            builds[kind](dag, count)
            samples[kind].append((time.perf_counter() - started) / count * 1e6)
    gc.unfreeze()
    return samples


def _orders(kinds: list[str], rounds: int) -> list[list[str]]:
    """``rounds`` shuffled orders of ``kinds``, the same in every run."""
    shuffler = random.Random(16)
    return [shuffler.sample(kinds, len(kinds)) for _ in range(rounds)]


def paired_ratios(numerator: list[float], denominator: list[float]) -> dict[str, float]:
    """Quartiles of the per-round ratios of two kinds' warm samples: how steady the ratio was."""
    low, middle, high = statistics.quantiles(
        [a / b for a, b in zip(numerator, denominator, strict=True)], n=4
    )
    return {"p25": low, "median": middle, "p75": high}


def profile_warm(builds: dict[str, Any], count: int, rounds: int) -> dict[str, cProfile.Profile]:
    """One cProfile of each build, ``rounds`` builds each, interleaved as :func:`measure_warm` does."""
    profilers = {kind: cProfile.Profile() for kind in builds}
    for number, order in enumerate(_orders(list(builds), rounds)):
        for kind in order:
            dag = new_dag(f"profile_{kind}_{number}")
            profilers[kind].enable()
            builds[kind](dag, count)
            profilers[kind].disable()
    return profilers


def _key(function: Any) -> tuple[str, int, str]:
    code = function.__code__
    return (code.co_filename, code.co_firstlineno, code.co_name)


def profile_breakdown(cls: type, build: Any, profiler: cProfile.Profile, ops: int) -> dict[str, Any]:
    """
    The cProfile of ``ops`` operators of ``cls`` built by ``build``, split along the ``__init__`` chain.

    Microseconds per operator under the profiler (which inflates them), by piece: each class
    of the chain that defines ``__init__`` (Airflow wraps each in its own ``apply_defaults``), down
    to ``BaseOperator``.  The first class's piece is split into its ``apply_defaults`` wrapper, the
    template fields' XComArg walk the outermost wrapper makes, the ``__init__``'s own code, its
    attribute assignments (``BaseOperator.__setattr__``) and the other functions it calls.
    """
    from airflow.providers.common.compat.sdk import BaseOperator

    chain = [c for c in cls.__mro__[: cls.__mro__.index(BaseOperator) + 1] if "__init__" in vars(c)]
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def edge(caller: Any, callee: Any) -> float:
        entry = stats.get(callee)
        return entry[4].get(caller, (0, 0, 0, 0.0))[3] if entry else 0.0

    callers = [_key(build)] + [
        _key(getattr(vars(c)["__init__"], "__wrapped__", vars(c)["__init__"])) for c in chain
    ]
    entries = [edge(callers[i], _key(vars(c)["__init__"])) for i, c in enumerate(chain)] + [0.0]
    walk = sum(
        edge(caller, key)
        for key, entry in stats.items()
        if key[2] == "_set_xcomargs_dependencies"
        for caller in entry[4]
    )
    first, wrapped_first = callers[1], vars(chain[0])["__init__"]
    own_total = edge(_key(wrapped_first), first) if hasattr(wrapped_first, "__wrapped__") else entries[0]
    setattr_key = _key(BaseOperator.__setattr__)
    wrapper_key = _key(wrapped_first)
    calls = {
        key[2]: entry[4][first][3] / ops * 1e6
        for key, entry in stats.items()
        if first in entry[4] and key not in (setattr_key, wrapper_key)
    }
    result: dict[str, Any] = {
        "profiled_us": entries[0] / ops * 1e6,
        "outer_wrapper_us": (entries[0] - own_total - walk) / ops * 1e6,
        "template_fields_walk_us": walk / ops * 1e6,
        "own_init_code_us": stats[first][2] / ops * 1e6,
        "own_init_assignments_us": edge(first, setattr_key) / ops * 1e6,
        "own_init_other_calls_us": sum(calls.values()),
        "own_init_other_calls": {name: round(us, 3) for name, us in sorted(calls.items())},
        "setattr_calls_per_operator": stats[setattr_key][1] / ops,
        "apply_defaults_calls_per_operator": stats[wrapper_key][1] / ops if wrapper_key in stats else 0,
    }
    for index, c in enumerate(chain[1:], start=1):
        name = "base_operator_layer_us" if c is BaseOperator else f"layer.{c.__name__}_us"
        result[name] = (entries[index] - entries[index + 1]) / ops * 1e6
    return result


# --- fresh -----------------------------------------------------------------------------------------

#: One fresh process: Airflow and the file's header imported, then the operator module's import and
#: the file's parse, each timed.
_CHILD = r"""
import importlib, json, os, sys, time
path, module, processor = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
import airflow
def load(name):
    owner, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(owner), attribute)
DagBag = load(processor["dagbag"])
bundle = {"bundle_path": os.path.dirname(path), "bundle_name": "bench"} if processor["bundle"] else {}
import pendulum
importlib.import_module(processor["dag_module"])
started = time.perf_counter()
importlib.import_module(module)
imported = time.perf_counter()
bag = DagBag(dag_folder=path, load_op_links=False, **bundle)
parsed = time.perf_counter()
assert not bag.import_errors, bag.import_errors
print(json.dumps({
    "import": imported - started,
    "parse": parsed - imported,
    "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
    "sdk_modules": sorted(m for m in sys.modules if m.split(".")[0] == "tencentcloud"),
}))
"""


def measure_fresh(path: Path, module: str, pycache: Path) -> dict[str, Any]:
    """Import ``module`` and parse ``path`` in a fresh process (bytecode cached, as installed wheels are)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    processor = dict(_PROCESSOR, dag_module=_DAG_MODULE)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), module, json.dumps(processor)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def warm_child(kinds: list[str], count: int, rounds: int) -> None:
    """One warm process: build every kind's DAG (:func:`measure_warm`), print the samples as JSON."""
    classes = _breakdown_classes(dbt_cloud="dbt_cloud" in kinds)
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
    repetitions, rounds = (2, 3) if args.tiny else (args.repetitions, args.rounds)
    processes = 1 if args.tiny else args.warm_processes
    count = 5 if args.tiny else args.operators
    print_machine()
    figures = Figures("parse_vs_dbt_cloud")
    figures.record("operators_per_dag", count)
    figures.record("warm_processes", processes)
    figures.record("warm_rounds_per_process", rounds)
    figures.record("fresh_repetitions", repetitions)
    missing = dbt_cloud_missing()
    compared = {kind: spec for kind, spec in COMPARED.items() if not (missing and kind == "dbt_cloud")}
    if missing:
        figures.note(f"dbt Cloud rows skipped: {missing}.")
    for kind, spec in compared.items():
        figures.record(f"{kind}.call", f"{spec.cls}(task_id=..., {spec.args})")

    classes = _breakdown_classes(dbt_cloud=not missing)
    variants = {kind: spec for kind, spec in VARIANTS.items() if not (missing and "dbt_cloud" in kind)}
    runs = warm_in_processes([*compared, *variants], count, rounds, processes)
    for kind in [*compared, *variants]:  # the median of the processes' medians
        figures.record(f"warm.{kind}.per_operator_us", median([median(run[kind]) for run in runs]), "us")

    def us(kind: str) -> float:
        return figures.raw[f"warm.{kind}.per_operator_us"]

    # Differences of the warm medians: mps = floor + layer + mixin + template fields + own __init__,
    # dbt_cloud = floor + layer + template fields + own __init__ (see the module's docstring).
    figures.record("breakdown.airflow_floor_us", us("empty"), "us")
    figures.record("breakdown.own_init_layer_us", us("plain_init") - us("empty"), "us")
    figures.record("breakdown.resumable_job_mixin_us", us("resumable_init") - us("plain_init"), "us")
    for kind, layers in (("mps", "resumable_init"), ("dbt_cloud", "plain_init")):
        if kind in compared:
            walk = us(kind) - us(f"{kind}_without_template_fields")
            figures.record(f"breakdown.{kind}.template_fields_us", walk, "us")
            figures.record(f"breakdown.{kind}.own_init_us", us(kind) - us(layers) - walk, "us")
    figures.record("breakdown.more_args_us", us("mps_more_args") - us("mps"), "us")
    if not missing:
        for kind in ("mps", "dbt_cloud"):
            figures.record(f"warm.{kind}.process_medians_us", [round(median(run[kind]), 1) for run in runs])
        mps, dbt_cloud = ([sample for run in runs for sample in run[kind]] for kind in ("mps", "dbt_cloud"))
        for key, value in paired_ratios(mps, dbt_cloud).items():
            figures.record(f"warm.mps_over_dbt_cloud.paired_{key}", value)
    # cProfile in this process, of the three operators only.
    built = {kind: builder(kind, spec, classes) for kind, spec in compared.items()}
    profile_rounds = 2 if args.tiny else 20
    profilers = profile_warm({kind: built[kind][1] for kind in compared}, count, profile_rounds)
    for kind, profiler in profilers.items():
        cls, build = built[kind]
        for key, value in profile_breakdown(cls, build, profiler, count * profile_rounds).items():
            figures.record(f"profile.{kind}.{key}", value, "us" if key.endswith("_us") else "")

    with tempfile.TemporaryDirectory(prefix="mps-bench-dbt-cloud-") as folder:
        paths = {}
        for kind, spec in compared.items():
            paths[kind] = Path(folder) / f"bench_vs_dbt_cloud_{kind}.py"
            paths[kind].write_text(dag_file(kind, spec, count))
        pycache = Path(folder) / "pycache"
        for kind, path in paths.items():  # warm-up: fills the bytecode cache, not measured
            measure_fresh(path, compared[kind].module, pycache)
        fresh: dict[str, list[dict[str, Any]]] = {kind: [] for kind in paths}
        for _ in range(repetitions):
            for kind, path in paths.items():  # interleaved, so drift hits every kind alike
                fresh[kind].append(measure_fresh(path, compared[kind].module, pycache))
    for kind, runs in fresh.items():
        assert all(run["tasks"] == count for run in runs), kind
        pre_imported = compared[kind].module.startswith("airflow.")
        figures.record(f"fresh.{kind}.import_median_ms", median([run["import"] for run in runs]) * 1000, "ms")
        figures.record(f"fresh.{kind}.parse_median_ms", median([run["parse"] for run in runs]) * 1000, "ms")
        figures.record(
            f"fresh.{kind}.file_median_ms",
            median([run["import"] + run["parse"] for run in runs]) * 1000,
            "ms",
        )
        figures.record(
            f"fresh.{kind}.dag_processor_median_ms",
            median([run["parse"] + (0 if pre_imported else run["import"]) for run in runs]) * 1000,
            "ms",
        )
    sdk = sorted({module for run in fresh["mps"] for module in run["sdk_modules"]})
    figures.record("tencentcloud_modules_after_parsing", sdk)

    def ms(kind: str, what: str) -> float:
        return figures.raw[f"fresh.{kind}.{what}_median_ms"]

    if not missing:
        figures.ratio(
            "warm_mps_over_dbt_cloud",
            us("mps") / us("dbt_cloud"),
            1.0,
            what="us per operator, 100 operators built in a warm process, MPS vs dbt Cloud",
        )
        figures.ratio(
            "fresh_mps_over_dbt_cloud",
            ms("mps", "file") / ms("dbt_cloud", "file"),
            1.1,
            what="the 100-operator file in a fresh process (module import + parse), MPS vs dbt Cloud",
        )
        figures.ratio(
            "fresh_dag_processor_mps_over_dbt_cloud",
            ms("mps", "dag_processor") / ms("dbt_cloud", "dag_processor"),
            what="the same, less the import of airflow.* modules (pre-imported by the DAG processor)",
        )
        figures.ratio(
            "fresh_preloaded_mps_over_dbt_cloud",
            ms("mps", "parse") / ms("dbt_cloud", "parse"),
            what="the same, both modules imported before (ours preloaded by airflow_local_settings.py)",
        )
        figures.ratio(
            "import_mps_over_dbt_cloud",
            ms("mps", "import") / ms("dbt_cloud", "import"),
            what="the operator module's import in a fresh process, MPS vs dbt Cloud",
        )
        figures.ratio(
            "warm_dbt_cloud_over_bash",
            us("dbt_cloud") / us("bash"),
            what="us per operator, warm, dbt Cloud vs Bash",
        )
        figures.ratio(
            "fresh_dbt_cloud_over_bash",
            ms("dbt_cloud", "file") / ms("bash", "file"),
            what="the file in a fresh process, dbt Cloud vs Bash",
        )
    figures.ratio("warm_mps_over_bash", us("mps") / us("bash"), what="us per operator, warm, MPS vs Bash")
    figures.ratio(
        "fresh_mps_over_bash",
        ms("mps", "file") / ms("bash", "file"),
        what="the file in a fresh process (module import + parse), MPS vs Bash",
    )
    if sdk:
        figures.note(f"Parsing imported the Tencent SDK: {sdk}.")
    figures.write(args.json)
    return 1 if sdk else 0


if __name__ == "__main__":
    sys.exit(main())
