# Shared steps of the examples' `run` scripts (sourced, not run). Each run reproduces a
# reference deployment on this machine: the task definition's environment, the agent as
# ENTRYPOINT, the run-task that migrates, the ALB and container health checks, SIGTERM —
# against the real PostgreSQL and the moto server of scripts/services.
#
# What differs from ECS, and only this (each run prints it):
# - the account 123456789012 of the files becomes a random account of the run's own
#   (moto keeps accounts apart), so runs never share secrets, parameters or log groups;
# - the app command of the task definition (`node dist/index.js`, `npm start`) is
#   replaced by examples/app (`example-app`), which behaves like those apps;
# - ports are free ports on 127.0.0.1 instead of 8080 and the container port; paths in
#   the image (migrations, CA bundle) are the files of this checkout; plain PGHOST,
#   PGPORT, PGDATABASE, PGUSER name the run's database instead of the RDS endpoint;
# - the container's `user` is taken with setpriv (when run as root);
# - the task role's credentials come from STS AssumeRole in moto (chatbot serves them
#   through a container credentials endpoint, as ECS does); `agent check` runs with
#   them in the run's own environment, as in a pipeline's runner, not as a one-off task.
#
# Secret values are generated per run, kept in files under the run's work directory and
# never printed: checks compare them inside examples/aws.py, which names variables only.

ex_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '[%s] %s\n' "${EX_LABEL:-$EX_NAME}" "$*"; }
fail() {
  printf '[%s] FAILED: %s\n' "${EX_LABEL:-$EX_NAME}" "$*" >&2
  exit 1
}

# Prints FILE with every seeded secret value replaced, for failure reports.
scrub() {
  "$EX_PY" -c '
import json, sys
values = json.load(open(sys.argv[1]))
text = open(sys.argv[2], errors="replace").read()
for v in sorted(values.values(), key=len, reverse=True):
    if len(v) >= 4:
        text = text.replace(v, "[SEEDED-SECRET]")
sys.stdout.write(text)
' "$EX_WORK/secrets.json" "$1"
}

show_tail() { # FILE [LINES]: the end of an output file, scrubbed, indented
  [ -f "$1" ] || return 0
  printf '[%s] --- last lines of %s ---\n' "${EX_LABEL:-$EX_NAME}" "${1#"$EX_WORK"/}" >&2
  scrub "$1" | tail -n "${2:-40}" | sed 's/^/    /' >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

awspy() { "$EX_PY" "$ex_root/examples/aws.py" "$@"; }

# http_get URL BODYFILE: prints the status code (000 when nothing answered).
http_get() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.request, urllib.error
url, out = sys.argv[1], sys.argv[2]
try:
    with urllib.request.urlopen(url, timeout=3) as r:
        code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except Exception:
    code, body = 0, b""
open(out, "wb").write(body)
print(f"{code:03d}")
PY
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 100 ms until it succeeds.
wait_until() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    [ -z "${EX_AGENT_PID:-}" ] || kill -0 "$EX_AGENT_PID" 2>/dev/null \
      || { show_tail "$EX_WORK/agent.out"; fail "the agent exited while waiting for $what"; }
    sleep 0.1
  done
}

# A random value for a secret, registered under LABEL in secrets.json (never printed).
new_secret() { # LABEL [PREFIX]
  local v
  v="${2:-}$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
  python3 - "$EX_WORK/secrets.json" "$1" "$v" <<'PY'
import json, sys
p, k, v = sys.argv[1:]
d = json.load(open(p))
d[k] = v
json.dump(d, open(p, "w"))
PY
  printf '%s' "$v"
}

# expect_env NAME VALUE: the app must see NAME=VALUE.
expect_env() {
  python3 - "$EX_WORK/expected-env.json" "$1" "$2" <<'PY'
import json, sys
p, k, v = sys.argv[1:]
d = json.load(open(p))
d[k] = v
json.dump(d, open(p, "w"))
PY
}

