#!/usr/bin/env bash
# One entry point that does all set-up on a fresh machine, then runs what you ask for.
#   ./run.sh report   the main job: solve MDPs exactly and print every checked theorem with its residual
#   ./run.sh test     the whole check suite: ruff, mypy --strict, pytest (Hypothesis profile "ci")
# Set-up: a virtual environment in .venv with this project installed editable; it is refreshed
# whenever pyproject.toml changes. PYTHON picks the interpreter (default python3, >= 3.11).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv
EXTRAS=${EXTRAS:-test,scalable,envpool,crosscheck}
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
cmd=${1:-}
shift || true
case "$cmd" in
  report)
    exec python -m reference.report "$@" ;;
  test)
    ruff check .
    mypy
    HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} exec python -m pytest -q "$@" ;;
  *)
    echo "usage: ./run.sh report | test [pytest args]" >&2; exit 2 ;;
esac
