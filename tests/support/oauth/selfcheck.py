#!/usr/bin/env python3
"""Check a running OAuth server (tests/support/oauth/server.sh) answers as README.md says,
printing each HTTP exchange: the client-credentials, password, device and refresh grants, token
introspection (RFC 7662) of good, expired and wrong tokens, revocation.

Usage: selfcheck.py OAUTHDIR   (reads OAUTHDIR/oauth.env; needs server.sh beside it)
Exits non-zero on the first mismatch. Standard library only.
"""
import base64
import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def fail(why):
    sys.exit(f"FAILED: {why}")


def check(cond, what):
    print(f"{'ok ' if cond else 'BAD'} {what}")
    if not cond:
        fail(what)


def main(odir):
    env = {}
    with open(f"{odir}/oauth.env") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    ctx = ssl.create_default_context(cafile=env["OAUTH_CA_FILE"]) if "OAUTH_CA_FILE" in env else None
    basic = "Basic " + base64.b64encode(f"{env['OAUTH_CLIENT_ID']}:{env['OAUTH_CLIENT_SECRET']}".encode()).decode()
    srv = f"{sys.path[0]}/server.sh"

    def post(url, form, auth=basic, show=True):
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(url, data=data, method="POST")
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                status, body = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        if show:
            shown = {k: (v[:16] + "..." if k in ("token", "device_code", "refresh_token") else v)
                     for k, v in form.items()}
            print(f"POST {url.split('/api/')[1]} {shown}{' (Basic auth)' if auth else ''}")
            print(f"  -> {status} {body if len(body) < 400 else body[:400] + '...'}")
        return status, (json.loads(body) if body.startswith("{") else body)

    def introspect(token):
        return post(env["OAUTH_INTROSPECT_URL"], {"token": token})

    print("=== discovery")
    with urllib.request.urlopen(env["OAUTH_DISCOVERY_URL"], context=ctx, timeout=10) as r:
        disc = json.load(r)
    for k in ("issuer", "token_endpoint", "introspection_endpoint", "device_authorization_endpoint",
              "grant_types_supported"):
        print(f"  {k}: {disc.get(k)}")
    check(disc["introspection_endpoint"] == env["OAUTH_INTROSPECT_URL"], "discovery names the introspection endpoint")

    print("=== client-credentials grant (RFC 6749 4.4)")
    st, cc = post(env["OAUTH_TOKEN_URL"], {"grant_type": "client_credentials", "scope": env["OAUTH_CLIENT_SCOPE"]})
    check(st == 200 and cc["token_type"] == "bearer", "client token issued")
    st, it = introspect(cc["access_token"])
    check(st == 200 and it["active"] is True and it["client_id"] == env["OAUTH_CLIENT_ID"]
          and "username" not in it, "introspection: active, client_id, no username")
    st, _ = post(env["OAUTH_TOKEN_URL"], {"grant_type": "client_credentials", "scope": env["OAUTH_USER_SCOPE"]})
    check(st == 400, "client-credentials with the user scope: 400 scope_invalid")
    st, _ = post(env["OAUTH_TOKEN_URL"], {"grant_type": "client_credentials", "scope": env["OAUTH_CLIENT_SCOPE"]},
                 auth="Basic " + base64.b64encode(f"{env['OAUTH_CLIENT_ID']}:wrong".encode()).decode())
    check(st == 403, "wrong client secret: 403")

    print("=== password grant (RFC 6749 4.3)")
    form = {"grant_type": "password", "username": env["OAUTH_USER"], "password": env["OAUTH_PASSWORD"],
            "scope": env["OAUTH_USER_SCOPE"]}
    st, pw = post(env["OAUTH_TOKEN_URL"], form)
    check(st == 200 and "refresh_token" in pw, "user token and refresh token issued")
    st, it = introspect(pw["access_token"])
    check(it["active"] is True and it["username"] == env["OAUTH_USER"], "introspection: active, username")
    st, _ = post(env["OAUTH_TOKEN_URL"], dict(form, password="wrong"))
    check(st == 403, "wrong user password: 403")

    print("=== refresh grant")
    st, rf = post(env["OAUTH_TOKEN_URL"], {"grant_type": "refresh_token", "refresh_token": pw["refresh_token"]})
    check(st == 200 and rf["access_token"] != pw["access_token"], "new access token from the refresh token")

    print("=== device authorization grant (RFC 8628)")
    st, dev = post(env["OAUTH_DEVICE_URL"], {"scope": env["OAUTH_USER_SCOPE"]})
    check(st == 200 and {"device_code", "user_code", "verification_uri", "interval"} <= set(dev), "device code issued")
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": dev["device_code"]}
    st, pend = post(env["OAUTH_TOKEN_URL"], grant)
    check(st == 400 and pend.get("error") == "authorization_pending", "before approval: authorization_pending")
    print(f"server.sh approve {odir} {dev['user_code']}")
    subprocess.check_call(["bash", srv, "approve", odir, dev["user_code"]])
    time.sleep(dev["interval"] + 0.1)
    st, dt = post(env["OAUTH_TOKEN_URL"], grant)
    check(st == 200 and "access_token" in dt, "after approval: token")
    st, it = introspect(dt["access_token"])
    check(it["active"] is True and it["username"] == env["OAUTH_USER"], "device token names the user")

    print("=== expired, wrong, revoked")
    print(f"server.sh expire {odir} <token>")
    subprocess.check_call(["bash", srv, "expire", odir, pw["access_token"]])
    st, it = introspect(pw["access_token"])
    check(st == 200 and it == {"active": False}, "expired token: {\"active\":false}")
    st, it = introspect("not-a-real-token")
    check(st == 200 and it == {"active": False}, "wrong token: {\"active\":false}")
    st, _ = post(env["OAUTH_REVOKE_URL"], {"token": rf["access_token"]})
    st, it = introspect(rf["access_token"])
    check(it == {"active": False}, "revoked token: {\"active\":false}")
    st, _ = post(env["OAUTH_INTROSPECT_URL"], {"token": cc["access_token"]}, auth=None)
    check(st == 401, "introspection without client auth: 401")
    print("all ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
