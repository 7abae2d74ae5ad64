#!/usr/bin/env bash
# portico's container entrypoint (the image's ENTRYPOINT, installed as /usr/local/bin/portico-entrypoint).
#
#   portico-entrypoint [serve|nim-serve] [flags]   nginx on NIM_SERVER_PORT (8000) in front of
#                                                  `portico serve` on 127.0.0.1:NIM_GATEWAY_PORT
#   portico-entrypoint serve --dry-run | --ray-worker ADDR | --help
#                                                  `portico` alone: nothing to put nginx in front of
#   portico-entrypoint list-model-profiles [...]   `portico list-model-profiles`
#   portico-entrypoint nginx-conf                  print the rendered nginx.conf (used by the tests)
#   portico-entrypoint COMMAND [ARGS]              any other command (bash, nim-serve, ...) as given
#
# So `docker run IMAGE list-model-profiles` works as with NIM, and so does `docker run IMAGE` (serve).
# NIM_NGINX=0 runs the gateway directly on NIM_SERVER_PORT, without nginx.
#
# Shutdown (SIGTERM/SIGINT): portico drains in-flight requests and stops the engine, then nginx quits.
# nginx exiting on its own stops portico and the container exits non-zero (the orchestrator restarts it).
set -euo pipefail

PORTICO=${PORTICO_BIN:-portico}
HERE=$(dirname "$(readlink -f "$0")")
TEMPLATE=${NIM_NGINX_TEMPLATE:-}
if [[ -z $TEMPLATE ]]; then
  for t in "$HERE/nginx.conf.template" /opt/portico/nginx/nginx.conf.template; do
    if [[ -f $t ]]; then TEMPLATE=$t; break; fi
  done
fi

log() { printf 'portico-entrypoint: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# A whole number, or die naming the variable (as the launcher does for its own settings).
whole() {
  local name=$1 value=$2
  [[ $value =~ ^[0-9]+$ ]] || die "invalid setting $name=\"$value\": expected a whole number"
  printf '%s' "$((10#$value))"
}

# NIM_* settings -> the ${NGINX_*} names the template uses. Prints the rendered nginx.conf.
render_nginx_conf() {
  [[ -n $TEMPLATE && -f $TEMPLATE ]] || die "nginx template not found (NIM_NGINX_TEMPLATE)"
  command -v envsubst >/dev/null || die "envsubst not found (Debian package gettext-base)"
  local host=${NIM_SERVER_HOST:-0.0.0.0}
  local port; port=$(whole NIM_SERVER_PORT "${NIM_SERVER_PORT:-8000}")
  local gw; gw=$(whole NIM_GATEWAY_PORT "${NIM_GATEWAY_PORT:-8080}")
  [[ $port != "$gw" ]] || die "NIM_GATEWAY_PORT must differ from NIM_SERVER_PORT ($port)"
  local body; body=$(whole NIM_MAX_REQUEST_BYTES "${NIM_MAX_REQUEST_BYTES:-33554432}")
  local timeout; timeout=$(whole NIM_NGINX_PROXY_TIMEOUT "${NIM_NGINX_PROXY_TIMEOUT:-3600}")
  local workers=${NIM_NGINX_WORKER_PROCESSES:-2}
  [[ $workers == auto || $workers =~ ^[0-9]+$ ]] || die "invalid setting NIM_NGINX_WORKER_PROCESSES=\"$workers\": expected a whole number or auto"
  [[ $host == *:* && $host != \[* ]] && host="[$host]" # IPv6 literal

  local listen="$host:$port" tls=""
  local mode=${NIM_SSL_MODE:-DISABLED}
  case "${mode^^}" in
    DISABLED) ;;
    TLS | MTLS)
      [[ -n ${NIM_SSL_KEY_PATH:-} && -n ${NIM_SSL_CERTS_PATH:-} ]] || die "NIM_SSL_MODE=$mode: needs NIM_SSL_KEY_PATH and NIM_SSL_CERTS_PATH"
      listen="$listen ssl"
      tls="ssl_certificate $NIM_SSL_CERTS_PATH; ssl_certificate_key $NIM_SSL_KEY_PATH; ssl_protocols TLSv1.2 TLSv1.3;"
      if [[ ${mode^^} == MTLS ]]; then
        [[ -n ${NIM_SSL_CA_CERTS_PATH:-} ]] || die "NIM_SSL_MODE=MTLS: needs NIM_SSL_CA_CERTS_PATH"
        tls="$tls ssl_client_certificate $NIM_SSL_CA_CERTS_PATH; ssl_verify_client on;"
      fi
      ;;
    *) die "invalid setting NIM_SSL_MODE=\"$mode\": expected DISABLED, TLS or MTLS" ;;
  esac

  local level
  case "${NIM_LOG_LEVEL:-INFO}" in
    [Tt][Rr][Aa][Cc][Ee] | [Dd][Ee][Bb][Uu][Gg]) level=info ;;
    [Ee][Rr][Rr][Oo][Rr] | [Cc][Rr][Ii][Tt][Ii][Cc][Aa][Ll]) level=error ;;
    *) level=warn ;;
  esac
  local access=off
  case "${NIM_NGINX_ACCESS_LOG:-0}" in 1 | true | TRUE | True | yes) access="/dev/stdout" ;; esac

  # envsubst replaces only the names listed, so nginx's own $variables pass through untouched.
  # shellcheck disable=SC2016 # the names are literal
  local names='${NGINX_LISTEN} ${NGINX_TLS} ${NGINX_UPSTREAM} ${NGINX_CLIENT_MAX_BODY_SIZE} ${NGINX_PROXY_TIMEOUT} ${NGINX_WORKER_PROCESSES} ${NGINX_ERROR_LOG_LEVEL} ${NGINX_ACCESS_LOG}'
  (
    export NGINX_LISTEN=$listen NGINX_TLS=$tls NGINX_UPSTREAM=${NIM_NGINX_UPSTREAM:-127.0.0.1:$gw} \
      NGINX_CLIENT_MAX_BODY_SIZE=$body NGINX_PROXY_TIMEOUT="${timeout}s" NGINX_WORKER_PROCESSES=$workers \
      NGINX_ERROR_LOG_LEVEL=$level NGINX_ACCESS_LOG=$access
    envsubst "$names" <"$TEMPLATE"
  )
}

