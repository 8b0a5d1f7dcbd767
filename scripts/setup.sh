#!/usr/bin/env bash
# Install what monre-milter needs on a Debian machine (run as root), then build .venv/.
# Idempotent: packages already present are not reinstalled, an existing .venv is updated.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

# postfix: the MTA we plug into (also ships smtp-sink / smtp-source); libmilter-dev: to build pymilter;
# libmagic1: content type detection; prometheus: tests and dashboards; dnsmasq-base not needed (our DNS test
# server is dnspython); openssl: differential S/MIME tests; poppler-utils: render report pages.
pkgs=(postfix libmilter-dev libmagic1 prometheus openssl swaks gcc python3-dev python3-venv make poppler-utils sqlite3 fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Install Postfix unconfigured: this project runs its own private instances and must not set up (or start) a
  # system mail server. An existing configuration is left as it is.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
stamp=.venv/.installed-$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "setup: ready ($(.venv/bin/monre-milter --version 2>/dev/null || echo 'monre-milter'))"
