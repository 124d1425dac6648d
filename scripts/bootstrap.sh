#!/usr/bin/env bash
# Installs what is missing for Kalends on this machine: the .venv with pinned dependencies, and a
# reachable PostgreSQL and RabbitMQ (started when installed but stopped). Idempotent and quiet when
# everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.installed-$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)

pick_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Kalends needs Python >= 3.11: install it (Debian: apt-get install python3 python3-venv)" >&2
  return 1
}

if [[ ! -x $VENV/bin/python ]]; then
  py=$(pick_python)
  echo "bootstrap: creating $VENV with $py"
  if ! "$py" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    # Debian ships venv (ensurepip) separately from python3.
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      echo "bootstrap: installing python3-venv"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } >/dev/null
      "$py" -m venv "$VENV"
    else
      echo "Python's venv module is missing: install it (Debian: sudo apt-get install python3-venv), then re-run" >&2
      exit 1
    fi
  fi
fi
if [[ ! -f $STAMP ]]; then
  echo "bootstrap: installing dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  # caldav needs niquests, which needs urllib3-future: its wheel (and a .pth run at every start) writes
  # itself over urllib3, and requests (schemathesis) breaks on it. Built with URLLIB3_NO_OVERRIDE it
  # stays urllib3_future only (niquests imports that), then urllib3 itself is put back.
  if "$VENV/bin/python" -m pip show -q urllib3-future >/dev/null 2>&1; then
    u3f=$("$VENV/bin/python" -m pip show urllib3-future | sed -n 's/^Version: //p')
    u3=$("$VENV/bin/python" -m pip show urllib3 | sed -n 's/^Version: //p')
    URLLIB3_NO_OVERRIDE=1 "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps \
      --no-binary urllib3-future "urllib3-future==$u3f"
    "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "urllib3==$u3"
  fi
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi

# Only touch local servers when the URLs point at this machine.
db_url=${KALENDS_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/kalends}
amqp_url=${KALENDS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
host_port() { # prints "host port" of a URL
  local rest=${1#*://}; rest=${rest#*@}; rest=${rest%%/*}
  local host=${rest%%:*} port=${rest##*:}
  [[ $host == "$rest" ]] && port=$2
  echo "$host $port"
}

read -r pg_host pg_port < <(host_port "$db_url" 5432)
read -r mq_host mq_port < <(host_port "$amqp_url" 5672)

wait_port() { for _ in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 1; done; return 1; }
# A broker can accept TCP connections and still not speak: send the AMQP 0-9-1 protocol header and
# wait for the first bytes of its Connection.Start.
amqp_answers() {
  timeout "${3:-10}" bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "AMQP\x00\x00\x09\x01" >&3 && head -c 1 <&3 >/dev/null' "$1" "$2" 2>/dev/null
}

if ! port_open "$pg_host" "$pg_port"; then
  if [[ $pg_host =~ ^(127\.0\.0\.1|localhost)$ ]] && command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    echo "bootstrap: starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    wait_port "$pg_host" "$pg_port" || { echo "PostgreSQL did not come up on $pg_host:$pg_port" >&2; exit 1; }
  else
    echo "PostgreSQL is not reachable at $pg_host:$pg_port." >&2
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
      echo "Start it with: docker compose -f deploy/compose.yaml up -d postgres rabbitmq" >&2
    else
      echo "Install it with: apt-get install -y postgresql   (then re-run)" >&2
    fi
    exit 1
  fi
fi

if ! port_open "$mq_host" "$mq_port"; then
  if [[ $mq_host =~ ^(127\.0\.0\.1|localhost)$ ]] && command -v rabbitmq-server >/dev/null; then
    echo "bootstrap: starting the local RabbitMQ"
    rabbitmq-server -detached || true
    wait_port "$mq_host" "$mq_port" || { echo "RabbitMQ did not come up on $mq_host:$mq_port" >&2; exit 1; }
  else
    echo "RabbitMQ is not reachable at $mq_host:$mq_port." >&2
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
      echo "Start it with: docker compose -f deploy/compose.yaml up -d postgres rabbitmq" >&2
    else
      echo "Install it with: apt-get install -y rabbitmq-server   (then re-run)" >&2
    fi
    exit 1
  fi
fi

if ! amqp_answers "$mq_host" "$mq_port" 10; then
  echo "RabbitMQ at $mq_host:$mq_port accepts connections but does not answer the AMQP handshake." >&2
  if [[ ${CI:-} == true && $mq_host =~ ^(127\.0\.0\.1|localhost)$ && -x /etc/init.d/rabbitmq-server ]]; then
    echo "bootstrap: restarting the local RabbitMQ (CI)" >&2
    timeout 180 /etc/init.d/rabbitmq-server restart >/dev/null 2>&1 || true
    wait_port "$mq_host" "$mq_port" && amqp_answers "$mq_host" "$mq_port" 30 || { echo "RabbitMQ is still not answering" >&2; exit 1; }
  else
    echo "Restart it (Debian: sudo service rabbitmq-server restart), then re-run." >&2
    exit 1
  fi
fi
