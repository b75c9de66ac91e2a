#!/bin/sh
# certbot's deploy hook, run after every successful issuance or renewal: point nginx at the
# new certificate ($RENEWED_LINEAGE, set by certbot) and have it reload, which swaps
# certificates without dropping a connection. In compose the certbot container shares nginx's
# process namespace and its runtime folder, so the pid file names nginx's master.
set -eu

here="$(dirname "$0")"
sh "$here/../certificate-link.sh" "${RENEWED_LINEAGE:?certbot sets RENEWED_LINEAGE}"
kill -HUP "$(cat "${NGINX_PID_FILE:-/run/nginx/nginx.pid}")"
echo "deploy-hook: nginx now serves $RENEWED_LINEAGE"
