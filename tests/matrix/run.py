"""
The Airflow version matrix: one virtualenv per Airflow line, each installed, checked and tested.

``make test-matrix`` runs ``python3 -m tests.matrix.run``.  For every line in :data:`LINES` it:

1. **installs** ``.venv-matrix/<version>``: ``pip install 'apache-airflow==<version>' -e '.[dev]'``
   (plus ``tests/matrix/constraints-<version>.txt`` where a line needs one).  The venv is cached:
   its stamp file holds a hash of ``pyproject.toml`` and of the constraints, and the venv is
   built anew only when they change;
2. runs **``pip check``**, which must pass;
3. runs the **unit suite**: every test marked neither ``integration`` nor ``heavy``, except the
   suites listed in :data:`NEWEST_LINE_ONLY` (``make test`` runs those on the newest line);
4. runs the **end-to-end** test, ``tests/matrix/test_user_dag_end_to_end.py``: ``airflow dags
   test`` of the user's DAG against the ``mps-emulator`` console script.  On :data:`REVIEW_E2E_LINE`
   it also runs ``tests/matrix/test_human_review_end_to_end.py``: the review example on a real
   scheduler, triggerer and API server, answered through the REST API.

With ``--covered-by .venv`` (``.ci/run``, right after ``make test``), the line of ``.venv``'s Airflow
only installs and checks its venv: ``make test`` has just run a superset of phases 3 and 4 there.

Lines run one after the other (the machine is small), and a failing line does not stop the next.
Each phase's result and time are printed as it ends, then a summary table, which is also
written to ``.venv-matrix/summary.md``.  The exit status is 1 when any phase of any line failed.

Only the standard library is used: the driver runs under any Python 3.10+, and every test runs
in the line's own venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MATRIX_DIR = REPO_ROOT / ".venv-matrix"
CONSTRAINTS_DIR = Path(__file__).resolve().parent

#: Every Airflow line the provider supports, oldest first: the newest release of each.
LINES = ("2.11.2", "3.0.6", "3.1.8", "3.2.2", "3.3.2")

#: Suites run on the newest line only, by ``make test`` in ``.venv`` (with the integration suite),
#: and why: they test the provider's own machinery under load and faults, which is the same code
#: on every line, and together they take longer than the rest of the unit suite.
NEWEST_LINE_ONLY = {
    "tests/bench": "runs every benchmark on a tiny size (about 3 minutes); figures come from make bench",
    "tests/reliability": "fault injection against the emulator (also on the oldest line: RELIABILITY_LINE)",
    "tests/security": "secret masking in dag.test() runs with DEBUG logging (the integration part needs 3.3)",
    "tests/load": "hundreds of triggers in one triggerer process",
    "tests/matrix": "the end-to-end test, run as its own phase",
}

#: The reliability table (paid, lost and the run's end per fault, with ``retries=2``) runs on the
#: oldest line too, where retries re-attach through Airflow Variables instead of the task_state_store;
#: ``make test`` runs it on the newest.
RELIABILITY_SUITE = "tests/reliability"
RELIABILITY_LINE = LINES[0]

UNIT_MARKERS = "not integration and not heavy"
#: The unit suite runs in four pytest-xdist workers, one module per worker at a time.  Most of its
#: time is spent waiting (poll intervals, retry delays, the rate limiter, the emulator's task
#: durations), not computing: in two workers it used 4 minutes of CPU in 9 of wall time.  Each worker
#: has its own Airflow home, database and emulator (``tests/conftest.py``).
UNIT_WORKERS = ["-n", "4", "--dist", "loadfile"]
E2E_TEST = "tests/matrix/test_user_dag_end_to_end.py"
#: The review step's end-to-end test starts a real Airflow (about a minute), so it runs on one line:
#: the oldest with human-in-the-loop operators, where the review waits in the triggerer.  On 3.3 it
#: waits in ``awaiting_input``, and ``make test-browser`` answers it from the UI.
REVIEW_E2E_TEST = "tests/matrix/test_human_review_end_to_end.py"
REVIEW_E2E_LINE = "3.1.8"

#: pytest's closing counts, e.g. "300 passed, 2 skipped in 151.20s (0:02:31)" (with -q, no "=" rule).
PYTEST_SUMMARY = re.compile(r"^=* ?(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s\b", re.MULTILINE)


@dataclass
class Phase:
    """The outcome of one phase of one line."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class LineResult:
    """Every phase run for one Airflow line."""

    version: str
    phases: list[Phase] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(phase.ok for phase in self.phases)

    @property
    def seconds(self) -> float:
        return sum(phase.seconds for phase in self.phases)


def constraints_file(version: str) -> Path | None:
    """The constraints a line installs with, if it needs any (each file says why)."""
    path = CONSTRAINTS_DIR / f"constraints-{version}.txt"
    return path if path.exists() else None


def install_fingerprint(version: str) -> str:
    """What the cached venv of ``version`` was built from: Airflow, pyproject.toml, constraints."""
    digest = hashlib.sha256(version.encode())
    digest.update((REPO_ROOT / "pyproject.toml").read_bytes())
    constraints = constraints_file(version)
    if constraints is not None:
        digest.update(constraints.read_bytes())
    return digest.hexdigest()