# ex_begin NAME: work directory, cleanup trap, binaries, services, the run's account.
ex_begin() {
  EX_NAME=$1
  EX_DIR=$ex_root/examples/$EX_NAME
  EX_TD=$EX_DIR/task-definition.json
  EX_POLICY=$EX_DIR/task-role-policy.json
  EX_WORK=$(mktemp -d "/tmp/deckhand-example-$EX_NAME-XXXXXX")
  chmod 700 "$EX_WORK"
  echo '{}' > "$EX_WORK/secrets.json"
  echo '{}' > "$EX_WORK/expected-env.json"
  EX_PIDS=()
  EX_DBS=()
  EX_OWN_SERVICES=
  EX_AGENT_PID=
  trap ex_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  EX_START=$SECONDS

  local target=${CARGO_TARGET_DIR:-$ex_root/target}
  EX_BIN=${EX_BIN:-$target/debug}
  if [ -z "${EX_SKIP_BUILD:-}" ]; then
    say "building agent, migrate, healthcheck and example-app"
    (cd "$ex_root" && cargo build --quiet -p agent -p migrate -p healthcheck -p example-app)
  fi
  for b in agent migrate healthcheck example-app; do
    [ -x "$EX_BIN/$b" ] || fail "$EX_BIN/$b is missing: cargo build -p $b"
  done
  [ ! -x "$EX_DIR/generate" ] || ex_generate

  if [ -z "${DATABASE_URL:-}" ] || [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    say "starting PostgreSQL and the moto server (scripts/services)"
    # Not under EX_WORK (private to us): PostgreSQL runs as its own OS user.
    export DECKHAND_TEST_SERVICES_DIR=/tmp/deckhand-services-$EX_NAME-$$
    EX_OWN_SERVICES=1
    "$ex_root/scripts/services" start
    eval "$("$ex_root/scripts/services" env)"
  fi
  EX_PY=${DECKHAND_TEST_VENV:?}/bin/python
  export AWS_REGION=${AWS_REGION:-us-east-1}
  export AWS_EC2_METADATA_DISABLED=true
  # The operator's own calls (seeding) go to the run's account too.
  local role
  role=$(sed -n 's/.*"taskRoleArn": *"arn:aws:iam::[0-9]*:role\/\([^"]*\)".*/\1/p' "$EX_TD")
  [ -n "$role" ] || fail "$EX_TD has no taskRoleArn"
  eval "$(awspy account "$role")"
  export EX_ACCOUNT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
  EX_ROLE_ARN=arn:aws:iam::$EX_ACCOUNT:role/$role
  say "account $EX_ACCOUNT (stands for 123456789012 in the files), task role $role"
}

ex_cleanup() {
  local code=$?
  set +e
  if [ -n "${EX_AGENT_PID:-}" ] && kill -0 "$EX_AGENT_PID" 2>/dev/null; then
    kill -TERM "$EX_AGENT_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$EX_AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$EX_AGENT_PID" 2>/dev/null
  fi
  for p in "${EX_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for db in "${EX_DBS[@]}"; do
    psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "DROP ROLE IF EXISTS \"$db\"" >/dev/null 2>&1
  done
  [ -z "$EX_OWN_SERVICES" ] || "$ex_root/scripts/services" stop >/dev/null 2>&1
  rm -rf "$EX_WORK"
  if [ "$code" = 0 ]; then
    say "ok ($((SECONDS - EX_START)) s)"
  else
    printf '[%s] failed (exit %s)\n' "${EX_LABEL:-$EX_NAME}" "$code" >&2
  fi
  exit "$code"
}

# ex_generate: an example whose deckhand files are generated (EX_DIR/generate OUTDIR)
# runs with what the generator writes now, and the checked-in copies must be the same:
# readers and agent/tests/it/import.rs see those, so they may not drift from it.
ex_generate() {
  local out=$EX_WORK/generated f
  mkdir "$out"
  # No secret exists yet: the outputs are shown as they are.
  EX_BIN=$EX_BIN "$EX_DIR/generate" "$out" 2>"$EX_WORK/generate.out" \
    || { sed 's/^/    /' "$EX_WORK/generate.out" >&2; fail "$EX_DIR/generate failed"; }
  say "generated with the agent ($(sed -n 's/^# command: //p' "$EX_WORK/generate.out")):"
  grep -v '^# command: ' "$EX_WORK/generate.out" | sed 's/^/    /'
  for f in task-definition.json task-role-policy.json; do
    diff -u "$EX_DIR/$f" "$out/$f" >"$EX_WORK/generate.diff" \
      || { sed 's/^/    /' "$EX_WORK/generate.diff" >&2; fail "examples/$EX_NAME/$f differs from what generate writes now: run examples/$EX_NAME/generate examples/$EX_NAME, review, commit"; }
  done
  EX_TD=$out/task-definition.json
  EX_POLICY=$out/task-role-policy.json
  say "the checked-in task-definition.json and task-role-policy.json are exactly the generated ones"
}

# ex_shape: the files are checked by AWS's own models (through moto and botocore).
ex_shape() {
  local rev
  rev=$(awspy register "$EX_TD") || fail "task-definition.json"
  say "registered task definition $rev with ECS (moto): the shape is valid"
  awspy iam-policy "$EX_POLICY" "$EX_NAME-task-role" || fail "task-role-policy.json"
  say "task-role-policy.json accepted by IAM CreatePolicy, no wildcard actions or resources"
  EX_APP_PORT_IN_TD=$(awspy taskdef-get "$EX_TD" containerPort)
  mapfile -t tg < <(awspy target-group "$EX_DIR/target-group.json" "$EX_APP_PORT_IN_TD")
  [ "${#tg[@]}" = 3 ] || fail "target-group.json"
  EX_HC_PATH=${tg[0]} EX_HC_PORT=${tg[1]} EX_HC_CODES=${tg[2]}
  say "target group accepted by CreateTargetGroup: health check GET $EX_HC_PATH on port $EX_HC_PORT, success $EX_HC_CODES"
}

# ex_check: `agent check` on the task definition's container, as a deploy pipeline runs
# it before registering (docs/ecs-guide.md#check-before-you-deploy): every reference
# resolved with the task role's credentials (this run's), no value printed. Its table is
# shown; a non-zero exit fails the example before anything starts.
ex_check() {
  local name code=0 t0 ms
  name=$(awspy taskdef-local "$EX_TD" "$EX_WORK/check-td.json")
  t0=$(date +%s%3N)
  env -i "PATH=/usr/bin:/bin" "HOME=/nonexistent" "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" \
    "AWS_REGION=$AWS_REGION" "AWS_EC2_METADATA_DISABLED=true" \
    "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
    "AWS_SESSION_TOKEN=$AWS_SESSION_TOKEN" \
    "$EX_BIN/agent" check --task-definition "$EX_WORK/check-td.json" --container "$name" \
    >"$EX_WORK/check.out" 2>&1 || code=$?
  ms=$(($(date +%s%3N) - t0))
  say "agent check --task-definition task-definition.json --container $name (exit $code, ${ms} ms):"
  sed 's/^/    /' "$EX_WORK/check.out"
  [ "$code" = 0 ] || fail "agent check exited $code: the task would not start"
  awspy no-secrets "$EX_WORK/secrets.json" "$EX_WORK/check.out" >/dev/null || fail "agent check printed a secret value"
}

# ex_database NAME: a database and an owner role with a fresh password; sets DB_HOST,
# DB_PORT, DB_NAME, DB_USER, DB_PASSWORD.
ex_database() {
  local re='^postgres(ql)?://[^@]*@([^:/]+):([0-9]+)/'
  [[ $DATABASE_URL =~ $re ]] || fail "cannot read host and port from DATABASE_URL"
  DB_HOST=localhost DB_PORT=${BASH_REMATCH[3]}
  DB_NAME=$1_$(python3 -c 'import secrets; print(secrets.token_hex(4))')
  DB_USER=$DB_NAME
  DB_PASSWORD=$(new_secret db-password)
  EX_DBS+=("$DB_NAME")
  psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" >/dev/null <<SQL || fail "cannot create the database"
CREATE ROLE "$DB_USER" LOGIN PASSWORD '$DB_PASSWORD';
CREATE DATABASE "$DB_NAME" OWNER "$DB_USER";
SQL
  say "database $DB_NAME on $DB_HOST:$DB_PORT (TLS), owned by its own role"
}

# ex_env: the container's environment from the task definition, then the local
# overrides (EX_LOCAL) — later entries win, as with `env`.
ex_env() {
  awspy taskdef-env "$EX_TD" "$EX_WORK/task.env"
  mapfile -d '' -t EX_TASK_ENV < "$EX_WORK/task.env"
  EX_APP_PORT=$(free_port)
  EX_HEALTH_PORT=$(free_port)
  EX_LOCAL=(
    "PATH=$EX_BIN:/usr/local/bin:/usr/bin:/bin"
    "HOME=/nonexistent"
    "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
    "AWS_REGION=$AWS_REGION"
    "AWS_EC2_METADATA_DISABLED=true"
    "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
    "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    "AWS_SESSION_TOKEN=$AWS_SESSION_TOKEN"
    "PORT=$EX_APP_PORT"
  )
  # The container's `user`: run as that numeric user when we can (root here).
  EX_PREFIX=()
  local user
  user=$(awspy taskdef-get "$EX_TD" user)
  if [ -n "$user" ]; then
    if [ "$(id -u)" = 0 ]; then
      EX_PREFIX=(setpriv --reuid "${user%%:*}" --regid "${user##*:}" --clear-groups)
      say "the container runs as user $user (task definition \"user\"), here too"
    else
      say "the container runs as user $user; here as $(id -u) (switching users needs root)"
    fi
  fi
  # The ALB must check what the agent serves: same port, same path.
  local kv health_addr="" health_path=/health
  for kv in "${EX_TASK_ENV[@]}"; do
    case ${kv%%=*} in
      DECKHAND_HEALTH_ADDR) health_addr=${kv#*=} ;;
      HEALTH_PATH) health_path=${kv#*=} ;;
    esac
  done
  if [ -n "${EX_HC_PORT:-}" ]; then
    [ "${health_addr##*:}" = "$EX_HC_PORT" ] \
      || fail "target-group.json checks port $EX_HC_PORT but DECKHAND_HEALTH_ADDR is '$health_addr'"
    [ "$health_path" = "$EX_HC_PATH" ] \
      || fail "target-group.json checks $EX_HC_PATH but the agent serves HEALTH_PATH=$health_path"
  fi
  for kv in "${EX_TASK_ENV[@]}"; do
    case ${kv%%=*} in
      DECKHAND_HEALTH_ADDR) EX_LOCAL+=("DECKHAND_HEALTH_ADDR=127.0.0.1:$EX_HEALTH_PORT") ;;
      HEALTH_APP_PORT) EX_LOCAL+=("HEALTH_APP_PORT=$EX_APP_PORT") ;;
      HEALTH_APP_URL) EX_LOCAL+=("HEALTH_APP_URL=$(printf '%s' "${kv#*=}" | sed "s/:[0-9][0-9]*\//:$EX_APP_PORT\//")") ;;
      MIGRATIONS_DIR) EX_LOCAL+=("MIGRATIONS_DIR=$ex_root/examples/migrations") ;;
      PGSSLROOTCERT) EX_LOCAL+=("PGSSLROOTCERT=$DECKHAND_TEST_PG_CA") ;;
      PGHOST) EX_LOCAL+=("PGHOST=$DB_HOST") ;;
      PGPORT) EX_LOCAL+=("PGPORT=$DB_PORT") ;;
      PGDATABASE) EX_LOCAL+=("PGDATABASE=$DB_NAME") ;;
      PGUSER) EX_LOCAL+=("PGUSER=$DB_USER") ;;
    esac
  done
}

