#!/usr/bin/env bash
# The README's first command: set up (system packages, .venv) and run a private Postfix on 127.0.0.1:2525 with the
# milter and the default policy pack; accepted mail lands in run/lab/sink/. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m monre_milter.lab "$@"
