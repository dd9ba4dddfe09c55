#!/usr/bin/env bash
# Container check for machines without a Docker engine or an image registry (issue 8).
#
#   sudo bash deploy/container_check.sh        (root: debootstrap, chroot and mount need it)
#
# 1. debootstrap a Debian bookworm base with python3 (3.11), python3-venv and python3-pip from
#    the mirror apt already uses, and `podman import` it as localhost/bookworm-python:latest
#    (kept between runs; REBUILD_BASE=1 makes it again);
# 2. put this machine's CPU torch wheel into deploy/wheels/ (git-ignored);
# 3. `podman build --isolation=chroot` the repository's Dockerfile on that base;
# 4. start the image's command with the image's user, environment and working directory:
#    `podman run --network=host` when podman can run containers here, else by exporting the
#    image's filesystem and running the command in a chroot as the image's user;
# 5. check GET /health, wait for GET /ready, read the model name from GET /v1/models, send one
#    POST /v1/chat/completions, print the answers and stop the server;
# 6. the compose profile "scale" (PostgreSQL + pgvector, two replicas, nginx), only where a Docker
#    engine with the compose plugin runs and can pull pgvector/pgvector and nginx: bring it up,
#    answer chat requests through the balancer, check that both replicas answered, take it down.
#    Elsewhere the step prints NOT RUN with the reason (tests/deploy checks the pieces instead:
#    the schemas, and the same nginx.conf, kb-seed.sh, PostgreSQL + pgvector and two replicas as
#    processes on loopback in tests/deploy/test_balancer.py).
# All traffic goes to 127.0.0.1 on a free port. Every wait is bounded. Exits non-zero on any
# failure. Slow (package downloads, the base import, the knowledge-base build): not part of CI.
#
# Settings (environment): WORK_DIR (scratch space, default /var/tmp/cogcore-container-check),
# BASE_TAG, IMAGE_TAG, REBUILD_BASE=1, KEEP_ROOTFS=1 (keep the unpacked image filesystem),
# FORCE_CHROOT=1 (skip the `podman run` attempt), READY_TIMEOUT_S (default 600),
# CHAT_TIMEOUT_S (default 300), BUILD_TIMEOUT_S (default 5400), CONTEXT=head (build the
# committed HEAD, from `git archive`, instead of the working tree; deploy/wheels/ is added),
# NO_CACHE=1 (build every layer again); step 6: SKIP_SCALE=1, SCALE_ONLY=1 (step 6 alone),
# BALANCER_PORT (default 8080), API_KEY (a key from deploy/cogcore.env, when it sets COGCORE_API_KEYS).
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK_DIR=${WORK_DIR:-/var/tmp/cogcore-container-check}
BASE_TAG=${BASE_TAG:-localhost/bookworm-python:latest}
IMAGE_TAG=${IMAGE_TAG:-localhost/cognitive-core:check}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-600}
CHAT_TIMEOUT_S=${CHAT_TIMEOUT_S:-300}
BUILD_TIMEOUT_S=${BUILD_TIMEOUT_S:-5400}
SUITE=bookworm

T0=$SECONDS
STEP_T0=$SECONDS
step() { STEP_T0=$SECONDS; echo; echo "== $* ($(date -u +%H:%M:%S) UTC)"; }
done_step() { echo "-- done in $((SECONDS - STEP_T0)) s"; }
die() { echo "FAIL: $*" >&2; exit 1; }