# Maps a command of the task definition to this machine: deckhand's binaries to the
# build, the app's command to example-app (EX_APP_CMD).
ex_map_command() { # ARGS...: sets EX_ARGV
  EX_ARGV=()
  local a
  for a in "$@"; do
    case $a in
      agent | /usr/local/bin/agent) EX_ARGV+=("$EX_BIN/agent") ;;
      migrate | /usr/local/bin/migrate) EX_ARGV+=("$EX_BIN/migrate") ;;
      healthcheck | /usr/local/bin/healthcheck) EX_ARGV+=("$EX_BIN/healthcheck") ;;
      *) EX_ARGV+=("$a") ;;
    esac
  done
}

# ex_run_task OVERRIDES_FILE LOGFILE [ENV...]: the one-off task of the example README's
# `ecs run-task`, in the foreground: entryPoint + the overridden command, same env.
ex_run_task() {
  local overrides=$1 log=$2; shift 2
  local -a entry cmd
  mapfile -t entry < <(awspy taskdef-get "$EX_TD" entryPoint)
  mapfile -t cmd < <(awspy run-task "$EX_TD" "$overrides") || fail "$overrides"
  ex_map_command "${entry[@]}" "${cmd[@]}"
  say "run-task: ${entry[*]} ${cmd[*]}"
  local code=0
  env -i "${EX_TASK_ENV[@]}" "${EX_LOCAL[@]}" "$@" "${EX_PREFIX[@]}" "${EX_ARGV[@]}" >"$log" 2>&1 || code=$?
  EX_LAST_CODE=$code
}