def run(cmd: list[str], *, log: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    """
    Run ``cmd`` in the repository, streaming its output, or appending it to ``log`` when one is given.

    :return: the exit status and the output.
    """
    print("$ " + shlex.join(cmd), flush=True)
    if log is None:
        process = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        return process.wait(), "".join(lines)
    done = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    with log.open("a") as out:
        out.write(f"$ {shlex.join(cmd)}\n{done.stdout}")
    return done.returncode, done.stdout


def install(version: str, python: str) -> Phase:
    """Create or refresh ``.venv-matrix/<version>`` unless its stamp matches."""
    venv = MATRIX_DIR / version
    stamp = venv / ".installed"
    fingerprint = install_fingerprint(version)
    started = time.perf_counter()
    if stamp.exists() and stamp.read_text().strip() == fingerprint and (venv / "bin" / "python").exists():
        return Phase("install", True, time.perf_counter() - started, "cached")
    # Built anew, never upgraded in place: the venv holds exactly what a fresh install gives.
    shutil.rmtree(venv, ignore_errors=True)
    venv.mkdir(parents=True)
    log = MATRIX_DIR / f"install-{version}.log"
    log.write_text("")
    code, output = run([python, "-m", "venv", str(venv)], log=log)
    if code != 0:
        return Phase("install", False, time.perf_counter() - started, _tail(output))
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    cmd = [*pip, "install", "--quiet", f"apache-airflow=={version}", "-e", ".[dev]"]
    constraints = constraints_file(version)
    if constraints is not None:
        cmd += ["--constraint", str(constraints.relative_to(REPO_ROOT))]
    for step in ([*pip, "install", "--quiet", "--upgrade", "pip"], cmd):
        code, output = run(step, log=log)
        if code != 0:
            print(_tail(output), flush=True)
            return Phase("install", False, time.perf_counter() - started, f"pip install failed, see {log}")
    stamp.write_text(fingerprint + "\n")
    detail = "installed" + (f" with {constraints.name}" if constraints is not None else "")
    return Phase("install", True, time.perf_counter() - started, detail)


def pip_check(version: str) -> Phase:
    """``pip check`` in the line's venv: every installed requirement is satisfied."""
    started = time.perf_counter()
    code, output = run([str(MATRIX_DIR / version / "bin" / "python"), "-m", "pip", "check"])
    return Phase("pip check", code == 0, time.perf_counter() - started, output.strip().splitlines()[-1])


def pytest_phase(version: str, name: str, args: list[str]) -> Phase:
    """Run pytest in the line's venv with ``args``; the detail is pytest's closing counts."""
    started = time.perf_counter()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    python = str(MATRIX_DIR / version / "bin" / "python")
    code, output = run([python, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", *args], env=env)
    summaries = PYTEST_SUMMARY.findall(output)
    detail = summaries[-1] if summaries else f"pytest exited {code} without a summary"
    return Phase(name, code == 0, time.perf_counter() - started, detail)


def unit_suite(version: str) -> Phase:
    """The unit suite of one line (see :data:`NEWEST_LINE_ONLY` for what is left to ``make test``)."""
    kept = {RELIABILITY_SUITE} if version == RELIABILITY_LINE else set()
    ignores = [f"--ignore={path}" for path in NEWEST_LINE_ONLY if path not in kept]
    return pytest_phase(version, "unit suite", ["-m", UNIT_MARKERS, *UNIT_WORKERS, *ignores])


def end_to_end(version: str) -> Phase:
    """``airflow dags test`` of the user's DAG against the emulator, and the review on its line."""
    tests = [E2E_TEST, REVIEW_E2E_TEST] if version == REVIEW_E2E_LINE else [E2E_TEST]
    return pytest_phase(version, "end-to-end", tests)


def bench_parse(version: str) -> Phase:
    """
    ``bench.parse_cost`` in the line's venv; its figures go to ``bench/out/parse_cost-airflow-<version>.md``.

    Not a default phase: ``make bench-parse-matrix`` runs it on the oldest and the newest line.
    """
    started = time.perf_counter()
    results = REPO_ROOT / "bench" / "out" / f"parse_cost-airflow-{version}.md"
    results.parent.mkdir(parents=True, exist_ok=True)
    python = str(MATRIX_DIR / version / "bin" / "python")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    cmd = [python, "-m", "bench.run_all", "--only", "parse_cost", "--results", str(results)]
    code, output = run(cmd, env=env)
    ratio = re.search(r"^RATIO parse_cost\.mps_over_bash = (\S+)", output, re.MULTILINE)
    detail = f"mps_over_bash {ratio.group(1) if ratio else '?'}, see {results.relative_to(REPO_ROOT)}"
    return Phase("bench parse", code == 0, time.perf_counter() - started, detail)


#: Every phase, in the order they run; DEFAULT_PHASES is what ``make test-matrix`` runs.
PHASES = ("install", "check", "unit", "e2e", "bench-parse")
DEFAULT_PHASES = ("install", "check", "unit", "e2e")


def airflow_version_of(venv: Path) -> str:
    """The Airflow version installed in ``venv``."""
    code = "from importlib.metadata import version; print(version('apache-airflow'))"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def run_line(version: str, phases: tuple[str, ...], python: str, covered_by: str | None = None) -> LineResult:
    """
    Run the chosen phases for one line; the first failing set-up phase skips the rest.

    :param covered_by: a venv of the same Airflow version whose whole suite (a superset of the
        unit suite and the end-to-end test) has already run, e.g. ``make test``'s ``.venv`` in
        ``.ci/run``: the line then only installs and checks its own venv.
    """
    result = LineResult(version)
    if covered_by is not None:
        print(f"\n===== Airflow {version}: the unit suite and the end-to-end test ran in {covered_by}")
        for name in ("unit suite", "end-to-end"):
            result.phases.append(Phase(name, True, 0.0, f"run by make test in {covered_by}"))
        phases = tuple(phase for phase in phases if phase not in ("unit", "e2e"))
    steps = {
        "install": lambda: install(version, python),
        "check": lambda: pip_check(version),
        "unit": lambda: unit_suite(version),
        "e2e": lambda: end_to_end(version),
        "bench-parse": lambda: bench_parse(version),
    }
    for name in PHASES:
        if name not in phases:
            continue
        print(f"\n===== Airflow {version}: {name}", flush=True)
        phase = steps[name]()
        result.phases.append(phase)
        verdict = "ok" if phase.ok else "FAILED"
        print(f"===== Airflow {version}: {phase.name} {verdict} in {phase.seconds:.0f} s ({phase.detail})")
        if not phase.ok and name in ("install", "check"):
            break
    return result


def summary(results: list[LineResult], took: float) -> str:
    """The Markdown table of every line's phases, results and times."""
    ran = {phase.name for result in results for phase in result.phases}
    order = ("install", "pip check", "unit suite", "end-to-end", "bench parse")
    names = [name for name in order if name in ran]
    lines = [
        f"| Airflow | {' | '.join(names)} | total |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for result in results:
        cells = []
        for name in names:
            phase = next((phase for phase in result.phases if phase.name == name), None)
            if phase is None:
                cells.append("not run")
            else:
                verdict = "" if phase.ok else "**FAILED** "
                cells.append(f"{verdict}{phase.detail} ({phase.seconds:.0f} s)")
        total = f"{'ok' if result.ok else '**FAILED**'} ({result.seconds / 60:.1f} min)"
        lines.append(f"| {result.version} | {' | '.join(cells)} | {total} |")
    lines += [
        "",
        f"Whole matrix: {took / 60:.1f} min on {os.cpu_count()} cores.",
        "",
        "Run on the newest line only (by `make test`, with the integration suite):",
        *(f"- `{path}`: {why}" for path, why in NEWEST_LINE_ONLY.items() if path != "tests/matrix"),
    ]
    return "\n".join(lines)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument(
        "--lines",
        default=os.environ.get("MATRIX_LINES") or " ".join(LINES),
        help="Airflow versions to run, separated by spaces or commas, or oldest / newest (default: all)",
    )
    parser.add_argument(
        "--phases",
        default=",".join(DEFAULT_PHASES),
        help=f"comma-separated phases among {', '.join(PHASES)} (default: {','.join(DEFAULT_PHASES)})",
    )
    parser.add_argument(
        "--python", default=os.environ.get("PYTHON") or sys.executable, help="Python that creates the venvs"
    )
    parser.add_argument(
        "--covered-by",
        default=None,
        help="a venv whose whole test suite already ran (.ci/run: make test's .venv); the line of its "
        "Airflow version then only installs and runs pip check",
    )
    args = parser.parse_args(argv)
    aliases = {"oldest": LINES[0], "newest": LINES[-1]}
    versions = [aliases.get(line, line) for line in args.lines.replace(",", " ").split()]
    phases = tuple(args.phases.split(","))
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}: choose among {', '.join(PHASES)}")
    if shutil.which(args.python) is None and not Path(args.python).exists():
        parser.error(f"no Python at {args.python!r} to create the venvs with")
    MATRIX_DIR.mkdir(exist_ok=True)
    started = time.perf_counter()
    covered = airflow_version_of(REPO_ROOT / args.covered_by) if args.covered_by else None
    results = [
        run_line(version, phases, args.python, args.covered_by if version == covered else None)
        for version in versions
    ]
    table = summary(results, time.perf_counter() - started)
    (MATRIX_DIR / "summary.md").write_text(table + "\n")
    (MATRIX_DIR / "summary.json").write_text(
        json.dumps(
            [
                {"airflow": r.version, "ok": r.ok, "phases": [vars(phase) for phase in r.phases]}
                for r in results
            ],
            indent=2,
        )
        + "\n"
    )
    print("\n===== Airflow version matrix\n" + table, flush=True)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
