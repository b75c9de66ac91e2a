#!/bin/sh
# The nginx image's start (docker/nginx.Dockerfile): render nginx.conf.template from the
# NGINX_* environment with envsubst, as `cargo xtask nginx render` does; make sure nginx has a
# certificate (Let's Encrypt's when certbot already got one, else a self-signed one until it
# does); have nginx test the result; then run it in the foreground.
#
#   docker-entrypoint.sh              start nginx
#   docker-entrypoint.sh render DIR   only render into DIR (the tests compare this rendering
#                                     with xtask's)
#   docker-entrypoint.sh upstream [HOST:PORT...]
#                                     in the running container: proxy every new request to
#                                     these addresses (none: back to NGINX_UPSTREAM), by a
#                                     reload, not a restart. `cargo xtask deploy` uses it to
#                                     switch to a new app-web it started beside the old one.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
template="$here/nginx.conf.template"

render() {
    out="$1"
    variables="$(grep -o '\${NGINX_[A-Z0-9_]*}' "$template" | sort -u)"
    missing=""
    for variable in $variables; do
        name="${variable#??}"
        name="${name%?}"
        eval "value=\"\${$name:-}\""
        [ -n "$value" ] || missing="$missing $name"
    done
    if [ -n "$missing" ]; then
        echo "nginx: the template needs values for:$missing" >&2
        exit 1
    fi
    mkdir -p "$out/snippets"
    envsubst "$(echo $variables)" < "$template" > "$out/nginx.conf.new"
    mv "$out/nginx.conf.new" "$out/nginx.conf"
    cp "$here"/snippets/*.conf "$out/snippets/"
}

if [ "${1:-}" = render ]; then
    render "${2:?usage: docker-entrypoint.sh render DIR}"
    exit 0
fi

conf_dir="${NGINX_RUNTIME_DIR:?set NGINX_RUNTIME_DIR}/conf"

# The master's children (workers, cache manager) by process id: nginx runs as PID 1 here.
children() {
    for stat in /proc/[0-9]*/stat; do
        { read -r pid _ _ parent _ < "$stat"; } 2>/dev/null || continue
        if [ "$parent" = 1 ]; then echo "$pid"; fi
    done
}

if [ "${1:-}" = upstream ]; then
    shift
    upstream="${NGINX_UPSTREAM:?set NGINX_UPSTREAM}"
    if [ "$#" -gt 0 ]; then
        upstream=""
        for address in "$@"; do
            case "$address" in
                *[!A-Za-z0-9.:_-]* | *:*:* | :* | *:) ;;
                *:*) upstream="${upstream:+$upstream;
        server }$address"
                    continue ;;
            esac
            echo "nginx: upstream: '$address' is not HOST:PORT (letters, digits, '.', '_', '-')" >&2
            exit 2
        done
    fi
    # Rendered beside the live configuration and tested there; only a configuration nginx
    # accepts replaces it, and only a reload nginx takes (new workers) counts.
    next_dir="$NGINX_RUNTIME_DIR/conf.next"
    rm -rf "$next_dir"
    NGINX_UPSTREAM="$upstream" render "$next_dir"
    if ! nginx -t -q -c "$next_dir/nginx.conf"; then
        rm -rf "$next_dir"
        echo "nginx: upstream: nginx refuses the configuration for $*; nothing changed" >&2
        exit 1
    fi
    cp "$conf_dir/nginx.conf" "$conf_dir/nginx.conf.previous"
    mv "$next_dir/nginx.conf" "$conf_dir/nginx.conf"
    rm -rf "$next_dir"
    before="$(children)"
    put_back() {
        mv "$conf_dir/nginx.conf.previous" "$conf_dir/nginx.conf"
        echo "nginx: upstream: $1; the previous configuration is back" >&2
        exit 1
    }
    kill -HUP 1 || put_back "nginx's master did not take the signal"
    # A reload nginx takes starts new workers; one it rejects leaves the old ones alone.
    waited=0
    while :; do
        started=""
        for pid in $(children); do
            case " $before " in *" $pid "*) ;; *) started="$started $pid" ;; esac
        done
        [ -n "$started" ] && break
        [ "$waited" -ge 10 ] && put_back "nginx started no workers on the new configuration within 5s (its log says why)"
        sleep 0.5
        waited=$((waited + 1))
    done
    rm -f "$conf_dir/nginx.conf.previous"
    # The workers that served the old configuration finish their requests and exit; only
    # then has every request left the old upstream. Waited for up to
    # NGINX_RELOAD_WAIT_SECS (30) seconds.
    waited=0
    while :; do
        left=""
        for pid in $before; do
            if [ -e "/proc/$pid" ]; then left="$left $pid"; fi
        done
        [ -z "$left" ] && break
        if [ "$waited" -ge "${NGINX_RELOAD_WAIT_SECS:-30}" ]; then
            echo "nginx: upstream: workers of the old configuration still run after ${waited}s:$left" >&2
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "nginx: proxying to ${*:-$NGINX_UPSTREAM}; the old workers finished within ${waited}s"
    exit 0
fi

render "$conf_dir"
sh "$here/certificate-link.sh" self-signed
live="/etc/letsencrypt/live/${NGINX_SERVER_NAME:?set NGINX_SERVER_NAME}"
if [ -r "$live/fullchain.pem" ]; then
    sh "$here/certificate-link.sh" "$live"
fi
nginx -t -q -c "$conf_dir/nginx.conf"
exec nginx -c "$conf_dir/nginx.conf" -g 'daemon off;'
