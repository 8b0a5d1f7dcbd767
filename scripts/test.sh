#!/usr/bin/env bash
# The README's second command: set up (system packages, .venv) and run the whole test suite, end-to-end tests
# through a real Postfix included. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
