#!/usr/bin/env bash
# A private OAuth 2.0 authorization server on loopback for the XOAUTH2/OAUTHBEARER tests:
# Glewlwyd 2.7 (Debian 12 package, tests/support/oauth/install.sh) with its OpenID Connect plugin,
# an sqlite database and its log in DIR. Nothing outside DIR is written; no root needed.
#
#   server.sh start DIR PORT        creates DIR if missing (it must then be empty), starts
#                                   glewlwyd on 127.0.0.1:PORT (pid in DIR/glewlwyd.pid), creates
#                                   the scopes, the test client and the test user through the admin
#                                   API, writes DIR/oauth.env, prints "ready"
#   server.sh stop DIR              SIGTERM to that pid (checked to be this DIR's glewlwyd), waits
#   server.sh token DIR [user|client]
#                                   prints a fresh access token: "user" (default) by the password
#                                   grant for OAUTH_USER, "client" by the client-credentials grant
#   server.sh expire DIR TOKEN      makes TOKEN expired now (its issue time is moved back in the
#                                   database, so introspection answers {"active":false})
#   server.sh approve DIR USER_CODE does the user's part of the device authorization grant
#                                   (RFC 8628): logs in as OAUTH_USER and approves USER_CODE
#
# Environment for start:
#   MXTRACE_OAUTH_TOKEN_TTL=SECONDS access token lifetime (default 3600)
#   MXTRACE_OAUTH_TLS=1             serve HTTPS instead of HTTP; the certificate is CERTS/server.pem
#                                   + server.key with CERTS/ca.pem when MXTRACE_OAUTH_CERTS=CERTS
#                                   is set, else a private CA and a certificate for 127.0.0.1,
#                                   localhost and auth.contoso.test made with openssl in DIR
set -euo pipefail
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# Test identities (loopback tests only).
CLIENT_ID=mxtrace-test
CLIENT_SECRET=lab-client-secret-1
OAUTH_USER=user@contoso.test
OAUTH_PASSWORD=lab-secret-1
USER_SCOPE=mail
CLIENT_SCOPE=mail-client
PLUGIN=oidc
# Glewlwyd's initial database (init.sqlite3.sql) has this administrator.
ADMIN_USER=admin
ADMIN_PASSWORD=password
TLS_NAME=auth.contoso.test

die() { echo "oauth/server.sh: $*" >&2; exit 1; }
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' >&2
    exit 2
}

