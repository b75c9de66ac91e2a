#!/bin/sh
# The compose stack's certbot service: get the first certificate when there is none, then try
# renewing twice a day (certbot renews once 30 days or less remain, after a random delay of up
# to 8 minutes that spreads the load on Let's Encrypt). The deploy hook links each new
# certificate for nginx and reloads it. Settings come from the environment:
#
#   CERTBOT_DOMAINS   comma-separated names, the first names the certificate
#   CERTBOT_EMAIL     contact for expiry notices
#   CERTBOT_SERVER    the ACME directory: Let's Encrypt's staging one until the stack works,
#                     then https://acme-v02.api.letsencrypt.org/directory
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
domains="${CERTBOT_DOMAINS:?set CERTBOT_DOMAINS}"
email="${CERTBOT_EMAIL:?set CERTBOT_EMAIL}"
server="${CERTBOT_SERVER:?set CERTBOT_SERVER}"
name="${domains%%,*}"

certbot_with_settings() {
    certbot --config "$here/cli.ini" --server "$server" \
        --webroot-path "${ACME_ROOT:-/var/www/acme}" \
        --deploy-hook "sh $here/deploy-hook.sh" "$@"
}

if [ ! -e "/etc/letsencrypt/live/$name/fullchain.pem" ]; then
    certbot_with_settings certonly --cert-name "$name" --domains "$domains" --email "$email"
fi
while :; do
    # The health check asks that this is at most 13 hours old.
    touch "${CERTBOT_HEARTBEAT:-/tmp/certbot-heartbeat}"
    certbot_with_settings renew || echo "certbot: renewal failed; next try in 12 hours" >&2
    sleep 43200
done
