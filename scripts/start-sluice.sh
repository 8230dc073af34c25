# Sourced by the k6 scripts: starts `sluice mock` with "$@" on free ports and
# sets $url (API), $admin (admin listener), $pid and $work (a temporary folder,
# removed on exit along with the process). The addresses come from the file
# --ready-file writes once both ports are bound (docs/testing.md, "Starting
# sluice from a script").
binary="${SLUICE_BIN:-target/release/sluice}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
env -u PORT -u SLUICE_CONFIG -u ERROR_RATE -u SLUICE_UPSTREAM \
  "$binary" mock --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-file "$work/ready.json" "$@" \
  >"$work/banner" 2>"$work/log" &
pid=$!
for _ in $(seq 1000); do
  [ -e "$work/ready.json" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; echo "sluice exited"; exit 1; }
  sleep 0.01
done
[ -e "$work/ready.json" ] || { cat "$work/banner" "$work/log"; echo "sluice was not ready within 10 s"; exit 1; }
url="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["api"])' "$work/ready.json")"
admin="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' "$work/ready.json")"