serve_behind_nginx() {
  local prefix=${NIM_NGINX_PREFIX:-/tmp/portico-nginx}
  mkdir -p "$prefix/tmp"
  render_nginx_conf >"$prefix/nginx.conf"
  local gw; gw=$(whole NIM_GATEWAY_PORT "${NIM_GATEWAY_PORT:-8080}")

  # -e stderr (nginx >= 1.19.5): not a compiled-in /var/log/nginx/error.log that uid 1000 may not open.
  # Older nginx (Ubuntu 22.04's 1.18) opens that path first; the image links it to /dev/stderr.
  local early_log=()
  if nginx -h 2>&1 | grep -q -- '-e filename'; then early_log=(-e stderr); fi
  nginx -p "$prefix/" "${early_log[@]}" -c "$prefix/nginx.conf" -g 'daemon off;' &
  local nginx_pid=$!
  # The gateway listens on loopback only, in plain HTTP: nginx is what clients reach (and terminates TLS).
  NIM_SERVER_HOST=127.0.0.1 NIM_SERVER_PORT=$gw NIM_SSL_MODE=DISABLED "$PORTICO" "$@" &
  local portico_pid=$!
  log "nginx (pid $nginx_pid) on ${NIM_SERVER_HOST:-0.0.0.0}:${NIM_SERVER_PORT:-8000} -> portico (pid $portico_pid) on 127.0.0.1:$gw"

  trap 'kill -TERM "$portico_pid" 2>/dev/null || true' TERM INT
  set +e
  local code nginx_died=0
  while :; do
    wait -n # returns when either child exits, or early when a trapped signal arrives
    if ! kill -0 "$portico_pid" 2>/dev/null; then break; fi
    if ((!nginx_died)) && ! kill -0 "$nginx_pid" 2>/dev/null; then
      nginx_died=1
      log "nginx exited; stopping portico"
      kill -TERM "$portico_pid" 2>/dev/null
    fi
  done
  wait "$portico_pid"
  code=$?
  if ((nginx_died)); then
    [[ $code != 0 ]] || code=1
  else
    kill -QUIT "$nginx_pid" 2>/dev/null # graceful: portico has already drained
    wait "$nginx_pid"
  fi
  exit "$code"
}

main() {
  local verb=${1:-serve}
  case "$verb" in
    nginx-conf) render_nginx_conf; return ;;
    list-model-profiles) exec "$PORTICO" "$@" ;;
    serve | nim-serve | -*) ;;
    *) exec "$@" ;;
  esac
  [[ $# -gt 0 ]] || set -- serve
  local arg direct=0
  for arg in "$@"; do
    case "$arg" in --dry-run | --ray-worker | --ray-worker=* | --help | -h) direct=1 ;; esac
  done
  case "${NIM_NGINX:-1}" in 0 | false | FALSE | False | no) direct=1 ;; esac
  if ((direct)); then exec "$PORTICO" "$@"; fi
  serve_behind_nginx "$@"
}

main "$@"
