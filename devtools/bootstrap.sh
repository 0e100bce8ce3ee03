#!/usr/bin/env bash
# Idempotent setup of a developer machine or CI: the virtual environment with the runtime and
# dev requirements, checkov in a virtual environment of its own (its pins conflict with the dev
# tools', see requirements-checkov.txt), and Azurite (pinned in devtools/package-lock.json).
# Run by the other devtools scripts; safe to run again, it only installs what changed, and says
# what it does (on stderr, so that a script's output stays its own).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
say() { echo "setup: $*" >&2; }

# A venv at $1 holding requirements file $2 (plus the commands in $3, run after pip), redone
# only when the requirements' hash changed since the last successful install.
ensure_venv() {
  local venv="$1" requirements="$2" extra="${3:-}"
  if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtual environment $(basename "$venv") ($("$python" --version 2>&1))"
    "$python" -m venv "$venv"
  fi
  local stamp="$venv/.requirements.sha" want
  want="$(cat "$requirements" $( [ "$requirements" = "$root/requirements-dev.txt" ] && echo "$root/requirements.txt") \
    | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing $(basename "$requirements") into $(basename "$venv") (a minute or two the first time)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    if [ -n "$extra" ]; then
      eval "$extra"
    fi
    echo "$want" > "$stamp"
    say "$(basename "$requirements") installed"
  fi
}

# The worker's own loader, used only by the binding contract test. It declares Python >= 3.13
# but its loader code runs on 3.11; its dependencies would pull in a second protobuf stack.
worker_loader='say "installing azure-functions-runtime-v1==1.2.0 (no deps) into .venv";
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --ignore-requires-python azure-functions-runtime-v1==1.2.0'
ensure_venv "$root/.venv" "$root/requirements-dev.txt" "$worker_loader"
ensure_venv "$root/.venv-checkov" "$root/requirements-checkov.txt"

if [ ! -x "$root/devtools/node_modules/.bin/azurite" ]; then
  say "installing Azurite (pinned in devtools/package-lock.json) with npm ci (about a minute the first time)"
  (cd "$root/devtools" && npm ci --no-audit --no-fund --loglevel=error)
  say "Azurite installed"
fi
