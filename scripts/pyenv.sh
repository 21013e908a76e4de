#!/usr/bin/env bash
# Creates (or updates) the Python virtualenv the test suites use, with the
# pinned official clients of tests/python/requirements.txt, and prints its
# path. Installs python3-venv with apt if needed. Idempotent: a venv whose
# requirements did not change is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MEMFS_PYENV:-target/pyenv}
req=tests/python/requirements.txt
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "pyenv: installing python3-venv" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
  echo "pyenv: preparing $venv" >&2
  python3 -m venv "$venv"
  # python -m pip, not the pip script: a venv copied from elsewhere keeps
  # scripts whose first line names the old venv.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv"
