#!/usr/bin/env bash
# Install what EnMS Stream needs on a fresh Debian machine; idempotent and quiet when done.
#
#   scripts/setup.sh            Python venv + packages, Java/Maven, Redis, Kafka jars
#   scripts/setup.sh --browser  also Debian's chromium (browser tests)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want_browser=0
[[ "${1:-}" == "--browser" ]] && want_browser=1

apt_updated=0
apt_install() {
  # apt_install <command-to-check> <package>...
  local check="$1"; shift
  command -v "$check" >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: '$check' is missing; install $* with your package manager" >&2; exit 1
  fi
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if [[ $apt_updated -eq 0 ]]; then
    echo "setup: apt-get update" >&2
    $sudo apt-get update -qq; apt_updated=1
  fi
  echo "setup: installing $*" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Python 3.11+ with venv.
py="${PYTHON:-python3}"
"$py" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || {
  apt_install python3.11 python3.11 python3.11-venv; py=python3.11; }
if [[ ! -x .venv/bin/python ]]; then
  "$py" -m venv .venv 2>/dev/null || { apt_install false python3-venv; "$py" -m venv .venv; }
fi
stamp=.venv/.enms-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,bench]"
  touch "$stamp"
fi

# Kafka needs Java 17+ and Maven (to fetch its jars); Redis comes from the system.
apt_install java openjdk-17-jre-headless
apt_install mvn maven
apt_install redis-server redis-server
# Debian's package starts a system Redis on 6379; EnMS runs its own, so leave that one alone.
deploy/kafka/kafka.sh fetch

if [[ $want_browser -eq 1 ]]; then
  apt_install chromium chromium
fi
echo "setup: ready" >&2
