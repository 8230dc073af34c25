# Sourced by the k6 scripts: starts `sluice mock` with "$@" on free ports and
# sets $url (API), $admin (admin listener), $pid and $work (a temporary folder,
# removed on exit along with the process).
binary="${SLUICE_BIN:-target/release/sluice}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
env -u PORT -u SLUICE_CONFIG -u ERROR_RATE -u SLUICE_UPSTREAM \
  "$binary" mock --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "$@" >"$work/banner" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do
  grep -q "Admin: http" "$work/banner" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; echo "sluice exited"; exit 1; }
  sleep 0.1
done
url="$(grep -Eo 'running on https?://127\.0\.0\.1:[0-9]*' "$work/banner" | grep -o 'http.*' || true)"
admin="$(grep -o 'Admin: http://127\.0\.0\.1:[0-9]*' "$work/banner" | grep -o 'http.*' || true)"
[ -n "$url" ] && [ -n "$admin" ] || { cat "$work/banner" "$work/log"; echo "sluice printed no addresses within 10 s"; exit 1; }