# Step 6, the compose profile "scale": defined here so that SCALE_ONLY=1 can run it alone.
SCALE="NOT RUN"
SCALE_COMPOSE=()  # the compose command of step 6 while its project is up
scale_down() {
    [ "${#SCALE_COMPOSE[@]}" -gt 0 ] || return 0
    timeout 300 "${SCALE_COMPOSE[@]}" down --volumes >/dev/null 2>&1
    SCALE_COMPOSE=()
}
scale_check() {
    local url="http://127.0.0.1:${BALANCER_PORT:-8080}" auth=() out model status n answered
    [ -n "${API_KEY:-}" ] && auth=(-H "Authorization: Bearer $API_KEY")
    SCALE_COMPOSE=(docker compose -f "$REPO_DIR/deploy/docker-compose.yml" -p cogcore-scale-check
                   --profile scale)
    # The balancer and what it depends on: postgres, kb-seed, cogcore-a, cogcore-b (healthy
    # once their model is loaded); the embedded service stays down.
    BALANCER_PORT=${BALANCER_PORT:-8080} timeout "$BUILD_TIMEOUT_S" "${SCALE_COMPOSE[@]}" up \
        --detach --build --wait --wait-timeout "$READY_TIMEOUT_S" balancer \
        || { "${SCALE_COMPOSE[@]}" ps; "${SCALE_COMPOSE[@]}" logs --tail 20; return 1; }
    "${SCALE_COMPOSE[@]}" ps
    out=$(curl -sS --noproxy '*' --max-time 10 "${auth[@]}" "$url/v1/models") || return 1
    model=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["data"][0]["id"])' "$out") \
        || { echo "GET /v1/models through the balancer: $out"; return 1; }
    for n in 1 2 3 4; do
        status=$(curl -sS --noproxy '*' --max-time "$CHAT_TIMEOUT_S" -o "$WORK_DIR/scale-chat.json" \
            -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
            -d "{\"model\": \"$model\", \"max_tokens\": 16, \"messages\": [{\"role\": \"user\",
                 \"content\": \"What is the capital of France?\"}]}" "$url/v1/chat/completions") \
            || return 1
        echo "POST /v1/chat/completions #$n through the balancer -> $status: $(python3 -c '
import json, sys; print(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' \
            "$WORK_DIR/scale-chat.json" 2>/dev/null || head -c 300 "$WORK_DIR/scale-chat.json")"
        [ "$status" = 200 ] || return 1
    done
    # deploy/nginx/nginx.conf logs the replica that answered each request (its healthcheck's too).
    answered=$("${SCALE_COMPOSE[@]}" logs --no-log-prefix balancer | grep 'POST /v1/chat/completions' \
        | grep -o 'upstream=[^ ,]* upstream_status=200' | sort | uniq -c)
    echo "requests per replica (balancer log):"; echo "$answered"
    [ "$(echo "$answered" | grep -c upstream=)" -ge 2 ] || { echo "one replica answered all"; return 1; }
    scale_down
}
scale_step() {
    step "6/6 compose profile \"scale\" through the balancer"
    if [ -n "${SKIP_SCALE:-}" ]; then
        echo "NOT RUN: SKIP_SCALE is set"
    elif ! docker info >/dev/null 2>&1; then
        if command -v docker >/dev/null; then
            why=$( (docker info 2>&1 || true) | grep -i -e error -e cannot | head -n 1)
        else
            why="docker is not installed"
        fi
        echo "NOT RUN: no Docker engine answers here (${why:-docker info failed})."
        echo "Not run: the pgvector/pgvector and nginx images, the compose network, healthchecks and start"
        echo "order. tests/deploy checks every file's schema, nginx -t, and kb-seed.sh, PostgreSQL + pgvector"
        echo "and two replicas as processes on loopback answering through nginx (test_balancer.py)."
    elif ! docker compose version >/dev/null 2>&1; then
        echo "NOT RUN: the Docker engine has no compose plugin (docker compose version failed)"
    else
        scale_check || die "the compose profile \"scale\" did not answer through the balancer"
        SCALE=passed
    fi
    done_step
}
if [ -n "${SCALE_ONLY:-}" ]; then  # step 6 alone: needs docker, not root or podman
    trap scale_down EXIT
    mkdir -p "$WORK_DIR"
    scale_step
    echo; echo "SCALE CHECK: $SCALE"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and mount need it)"
for tool in podman debootstrap curl python3 tar chroot timeout; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install podman debootstrap curl)"
done
mkdir -p "$WORK_DIR"
# The build context: the working tree, as with `docker build .`, or the committed HEAD.
if [ "${CONTEXT:-worktree}" = head ]; then
    echo "source: $(git -C "$REPO_DIR" rev-parse --short HEAD) (committed HEAD, git archive)"
