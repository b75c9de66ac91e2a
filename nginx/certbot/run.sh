#!/bin/sh
# The compose stack's certbot service: get the first certificate when there is none, then try
# renewing twice a day (certbot renews once 30 days or less remain, after a random delay of up
# to 8 minutes that spreads the load on Let's Encrypt). The deploy hook links each new
# certificate for nginx and reloads it. Settings come from the environment:
#
#   CERTBOT_DOMAINS     comma-separated names, the first names the certificate
#   CERTBOT_EMAIL       contact for expiry notices
#   CERTBOT_SERVER      the ACME directory: Let's Encrypt's staging one until the stack works,
#                       then https://acme-v02.api.letsencrypt.org/directory
#   CERTBOT_CONFIG_DIR  where certificates live [/etc/letsencrypt]
#   ACME_ROOT           the webroot nginx serves challenges from [/var/www/acme]
#   CERTBOT_ONCE        when set, stop after the first renewal attempt (for tests)
#   CERTBOT_CA_BUNDLE_FILE  a PEM file of the CAs to trust for the ACME server, for a private
#                       one; ignored when empty or absent (Let's Encrypt needs none)
#
# Arguments are passed on to every certbot run.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
domains="${CERTBOT_DOMAINS:?set CERTBOT_DOMAINS}"
email="${CERTBOT_EMAIL:?set CERTBOT_EMAIL}"
server="${CERTBOT_SERVER:?set CERTBOT_SERVER}"
config_dir="${CERTBOT_CONFIG_DIR:-/etc/letsencrypt}"
name="${domains%%,*}"

bundle="${CERTBOT_CA_BUNDLE_FILE:-}"
if [ -n "$bundle" ] && [ ! -e "$bundle" ]; then
    echo "certbot: CERTBOT_CA_BUNDLE_FILE names $bundle, which does not exist" >&2
    exit 1
fi
if [ -n "$bundle" ] && [ ! -c "$bundle" ]; then
    # Docker makes a folder where a named file is missing on the host.
    if [ ! -f "$bundle" ] || [ ! -s "$bundle" ]; then
        echo "certbot: $bundle is not a PEM file; check CERTBOT_CA_BUNDLE in .env (the file beside compose.yaml)" >&2
        exit 1
    fi
    echo "certbot: trusting the CAs in $bundle for $server"
    export REQUESTS_CA_BUNDLE="$bundle"
fi

certbot_with_settings() {
    command="$1"
    shift
    certbot "$command" --config "$here/cli.ini" --server "$server" \
        --config-dir "$config_dir" --webroot-path "${ACME_ROOT:-/var/www/acme}" \
        --deploy-hook "sh $here/deploy-hook.sh" "$@"
}

if [ ! -e "$config_dir/live/$name/fullchain.pem" ]; then
    certbot_with_settings certonly --cert-name "$name" --domains "$domains" --email "$email" "$@"
fi
while :; do
    # The health check asks that this is at most 13 hours old.
    touch "${CERTBOT_HEARTBEAT:-/tmp/certbot-heartbeat}"
    certbot_with_settings renew "$@" || echo "certbot: renewal failed; next try in 12 hours" >&2
    if [ -n "${CERTBOT_ONCE:-}" ]; then
        exit 0
    fi
    sleep 43200
done
