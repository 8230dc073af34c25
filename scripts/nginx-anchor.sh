# Sourced by scripts/bench.sh and scripts/profile-proxy.sh: nginx as the
# pass-through anchor, proxying to the same upstream as sluice, without
# buffering, with keep-alive upstream connections.
#
#   nginx_anchor DIR UPSTREAM_URL   # writes DIR/nginx.conf, starts nginx;
#                                   # sets $nginx_port and $nginx_master
nginx_anchor() {
  local dir=$1 upstream=$2
  nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  upstream sluice_mock { server ${upstream#http://}; keepalive 256; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://sluice_mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
  nginx_master=$!
  for _ in $(seq 50); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
  sleep 0.3
}
