#!/bin/sh
# The nginx image's start (docker/nginx.Dockerfile): render nginx.conf.template from the
# NGINX_* environment with envsubst, as `cargo xtask nginx render` does; make sure nginx has a
# certificate (Let's Encrypt's when certbot already got one, else a self-signed one until it
# does); have nginx test the result; then run it in the foreground.
#
#   docker-entrypoint.sh              start nginx
#   docker-entrypoint.sh render DIR   only render into DIR (the tests compare this rendering
#                                     with xtask's)
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
render "$conf_dir"
sh "$here/certificate-link.sh" self-signed
live="/etc/letsencrypt/live/${NGINX_SERVER_NAME:?set NGINX_SERVER_NAME}"
if [ -r "$live/fullchain.pem" ]; then
    sh "$here/certificate-link.sh" "$live"
fi
nginx -t -q -c "$conf_dir/nginx.conf"
exec nginx -c "$conf_dir/nginx.conf" -g 'daemon off;'
