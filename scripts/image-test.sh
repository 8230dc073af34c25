#!/usr/bin/env bash
# Builds the container image from the Dockerfile, unchanged, and runs it the
# way a container engine would, on a machine where none can run: the image's
# root filesystem, chrooted as its user (uid 10001), as PID 1 of new PID,
# mount and network namespaces. Checks: the image's user, HEALTHCHECK and
# ports; the banner; /__sluice/health; `sluice health` (the HEALTHCHECK
# command) with the configured port and with `--listen` given to PID 1 only;
# SIGTERM to PID 1 with a stream open (the farewell event, exit 0 within
# shutdown_grace). Prints the image's size.
#
# No base image can be pulled here, so stand-ins are made offline, once:
# debian:bookworm-slim from `debootstrap --variant=minbase bookworm`, and
# rust:1.95-slim-bookworm from the same plus gcc, libc6-dev and this
# machine's Rust toolchain. Needs root, podman and debootstrap (installed from
# Debian if missing). The build runs with --isolation chroot: podman cannot
# start containers here (hybrid cgroups), but chroot isolation needs none.
# Not part of scripts/test.sh: the build takes minutes.
#
#   scripts/image-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
image=sluice:image-test
cache="${IMAGE_TEST_CACHE:-/var/tmp/sluice-image-test}"
mkdir -p "$cache"
step() { printf '\n==> %s\n' "$*"; }

for tool in podman debootstrap curl; do
  command -v "$tool" >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap curl >/dev/null
  }
done

if ! podman image exists debian:bookworm-slim; then
  step "stand-in debian:bookworm-slim (debootstrap --variant=minbase bookworm)"
  rm -rf "$cache/bookworm"
  debootstrap --variant=minbase bookworm "$cache/bookworm" http://deb.debian.org/debian >/dev/null
  tar -C "$cache/bookworm" -c . | podman import - debian:bookworm-slim >/dev/null
fi
if ! podman image exists rust:1.95-slim-bookworm; then
  step "stand-in rust:1.95-slim-bookworm (the same, plus gcc, libc6-dev and this machine's Rust)"
  rm -rf "$cache/rust"
  cp -a "$cache/bookworm" "$cache/rust"
  cp /etc/resolv.conf "$cache/rust/etc/resolv.conf"
  chroot "$cache/rust" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$cache/rust" apt-get install -y -qq --no-install-recommends gcc libc6-dev ca-certificates >/dev/null
  # The registry is reached through this machine's CA bundle.
  cp /etc/ssl/certs/ca-certificates.crt "$cache/rust/etc/ssl/certs/ca-certificates.crt"
  toolchain="$(rustc --print sysroot)"
  mkdir -p "$cache/rust/usr/local/rustup/toolchains" "$cache/rust/usr/local/cargo/bin"
  cp -a "$toolchain" "$cache/rust/usr/local/rustup/toolchains/stable"
  for bin in cargo rustc rustdoc; do ln -sf "../../rustup/toolchains/stable/bin/$bin" "$cache/rust/usr/local/cargo/bin/$bin"; done
  tar -C "$cache/rust" -c . | podman import \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt' \
    - rust:1.95-slim-bookworm >/dev/null
fi

step "podman build --format docker (the Dockerfile as it is)"
started=$(date +%s)
podman build --format docker --isolation chroot --pull=never -t "$image" . >"$cache/build.log" 2>&1 || {
  tail -40 "$cache/build.log"; exit 1; }
echo "built in $(( $(date +%s) - started )) s"

inspect=$(podman image inspect "$image")
size=$(podman image inspect "$image" --format '{{.Size}}')
base_size=$(podman image inspect debian:bookworm-slim --format '{{.Size}}')
work="$(mktemp -d)"
ns=sluice-image-test
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  umount -R "$work/root/proc" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  podman rm -f sluice-image-test >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi; }

step "the image"
podman create --name sluice-image-test "$image" >/dev/null
mkdir -p "$work/root"
podman export sluice-image-test | tar -C "$work/root" -x
binary_size=$(stat -c %s "$work/root/usr/local/bin/sluice")
echo "image: $((size / 1000000)) MB, of which the base $((base_size / 1000000)) MB; the binary: $((binary_size / 1000000)) MB"
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1])[0]; c=d["Config"]; print(json.dumps({"user": c.get("User"), "health": (d.get("Healthcheck") or c.get("Healthcheck") or {}).get("Test"), "ports": sorted(c.get("ExposedPorts") or {})}[sys.argv[2]]))' "$inspect" "$1"; }
user=$(field user) health=$(field health) ports=$(field ports)
check "runs as the user sluice (uid $(grep '^sluice:' "$work/root/etc/passwd" | cut -d: -f3))" \
  '[ "$user" = "\"sluice\"" ] && grep -q "^sluice:x:10001:" "$work/root/etc/passwd"'
