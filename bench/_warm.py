"""
Operators built in a warm process, timed and profiled, for :mod:`bench.parse_vs_dbt_cloud`.

Each kind is built by the same loop as its DAG file's, compiled from :meth:`~bench._parse.Kind.call`
(:func:`builder`), into a new DAG each round; the kinds take turns in a shuffled order.
"""

from __future__ import annotations

import cProfile
import gc
import importlib
import pstats
import random
import statistics
import time
from typing import Any

from bench._parse import DAG_MODULE, Kind


def builder(kind: str, spec: Kind, classes: dict[str, type]) -> tuple[type, Any]:
    """The class of ``spec`` and a ``build(dag, count)`` running the DAG file's loop, same source."""
    cls = classes.get(spec.cls) or getattr(importlib.import_module(spec.module), spec.cls)
    source = (
        f"def build(dag, count):\n    with dag:\n        for n in range(count):\n            {spec.call()}\n"
    )
    namespace: dict[str, Any] = {spec.cls: cls}
    exec(compile(source, f"<bench {kind}>", "exec"), namespace)
    return cls, namespace["build"]


def new_dag(name: str) -> Any:
    """An empty DAG as the files declare theirs."""
    import pendulum

    dag_class = importlib.import_module(DAG_MODULE).DAG
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
    of the chain whose ``__init__`` runs (Airflow wraps each in its own ``apply_defaults``), down
    to ``BaseOperator``.  The first class's piece is split into its ``apply_defaults`` wrapper, the
    template fields' XComArg walk the outermost wrapper makes, the ``__init__``'s own code, its
    attribute assignments (``BaseOperator.__setattr__``; those made by a helper count as its call)
    and the other functions it calls.
    """
    from airflow.providers.common.compat.sdk import BaseOperator

    defining = [c for c in cls.__mro__[: cls.__mro__.index(BaseOperator) + 1] if "__init__" in vars(c)]
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def edge(caller: Any, callee: Any) -> float:
        entry = stats.get(callee)
        return entry[4].get(caller, (0, 0, 0, 0.0))[3] if entry else 0.0

    # Every apply_defaults wrapper runs the same code: the layers are told apart by their callers,
    # the build (outermost) then whatever calls the next one in (an __init__, or a helper of it).
    # Each layer's time holds the inner ones', so the inner callers' times decrease inwards.
    wrapper_key = _key(vars(defining[0])["__init__"])
    into_wrapper = stats[wrapper_key][4] if wrapper_key in stats else {}
    inner = sorted((e[3] for caller, e in into_wrapper.items() if caller != _key(build)), reverse=True)
    # The layers called: the class's own, the next ones of the MRO, BaseOperator's last (an operator
    # calling BaseOperator.__init__ itself skips the classes between, e.g. ResumableJobMixin's).
    chain = [*defining[: len(inner)], BaseOperator] if inner else defining[:1]
    entries = [edge(_key(build), wrapper_key), *inner, 0.0]
    walk = sum(
        edge(caller, key)
        for key, entry in stats.items()
        if key[2] == "_set_xcomargs_dependencies"
        for caller in entry[4]
    )
    wrapped_first = vars(chain[0])["__init__"]
    first = _key(getattr(wrapped_first, "__wrapped__", wrapped_first))
    own_total = edge(wrapper_key, first) if hasattr(wrapped_first, "__wrapped__") else entries[0]
    setattr_key = _key(BaseOperator.__setattr__)
    # What the own __init__ calls, less any inner layer reached through it (e.g. a helper that
    # calls BaseOperator.__init__): that is the layer's, below.
    calls = {
        key[2]: (entry[4][first][3] - edge(key, wrapper_key)) / ops * 1e6
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
