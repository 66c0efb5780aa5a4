#!/usr/bin/env bash
# Install Attention Workbench into ./.venv (idempotent; used by `make app` and `make test`).
#
#   scripts/install.sh          create .venv if missing, install torch (CPU wheel) then the
#                               package in editable mode with its test extras
#   scripts/install.sh --test   also the ray extra (scale-out tests) and Debian's chromium +
#                               chromium-driver (browser tests)
#
# Torch is installed first and pinned (torch==2.13.0), so pip never resolves a multi-GB CUDA
# build; a local wheel folder (WORKBENCH_WHEELS, default /opt/wheels) is used when present.
# The pip step is skipped while pyproject.toml is unchanged since the last successful install.
# Quiet on success; on failure it prints the failing step's output and exits non-zero.
# Env: PYTHON (default python3), VENV (default .venv).
set -euo pipefail

cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
WHEELS="${WORKBENCH_WHEELS:-/opt/wheels}"
TORCH_PIN="torch==2.13.0"
STAMP="$VENV/.workbench-install-stamp"
WITH_TEST=0
EXTRAS=test

for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 EXTRAS=test,ray ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (use --test)" >&2; exit 2 ;;
  esac
done

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

# run DESCRIPTION CMD...: run quietly; on failure show its output and stop.
run() {
  local what="$1"
  shift
  if ! "$@" >"$LOG" 2>&1; then
    echo "install.sh: FAILED: $what" >&2
    echo "install.sh: command: $*" >&2
    cat "$LOG" >&2
    exit 1
  fi
}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "install.sh: creating $VENV"
  run "create the virtual environment" "$PYTHON" -m venv "$VENV"
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/workbench" ]]; then
  : # up to date
else
  echo "install.sh: installing the workbench into $VENV (pip; this can take a few minutes)"
  pip=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
  find_links=()
  [[ -d "$WHEELS" ]] && find_links=(--find-links "$WHEELS")
  run "upgrade pip" "${pip[@]}" install --upgrade pip
  run "install $TORCH_PIN" "${pip[@]}" install "${find_links[@]}" "$TORCH_PIN"
  run "install the workbench (pip install -e '.[$EXTRAS]')" \
    "${pip[@]}" install "${find_links[@]}" -e ".[$EXTRAS]"
  echo "$want" >"$STAMP"
fi

if [[ "$WITH_TEST" == 1 ]] && [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  echo "install.sh: installing chromium and chromium-driver (apt)"
  sudo=()
  [[ "$(id -u)" -ne 0 ]] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  run "apt-get update" "${sudo[@]}" apt-get update
  run "apt-get install chromium chromium-driver" \
    "${sudo[@]}" apt-get install -y chromium chromium-driver
fi
