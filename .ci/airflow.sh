#!/usr/bin/env bash
# The Airflow integration on real Airflow, in its own virtual environment (.venv-airflow, created
# when missing): the tests in tests_airflow/ (dag.test() on SQLite against the fake registry),
# then the example DAG. Each makes its own throw-away AIRFLOW_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

AIRFLOW_VERSION=3.3.2
VENV=${AIRFLOW_VENV:-.venv-airflow}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q "apache-airflow==$AIRFLOW_VERSION" -e . pytest pytest-timeout
"$VENV/bin/python" -c 'import sys, airflow; print("Airflow", airflow.__version__, "on Python", sys.version.split()[0])'

# The example must use its embedded fake registry, whatever this shell's WAYLAY_* say.
unset WAYLAY_GATEWAY_URL WAYLAY_TOKEN WAYLAY_API_KEY WAYLAY_API_SECRET WAYLAY_PROFILE

"$VENV/bin/python" -m pytest tests_airflow -q -p no:cacheprovider
output=$(mktemp)
trap 'rm -f "$output"' EXIT
if ! "$VENV/bin/python" examples/airflow_dag.py >"$output" 2>&1; then
    cat "$output" >&2
    echo "examples/airflow_dag.py failed" >&2
    exit 1
fi
grep -F '[waylay_jobs]' "$output" | cut -c1-160
echo "examples/airflow_dag.py: the DAG run succeeded"