# The live pid of DIR's glewlwyd, or nothing: a stale pid file never makes us signal another
# process (its command line must name our config).
live_pid() {
    local dir="$1" pid
    pid="$(cat "$dir/glewlwyd.pid" 2>/dev/null || true)"
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $dir/glewlwyd.conf"; then
        echo "$pid"
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Reads DIR/oauth.env into the environment.
load_env() {
    [ -f "$1/oauth.env" ] || die "no $1/oauth.env (is the server started?)"
    # shellcheck disable=SC1091
    . "$1/oauth.env"
}

# curl against our own server. -k for HTTPS: we started it ourselves on loopback, and a
# certificate from MXTRACE_OAUTH_CERTS need not name 127.0.0.1.
ccurl() { curl -sS -k --max-time 10 "$@"; }

# POST/PUT JSON to the admin API with the admin session cookie; fails unless HTTP 200.
admin_api() {
    local dir="$1" method="$2" path="$3" body="$4" code
    code="$(ccurl -o "$dir/api.out" -w '%{http_code}' -b "$dir/admin.cookies" -c "$dir/admin.cookies" \
        -X "$method" -H 'Content-Type: application/json' -d "$body" "$API/$path")" || code=000
    if [ "$code" != 200 ]; then
        echo "oauth/server.sh: $method /api/$path -> HTTP $code: $(cat "$dir/api.out" 2>/dev/null)" >&2
        return 1
    fi
}

make_certs() {
    local dir="$1"
    if [ -n "${MXTRACE_OAUTH_CERTS:-}" ]; then
        install -m 644 "$MXTRACE_OAUTH_CERTS/ca.pem" "$MXTRACE_OAUTH_CERTS/server.pem" "$dir/"
        install -m 600 "$MXTRACE_OAUTH_CERTS/server.key" "$dir/"
        return
    fi
    (
        cd "$dir"
        umask 077
        openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout ca.key -out ca.pem -days 3650 -subj "/CN=mxtrace oauth test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout server.key -out server.csr -subj "/CN=$TLS_NAME" 2>/dev/null
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:$TLS_NAME,DNS:localhost,IP:127.0.0.1" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 3650 -sha256 -extfile server.ext -out server.pem 2>/dev/null
        rm -f server.csr server.ext ca.srl
        chmod 644 ca.pem server.pem
    )
}

fail_start() {
    local dir="$1"
    shift
    echo "oauth/server.sh: start failed: $*" >&2
    for f in glewlwyd.out glewlwyd.log; do
        if [ -s "$dir/$f" ]; then
            echo "--- tail of $dir/$f ---" >&2
            grep -v 'Add endpoint' "$dir/$f" | tail -n 20 >&2
        fi
    done
    stop "$dir" >/dev/null 2>&1 || true
    exit 1
}

start() {
    [ $# -eq 2 ] || usage
    local dir="$1" port="$2" ttl="${MXTRACE_OAUTH_TOKEN_TTL:-3600}" scheme=http key
    case "$port" in '' | *[!0-9]*) die "bad port '$port'" ;; esac
    case "$ttl" in '' | *[!0-9]* | 0) die "bad MXTRACE_OAUTH_TOKEN_TTL '$ttl'" ;; esac
    command -v glewlwyd >/dev/null || die "glewlwyd not installed (run tests/support/oauth/install.sh)"
    local sql=/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz
    [ -f "$sql" ] || die "missing $sql (run tests/support/oauth/install.sh)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd -P)"
    # The path goes unquoted into glewlwyd.conf, dovecot configs and oauth.env.
    [[ "$dir" =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR path '$dir' has characters other than [A-Za-z0-9._/+-]"
    [ -z "$(live_pid "$dir")" ] || die "a server is already running in $dir"
    [ -z "$(ls -A "$dir")" ] || die "DIR '$dir' must be empty"
    port_open "$port" && die "127.0.0.1:$port is already in use"

    # One transaction without fsync: statement by statement it takes 2-3 s on a busy machine.
    # WAL (kept in the file) also makes Glewlwyd's own writes cheaper.
    { echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN;"; zcat "$sql"; echo "COMMIT;"; } \
        | sqlite3 "$dir/glewlwyd.db" >/dev/null
    key="$(openssl rand -hex 32)"
    # The client's certificate credential (RFC 7523 private_key_jwt, as an Entra ID app's
    # certificate): an RSA key, a self-signed certificate, and the public key Glewlwyd checks
    # client assertions with (the client's `pubkey` property).
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$dir/client-key.pem" \
        -out "$dir/client-cert.pem" -subj "/CN=$CLIENT_ID" -days 2 2>/dev/null \
        || fail_start "$dir" "client certificate"
    local pubkey
    pubkey="$(openssl x509 -in "$dir/client-cert.pem" -pubkey -noout | awk '{printf "%s\\n", $0}')"
    local tls_conf=""
    if [ "${MXTRACE_OAUTH_TLS:-}" = 1 ]; then
        scheme=https
        make_certs "$dir"
        # Glewlwyd (ulfius/GnuTLS) reads the key and certificate chain files itself.
        tls_conf="use_secure_connection=true
secure_connection_key_file=\"$dir/server.key\"
secure_connection_pem_file=\"$dir/server.pem\""
    fi
    local base="$scheme://127.0.0.1:$port"
    cat >"$dir/glewlwyd.conf" <<EOF
# Generated by tests/support/oauth/server.sh (Glewlwyd 2.7, libconfig syntax).
port=$port
bind_address="127.0.0.1"
external_url="$base"
login_url="login.html"
api_prefix="api"
allow_origin="*"
log_mode="file"
log_level="INFO"
log_file="$dir/glewlwyd.log"
# Plain HTTP on loopback: the admin session cookie must not be "Secure".
cookie_secure=0
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
hash_algorithm="SHA512"
# "use_secure_connection=false" is an error in 2.7.5 (it wants the key files whenever the
# setting is present): leave it out for HTTP.
$tls_conf
database = { type = "sqlite3"; path = "$dir/glewlwyd.db"; };
EOF

    glewlwyd -c "$dir/glewlwyd.conf" </dev/null >"$dir/glewlwyd.out" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/glewlwyd.pid"
    for _ in $(seq 1 200); do
        port_open "$port" && break
        kill -0 "$pid" 2>/dev/null || fail_start "$dir" "glewlwyd exited"
        sleep 0.02
    done
    port_open "$port" || fail_start "$dir" "127.0.0.1:$port not accepting connections after 4 s"

    API="$base/api"
    admin_api "$dir" POST auth/ "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\"}" \
        || fail_start "$dir" "admin login"
    # Scopes: USER_SCOPE for tokens of a user (password and device grants), CLIENT_SCOPE for
    # tokens of the client itself (client-credentials grant), so that Dovecot can tell them apart.
    admin_api "$dir" POST scope/ "{\"name\":\"$USER_SCOPE\",\"display_name\":\"Mail\",\"description\":\"SMTP submission and IMAP as the user\",\"password_required\":false,\"scheme\":{}}" \
        || fail_start "$dir" "scope $USER_SCOPE"
    admin_api "$dir" POST scope/ "{\"name\":\"$CLIENT_SCOPE\",\"display_name\":\"Mail (client)\",\"description\":\"SMTP submission as the client\",\"password_required\":false,\"scheme\":{}}" \
        || fail_start "$dir" "scope $CLIENT_SCOPE"
    # The OIDC plugin (the OAuth2-only plugin is deprecated): JWT access tokens signed HS256,
    # client-credentials, password, device and refresh grants, introspection (RFC 7662) and
    # revocation (RFC 7009) for the client that the token was issued to (HTTP Basic auth).
    admin_api "$dir" POST mod/plugin/ "{\"module\":\"oidc\",\"name\":\"$PLUGIN\",\"display_name\":\"mxtrace lab\",\"enabled\":true,\"parameters\":{
        \"iss\":\"$base/api/$PLUGIN\",\"jwt-type\":\"sha\",\"jwt-key-size\":\"256\",\"key\":\"$key\",
        \"access-token-duration\":$ttl,\"refresh-token-duration\":1209600,\"code-duration\":600,
        \"allow-non-oidc\":true,\"auth-type-client-enabled\":true,\"auth-type-password-enabled\":true,
        \"auth-type-code-enabled\":true,\"auth-type-refresh-enabled\":true,\"auth-type-device-enabled\":true,
        \"device-authorization-expiration\":600,\"device-authorization-interval\":1,
        \"introspection-revocation-allowed\":true,\"introspection-revocation-allow-target-client\":true,
        \"request-parameter-allow\":true,\"client-pubkey-parameter\":\"pubkey\"}}" \
        || fail_start "$dir" "oidc plugin"
    # A confidential client: token_endpoint_auth_method must list the methods, else Glewlwyd
    # refuses every authentication of a confidential client. The client's own scope list is
    # what the client-credentials grant may have; client_credentials is also what lets it
    # introspect its tokens.
    admin_api "$dir" POST client/ "{\"client_id\":\"$CLIENT_ID\",\"name\":\"mxtrace tests\",\"confidential\":true,\"enabled\":true,
        \"client_secret\":\"$CLIENT_SECRET\",\"pubkey\":\"$pubkey\",
        \"token_endpoint_auth_method\":[\"client_secret_basic\",\"client_secret_post\",\"private_key_jwt\"],
        \"authorization_type\":[\"client_credentials\",\"password\",\"device_authorization\",\"refresh_token\",\"code\"],
        \"redirect_uri\":[\"http://127.0.0.1/callback\"],\"scope\":[\"$CLIENT_SCOPE\"]}" \
        || fail_start "$dir" "client $CLIENT_ID"
    admin_api "$dir" POST user/ "{\"username\":\"$OAUTH_USER\",\"name\":\"Lab user\",\"email\":\"$OAUTH_USER\",\"enabled\":true,
        \"scope\":[\"$USER_SCOPE\",\"g_profile\"],\"password\":\"$OAUTH_PASSWORD\"}" \
        || fail_start "$dir" "user $OAUTH_USER"
    rm -f "$dir/api.out" "$dir/admin.cookies"

    cat >"$dir/oauth.env.tmp" <<EOF
OAUTH_DIR=$dir
OAUTH_PORT=$port
OAUTH_PID=$pid
OAUTH_ISSUER=$base/api/$PLUGIN
OAUTH_DISCOVERY_URL=$base/api/$PLUGIN/.well-known/openid-configuration
OAUTH_TOKEN_URL=$base/api/$PLUGIN/token
OAUTH_INTROSPECT_URL=$base/api/$PLUGIN/introspect
OAUTH_REVOKE_URL=$base/api/$PLUGIN/revoke
OAUTH_DEVICE_URL=$base/api/$PLUGIN/device_authorization
OAUTH_CLIENT_ID=$CLIENT_ID
OAUTH_CLIENT_SECRET=$CLIENT_SECRET
OAUTH_CLIENT_CERT=$dir/client-cert.pem
OAUTH_CLIENT_KEY=$dir/client-key.pem
OAUTH_CLIENT_SCOPE=$CLIENT_SCOPE
OAUTH_USER=$OAUTH_USER
OAUTH_PASSWORD=$OAUTH_PASSWORD
OAUTH_USER_SCOPE=$USER_SCOPE
OAUTH_TOKEN_TTL=$ttl
OAUTH_JWT_HS256_KEY=$key
OAUTH_ADMIN_USER=$ADMIN_USER
OAUTH_ADMIN_PASSWORD=$ADMIN_PASSWORD
EOF
    if [ "$scheme" = https ]; then
        echo "OAUTH_CA_FILE=$dir/ca.pem" >>"$dir/oauth.env.tmp"
    fi
    mv "$dir/oauth.env.tmp" "$dir/oauth.env"
    echo ready
}

stop() {
    [ $# -eq 1 ] || usage
    local dir="$1" pid
    [ -d "$dir" ] || return 0
    dir="$(cd "$dir" && pwd -P)"
    pid="$(live_pid "$dir")"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [ -n "$(live_pid "$dir")" ] || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

token() {
    [ $# -ge 1 ] && [ $# -le 2 ] || usage
    local dir="$1" kind="${2:-user}" out
    load_env "$dir"
    case "$kind" in
        user)
            out="$(ccurl -u "$OAUTH_CLIENT_ID:$OAUTH_CLIENT_SECRET" -d grant_type=password \
                --data-urlencode "username=$OAUTH_USER" --data-urlencode "password=$OAUTH_PASSWORD" \
                -d "scope=$OAUTH_USER_SCOPE" "$OAUTH_TOKEN_URL")"
            ;;
        client)
            out="$(ccurl -u "$OAUTH_CLIENT_ID:$OAUTH_CLIENT_SECRET" -d grant_type=client_credentials \
                -d "scope=$OAUTH_CLIENT_SCOPE" "$OAUTH_TOKEN_URL")"
            ;;
        *) usage ;;
    esac
    local t
    t="$(printf '%s' "$out" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"
    [ -n "$t" ] || die "no access_token in: $out"
    echo "$t"
}

# The "jti" claim of a JWT (payload decoded with base64url).
jwt_jti() {
    local p="${1#*.}"
    p="${p%%.*}"
    p="$(printf '%s' "$p" | tr '_-' '/+')"
    while [ $((${#p} % 4)) -ne 0 ]; do p="$p="; done
    printf '%s' "$p" | base64 -d 2>/dev/null | sed -n 's/.*"jti":"\([A-Za-z0-9]*\)".*/\1/p'
}

expire() {
    [ $# -eq 2 ] || usage
    local dir="$1" jti n
    load_env "$dir"
    jti="$(jwt_jti "$2")"
    [ -n "$jti" ] || die "not a Glewlwyd access token (no jti claim)"
    # Glewlwyd's introspection computes expiry as issued_at + access-token-duration; moving
    # issued_at back makes the token expired exactly as if its lifetime had passed.
    n="$(sqlite3 "$dir/glewlwyd.db" ".timeout 5000" \
        "UPDATE gpo_access_token SET gpoa_issued_at = gpoa_issued_at - $OAUTH_TOKEN_TTL - 60 WHERE gpoa_jti = '$jti'; SELECT changes();")"
    [ "$n" = 1 ] || die "no access token with jti $jti in $dir/glewlwyd.db"
}

approve() {
    [ $# -eq 2 ] || usage
    local dir="$1" code="$2" jar loc
    load_env "$dir"
    [[ "$code" =~ ^[A-Za-z0-9-]+$ ]] || die "bad user code '$code'"
    jar="$(mktemp)"
    # What the user does in a browser at verification_uri: log in, consent to the client's
    # scopes, confirm the code. The last step redirects to login.html with prompt=deviceComplete.
    local api="${OAUTH_ISSUER%/*}"
    ccurl -o /dev/null -c "$jar" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$OAUTH_USER\",\"password\":\"$OAUTH_PASSWORD\"}" "$api/auth/"
    ccurl -o /dev/null -b "$jar" -X PUT -H 'Content-Type: application/json' \
        -d "{\"scope\":\"$OAUTH_USER_SCOPE\"}" "$api/auth/grant/$OAUTH_CLIENT_ID"
    loc="$(ccurl -o /dev/null -b "$jar" -w '%{redirect_url}' "$OAUTH_ISSUER/device?code=$code&g_continue")"
    rm -f "$jar"
    case "$loc" in
        *prompt=deviceComplete*) ;;
        *) die "device code $code not approved (redirect: $loc)" ;;
    esac
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
    start) start "$@" ;;
    stop) stop "$@" ;;
    token) token "$@" ;;
    expire) expire "$@" ;;
    approve) approve "$@" ;;
    *) usage ;;
esac
