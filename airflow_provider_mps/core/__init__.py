"""
The request-and-policy core every class of the provider shares.

* :mod:`~airflow_provider_mps.core.status`: the one status vocabulary (the service's task statuses,
  the two the provider gives a TaskId the service does not report, and the trigger event statuses);
* :mod:`~airflow_provider_mps.core.errors`: one mapping of whatever the SDK raised to the provider's
  exceptions, and one classifier that tells a caller what to do with an error;
* :mod:`~airflow_provider_mps.core.retry`: one backoff formula and one retry loop (sync and async);
* :mod:`~airflow_provider_mps.core.api`: the SDK request objects built from checked API fields;
* :mod:`~airflow_provider_mps.core.budget` and :mod:`~airflow_provider_mps.core.metrics`: the spend
  guard's checks and counters;
* :mod:`~airflow_provider_mps.core.fields`: the rule of each request field, one function per field;
* :mod:`~airflow_provider_mps.validation`: the one place a request's fields are combined, checked
  together and renamed to the service's names.

Creates whose outcome is unknown are judged once, by the operators, in
``operators/_possibly_created.py``.

Nothing here imports Airflow's task machinery or the SDK at import time.
"""
