# Sourced by sasl.sh and imap.sh when MXTRACE_LAB_OAUTH=OAUTHDIR names a running OAuth server
# (tests/support/oauth/server.sh start OAUTHDIR PORT): Dovecot's oauth2 passdb validating its
# tokens by introspection (RFC 7662), for the SASL mechanisms XOAUTH2 and OAUTHBEARER.
#
#   oauth2_load                 reads OAUTHDIR/oauth.env (OAUTH_* variables); dies if absent
#   oauth2_passdbs DIR          writes DIR/oauth2-user.conf.ext and DIR/oauth2-client.conf.ext,
#                               prints the two passdb blocks for dovecot.conf
#
# Two oauth2 passdbs, told apart by the SASL user name (username_filter):
#   - user@domain (any name with an @): a user's token (password or device grant). Glewlwyd's
#     introspection names the user in "username"; the token must have OAUTH_USER_SCOPE.
#   - OAUTH_CLIENT_ID: the client's own token (client-credentials grant). Its introspection has
#     no "username", only "client_id"; the token must have OAUTH_CLIENT_SCOPE (a user's token of
#     the same client also has that client_id, the scope tells them apart).
# Dovecot POSTs token=... to the introspection URL with HTTP Basic auth from the URL's userinfo
# (the test client's id and secret: Glewlwyd lets a client introspect the tokens issued to it).

oauth2_load() {
    local env="${MXTRACE_LAB_OAUTH%/}/oauth.env"
    [ -f "$env" ] || { echo "MXTRACE_LAB_OAUTH: no $env (start tests/support/oauth/server.sh first)" >&2; return 1; }
    # shellcheck disable=SC1090
    . "$env"
    [ -n "${OAUTH_INTROSPECT_URL:-}" ] && [ -n "${OAUTH_CLIENT_ID:-}" ] \
        || { echo "MXTRACE_LAB_OAUTH: $env lacks OAUTH_INTROSPECT_URL/OAUTH_CLIENT_ID" >&2; return 1; }
}

# One passdb args file: $1 path, $2 username attribute, $3 scope.
oauth2_conf() {
    local file="$1" attr="$2" scope="$3" url
    # http://127.0.0.1:PORT/... -> http://ID:SECRET@127.0.0.1:PORT/...
    url="${OAUTH_INTROSPECT_URL/:\/\//://$OAUTH_CLIENT_ID:$OAUTH_CLIENT_SECRET@}"
    {
        echo "# Generated from $MXTRACE_LAB_OAUTH/oauth.env (tests/support/dovecot/oauth2.sh)."
        echo "introspection_mode = post"
        echo "introspection_url = $url"
        echo "username_attribute = $attr"
        echo "active_attribute = active"
        echo "active_value = true"
        echo "scope = $scope"
        echo "timeout_msecs = 5000"
        if [ -n "${OAUTH_CA_FILE:-}" ]; then echo "tls_ca_cert_file = ${file%/*}/oauth-ca.pem"; fi
    } >"$file"
    # Read by the auth process (user dovecot); holds the client secret.
    chown dovecot "$file" && chmod 600 "$file"
}

oauth2_passdbs() {
    local dir="$1"
    # HTTPS: the auth process (user dovecot) reads the CA file, which may sit in a 0700 directory.
    if [ -n "${OAUTH_CA_FILE:-}" ]; then install -m 644 "$OAUTH_CA_FILE" "$dir/oauth-ca.pem"; fi
    oauth2_conf "$dir/oauth2-user.conf.ext" username "$OAUTH_USER_SCOPE"
    oauth2_conf "$dir/oauth2-client.conf.ext" client_id "$OAUTH_CLIENT_SCOPE"
    cat <<CONF
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  username_filter = *@*
  args = $dir/oauth2-user.conf.ext
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  username_filter = $OAUTH_CLIENT_ID
  args = $dir/oauth2-client.conf.ext
}
CONF
}