# ex_start_app [ENV...]: entryPoint + command of the task definition in the background,
# the app command replaced by EX_APP_CMD.
ex_start_app() {
  local -a entry cmd
  mapfile -t entry < <(awspy taskdef-get "$EX_TD" entryPoint)
  mapfile -t cmd < <(awspy taskdef-get "$EX_TD" command)
  say "service task: ${entry[*]} ${cmd[*]}  (here: the app command is ${EX_APP_CMD[*]##*/})"
  ex_map_command "${entry[@]}"
  env -i "${EX_TASK_ENV[@]}" "${EX_LOCAL[@]}" "$@" "${EX_PREFIX[@]}" "${EX_ARGV[@]}" "${EX_APP_CMD[@]}" \
    >"$EX_WORK/agent.out" 2>&1 &
  EX_AGENT_PID=$!
}

# The app's process: the agent's child.
ex_app_pid() {
  local kids
  kids=$(cat "/proc/$EX_AGENT_PID/task/$EX_AGENT_PID/children" 2>/dev/null || true)
  kids=${kids%% *}
  [ -n "$kids" ] || return 1
  printf '%s' "$kids"
}

# ex_health_wait SECONDS: polls the ALB's health check (path and port of target-group.json,
# here the agent's health port) until it answers a success code.
ex_health_ok() {
  local code
  code=$(http_get "http://127.0.0.1:$EX_HEALTH_PORT$EX_HC_PATH" "$EX_WORK/health.json")
  [[ ",$EX_HC_CODES," == *",$code,"* ]]
}
ex_health_wait() {
  wait_until "$1" "the ALB health check" ex_health_ok \
    || { show_tail "$EX_WORK/agent.out"; fail "GET $EX_HC_PATH never answered $EX_HC_CODES within $1 s"; }
  say "ALB health check GET $EX_HC_PATH: $(cat "$EX_WORK/health.json")"
}

