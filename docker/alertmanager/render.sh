#!/bin/sh
# Writes Alertmanager's whole configuration to OUT: alertmanager.yml beside this script with
# the `ops` receiver appended, made of what is configured. The alertmanager service runs it at
# start (OUT on a tmpfs, since it then holds the webhook URL); the tests run it too.
#
#   render.sh OUT
#
#   ALERT_WEBHOOK_URL_FILE    a file holding the webhook's URL (default
#                             /run/secrets/alert_webhook_url); empty or absent: no webhook
#   ALERT_EMAIL_TO            e-mail recipients, comma-separated; empty: no e-mail
#   ALERT_EMAIL_FROM          the sender, and the SMTP server as host:port; both required
#   ALERT_SMTP_SMARTHOST      with ALERT_EMAIL_TO
#   ALERT_SMTP_USERNAME       the SMTP login, if the server wants one; its password is read
#   ALERT_SMTP_PASSWORD_FILE  by Alertmanager from this file (default
#                             /run/secrets/alert_smtp_password)
#   ALERT_SMTP_REQUIRE_TLS    true (default) or false: STARTTLS before anything is sent
#
# At least one of the webhook and e-mail must be configured: alerts nobody receives would
# fail silently.
set -eu

out="${1:?usage: render.sh OUT}"
here="$(cd "$(dirname "$0")" && pwd)"
# A refused setting leaves no half-written file behind.
trap 'rm -f "$out.tmp"' EXIT

# Values go between double quotes in YAML, so they may not contain quotes, backslashes or
# line breaks; none of them appear in a URL, an address or a host name.
quoted() {
    case "$2" in
        *'"'* | *'\'* | *'
'*)
            echo "alertmanager: $1 holds a quote, a backslash or a line break; check its value" >&2
            exit 1
            ;;
    esac
    printf '"%s"' "$2"
}

webhook_url_file="${ALERT_WEBHOOK_URL_FILE:-/run/secrets/alert_webhook_url}"
webhook_url=""
if [ -r "$webhook_url_file" ]; then
    webhook_url="$(tr -d '\r\n' < "$webhook_url_file")"
fi
email_to="${ALERT_EMAIL_TO:-}"

if [ -z "$webhook_url" ] && [ -z "$email_to" ]; then
    echo "alertmanager: no receiver: put a webhook URL in $webhook_url_file (secrets/alert_webhook_url) or set ALERT_EMAIL_TO in .env" >&2
    exit 1
fi

{
    cat "$here/alertmanager.yml"
    echo
    echo "# Appended by render.sh from the secrets and ALERT_* settings."
    echo "receivers:"
    echo "  - name: ops"
    if [ -n "$webhook_url" ]; then
        case "$webhook_url" in
            http://* | https://*) ;;
            *)
                echo "alertmanager: $webhook_url_file must hold an http:// or https:// URL" >&2
                exit 1
                ;;
        esac
        echo "    webhook_configs:"
        echo "      - url: $(quoted "the webhook URL" "$webhook_url")"
        echo "        send_resolved: true"
    fi
    if [ -n "$email_to" ]; then
        from="${ALERT_EMAIL_FROM:?alertmanager: set ALERT_EMAIL_FROM, the sender of alert e-mails}"
        smarthost="${ALERT_SMTP_SMARTHOST:?alertmanager: set ALERT_SMTP_SMARTHOST, the SMTP server as host:port}"
        require_tls="${ALERT_SMTP_REQUIRE_TLS:-true}"
        case "$require_tls" in
            true | false) ;;
            *)
                echo "alertmanager: ALERT_SMTP_REQUIRE_TLS must be true or false, not $require_tls" >&2
                exit 1
                ;;
        esac
        echo "    email_configs:"
        echo "      - to: $(quoted ALERT_EMAIL_TO "$email_to")"
        echo "        from: $(quoted ALERT_EMAIL_FROM "$from")"
        echo "        smarthost: $(quoted ALERT_SMTP_SMARTHOST "$smarthost")"
        echo "        require_tls: $require_tls"
        echo "        send_resolved: true"
        if [ -n "${ALERT_SMTP_USERNAME:-}" ]; then
            echo "        auth_username: $(quoted ALERT_SMTP_USERNAME "$ALERT_SMTP_USERNAME")"
            echo "        auth_password_file: $(quoted ALERT_SMTP_PASSWORD_FILE "${ALERT_SMTP_PASSWORD_FILE:-/run/secrets/alert_smtp_password}")"
        fi
    fi
} > "$out.tmp"
mv "$out.tmp" "$out"
