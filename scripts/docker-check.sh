#!/usr/bin/env bash
# Build the Docker image for real and smoke-test it; prints each step with its time, exits non-zero on
# the first failure. Slow (minutes: a full image build), so not part of every CI run; see README
# "Deployment" for when to run it and what each step checks.
#
# It sets up what it needs when it is missing (as root, on Debian):
#   - a Docker engine: starts `dockerd --storage-driver=vfs --iptables=false --bridge=none`
#     (apt-get install docker.io first when there is no dockerd);
#   - the base image: BASE_IMAGE (default local/python:3.11), when it is that default and absent,
#     is made with debootstrap (Debian bookworm, python3 3.11) and `docker import`;
#   - torch: unless TORCH_INDEX_URL is set, the CPU torch wheel (TORCH_VERSION, default 2.13.0) is
#     fetched with the host's pip (its find-links / indexes: a local wheel here) into docker-extra/
#     (which git ignores) and built from there (TORCH_WHEEL); the host's CA bundle goes there too
#     (CA_BUNDLE).
#
# Environment: IMAGE (default quotebot:check), BASE_IMAGE, TORCH_INDEX_URL, TORCH_VERSION,
# DOCKER_PIP_INDEX_URL / DOCKER_PIP_EXTRA_INDEX_URL / DOCKER_PIP_FIND_LINKS (passed to pip in the
# build), KEEP=1 (keep the test volume and containers for a look afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

IMAGE=${IMAGE:-quotebot:check}
BASE_IMAGE=${BASE_IMAGE:-local/python:3.11}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
WORK=build/docker-check            # logs (ignored by git, not in the build context)
EXTRA=docker-extra                 # optional build inputs (sent in the build context)
VOLUME=quotebot-check-data
BOT=quotebot-check-bot
TOOLS=quotebot-check-first
QUESTION="Who is the National Security Council spokesman?"
mkdir -p "$WORK" "$EXTRA"
[[ -f $EXTRA/.gitignore ]] || printf '*\n' >"$EXTRA/.gitignore"   # git ignores the folder's files
export DOCKER_BUILDKIT=0           # the classic builder: no buildx plugin needed (BuildKit works too)