else
    echo "source: working tree at $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')$(
        [ -n "$(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null)" ] \
        && echo ' + uncommitted changes')"
fi

# Everything started here is undone on exit, success or not.
SERVER_PID=""
CONTAINER=""
ROOTFS=""
MOUNTS=()
cleanup() {
    set +e
    scale_down
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID"
        for _ in $(seq 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null
    fi
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null; done
    [ -n "$CONTAINER" ] && podman rm -f "$CONTAINER" >/dev/null 2>&1
    if [ -n "$ROOTFS" ] && [ -z "${KEEP_ROOTFS:-}" ] && ! grep -q " $ROOTFS/" /proc/mounts; then
        rm -rf "$ROOTFS"
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
step "1/6 base image $BASE_TAG (debootstrap $SUITE)"
# The mirror apt already uses: one-line `deb URI bookworm ...` or deb822 `URIs:` with
# `Suites: bookworm`.
apt_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v s="$SUITE" '$1 == "deb" { for (i = 2; i < NF; i++)
            if ($i ~ /^https?:\/\// && $(i + 1) == s) { print $i; exit } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v s="$SUITE" 'BEGIN { RS = "" } {
            uri = ""; ok = 0; n = split($0, lines, "\n")
            for (j = 1; j <= n; j++) {
                if (lines[j] ~ /^URIs:/) { split(lines[j], w, /[ \t]+/); uri = w[2] }
                if (lines[j] ~ /^Suites:/) { m = split(lines[j], w, /[ \t]+/)
                    for (k = 2; k <= m; k++) if (w[k] == s) ok = 1 }
            }
            if (ok && uri != "") { print uri; exit } }' "$f"
    done
}
if [ -n "${REBUILD_BASE:-}" ] || ! podman image exists "$BASE_TAG"; then
    MIRROR=${MIRROR:-$(apt_mirror | head -n 1)}
    [ -n "$MIRROR" ] || die "no $SUITE mirror in /etc/apt/sources.list*; set MIRROR=URL"
    echo "mirror: $MIRROR"
    BASE_ROOT="$WORK_DIR/base-rootfs"
    rm -rf "$BASE_ROOT"
    timeout 1800 debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$BASE_ROOT" "$MIRROR" > "$WORK_DIR/debootstrap.log" 2>&1 \
        || { tail -n 30 "$WORK_DIR/debootstrap.log"; die "debootstrap failed"; }
    # Certificate authorities this machine adds to its own trust store (a TLS-inspecting egress
    # proxy, a company CA) go into the local base image too, as a company's base image would
    # carry them; the Dockerfile itself stays unaware of them.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$BASE_ROOT/usr/local/share/ca-certificates/"
        chroot "$BASE_ROOT" update-ca-certificates >/dev/null 2>&1
        echo "added this machine's local CAs: $(cd /usr/local/share/ca-certificates && ls *.crt | tr '\n' ' ')"
    fi
    echo "base: $(chroot "$BASE_ROOT" python3 --version), $(chroot "$BASE_ROOT" python3 -m pip --version | cut -d' ' -f1-2)"
    chroot "$BASE_ROOT" apt-get clean
    rm -rf "$BASE_ROOT"/var/lib/apt/lists/* "$BASE_ROOT"/var/cache/apt/*.bin
    podman rmi -f "$BASE_TAG" >/dev/null 2>&1 || true
    tar --numeric-owner -C "$BASE_ROOT" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$BASE_TAG" >/dev/null
    rm -rf "$BASE_ROOT"
else
    echo "reusing $BASE_TAG (REBUILD_BASE=1 makes it again)"
fi
echo "base image size: $(podman image inspect --format '{{.Size}}' "$BASE_TAG" \
    | awk '{ printf "%.0f MB", $1 / 1e6 }')"
done_step

# ---------------------------------------------------------------------------------------------
step "2/6 CPU torch wheel into deploy/wheels/"
WHEELS="$REPO_DIR/deploy/wheels"
mkdir -p "$WHEELS"
if compgen -G "$WHEELS/torch-2.13.0*.whl" >/dev/null; then
    echo "already there: $(cd "$WHEELS" && ls torch-2.13.0*.whl)"
elif compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then
    cp /opt/wheels/torch-2.13.0+cpu-*.whl "$WHEELS/"
    echo "copied $(cd "$WHEELS" && ls torch-2.13.0*.whl) from /opt/wheels"
else
    timeout 1800 python3 -m pip download --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 --dest "$WHEELS" torch==2.13.0
fi
done_step

# ---------------------------------------------------------------------------------------------
step "3/6 podman build --isolation=chroot -> $IMAGE_TAG"
BUILD_CONTEXT=$REPO_DIR
if [ "${CONTEXT:-worktree}" = head ]; then
    BUILD_CONTEXT="$WORK_DIR/context"
    rm -rf "$BUILD_CONTEXT"; mkdir -p "$BUILD_CONTEXT/deploy/wheels"
    git -C "$REPO_DIR" archive HEAD | tar -x -C "$BUILD_CONTEXT"
    cp "$WHEELS"/*.whl "$BUILD_CONTEXT/deploy/wheels/"
fi
# --format docker keeps the HEALTHCHECK (the OCI image format has no field for it).
# An empty TORCH_INDEX_URL: the CPU torch wheel comes from deploy/wheels/, everything else from
# the package index pip is configured with.
# Each log line gets the seconds since the start of the build, for the step timings below.
BUILD_T0=$SECONDS
timeout "$BUILD_TIMEOUT_S" podman build --isolation=chroot --format docker ${NO_CACHE:+--no-cache} \
    --build-arg BASE_IMAGE="$BASE_TAG" --build-arg TORCH_INDEX_URL= \
    -t "$IMAGE_TAG" -f "$BUILD_CONTEXT/Dockerfile" "$BUILD_CONTEXT" 2>&1 \
    | while IFS= read -r line; do printf '[%5d s] %s\n' $((SECONDS - BUILD_T0)) "$line"; done \
    > "$WORK_DIR/build.log" \
    || { tail -n 40 "$WORK_DIR/build.log"; die "podman build failed (log: $WORK_DIR/build.log)"; }
echo "seconds per build step (log: $WORK_DIR/build.log):"
awk -v end=$((SECONDS - BUILD_T0)) '
    function flush() { if (name != "") printf "%6d  %s\n", t - start, substr(name, 1, 100) }
    { t = $2 + 0 }
    / STEP [0-9]+\/[0-9]+: / { flush(); start = t; sub(/^\[ *[0-9]+ s\] /, ""); name = $0 }
    END { t = end; flush() }' "$WORK_DIR/build.log"
podman images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$IMAGE_TAG"
IMAGE_BYTES=$(podman image inspect --format '{{.Size}}' "$IMAGE_TAG")
echo "image size: $IMAGE_BYTES bytes ($(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.2f GB", b / 1e9 }'))"
podman image inspect --format 'healthcheck: {{.Config.Healthcheck.Test}}' "$IMAGE_TAG" || true
done_step

# ---------------------------------------------------------------------------------------------
step "4/6 start the image's command on 127.0.0.1"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL="http://127.0.0.1:$PORT"
LOG="$WORK_DIR/server.log"
: > "$LOG"
inspect() { podman image inspect --format "$1" "$IMAGE_TAG"; }
IMG_USER=$(inspect '{{.Config.User}}')
IMG_WORKDIR=$(inspect '{{.Config.WorkingDir}}')
IMG_CMD_JSON=$(inspect '{{json .Config.Entrypoint}}|{{json .Config.Cmd}}')
mapfile -t IMG_ENV < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t IMG_ARGV < <(python3 -c '
import json, sys
entry, cmd = sys.argv[1].split("|", 1)
for arg in (json.loads(entry) or []) + (json.loads(cmd) or []):
    print(arg)' "$IMG_CMD_JSON")
[ "${#IMG_ARGV[@]}" -gt 0 ] || die "the image has no command"
echo "image: user=$IMG_USER workdir=$IMG_WORKDIR command=${IMG_ARGV[*]}"
echo "environment: ${IMG_ENV[*]}"
echo "overrides: COGCORE_HOST=127.0.0.1 COGCORE_PORT=$PORT"

MODE=""
if [ -z "${FORCE_CHROOT:-}" ]; then
    CONTAINER="cogcore-check-$$"
    if podman run -d --name "$CONTAINER" --network=host \
            -e COGCORE_HOST=127.0.0.1 -e COGCORE_PORT="$PORT" "$IMAGE_TAG" >/dev/null 2>"$LOG.run"; then
        sleep 3
        if [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ]; then
            MODE=podman
            (podman logs -f "$CONTAINER" >> "$LOG" 2>&1 &)
        else
            echo "podman run started but the container stopped:"; podman logs "$CONTAINER" 2>&1 | tail -n 5
        fi
    else
        echo "podman run is not available here: $(tail -n 1 "$LOG.run")"
    fi
    [ -n "$MODE" ] || { podman rm -f "$CONTAINER" >/dev/null 2>&1 || true; CONTAINER=""; }
fi

if [ -z "$MODE" ]; then
    MODE=chroot
    echo "falling back to the image's filesystem in a chroot"
    ROOTFS="$WORK_DIR/image-rootfs"
    rm -rf "$ROOTFS"; mkdir -p "$ROOTFS"
    CONTAINER=$(podman create --no-healthcheck "$IMAGE_TAG")
    timeout 900 podman export "$CONTAINER" | tar --numeric-owner -x -C "$ROOTFS" \
        || die "could not export the image's filesystem"
    podman rm -f "$CONTAINER" >/dev/null; CONTAINER=""
    echo "image filesystem: $(du -sh "$ROOTFS" | cut -f1); largest parts:"
    du -sh "$ROOTFS"/opt/venv/lib/python3*/site-packages/* "$ROOTFS"/opt/cogcore "$ROOTFS"/data \
        "$ROOTFS"/usr/lib 2>/dev/null | sort -rh | head -n 6 | sed "s|$ROOTFS||; s|^|  |"
    # The image's user as the image defines it (name or uid[:gid]), looked up in its own passwd.
    user=${IMG_USER%%:*}
    if [[ "$user" =~ ^[0-9]+$ ]]; then UID_=$user; GID_=$(awk -F: -v u="$user" '$3 == u { print $4 }' "$ROOTFS/etc/passwd")
    else read -r UID_ GID_ < <(awk -F: -v u="${user:-root}" '$1 == u { print $3, $4 }' "$ROOTFS/etc/passwd"); fi
    [ -n "${UID_:-}" ] || die "user '$IMG_USER' is not in the image's /etc/passwd"
    [[ "$IMG_USER" == *:* ]] && GID_=${IMG_USER#*:}
    echo "running as uid $UID_ gid ${GID_:-$UID_} in $ROOTFS"
    mount -t proc proc "$ROOTFS/proc"; MOUNTS+=("$ROOTFS/proc")
    mount --rbind /dev "$ROOTFS/dev"; mount --make-rslave "$ROOTFS/dev"; MOUNTS+=("$ROOTFS/dev")
    mkdir -p "$ROOTFS/tmp"; chmod 1777 "$ROOTFS/tmp"
    # Its own process group (setsid), so that stopping it stops everything it started.
    setsid chroot --userspec="$UID_:${GID_:-$UID_}" "$ROOTFS" /usr/bin/env -i \
        "${IMG_ENV[@]}" HOME="$(awk -F: -v u="$UID_" '$3 == u { print $6 }' "$ROOTFS/etc/passwd")" \
        COGCORE_HOST=127.0.0.1 COGCORE_PORT="$PORT" \
        /bin/sh -c 'cd "$0" && exec "$@"' "${IMG_WORKDIR:-/}" "${IMG_ARGV[@]}" \
        >> "$LOG" 2>&1 < /dev/null &
    SERVER_PID=$!
fi
echo "started with $MODE, log: $LOG"
done_step

# ---------------------------------------------------------------------------------------------
step "5/6 HTTP checks on $BASE_URL"
server_alive() {
    if [ "$MODE" = podman ]; then
        [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ]
    else kill -0 "$SERVER_PID" 2>/dev/null; fi
}
fail_with_log() { echo "--- server log (last 40 lines)"; tail -n 40 "$LOG"; die "$*"; }
# GET with a per-request timeout; prints "STATUS BODY".
get() { curl -sS --noproxy '*' --max-time 10 -o "$WORK_DIR/body" -w '%{http_code}' "$BASE_URL$1" 2>/dev/null \
        && echo " $(cat "$WORK_DIR/body")"; }

wait_for() {  # path, expected status, timeout in seconds
    local path=$1 want=$2 limit=$3 t=$SECONDS out=""
    while (( SECONDS - t < limit )); do
        out=$(get "$path" || true)
        [ "${out%% *}" = "$want" ] && { echo "GET $path after $((SECONDS - t)) s: $out"; return 0; }
        server_alive || fail_with_log "the server exited while waiting for $path"
        sleep 2
    done
    fail_with_log "GET $path did not return $want within $limit s (last: ${out:-no answer})"
}
wait_for /health 200 "$READY_TIMEOUT_S"
wait_for /ready 200 "$READY_TIMEOUT_S"

out=$(get /v1/models) || fail_with_log "GET /v1/models failed"
[ "${out%% *}" = 200 ] || fail_with_log "GET /v1/models: $out"
echo "GET /v1/models: $out"
MODEL=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["data"][0]["id"])' "${out#* }") \
    || die "no model id in /v1/models"

REQUEST=$(python3 -c 'import json, sys; print(json.dumps({"model": sys.argv[1], "max_tokens": 16,
    "messages": [{"role": "user", "content": "What is the capital of France?"}]}))' "$MODEL")
echo "POST /v1/chat/completions: $REQUEST"
t=$SECONDS
status=$(curl -sS --noproxy '*' --max-time "$CHAT_TIMEOUT_S" -o "$WORK_DIR/chat.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' -d "$REQUEST" "$BASE_URL/v1/chat/completions") \
    || fail_with_log "POST /v1/chat/completions: no answer within $CHAT_TIMEOUT_S s"
echo "-> $status after $((SECONDS - t)) s (full answer: $WORK_DIR/chat.json)"
[ "$status" = 200 ] || { cat "$WORK_DIR/chat.json"; echo; fail_with_log "POST /v1/chat/completions returned $status"; }
# The answer without the evidence texts (they run to kilobytes).
python3 -c '
import json, sys
body = json.load(open(sys.argv[1]))
for source in (body.get("cogcore") or {}).get("sources") or []:
    source["text"] = source.get("text", "")[:60] + "..."
print(json.dumps(body, indent=1))' "$WORK_DIR/chat.json" || fail_with_log "the chat answer is not JSON"
REPLY=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' \
    "$WORK_DIR/chat.json") || fail_with_log "no choices[0].message.content in the chat answer"
[ -n "${REPLY// /}" ] || fail_with_log "the chat reply is empty"
echo "reply: $REPLY"
case "$REPLY" in *Paris*) echo "(mentions Paris)";; *) echo "(does not mention Paris)";; esac

echo "stopping the server (SIGTERM)"
if [ "$MODE" = podman ]; then
    timeout 60 podman stop -t 30 "$CONTAINER" >/dev/null
else
    kill -TERM -- "-$SERVER_PID"
    for _ in $(seq 60); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$SERVER_PID" 2>/dev/null && die "the server did not stop within 30 s of SIGTERM"
    wait "$SERVER_PID" 2>/dev/null && rc=0 || rc=$?
    echo "server exited with status $rc$([ "$rc" = 143 ] && echo ' (uvicorn re-raises SIGTERM after a clean shutdown)')"
    SERVER_PID=""
fi
echo "--- server log (last 8 lines)"; tail -n 8 "$LOG" | cut -c1-200
done_step

# ---------------------------------------------------------------------------------------------
scale_step

echo
echo "CONTAINER CHECK PASSED in $((SECONDS - T0)) s ($MODE; image $IMAGE_TAG, $(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.2f GB", b / 1e9 }'); scale profile: $SCALE)"
