#!/usr/bin/env bash
# Idempotent setup of a developer machine or CI: the virtual environment with the runtime and
# dev requirements, and Azurite (pinned in devtools/package-lock.json). Run by the other
# devtools scripts; safe to run again, it only installs what changed, and says what it does
# (on stderr, so that a script's output stays its own).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
venv="$root/.venv"
say() { echo "setup: $*" >&2; }
if [ ! -x "$venv/bin/python" ]; then
  say "creating the virtual environment .venv ($("$python" --version 2>&1))"
  "$python" -m venv "$venv"
fi
stamp="$venv/.requirements.sha"
want="$(cat "$root/requirements.txt" "$root/requirements-dev.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing requirements.txt and requirements-dev.txt into .venv (a minute or two the first time)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements-dev.txt"
  # The worker's own loader, used only by the binding contract test. It declares Python >= 3.13
  # but its loader code runs on 3.11; its dependencies would pull in a second protobuf stack.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --ignore-requires-python azure-functions-runtime-v1==1.2.0
  echo "$want" > "$stamp"
  say "Python requirements installed"
fi
if [ ! -x "$root/devtools/node_modules/.bin/azurite" ]; then
  say "installing Azurite (pinned in devtools/package-lock.json) with npm ci (about a minute the first time)"
  (cd "$root/devtools" && npm ci --no-audit --no-fund --loglevel=error)
  say "Azurite installed"
fi
