#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM), no Docker.
#
#   deploy/kafka/kafka.sh fetch            # jars from Maven Central into $KAFKA_LIBS (once)
#   deploy/kafka/kafka.sh start            # format storage if new, start, wait until ready
#   deploy/kafka/kafka.sh stop             # stop the broker this run folder started
#   deploy/kafka/kafka.sh status
#
# Settings (environment):
#   KAFKA_PORT=9092            client listener on 127.0.0.1
#   KAFKA_CONTROLLER_PORT=9093 KRaft controller listener
#   KAFKA_RUN_DIR=.run/kafka   data, config, log and pid (outside git; topics survive restarts)
#   KAFKA_LIBS=.cache/kafka-libs
#   KAFKA_HEAP=384m            -Xms/-Xmx of the broker JVM
#   KAFKA_RETENTION_HOURS=168  log.retention.hours, for topics without their own retention.ms;
#                              -1 = no time-based deletion. Age is the record timestamp, for
#                              readings their event time: records of an older period (test and
#                              benchmark data, old periods replayed) are deleted at the next
#                              retention check (every 5 min). Written at every start.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-$root/.run/kafka}"
KAFKA_LIBS="${KAFKA_LIBS:-$root/.cache/kafka-libs}"
KAFKA_HEAP="${KAFKA_HEAP:-384m}"
KAFKA_RETENTION_HOURS="${KAFKA_RETENTION_HOURS:-168}"
pidfile="$KAFKA_RUN_DIR/kafka.pid"
log="$KAFKA_RUN_DIR/kafka.log"

fetch() {
  if compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn is needed to fetch Kafka (apt-get install maven)" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: java 17+ is needed (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
  echo "kafka.sh: fetching Apache Kafka jars into $KAFKA_LIBS" >&2
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$here/pom.xml" -DoutputDirectory="$KAFKA_LIBS" dependency:copy-dependencies
}

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

java_opts=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/log4j2.properties"
  -Dkafka.logs.dir="$KAFKA_RUN_DIR" -cp "$KAFKA_LIBS/*")
java_cmd() { java "${java_opts[@]}" "$@"; }

write_config() {
  [[ "$KAFKA_RETENTION_HOURS" =~ ^(-1|[1-9][0-9]*)$ ]] || {
    echo "kafka.sh: KAFKA_RETENTION_HOURS must be -1 or a positive number of hours," \
      "got '$KAFKA_RETENTION_HOURS'" >&2; exit 2; }
  mkdir -p "$KAFKA_RUN_DIR/data"
  sed -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CPORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@DATA@#$KAFKA_RUN_DIR/data#g" -e "s#@RETENTION_HOURS@#$KAFKA_RETENTION_HOURS#g" \
      "$here/server.properties" > "$KAFKA_RUN_DIR/server.properties"
}

ready() {
  # The broker is ready when its client port accepts connections.
  (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null
}

start() {
  fetch
  if running; then echo "kafka.sh: already running (pid $(cat "$pidfile"), port $KAFKA_PORT)"; return 0; fi
  write_config
  if [[ ! -f "$KAFKA_RUN_DIR/data/meta.properties" ]]; then
    java_cmd kafka.tools.StorageTool format --standalone --ignore-formatted \
      -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
      -c "$KAFKA_RUN_DIR/server.properties" >>"$log" 2>&1
  fi
  nohup java "${java_opts[@]}" kafka.Kafka "$KAFKA_RUN_DIR/server.properties" >>"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if ready; then echo "kafka.sh: Kafka ready on 127.0.0.1:$KAFKA_PORT (pid $(cat "$pidfile"))"; return 0; fi
    if ! running; then echo "kafka.sh: broker exited; last log lines:" >&2; tail -n 30 "$log" >&2; exit 1; fi
    sleep 0.5
  done
  echo "kafka.sh: broker not ready after 60 s; see $log" >&2; stop; exit 1
}

stop() {
  if ! running; then rm -f "$pidfile"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka.sh: stopped"; return 0; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"; echo "kafka.sh: killed"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running (pid $(cat "$pidfile"), port $KAFKA_PORT)"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
