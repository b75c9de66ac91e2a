#!/bin/sh
# Points nginx at a certificate: NGINX_CERT_DIR/current becomes a link to a folder holding
# fullchain.pem and privkey.pem, replaced in one rename so nginx never reads half a change.
#
#   certificate-link.sh self-signed   before the first real certificate exists: makes a
#                                     self-signed one for NGINX_SERVER_NAME (unless one is
#                                     there) so nginx can start and serve ACME challenges
#   certificate-link.sh FOLDER        after certbot issued or renewed one (the deploy hook
#                                     passes $RENEWED_LINEAGE)
#
# The nginx config names NGINX_CERT_DIR/current/fullchain.pem and privkey.pem.
set -eu

cert_dir="${NGINX_CERT_DIR:-/etc/nginx/certs}"
target="${1:?usage: certificate-link.sh self-signed|FOLDER}"
mkdir -p "$cert_dir"

if [ "$target" = self-signed ]; then
    if [ -e "$cert_dir/current/fullchain.pem" ]; then
        exit 0
    fi
    name="${NGINX_SERVER_NAME:?set NGINX_SERVER_NAME}"
    target="$cert_dir/self-signed"
    mkdir -p "$target"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
        -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
        -addext "extendedKeyUsage=serverAuth" \
        -keyout "$target/privkey.pem" -out "$target/fullchain.pem" 2>/dev/null
fi

for file in fullchain.pem privkey.pem; do
    if [ ! -r "$target/$file" ]; then
        echo "certificate-link.sh: $target/$file is missing" >&2
        exit 1
    fi
done
ln -sfn "$target" "$cert_dir/current.new"
mv -T "$cert_dir/current.new" "$cert_dir/current"