check "HEALTHCHECK runs sluice health ($health)" '[ "$health" = "[\"CMD\", \"sluice\", \"health\"]" ]'
check "exposes 3456 only ($ports)" '[ "$ports" = "[\"3456/tcp\"]" ]'
check "the binary is stripped" '! file "$work/root/usr/local/bin/sluice" 2>/dev/null | grep -q "not stripped"'

ip netns add "$ns"
ip -n "$ns" link set lo up
# run ARGS...: sluice as PID 1 of new PID and mount namespaces in the network
# namespace, chrooted into the image as uid 10001, with the image's env (and
# $EXTRA_ENV, as docker run -e would add).
run() {
  # shellcheck disable=SC2086
  ip netns exec "$ns" unshare --pid --fork --mount --mount-proc="$work/root/proc" \
    chroot --userspec=10001:10001 "$work/root" \
    /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin SLUICE_CONFIG=/etc/sluice/sluice.toml ${EXTRA_ENV:-} \
    /usr/local/bin/sluice "$@" >"$work/out" 2>"$work/err" &
  unshare_pid=$!
  for _ in $(seq 100); do
    pid=$(pgrep -P "$unshare_pid" -x sluice || true)
    [ -n "$pid" ] && grep -q "running on" "$work/out" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$work/err"; echo "sluice did not start in the image"; exit 1
}
# in_container CMD...: CMD in sluice's namespaces, chrooted as uid 10001.
in_container() {
  nsenter --target "$pid" --pid --mount --net chroot --userspec=10001:10001 "$work/root" \
    /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin SLUICE_CONFIG=/etc/sluice/sluice.toml "$@"
}

step "run: the default command (with docker run -e TOKENS_PER_RESPONSE=1000: 20 s streams)"
EXTRA_ENV="TOKENS_PER_RESPONSE=1000" run
cat "$work/out"
check "the banner names the mock on port 3456" 'grep -q "mock running on http://localhost:3456 (all interfaces)" "$work/out"'
check "sluice is PID 1 in its namespace" '[ "$(in_container /usr/local/bin/sluice health >/dev/null 2>&1; grep NSpid /proc/$pid/status | awk "{print \$3}")" = 1 ]'
check "it runs as uid 10001" '[ "$(awk "/^Uid:/ {print \$2}" /proc/$pid/status)" = 10001 ]'
check "GET /__sluice/health answers 200" '[ "$(ip netns exec "$ns" curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:3456/__sluice/health)" = 200 ]'
check "the HEALTHCHECK command passes" 'in_container /usr/local/bin/sluice health'

step "SIGTERM to PID 1 with a stream open"
ip netns exec "$ns" curl -sN http://127.0.0.1:3456/v1/messages -H 'content-type: application/json' \
  -d '{"model":"m","max_tokens":2000,"stream":true,"messages":[{"role":"user","content":"hi"}]}' >"$work/stream" &
curl_pid=$!
sleep 1
sent=$(date +%s.%N)
kill -TERM "$pid"
status=0
wait "$unshare_pid" || status=$?
took=$(python3 -c "import time; print(round(time.time() - $sent, 2))")
wait "$curl_pid" || true
pid=""
echo "exited with status $status after $took s"
check "sluice exits 0 after SIGTERM as PID 1" '[ "$status" = 0 ]'
check "after shutdown_grace (8 s) and before docker stop's 10 s" 'python3 -c "import sys; sys.exit(0 if 8 <= $took < 9.5 else 1)"'
check "the open stream ended with the farewell event" 'grep -q "shutting down" "$work/stream"'

step "run: --listen given to PID 1 only (docker run IMAGE --listen 0.0.0.0:8080)"
run --listen 0.0.0.0:8080
check "the HEALTHCHECK command finds port 8080" 'in_container /usr/local/bin/sluice health'
kill -TERM "$pid"; wait "$unshare_pid" || true; pid=""

echo
echo "image $image: $((size / 1000000)) MB on a $((base_size / 1000000)) MB stand-in base, binary $((binary_size / 1000000)) MB; $failures failed"
[ "$failures" = 0 ]