T_ALL=$(date +%s.%N)
STEP=""
T_STEP=0
step() { STEP=$1; T_STEP=$(date +%s.%N); printf '\n== %s\n' "$STEP"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
ok() { printf -- '-- ok (%s s)%s\n' "$(elapsed "$T_STEP")" "${1:+: $1}"; TIMES+=("$(printf '%-66s %6s s' "$STEP" "$(elapsed "$T_STEP")")"); }
fail() { printf -- '-- FAILED: %s: %s\n' "$STEP" "$1" >&2; exit 1; }
TIMES=()

cleanup() {
    local rc=$?
    if [[ ${KEEP:-0} != 1 ]]; then
        docker rm -f "$BOT" "$TOOLS" >/dev/null 2>&1 || true
        docker volume rm -f "$VOLUME" >/dev/null 2>&1 || true
    fi
    if [[ $rc != 0 ]]; then
        printf '\ndocker-check FAILED after %s s (step: %s)\n' "$(elapsed "$T_ALL")" "$STEP" >&2
    fi
}
trap cleanup EXIT

# ------------------------------------------------------------------------------------------------
step "engine"
if ! docker info >/dev/null 2>&1; then
    [[ $(id -u) == 0 ]] || fail "no Docker engine answers, and starting one needs root"
    if ! command -v dockerd >/dev/null; then
        echo "installing docker.io (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >"$WORK/apt.log" 2>&1 \
            || fail "apt-get install docker.io failed (see $WORK/apt.log)"
    fi
    echo "starting dockerd (vfs storage, no iptables, no bridge); log in $WORK/dockerd.log"
    nohup dockerd --storage-driver=vfs --iptables=false --bridge=none >"$WORK/dockerd.log" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || fail "dockerd did not come up (see $WORK/dockerd.log)"
fi
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then COMPOSE=(docker-compose)
elif [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >>"$WORK/apt.log" 2>&1 \
        || fail "no compose tool, and apt-get install docker-compose failed"
    COMPOSE=(docker-compose)
else fail "no compose tool (docker compose or docker-compose)"; fi
ok "server $(docker version -f '{{.Server.Version}}'), storage $(docker info -f '{{.Driver}}'), compose: ${COMPOSE[*]}"

# ------------------------------------------------------------------------------------------------
step "base image $BASE_IMAGE"
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    ok "present"
elif [[ $BASE_IMAGE == local/python:3.11 ]]; then
    [[ $(id -u) == 0 ]] || fail "making the base image needs root (debootstrap)"
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap \
        >>"$WORK/apt.log" 2>&1 || fail "apt-get install debootstrap failed"
    ROOT=$(mktemp -d /tmp/quotebot-base.XXXXXX)
    chmod 755 "$ROOT"                  # it becomes the image's /, which every user must enter
    echo "debootstrap bookworm into $ROOT (log: $WORK/debootstrap.log)"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        bookworm "$ROOT" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
        || fail "debootstrap failed (see $WORK/debootstrap.log)"
    rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* \
        "$ROOT"/usr/share/man/*
    tar -C "$ROOT" -c . | docker import -c 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$ROOT"
    ok "made with debootstrap + docker import"
else
    fail "$BASE_IMAGE is not here (docker pull it, or unset BASE_IMAGE for the local one)"
fi

# ------------------------------------------------------------------------------------------------
BUILD_ARGS=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
step "torch for the build"
if [[ -n ${TORCH_INDEX_URL:-} ]]; then
    BUILD_ARGS+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
    ok "from $TORCH_INDEX_URL"
else
    WHEEL=$(ls "$EXTRA"/torch-"$TORCH_VERSION"+cpu-cp311-*.whl 2>/dev/null | head -n1 || true)
    if [[ -z $WHEEL ]]; then
        python3 -m pip download --quiet --no-deps --python-version 3.11 -d "$EXTRA" "torch==$TORCH_VERSION" \
            || fail "pip download torch==$TORCH_VERSION failed (set TORCH_INDEX_URL to build from an index)"
        WHEEL=$(ls "$EXTRA"/torch-"$TORCH_VERSION"*-cp311-*.whl 2>/dev/null | head -n1 || true)
        [[ $WHEEL == *+cpu* ]] || fail "pip found ${WHEEL:-no wheel}, not a CPU build (set TORCH_INDEX_URL)"
    fi
    BUILD_ARGS+=(--build-arg "TORCH_WHEEL=$WHEEL")
    ok "$WHEEL ($(du -m "$WHEEL" | cut -f1) MB)"
fi
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$EXTRA/ca-certificates.crt"
    BUILD_ARGS+=(--build-arg "CA_BUNDLE=$EXTRA/ca-certificates.crt")
fi
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS; do
    d="DOCKER_$v"
    [[ -n ${!d:-} ]] && BUILD_ARGS+=(--build-arg "$v=${!d}")
done

# ------------------------------------------------------------------------------------------------
step "build $IMAGE"
echo "docker build --network host ${BUILD_ARGS[*]} -t $IMAGE .   (log: $WORK/build.log)"
OLD_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
T0=$(date +%s.%N)
if ! docker build --network host "${BUILD_ARGS[@]}" -t "$IMAGE" . 2>&1 | tee "$WORK/build.log" \
    | while IFS= read -r line; do
        case $line in
            "Step "*|"Sending build context"*|"Successfully tagged"*|"Successfully installed"*)
                printf '   [%6s s] %.130s\n' "$(elapsed "$T0")" "$line" ;;
        esac
    done; then
    tail -n 30 "$WORK/build.log" >&2
    fail "docker build failed (see $WORK/build.log)"
fi
SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.2f GB", $1 / 1e9 }')
# The previous build's image, now untagged: removed (with vfs each image costs GBs of disk).
if [[ -n $OLD_ID && $OLD_ID != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]]; then
    docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
ok "image $SIZE"

# ------------------------------------------------------------------------------------------------
step "image settings (user, healthcheck, stop signal)"
USER_=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
HC=$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$IMAGE")
SIG=$(docker image inspect -f '{{.Config.StopSignal}}' "$IMAGE")
[[ -n $USER_ && $USER_ != root && $USER_ != 0 ]] || fail "the image runs as '${USER_:-root}'"
[[ $HC == '["CMD","quotebot","health","--bot"]' ]] || fail "HEALTHCHECK is $HC"
[[ $SIG == SIGTERM ]] || fail "STOPSIGNAL is '$SIG'"
ok "user $USER_, healthcheck $HC, stop signal $SIG"

docker rm -f "$BOT" "$TOOLS" >/dev/null 2>&1 || true
docker volume rm -f "$VOLUME" >/dev/null 2>&1 || true
docker volume create "$VOLUME" >/dev/null

# Two containers on one named volume, both --network none. The first (an idle PID 1, the commands
# through docker exec: with vfs every new container copies the whole image, a minute or more here)
# ingests and runs the one-shot checks; the second runs the bot and answers the question from the
# data the first one left in the volume.
# ------------------------------------------------------------------------------------------------
step "first container (--network none, volume $VOLUME)"
docker run -d --name "$TOOLS" --network none -v "$VOLUME:/data" -v "$REPO/examples:/examples:ro" \
    --entrypoint sleep "$IMAGE" infinity >/dev/null
ok

step "ingest offline (bundled model)"
OUT=$(docker exec "$TOOLS" quotebot ingest /examples/north-korea-artillery-shells.txt 2>&1) \
    || { echo "$OUT"; fail "ingest failed"; }
echo "$OUT" | sed 's/^/   /'
ok

step "run without a token: one line, exit 1"
set +e
OUT=$(docker exec "$TOOLS" quotebot run 2>&1)
RC=$?
set -e
echo "$OUT" | sed 's/^/   /'
[[ $RC == 1 ]] || fail "exit $RC, not 1"
[[ $(grep -c . <<<"$OUT") == 1 ]] || fail "$(grep -c . <<<"$OUT") lines, not 1"
ok

step "health without a bot: health exit 0, health --bot exit 1"
OUT=$(docker exec "$TOOLS" quotebot health 2>&1) || { echo "$OUT"; fail "quotebot health did not exit 0"; }
echo "   $OUT"
set +e
OUT=$(docker exec "$TOOLS" quotebot health --bot 2>&1)
RC=$?
set -e
echo "   $OUT"
[[ $RC == 1 ]] || fail "quotebot health --bot without a bot exited $RC, not 1"
ok

step "non-root: the user, the files it wrote in the volume"
UID_=$(docker exec "$TOOLS" id -u)
OWNER=$(docker exec "$TOOLS" stat -c '%u' /data/quotebot.db)
[[ $UID_ != 0 ]] || fail "commands run as root"
[[ $OWNER == "$UID_" ]] || fail "/data/quotebot.db owned by uid $OWNER, not $UID_"
ok "uid $UID_ ($(docker image inspect -f '{{.Config.User}}' "$IMAGE")), /data/quotebot.db owned by uid $OWNER"

step "remove the first container (the volume stays)"
docker rm -f "$TOOLS" >/dev/null
ok

# The bot itself, `quotebot run` as PID 1 with the image's HEALTHCHECK, with Discord stubbed (no
# network here): REST answers for login and command sync, a gateway connection that stays open until
# the bot closes it, and gateway_connected() true while it is open (there are no real shards). All the
# rest is the real code path: model warm-up, heartbeat file, signal handling, shutdown.
STUB=$(cat <<'PY'
import asyncio, sys
import discord
import bot.client as client
from bot.cli import main

USER = {"id": "100000000000000001", "username": "quotebot", "discriminator": "0", "global_name": None,
        "avatar": None, "bot": True, "verified": True, "mfa_enabled": False}
APP = {"id": "100000000000000002", "name": "quotebot", "description": "", "icon": None,
       "rpc_origins": [], "bot_public": True, "bot_require_code_grant": False, "owner": USER,
       "verify_key": "0" * 64, "flags": 0}

async def request(self, route, **kwargs):
    if route.path == "/users/@me":
        return USER
    if route.path == "/oauth2/applications/@me":
        return APP
    return []

async def connect(self, *, reconnect=True):
    print("stub gateway: open", flush=True)
    while not self.is_closed():
        await asyncio.sleep(0.1)
    print("stub gateway: closed by the bot", flush=True)

discord.http.HTTPClient.request = request
client.QuoteBot.connect = connect
client.QuoteBot.gateway_connected = lambda self: not self.is_closed()
sys.exit(main(["run"]))
PY
)

step "bot running (stub gateway): HEALTHCHECK turns healthy"
docker run -d --name "$BOT" --network none -v "$VOLUME:/data" -e DISCORD_TOKEN=dummy-token \
    --health-interval 3s --health-start-period 0s --health-retries 3 \
    --entrypoint python "$IMAGE" -c "$STUB" >/dev/null
STATE=""
for _ in $(seq 120); do
    STATE=$(docker inspect -f '{{.State.Health.Status}}' "$BOT" 2>/dev/null || echo gone)
    RUNNING=$(docker inspect -f '{{.State.Running}}' "$BOT" 2>/dev/null || echo false)
    [[ $STATE == healthy || $RUNNING != true ]] && break
    sleep 1
done
if [[ $STATE != healthy ]]; then
    docker logs "$BOT" 2>&1 | tail -n 20 >&2
    docker inspect -f '{{json .State.Health}}' "$BOT" >&2 || true
    fail "health status '$STATE' (running: $RUNNING)"
fi
docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' "$BOT" | grep . | tail -n 1 \
    | sed 's/^/   last check: exit /'
ok "healthy"

step "ask offline in the second container (data from the first, in the volume)"
OUT=$(docker exec "$BOT" quotebot ask "$QUESTION" 2>&1) || { echo "$OUT"; fail "ask failed"; }
echo "$OUT" | sed 's/^/   /'
grep -q "Kirby" <<<"$OUT" || fail "the answer does not quote the sentence with John Kirby"
ok "quoted the Kirby sentence"

step "non-root: the bot process (PID 1) and its heartbeat file"
PID1=$(docker exec "$BOT" awk '/^Uid:/ { print $2 }' /proc/1/status)
OWNER=$(docker exec "$BOT" stat -c '%u' /data/bot-health.json)
[[ $PID1 != 0 ]] || fail "the bot runs as root"
[[ $OWNER == "$PID1" ]] || fail "bot-health.json owned by uid $OWNER, the bot is uid $PID1"
ok "PID 1 uid $PID1, bot-health.json owned by uid $OWNER"

step "docker stop (SIGTERM): exit 0 within 10 s"
T0=$(date +%s.%N)
docker stop "$BOT" >/dev/null
TOOK=$(elapsed "$T0")
RC=$(docker inspect -f '{{.State.ExitCode}}' "$BOT")
LOGS=$(docker logs "$BOT" 2>&1)
grep -E 'received SIGTERM|gateway closed|quotebot stopped|stub gateway' <<<"$LOGS" | sed 's/^/   /'
[[ $RC == 0 ]] || { tail -n 20 <<<"$LOGS" >&2; fail "exit code $RC"; }
awk -v t="$TOOK" 'BEGIN { exit !(t < 10) }' || fail "took $TOOK s"
grep -q 'received SIGTERM' <<<"$LOGS" || fail "the bot did not log the SIGTERM"
ok "exit $RC after $TOOK s"

# ------------------------------------------------------------------------------------------------
step "compose.yaml (${COMPOSE[*]} config)"
OUT=$(DISCORD_TOKEN=x "${COMPOSE[@]}" -f compose.yaml config 2>&1) || { echo "$OUT"; fail "compose config failed"; }
grep -q 'postgres:16' <<<"$OUT" || fail "no postgres:16 service"
grep -q 'service_healthy' <<<"$OUT" || fail "the bot does not wait for a healthy database"
ok "valid; services: $("${COMPOSE[@]}" -f compose.yaml config --services 2>/dev/null | tr '\n' ' ')"

printf '\ndocker-check passed in %s s (image %s, %s)\n' "$(elapsed "$T_ALL")" "$IMAGE" "$SIZE"
printf '  %s\n' "${TIMES[@]}"