# ex_probe: the task definition's container healthCheck command, as ECS runs it (in
# the container, with the container's environment), against the local health port.
ex_probe() {
  local -a cmd
  mapfile -t cmd < <(awspy taskdef-get "$EX_TD" healthCheck.command)
  # A probe of the app's own port (`--url http://127.0.0.1:3000/`) goes to its port here.
  cmd=("${cmd[@]/#http:\/\/127.0.0.1:$EX_APP_PORT_IN_TD\//http://127.0.0.1:$EX_APP_PORT/}")
  ex_map_command "${cmd[@]}"
  env -i "${EX_TASK_ENV[@]}" "${EX_LOCAL[@]}" "HEALTH_PROBE_URL=http://127.0.0.1:$EX_HEALTH_PORT/health/live" \
    "${EX_PREFIX[@]}" "${EX_ARGV[@]}" >"$EX_WORK/probe.out" 2>&1
}

ex_app_answers() {
  local code
  code=$(http_get "http://127.0.0.1:$EX_APP_PORT/" "$EX_WORK/app.json")
  [ "$code" = 200 ] || { show_tail "$EX_WORK/agent.out"; fail "GET / answered $code: $(cat "$EX_WORK/app.json")"; }
  say "the app answers GET /: $(cat "$EX_WORK/app.json")"
}

# ex_check_env [ABSENT,NAMES]: the app's environment has every expected value (read
# from /proc/PID/environ, compared without printing) and none of ABSENT.
ex_check_env() {
  local pid n
  pid=$(ex_app_pid) || fail "the agent has no child process"
  n=$(awspy check-env "$pid" "$EX_WORK/expected-env.json" "${1:-}") || fail "secrets were not resolved as expected"
  say "the app's environment has all $n expected values (secrets resolved by the agent)"
}

