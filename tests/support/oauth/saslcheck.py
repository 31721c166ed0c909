#!/usr/bin/env python3
"""Check the Postfix lab's submission listener with Dovecot's XOAUTH2 and OAUTHBEARER, printing
each dialogue (tests/support/oauth/README.md lists the replies).

Usage: saslcheck.py DIR   (a lab started with MXTRACE_LAB_SUBMISSION and MXTRACE_LAB_OAUTH;
                           reads DIR/lab.env; needs server.sh beside it)
Exits non-zero on the first mismatch. Standard library only.
"""
import base64
import smtplib
import ssl
import subprocess
import sys


def main(lab_dir):
    env = {}
    with open(f"{lab_dir}/lab.env") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    srv = f"{sys.path[0]}/server.sh"
    odir = env["OAUTH_DIR"]

    def token(kind):
        return subprocess.check_output(["bash", srv, "token", odir, kind], text=True).strip()

    def session():
        c = smtplib.SMTP(env["ADDR"], int(env["PORT_SUBMISSION"]), local_hostname="client.test", timeout=15)
        c._host = env["TLS_NAME"]  # server_hostname for the STARTTLS certificate check
        c.ehlo()
        c.starttls(context=ssl.create_default_context(cafile=env["CA_FILE"]))
        c.ehlo()
        return c

    def xoauth2(user, tok):
        return "XOAUTH2", f"user={user}\x01auth=Bearer {tok}\x01\x01"

    def oauthbearer(user, tok):
        return "OAUTHBEARER", (f"n,a={user},\x01host={env['ADDR']}\x01port={env['PORT_SUBMISSION']}"
                               f"\x01auth=Bearer {tok}\x01\x01")

    def run(label, mech, resp, want):
        print(f"--- {label}")
        c = session()
        b64 = base64.b64encode(resp.encode()).decode()
        print(f"C: AUTH {mech} {b64[:48]}..." if len(b64) > 60 else f"C: AUTH {mech} {b64}")
        print("   (initial response:", repr(resp if len(resp) < 90 else resp[:60] + "..." + resp[-12:]) + ")")
        code, msg = c.docmd(f"AUTH {mech} {b64}")
        got = [f"{code} {msg.decode()}"]
        print("S:", got[-1])
        if code == 334:
            print("   decoded:", base64.b64decode(msg).decode())
            got[-1] = f"334 {base64.b64decode(msg).decode()}"
            print("C: (empty line)")
            code, msg = c.docmd("")
            got.append(f"{code} {msg.decode()}")
            print("S:", got[-1])
        c.close()
        ok = got == want
        print(f"{'ok ' if ok else 'BAD'} {label}")
        if not ok:
            sys.exit(f"FAILED: {label}: expected {want}, got {got}")

    c = session()
    auth = c.esmtp_features.get("auth", "").split()
    c.quit()
    print("EHLO (inside TLS) AUTH", " ".join(auth))
    if auth != ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"]:
        sys.exit("FAILED: AUTH mechanisms")

    user, client = env["OAUTH_USER"], env["OAUTH_CLIENT_ID"]
    good, ctok, expired = token("user"), token("client"), token("user")
    subprocess.check_call(["bash", srv, "expire", odir, expired])
    ok235 = ["235 2.7.0 Authentication successful"]
    fail535 = "535 5.7.8 Error: authentication failed: (reason unavailable)"
    x_chal = '334 {"status":"401","schemes":"bearer","scope":"mail"}'
    o_chal = '334 {"status":"invalid_token"}'
    run("XOAUTH2, user token", *xoauth2(user, good), ok235)
    run("XOAUTH2, expired user token", *xoauth2(user, expired), [x_chal, fail535])
    run("XOAUTH2, wrong token", *xoauth2(user, "not-a-real-token"), [x_chal, fail535])
    run("XOAUTH2, user token for another user", *xoauth2("other@contoso.test", good), [x_chal, fail535])
    run("XOAUTH2, client token as the client id", *xoauth2(client, ctok), ok235)
    run("XOAUTH2, user token as the client id", *xoauth2(client, good), [x_chal, fail535])
    run("XOAUTH2, client token as the user (introspection has no username)", *xoauth2(user, ctok), [fail535])
    run("XOAUTH2, the password as token", *xoauth2(user, env["SASL_PASSWORD"]), [x_chal, fail535])
    run("OAUTHBEARER, user token", *oauthbearer(user, good), ok235)
    run("OAUTHBEARER, expired user token", *oauthbearer(user, expired), [o_chal, fail535])
    run("OAUTHBEARER, wrong token", *oauthbearer(user, "not-a-real-token"), [o_chal, fail535])
    run("OAUTHBEARER, client token as the client id", *oauthbearer(client, ctok), ok235)
    run("PLAIN, password (passwd-file)", "PLAIN", f"\0{user}\0{env['SASL_PASSWORD']}", ok235)
    run("PLAIN, token as password", "PLAIN", f"\0{user}\0{good}", [fail535])
    print("all ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
