"""
How the two create operators are built at DAG parse time, cheaply, with Airflow's public interfaces only.

Building an operator costs mostly Airflow's own work: every class of its MRO that defines
``__init__`` gets its own ``apply_defaults`` wrapper (``BaseOperatorMeta``), and every assignment to
it goes through ``BaseOperator.__setattr__``.  A DAG file may build hundreds of operators, on every
parse, so the create operators (``ResumableJobMixin``, ``BaseOperator``) keep both to the minimum:

* :func:`start` calls ``BaseOperator.__init__`` itself and sets ``durable``, all that
  ``ResumableJobMixin.__init__`` does (a test keeps that true), so the operator's class is the only
  ``apply_defaults`` layer above ``BaseOperator``'s instead of two;
* :func:`assign_given` assigns only the arguments given, not those left at their defaults, which the
  class declares as class attributes (the same values as the signature's; a test keeps that true).
  A default is valid, so the parse-time checks of a knob run only when it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from collections.abc import Mapping

#: ``deferrable`` when not given, for both operators: ``[operators] default_deferrable``, read once,
#: when the module is imported (as a signature's default would be).
DEFAULT_DEFERRABLE = conf.getboolean("operators", "default_deferrable", fallback=False)
#: The waiting knobs both operators check with :func:`~airflow_provider_mps.validation.check_wait`.
WAIT_KNOBS = frozenset({"poll_interval", "timeout", "rate_limit"})
#: What :func:`assign_given` leaves alone: not arguments (``self``, ``kwargs``), or set by :func:`start`.
_NOT_ASSIGNED = frozenset({"self", "kwargs", "__class__", "durable"})
#: Stands for the default of an argument the class gives none (a required one): always assigned.
_NO_DEFAULT = object()


def start(operator: BaseOperator, durable: bool | None, kwargs: dict[str, Any]) -> None:
    """
    Run ``BaseOperator.__init__`` and give ``operator.durable`` its value, as ``ResumableJobMixin`` would.

    ``None`` (the default) leaves the class attribute, ``True``.  On Airflow 3.3+ a given value is the
    mixin's ``durable`` as given; before, common-compat's stand-in keeps nothing, and ``durable`` is the
    switch of the provider's own record (:class:`~._try_record.VariableTryRecord`).

    :param operator: the create operator being built.
    :param durable: its ``durable`` argument, or ``None``.
    :param kwargs: its other ``BaseOperator`` keyword arguments.
    """
    BaseOperator.__init__(operator, **kwargs)
    if durable is not None:
        operator.durable = durable if AIRFLOW_V_3_3_PLUS else durable is not False


def assign_given(operator: BaseOperator, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """
    Assign to ``operator`` each argument that is not its class's default; return those arguments.

    An argument is left alone when it *is* the class attribute of that name (``None``, ``False``,
    the default number or connection id), which the operator then reads, as it would the same value
    assigned; one without a class attribute (a required argument) is always assigned.  So
    ``default_args`` and mapped arguments still reach the instance, and templated fields stay
    templated: rendering assigns the rendered value as to any other attribute.

    :param operator: the create operator, after :func:`start`.
    :param arguments: ``locals()`` of its ``__init__`` before anything else is bound: its arguments.
    """
    cls = type(operator)
    given = {
        name: value
        for name, value in arguments.items()
        if name not in _NOT_ASSIGNED and value is not getattr(cls, name, _NO_DEFAULT)
    }
    for name, value in given.items():
        setattr(operator, name, value)
    return given


# -- waiting: what both operators hand their trigger ----------------------------------------------


def trigger_arguments(operator: Any) -> dict[str, Any]:
    """
    Return the trigger's arguments both operators take from their knobs (all but the TaskIds).

    :param operator: the create operator, its templates rendered.
    """
    from airflow_provider_mps.triggers.mps import end_time_after

    return {
        "mps_conn_id": operator.mps_conn_id,
        "poll_interval": operator.poll_interval,
        "end_time": end_time_after(operator.timeout),
        "region": operator.region,
        "rate_limit": operator.rate_limit,
    }


def defer(operator: Any, trigger: Any, **kwargs: Any) -> None:
    """
    Defer ``operator`` to ``trigger``, to resume in ``execute_complete(**kwargs)``.

    Airflow's own timeout of the deferral is the operator's ``timeout`` plus a grace period
    (:func:`~._reattach.defer_timeout`): the trigger's timeout event, with its message, comes first.
    """
    from airflow_provider_mps.operators._reattach import defer_timeout

    timeout = defer_timeout(operator.timeout)
    operator.defer(trigger=trigger, method_name="execute_complete", kwargs=kwargs or None, timeout=timeout)
