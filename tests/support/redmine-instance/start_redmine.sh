#!/bin/bash
# start_redmine.sh DIR PORT
#
# Vendored from the team's field notes (shared/redmine/NOTES.md section 5); the database
# preparation lives in prepare.rb beside this script.
#
# Start a throw-away Redmine (Debian package `redmine` 5.0.x + redmine-sqlite)
# on 127.0.0.1:PORT, with its own sqlite database, attachments, logs and tmp
# under DIR. Needs root (it adds a symlink under /usr/share/redmine/instances).
#
#  * First run on a DIR (no DIR/db/redmine.sqlite3): creates the instance,
#    migrates a fresh database, loads default data (trackers/statuses/
#    priorities, lang en), enables the REST API, creates project `support`
#    and issue custom field `nhd_uuid`, and makes the admin API key.
#  * Later runs on the same DIR reuse the database (restart); a server that a
#    previous run left on this DIR is stopped first (by its pid file).
#    RESET=1 wipes DIR's database and files first.
#  * REDMINE_TEMPLATE_DIR=/some/dir (optional) caches the prepared database
#    there, so later fresh DIRs just copy it (fresh start ~3 s instead of ~7 s).
#  * Starts WEBrick in the background (pid in DIR/server.pid, output in
#    DIR/log/server.out), waits until the API answers with the admin key,
#    then prints "URL KEY" on stdout (one line). Progress goes to stderr.
#
# Stop it with: kill "$(cat DIR/server.pid)"
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 DIR PORT" >&2
  exit 2
fi
SELF=$(realpath "$0")
PREPARE="$(dirname "$SELF")/prepare.rb"
DIR=$(realpath -m "$1")
PORT=$2
REDMINE_ROOT=${REDMINE_ROOT:-/usr/share/redmine}
WAIT_SECS=${WAIT_SECS:-60}
BASE="http://127.0.0.1:$PORT"
log() { echo "[start_redmine] $*" >&2; }

command -v curl > /dev/null || { echo "curl is needed to wait for the server: apt-get install curl" >&2; exit 1; }
[ -f "$REDMINE_ROOT/config/multitenancy_environment.rb" ] || {
  echo "Redmine (Debian package) not found in $REDMINE_ROOT; install it first:" >&2
  echo "  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redmine redmine-sqlite" >&2
  exit 1
}

# Debian's Redmine is multi-tenant: REDMINE_INSTANCE=NAME makes it use
# $REDMINE_ROOT/instances/NAME/{config,log,files,tmp,public/plugin_assets}.
# We point that instance directory at DIR.
NAME="probe-$(printf %s "$DIR" | sha1sum | cut -c1-12)"
export REDMINE_INSTANCE="$NAME" RAILS_ENV=production
unset X_DEBIAN_SITEID || true   # would take precedence over REDMINE_INSTANCE

# Stop a server a previous run left on this DIR (only our own pid file).
if [ -f "$DIR/server.pid" ]; then
  old=$(cat "$DIR/server.pid" 2>/dev/null || true)
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null &&
     grep -q "rails" "/proc/$old/cmdline" 2>/dev/null; then
    log "stopping previous server pid $old"
    kill "$old" || true
    for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$old" 2>/dev/null && kill -9 "$old" || true
  fi
  rm -f "$DIR/server.pid"
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT on 127.0.0.1 is already in use" >&2
  exit 1
fi

if [ "${RESET:-0}" = 1 ]; then
  log "RESET=1: wiping $DIR/{db,files,tmp}"
  rm -rf "$DIR/db" "$DIR/files" "$DIR/tmp"
fi

mkdir -p "$DIR"/{config,log,files,tmp/pids,tmp/cache,public/plugin_assets,db}
ln -sfn "$DIR" "$REDMINE_ROOT/instances/$NAME"

if [ ! -f "$DIR/config/database.yml" ]; then
  cat > "$DIR/config/database.yml" <<EOF
production:
  adapter: sqlite3
  database: $DIR/db/redmine.sqlite3
  pool: 10
  timeout: 10000
EOF
fi
[ -s "$DIR/config/secret_key.txt" ] ||
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$DIR/config/secret_key.txt"

cd "$REDMINE_ROOT"

# Optional cache of a freshly prepared database (saves ~5 s per fresh DIR):
# REDMINE_TEMPLATE_DIR=/some/dir. Keyed on the Redmine package version and on
# this script and prepare.rb, so an upgrade or an edit makes a new template. Instances made
# from one template share the same admin API key.
TEMPLATE=""
if [ -n "${REDMINE_TEMPLATE_DIR:-}" ]; then
  ver=$(dpkg-query -W -f='${Version}' redmine 2>/dev/null || echo unknown)
  TEMPLATE="$REDMINE_TEMPLATE_DIR/redmine-$ver-$(cat "$SELF" "$PREPARE" | sha1sum | cut -c1-10)"
fi

if [ ! -f "$DIR/db/redmine.sqlite3" ] && [ -n "$TEMPLATE" ] && [ -f "$TEMPLATE/redmine.sqlite3" ]; then
  log "copying database from template $TEMPLATE"
  cp "$TEMPLATE/redmine.sqlite3" "$DIR/db/redmine.sqlite3"
  cp "$TEMPLATE/api_key.txt" "$TEMPLATE/nhd_uuid_cf_id.txt" "$DIR/config/"
fi

if [ ! -f "$DIR/db/redmine.sqlite3" ]; then
  t0=$(date +%s.%N)
  log "preparing fresh database in $DIR/db/redmine.sqlite3"
  if ! ruby bin/rails runner "$PREPARE" > "$DIR/log/prepare.out" 2>&1; then
    echo "database preparation failed, see $DIR/log/prepare.out:" >&2
    tail -20 "$DIR/log/prepare.out" >&2
    rm -f "$DIR/db/redmine.sqlite3"
    exit 1
  fi
  log "database ready in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")s"
  if [ -n "$TEMPLATE" ]; then
    mkdir -p "$TEMPLATE.tmp.$$"
    cp "$DIR/db/redmine.sqlite3" "$DIR/config/api_key.txt" "$DIR/config/nhd_uuid_cf_id.txt" "$TEMPLATE.tmp.$$/"
    mv -T "$TEMPLATE.tmp.$$" "$TEMPLATE" 2>/dev/null || rm -rf "$TEMPLATE.tmp.$$"
    log "saved template $TEMPLATE"
  fi
fi
KEY=$(cat "$DIR/config/api_key.txt")

# WEBrick is not in Redmine's Gemfile, so Bundler would refuse to load it;
# -rwebrick loads Debian's ruby-webrick before Bundler.setup.
t0=$(date +%s.%N)
setsid ruby -rwebrick bin/rails server -u webrick -e production \
  -b 127.0.0.1 -p "$PORT" -P "$DIR/tmp/pids/server.pid" \
  > "$DIR/log/server.out" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$DIR/server.pid"
log "server pid $PID, instance $NAME"

for _ in $(seq 1 $((WAIT_SECS * 5))); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "server exited early, see $DIR/log/server.out:" >&2
    tail -20 "$DIR/log/server.out" >&2
    exit 1
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
           -H "X-Redmine-API-Key: $KEY" "$BASE/users/current.json" || true)
  if [ "$code" = 200 ]; then
    log "API answered in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")s"
    echo "$BASE $KEY"
    exit 0
  fi
  sleep 0.2
done
echo "server did not answer within ${WAIT_SECS}s, see $DIR/log/server.out" >&2
kill "$PID" 2>/dev/null || true
exit 1
