#!/usr/bin/env bash
# make demo: Kafka, Redis, one worker, the API/bridge and the simulator; Ctrl-C stops them all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh

run="$root/.run/demo"
mkdir -p "$run"
export KAFKA_PORT="${KAFKA_PORT:-9092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
export KAFKA_RUN_DIR="$root/.run/kafka"
# A month of retention: the simulation starts DEMO_DAYS_BACK (7) days back and retention is
# measured on the readings' event time, so the broker's default week would delete the first
# simulated hours as soon as they are written.
export KAFKA_RETENTION_HOURS="${KAFKA_RETENTION_HOURS:-720}"
redis_port="${DEMO_REDIS_PORT:-6380}"
export ENMS_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
export ENMS_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export ENMS_API_HOST="${ENMS_API_HOST:-127.0.0.1}" ENMS_API_PORT="${ENMS_API_PORT:-8080}"
speed="${DEMO_SPEED:-60}"
days_back="${DEMO_DAYS_BACK:-7}"
[[ "$days_back" =~ ^[1-9][0-9]*$ ]] || {
  echo "demo: DEMO_DAYS_BACK must be a whole number of days, 1 or more" >&2; exit 2; }

pids=()
started_kafka=0
cleanup() {
  trap - INT TERM EXIT
  # Ctrl-C also ends a pipe reader (`make demo | tee`): never die of SIGPIPE half-way.
  trap '' PIPE INT
  { echo; echo "demo: stopping..."; } 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ $started_kafka -eq 1 ]]; then deploy/kafka/kafka.sh stop >/dev/null 2>&1 || true; fi
  echo "demo: stopped; logs are in $run" 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if deploy/kafka/kafka.sh status >/dev/null 2>&1; then
  echo "demo: Kafka already running on $KAFKA_PORT (left running at the end)"
else
  deploy/kafka/kafka.sh start; started_kafka=1
fi
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$run" >"$run/redis.log" 2>&1 &
pids+=($!)

.venv/bin/enms topics
.venv/bin/enms worker >"$run/worker.log" 2>&1 &
pids+=($!)
.venv/bin/enms api >"$run/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
  .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
    "http://$ENMS_API_HOST:$ENMS_API_PORT/health" 2>/dev/null && break; sleep 0.5
done
# The live simulation starts $days_back days back, on the hour: no reading is ever ahead of
# the wall clock (the simulator holds each one back until its time has come).
start="$(date -u -d "$days_back days ago" +%Y-%m-%dT%H:00:00Z)"
# 28 days of hourly history (as an older system would hand over), ending where the live
# simulation starts: "Retrain baseline" on a machine card works at once.
.venv/bin/enms seed-history --days 28d --end "$start" >"$run/seed-history.log" 2>&1
# Six simulated hours first at full speed (warms the detectors), then $speed x real time
# until the simulation reaches now (the catch-up below), then real time; 96 injected
# anomalies per simulated day (about 4 a minute at 60x, 4 an hour once in real time).
.venv/bin/enms simulate --start "$start" --speed "$speed" --backfill 6h --anomaly-rate 96 \
  --labels "$run/labels.jsonl" >"$run/simulator.log" 2>&1 &
pids+=($!)
catch_up="$(awk -v d="$days_back" -v s="$speed" 'BEGIN {
  h = d * 24 - 6
  if (s <= 0) print "at once (flat out)"
  else if (s <= 1) print "never (speed <= 1)"
  else printf "in about %.1f hours\n", h / (s - 1) }')"

cat <<MSG

  EnMS Stream demo is running.
    Dashboard:  http://$ENMS_API_HOST:$ENMS_API_PORT/
    Health:     http://$ENMS_API_HOST:$ENMS_API_PORT/health
    Logs:       $run/{worker,api,simulator}.log   injected anomalies: $run/labels.jsonl
  The simulation starts at $start, $days_back days back; at ${speed}x it reaches the
  present $catch_up, then runs in real time (no reading is dated in the future).
  Try "Retrain baseline" on a machine card: a training job runs through Kafka, its progress
  shows under Training jobs, and the card then shows the live EnPI and CUSUM.
  Press Ctrl-C to stop everything.

MSG
# Wait until Ctrl-C or until any process dies (then stop the rest).
while true; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: a process exited (pid $pid); see $run/*.log"; exit 1
    fi
  done
  sleep 1
done
