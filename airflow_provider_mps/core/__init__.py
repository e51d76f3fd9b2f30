"""
The request-and-policy core every class of the provider shares.

* :mod:`~airflow_provider_mps.core.status`: the one status vocabulary (the service's task statuses,
  the two the provider gives a TaskId the service does not report, and the trigger event statuses);
* :mod:`~airflow_provider_mps.core.errors`: one mapping of whatever the SDK raised to the provider's
  exceptions, and one classifier that tells a caller what to do with an error;
* :mod:`~airflow_provider_mps.core.retry`: one backoff formula and one retry loop (sync and async);
* :mod:`~airflow_provider_mps.core.possibly_created`: one policy for creates whose outcome is unknown;
* :mod:`~airflow_provider_mps.validation`: the one place request fields are checked and renamed.

Nothing here imports Airflow's task machinery or the SDK at import time.
"""