# ex_stop EXPECTED_CODE: SIGTERM to the agent, as ECS sends it; the exit code must be
# EXPECTED_CODE within the task's stopTimeout.
ex_stop() {
  EX_STOP_SENT=$SECONDS
  kill -TERM "$EX_AGENT_PID"
  ex_stop_wait "$1"
}

# ex_stop_wait EXPECTED_CODE: after a SIGTERM sent at EX_STOP_SENT, as ex_stop.
ex_stop_wait() {
  local want=$1 timeout code=0
  timeout=$(awspy taskdef-get "$EX_TD" stopTimeout)
  local deadline=$((EX_STOP_SENT + timeout))
  while kill -0 "$EX_AGENT_PID" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { show_tail "$EX_WORK/agent.out"; fail "still running ${timeout} s (stopTimeout) after SIGTERM: ECS would SIGKILL it"; }
    sleep 0.1
  done
  wait "$EX_AGENT_PID" || code=$?
  EX_AGENT_PID=
  [ "$code" = "$want" ] || { show_tail "$EX_WORK/agent.out"; fail "exit code $code after SIGTERM, expected $want"; }
  say "SIGTERM: the agent exited $code within the task's stopTimeout ($timeout s)"
}

# ex_no_secrets FILES...: no seeded secret value in any of them.
ex_no_secrets() {
  local n
  n=$(awspy no-secrets "$EX_WORK/secrets.json" "$@") || fail "a secret value was printed"
  say "none of the $n secret values appears in: ${*##*/}"
}

# ex_logs GROUP: fetches every event of the group into $EX_WORK/cloudwatch.txt.
ex_logs() {
  local summary
  summary=$(awspy logs "$1" "$EX_WORK/cloudwatch.txt") || fail "cannot read log group $1"
  say "CloudWatch log group $1: $summary"
}

# ex_grep FILE PATTERN WHAT: FILE must have a line matching PATTERN (grep -E).
ex_grep() {
  grep -Eq -- "$2" "$1" || { show_tail "$1"; fail "no line in ${1##*/} shows $3 (/$2/)"; }
}
ex_grep_not() {
  if grep -Eq -- "$2" "$1"; then fail "${1##*/} shows $3 (/$2/)"; fi
}

# ex_credentials_endpoint: the task role's credentials come from an ECS-style container
# credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI + authorization token) instead
# of variables, as in a task; the SDK's default chain in the agent finds them.
ex_credentials_endpoint() {
  local token
  token=$(new_secret container-credentials-token)
  EX_CREDS_TOKEN=$token EX_TASK_KEY=$AWS_ACCESS_KEY_ID EX_TASK_SECRET=$AWS_SECRET_ACCESS_KEY \
    EX_TASK_SESSION=$AWS_SESSION_TOKEN EX_TASK_ROLE=$EX_ROLE_ARN \
    "$EX_PY" "$ex_root/examples/aws.py" creds-server "$EX_WORK/creds.port" "$EX_WORK/creds.count" &
  EX_PIDS+=($!)
  wait_until 10 "the credentials endpoint" test -s "$EX_WORK/creds.port" || fail "the credentials endpoint did not start"
  local -a kept=()
  local kv
  for kv in "${EX_LOCAL[@]}"; do
    case ${kv%%=*} in AWS_ACCESS_KEY_ID | AWS_SECRET_ACCESS_KEY | AWS_SESSION_TOKEN) ;; *) kept+=("$kv") ;; esac
  done
  EX_LOCAL=("${kept[@]}"
    "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$(cat "$EX_WORK/creds.port")/v2/credentials/$EX_NAME"
    "AWS_CONTAINER_AUTHORIZATION_TOKEN=$token")
  say "credentials: no AWS_ACCESS_KEY_ID in the task; the task role comes from the container credentials endpoint"
}

# ex_applied: the newest migration version recorded in the run's database.
ex_applied() {
  psql -qtA "$DATABASE_URL" -c "\\c $DB_NAME" -c "SELECT coalesce(max(version), 0) FROM refinery_schema_history" 2>/dev/null | tail -1
}
