"""
What keeps a DAG file of MPS operators as cheap to parse as one of Airflow's core operators.

Airflow's DAG processor parses every DAG file again and again, in a fresh process forked from
one that has pre-imported only the ``airflow.*`` modules the file names: this provider's import
and every operator's ``__init__`` are paid on each parse.  Three measures (figures in
``bench/RESULTS.md``, ``python -m bench.parse_cost``):

* :func:`init_setattr`, the operators' ``__setattr__``: the same effects as
  ``BaseOperator.__setattr__`` without its per-assignment converter lookup while ``__init__``
  runs (about 60 assignments per operator); converted and descriptor attributes still go
  through Airflow's method.  It is only installed when Airflow's
  ``BaseOperator.__setattr__`` is the one it was checked against (:data:`FAST_INIT_SETATTR`);
  otherwise the operators keep Airflow's own.
* :class:`LazyExtraLinks`: ``operator_extra_links`` that imports the link classes (and Airflow's
  ``BaseOperatorLink``) when first read, that is when the DAG is serialized or a task ends.
* :func:`set_xcomargs_dependencies`: skips the plain values of the many templated fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

if TYPE_CHECKING:
    from collections.abc import Collection

    from airflow.providers.common.compat.sdk import BaseOperatorLink

#: The names ``BaseOperator.__setattr__`` reads, in the Airflow versions :func:`init_setattr`
#: reproduces (3.3): a change to that method changes them, and the fast path is then left out.
_CHECKED_SETATTR_NAMES = (
    "getattr",
    "super",
    "__setattr__",
    "_BaseOperator__from_mapped",
    "_lock_for_execution",
    "_BaseOperator__init_kwargs",
    "_BaseOperator__instantiated",
    "template_fields",
    "_set_xcomargs_dependency",
)

#: Whether :func:`init_setattr` reproduces this Airflow's ``BaseOperator.__setattr__``.
FAST_INIT_SETATTR = BaseOperator.__setattr__.__code__.co_names == _CHECKED_SETATTR_NAMES

_CONVERTER_PREFIX = "_convert_"
_special_names_by_class: dict[type, frozenset[str]] = {}


def _special_names(cls: type) -> frozenset[str]:
    """
    Attribute names whose assignment on a ``cls`` instance is more than a store, remembered per class.

    Those ``cls`` converts (it has a ``_convert_<name>`` method) and those of data descriptors
    (properties with a setter, such as ``dag``), which a plain ``__dict__`` store would bypass.
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        for name, attribute in vars(klass).items():
            if name.startswith(_CONVERTER_PREFIX):
                names.add(name[len(_CONVERTER_PREFIX) :])
            elif hasattr(type(attribute), "__set__") or hasattr(type(attribute), "__delete__"):
                names.add(name)
    _special_names_by_class[cls] = frozenset(names)
    return _special_names_by_class[cls]


def init_setattr(self: Any, key: str, value: Any) -> None:
    """
    ``BaseOperator.__setattr__``, minus its converter lookup for plain attributes during ``__init__``.

    Airflow's method looks up ``_convert_<key>`` on every assignment, which is most of its cost.
    Here a converted or descriptor attribute, and any assignment once the operator is built (where
    a templated field may gain an ``XComArg`` upstream), goes through Airflow's method unchanged;
    any other assignment during ``__init__`` has that method's other effects: the value is stored
    in the instance, and recorded among the init kwargs (used to re-create mapped tasks) when it is
    one of them.

    :param key: the attribute name.
    :param value: the value assigned.
    """
    special = _special_names_by_class.get(type(self))
    if special is None:
        special = _special_names(type(self))
    if key in special or self._BaseOperator__instantiated:
        BaseOperator.__setattr__(self, key, value)
        return
    self.__dict__[key] = value  # what object.__setattr__ does for a name no data descriptor holds
    if self._BaseOperator__from_mapped or self._lock_for_execution:
        return
    init_kwargs = self._BaseOperator__init_kwargs
    if key in init_kwargs:
        init_kwargs[key] = value


#: The ``__setattr__`` the provider's operators use: :func:`init_setattr` when it applies.
operator_setattr = init_setattr if FAST_INIT_SETATTR else BaseOperator.__setattr__


class LazyExtraLinks:
    """
    ``operator_extra_links`` built on first read from link classes of :mod:`airflow_provider_mps.links.mps`.

    :param names: the link class names, in button order.
    """

    def __init__(self, *names: str) -> None:
        self._names = names
        self._links: tuple[BaseOperatorLink, ...] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> Collection[BaseOperatorLink]:
        if self._links is None:
            from airflow_provider_mps.links import mps as links

            self._links = tuple(getattr(links, name)() for name in self._names)
        return self._links


def set_xcomargs_dependencies(operator: BaseOperator) -> None:
    """
    Make each ``XComArg`` in ``operator``'s template fields an upstream task, skipping plain values.

    Airflow runs this once per operator at the end of ``__init__``, on every field.  Text, numbers
    and ``None`` cannot hold an ``XComArg``; skipping them (most of an MPS operator's 13 templated
    fields are unset) saves ~30 us per operator on every parse, with the same dependencies.

    :param operator: the operator just built.
    """
    values = vars(operator)
    for field in operator.template_fields:
        value = values.get(field)
        if value is not None and not isinstance(value, (str, int, float)):
            from airflow.sdk.definitions.xcom_arg import XComArg

            XComArg.apply_upstream_relationship(operator, value)
