"""Run DAGs with ``dag.test()`` one after another in this process: ``python _dag_test_runner.py '<json>'``.

The argument is a JSON list of ``[dag_id, conf]``; the DAGs come from ``$AIRFLOW__CORE__DAGS_FOLDER``.
"""

from __future__ import annotations

import json
import os
import sys

from airflow.dag_processing.dagbag import DagBag


def main() -> int:
    runs = json.loads(sys.argv[1])
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print(f"IMPORT ERRORS: {bag.import_errors}", flush=True)
        return 2
    for dag_id, conf in runs:
        print(f"===== dag.test {dag_id} =====", flush=True)
        run = bag.get_dag(dag_id).test(run_conf=conf)
        print(f"===== dag.test {dag_id} finished: {run.state} =====", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
