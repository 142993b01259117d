# Sourced by ./serve and ./run-tests: creates .venv and installs the project into it, again only
# when pyproject.toml changed. Usage: bootstrap_python "" | "[test,docs]"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "bayeux needs Python 3.11 or newer on PATH" >&2
  return 1
}

bootstrap_python() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV" >&2
    "$(find_python)" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed$extras"
  local want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing bayeux-server$extras into .venv" >&2
    # Before 0.2.0 the distribution was called "bayeux"; a .venv made then still has it.
    "$VENV/bin/python" -m pip uninstall --quiet --yes bayeux >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT$extras"
    echo "$want" > "$stamp"
  fi
}
