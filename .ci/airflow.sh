#!/usr/bin/env bash
# The Airflow integration on real Airflow, on the two lines it supports, each in its own virtual
# environment (created when missing, reused otherwise): Airflow 3.3.2 in .venv-airflow3, 2.11.0
# in .venv-airflow2. For each: the tests in tests_airflow/ (dag.test() on SQLite against the fake
# registry, and a real deployment: scheduler, triggerer and the rest as processes, the triggerer
# killed and replaced while sensors are deferred), then the example DAG. Each makes its own
# throw-away AIRFLOW_HOME.
#
# AIRFLOW_VERSIONS="3.3.2" bash .ci/airflow.sh runs one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
PYTHON=${PYTHON:-python3}
AIRFLOW_VERSIONS=${AIRFLOW_VERSIONS:-"3.3.2 2.11.0"}

# The examples and tests must use their own fake registry, whatever this shell's WAYLAY_* say.
unset WAYLAY_GATEWAY_URL WAYLAY_TOKEN WAYLAY_API_KEY WAYLAY_API_SECRET WAYLAY_PROFILE

output=$(mktemp)
trap 'rm -f "$output"' EXIT

for version in $AIRFLOW_VERSIONS; do
    major=${version%%.*}
    venv=.venv-airflow$major
    pins=()
    if [ "$major" = 2 ]; then
        # Airflow 2.11.0 sets an attribute on cryptography's MultiFernet, which cryptography 51
        # made a Rust class without it: every connection read from the environment then fails
        # ("'MultiFernet' object has no attribute 'is_encrypted'"). Airflow's own constraints
        # file pins an older cryptography; this is the one pin needed without it.
        pins+=("cryptography<51")
    fi
    echo "== Airflow $version ($venv)"
    if [ ! -x "$venv/bin/python" ]; then
        "$PYTHON" -m venv "$venv"
    fi
    "$venv/bin/pip" install -q "apache-airflow==$version" "${pins[@]}" -e . pytest pytest-timeout psutil
    "$venv/bin/python" -c 'import sys, airflow; print("Airflow", airflow.__version__, "on Python", sys.version.split()[0])'

    "$venv/bin/python" -m pytest tests_airflow -q -p no:cacheprovider

    if ! "$venv/bin/python" examples/airflow_dag.py >"$output" 2>&1; then
        cat "$output" >&2
        echo "examples/airflow_dag.py failed on Airflow $version" >&2
        exit 1
    fi
    # The library's progress lines: [waylay_jobs] on Airflow 3, {machine.py:...} on 2.11.
    grep -E '\[waylay_jobs\]|\{machine\.py' "$output" | cut -c1-160 || true
    echo "examples/airflow_dag.py: the DAG run succeeded on Airflow $version"
done
