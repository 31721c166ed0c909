#!/usr/bin/env python3
"""Check a lab started with MXTRACE_LAB_IMAP replies and delivers as tests/support/postfix/README.md
says, printing each dialogue. Run as root (it reads the Postfix queue with postqueue).

Usage: imapcheck.py DIR   (DIR as given to `lab.sh start`; reads DIR/lab.env)
With OAUTH_* lines in lab.env (MXTRACE_LAB_OAUTH) it also checks IMAP XOAUTH2/OAUTHBEARER.
Exits non-zero on the first mismatch. Standard library only.
"""
import base64
import email
import email.policy
import imaplib
import json
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage


def fail(why):
    sys.exit(f"FAILED: {why}")


def check(cond, what):
    print(f"{'ok ' if cond else 'BAD'} {what}")
    if not cond:
        fail(what)


class IMAPS(imaplib.IMAP4_SSL):
    """imaplib over TLS to an address, verifying the certificate for another name."""

    def __init__(self, addr, port, ctx, name):
        self._tls_name = name
        super().__init__(addr, port, ssl_context=ctx, timeout=10)

    def _create_socket(self, timeout):
        sock = imaplib.IMAP4._create_socket(self, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self._tls_name)


class Raw:
    """A line-oriented IMAP client that prints every line, for exact dialogues."""

    def __init__(self, sock):
        self.sock, self.f, self.n = sock, sock.makefile("rb"), 0

    def line(self):
        text = self.f.readline().decode().rstrip("\r\n")
        print("S:", text if len(text) < 1000 else text[:1000] + "...")
        return text

    def send(self, text, show=None):
        print("C:", show if show is not None else text)
        self.sock.sendall(text.encode() + b"\r\n")

    def cmd(self, text, show=None):
        self.n += 1
        tag = f"a{self.n}"
        self.send(f"{tag} {text}", None if show is None else f"{tag} {show}")
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + " ") or line.startswith("+"):
                return lines

    def starttls(self, ctx, name):
        self.sock = ctx.wrap_socket(self.sock, server_hostname=name)
        self.f = self.sock.makefile("rb")
        print(f"   (TLS {self.sock.version()}, certificate verified for {name})")


def main(lab_dir):
    env = {}
    with open(f"{lab_dir}/lab.env") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    addr, name = env["ADDR"], env["TLS_NAME"]
    ctx = ssl.create_default_context(cafile=env["CA_FILE"])
    user, password = env["IMAP_USER"], env["IMAP_PASSWORD"]

    print("=== IMAP port: greeting, CAPABILITY, STARTTLS, LOGIN, CAPABILITY, LIST")
    r = Raw(socket.create_connection((addr, int(env["PORT_IMAP"])), timeout=10))
    greeting = r.line()
    check(greeting.startswith("* OK [CAPABILITY ") and " STARTTLS " in greeting, "greeting offers STARTTLS")
    caps = r.cmd("CAPABILITY")[0].split()
    check("IDLE" in caps and "STARTTLS" in caps, "pre-login CAPABILITY has IDLE and STARTTLS")
    check(r.cmd("STARTTLS")[-1].endswith("OK Begin TLS negotiation now."), "STARTTLS")
    r.starttls(ctx, name)
    caps = r.cmd("CAPABILITY")[0].split()
    check("STARTTLS" not in caps and "AUTH=PLAIN" in caps, "CAPABILITY inside TLS: no STARTTLS, AUTH=PLAIN")
    out = r.cmd(f'LOGIN "{user}" "{password}"', f'LOGIN "{user}" "***"')
    check(out[-1].endswith("OK Logged in"), "LOGIN")
    caps = r.cmd("CAPABILITY")[0].split()
    for c in ("IDLE", "UIDPLUS", "SPECIAL-USE", "MOVE"):
        check(c in caps, f"post-login CAPABILITY has {c}")
    out = r.cmd('LIST "" "*"')
    check('* LIST (\\HasNoChildren \\Junk) "/" Junk' in out, "LIST: Junk with \\Junk")
    out = r.cmd('LIST (SPECIAL-USE) "" "*"')
    check(len(out) == 5, "LIST (SPECIAL-USE): Junk, Sent, Trash, Drafts")
    r.cmd("LOGOUT")

    print("=== IMAPS port: TLS first")
    s = ctx.wrap_socket(socket.create_connection((addr, int(env["PORT_IMAPS"])), timeout=10),
                        server_hostname=name)
    print(f"   (TLS {s.version()})")
    check(Raw(s).line().startswith("* OK [CAPABILITY "), "IMAPS greeting")
    s.close()

    im = IMAPS(addr, int(env["PORT_IMAPS"]), ctx, name)
    im.login(user, password)

    def send(msg, rcpt, sender="sender@fabrikam.test"):
        with smtplib.SMTP(addr, int(env["PORT_SMTP"]), local_hostname="client.test", timeout=10) as c:
            c.ehlo()
            c.mail(sender)
            code, text = c.rcpt(rcpt)
            code2, text2 = c.data(msg.as_bytes())
            return (code, text.decode()), (code2, text2.decode())

    def message(subject, extra=None):
        mid = uuid.uuid4().hex
        m = EmailMessage()
        m["From"] = "sender@fabrikam.test"
        m["To"] = user
        m["Subject"] = subject
        m["X-Some-Id"] = mid
        for k, v in (extra or {}).items():
            m[k] = v
        m.set_content(f"round-trip {mid}\n")
        return mid, m

    def wait_for(folder, mid, limit=5.0, conn=None):
        conn = conn or im
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            conn.select(folder)
            typ, data = conn.uid("SEARCH", "HEADER", "X-Some-Id", mid)
            if typ == "OK" and data[0]:
                return data[0].split(), time.monotonic() - t0
            time.sleep(0.05)
        return [], time.monotonic() - t0

    print("=== delivery through port 25, LMTP, Sieve")
    mid, m = message("plain round trip")
    t0 = time.monotonic()
    rcpt, data = send(m, user)
    print(f"   RCPT {rcpt}, DATA {data}")
    uids, _ = wait_for("INBOX", mid)
    check(len(uids) == 1, f"INBOX has it after {time.monotonic() - t0:.2f} s (UID SEARCH HEADER X-Some-Id {mid} -> {uids})")

    for label, subject, extra in (("Subject [junk-me]", "[junk-me] please file me", None),
                                  ("X-Spam-Flag: YES", "flagged", {"X-Spam-Flag": "YES"})):
        jid, m = message(subject, extra)
        send(m, user)
        uids, dt = wait_for("Junk", jid)
        check(len(uids) == 1, f"{label}: in Junk after {dt:.2f} s")
        check(wait_for("INBOX", jid, limit=0.2)[0] == [], f"{label}: not in INBOX")

    print("=== UID STORE \\Deleted + UID EXPUNGE removes only that message")
    (a, ma), (b, mb) = message("keep me"), message("delete me")
    send(ma, user)
    send(mb, user)
    ua, _ = wait_for("INBOX", a)
    ub, _ = wait_for("INBOX", b)
    im.select("INBOX")
    print("   UID STORE", ub[0].decode(), "+FLAGS.SILENT (\\Deleted) ->", im.uid("STORE", ub[0], "+FLAGS.SILENT", "(\\Deleted)"))
    print("   UID EXPUNGE", ub[0].decode(), "->", im.uid("EXPUNGE", ub[0]))
    check(wait_for("INBOX", b, limit=0.2)[0] == [], "deleted one is gone")
    check(wait_for("INBOX", a, limit=0.2)[0] == ua, "the other one is still there")

    print("=== IDLE")
    r = Raw(ctx.wrap_socket(socket.create_connection((addr, int(env["PORT_IMAPS"])), timeout=10),
                            server_hostname=name))
    r.line()
    r.cmd(f'LOGIN "{user}" "{password}"', f'LOGIN "{user}" "***"')
    r.cmd("SELECT INBOX")
    out = r.cmd("IDLE")
    check(out[-1] == "+ idling", "IDLE -> + idling")
    iid, m = message("idle wake-up")
    t0 = time.monotonic()
    send(m, user)
    line = r.line()
    check(line.endswith(" EXISTS"), f"untagged EXISTS during IDLE after {time.monotonic() - t0:.2f} s")
    r.send("DONE")
    while not r.line().startswith(f"a{r.n} "):
        pass
    r.cmd("LOGOUT")

    print("=== held recipient stays queued")
    hid, m = message("held")
    rcpt, data = send(m, env["HELD_RCPT"])
    print(f"   RCPT {rcpt}, DATA {data}")
    check(rcpt[0] == 250, "RCPT held@ accepted")
    queue_id = data[1].rsplit(" ", 1)[-1]
    time.sleep(1.0)
    q = subprocess.run(["postqueue", "-c", f"{lab_dir}/etc", "-j"], capture_output=True, text=True).stdout
    entries = [json.loads(x) for x in q.splitlines() if x.strip()]
    held = [e for e in entries if e["queue_id"] == queue_id]
    print("   postqueue -j:", json.dumps(held))
    check(len(held) == 1 and held[0]["queue_name"] == "deferred"
          and "452 4.2.2" in held[0]["recipients"][0]["delay_reason"],
          "held message is in the deferred queue, delay_reason has LMTP's 452 4.2.2")

    print("=== bounce recipient: accepted at RCPT, NDR to the sender (NDR mailbox)")
    bid, m = message("to be bounced")
    rcpt, data = send(m, env["BOUNCE_RCPT"], sender=env["NDR_RCPT"])
    print(f"   MAIL FROM:<{env['NDR_RCPT']}> RCPT {rcpt}, DATA {data}")
    check(rcpt[0] == 250, "RCPT bounce@ accepted")
    nim = IMAPS(addr, int(env["PORT_IMAPS"]), ctx, name)
    nim.login(env["NDR_USER"], env["NDR_PASSWORD"])
    t0 = time.monotonic()
    found = []
    while time.monotonic() - t0 < 5 and not found:
        nim.select("INBOX")
        found = nim.uid("SEARCH", "BODY", bid)[1][0].split()
        time.sleep(0.05)
    check(len(found) == 1, f"NDR in {env['NDR_USER']} INBOX after {time.monotonic() - t0:.2f} s")
    typ, data = nim.uid("FETCH", found[0], "(BODYSTRUCTURE)")
    print("   BODYSTRUCTURE:", data[0].decode())
    typ, data = nim.uid("FETCH", found[0], "(RFC822)")
    ndr = email.message_from_bytes(data[0][1], policy=email.policy.default)
    print("   From:", ndr["From"], "| Subject:", ndr["Subject"], "| Content-Type:", ndr["Content-Type"])
    check(ndr.get_content_type() == "multipart/report"
          and ndr.get_param("report-type") == "delivery-status", "multipart/report; report-type=delivery-status")
    parts = [p.get_content_type() for p in ndr.iter_parts()]
    print("   parts:", parts)
    ds = [p for p in ndr.iter_parts() if p.get_content_type() == "message/delivery-status"][0]
    fields = ds.get_payload()
    for i, block in enumerate(fields):
        print(f"   delivery-status block {i}:", dict(block.items()))
    rcpt_block = dict(fields[1].items())
    check(rcpt_block.get("Action") == "failed" and rcpt_block.get("Status") == "5.1.1"
          and rcpt_block.get("Final-Recipient") == f"rfc822; {env['BOUNCE_RCPT']}",
          "per-recipient fields: Action failed, Status 5.1.1, Final-Recipient bounce@")
    nim.logout()

    print("=== unknown recipient still refused at RCPT")
    with smtplib.SMTP(addr, int(env["PORT_SMTP"]), local_hostname="client.test", timeout=10) as c:
        c.ehlo()
        c.mail("sender@fabrikam.test")
        code, text = c.rcpt("nobody@contoso.test")
        print("  ", code, text.decode())
        check(code == 550 and text.decode().startswith("5.1.1 <nobody@contoso.test>: Recipient address rejected: User unknown"), "nobody@ -> 550 5.1.1")
    im.logout()

    if "OAUTH_DIR" in env:
        oauth_imap(env, ctx)
    print("all ok")


def oauth_imap(env, ctx):
    srv = f"{sys.path[0]}/../oauth/server.sh"

    def token(kind="user"):
        return subprocess.check_output(["bash", srv, "token", env["OAUTH_DIR"], kind], text=True).strip()

    user = env["OAUTH_USER"]
    good, expired = token(), token()
    subprocess.check_call(["bash", srv, "expire", env["OAUTH_DIR"], expired])
    cases = [
        ("XOAUTH2 good token", "XOAUTH2", f"user={user}\x01auth=Bearer {good}\x01\x01", "OK"),
        ("XOAUTH2 expired token", "XOAUTH2", f"user={user}\x01auth=Bearer {expired}\x01\x01", "NO"),
        ("XOAUTH2 wrong token", "XOAUTH2", f"user={user}\x01auth=Bearer not-a-real-token\x01\x01", "NO"),
        ("OAUTHBEARER good token", "OAUTHBEARER",
         f"n,a={user},\x01host={env['ADDR']}\x01port={env['PORT_IMAPS']}\x01auth=Bearer {good}\x01\x01", "OK"),
        ("OAUTHBEARER expired token", "OAUTHBEARER",
         f"n,a={user},\x01host={env['ADDR']}\x01port={env['PORT_IMAPS']}\x01auth=Bearer {expired}\x01\x01", "NO"),
    ]
    for label, mech, resp, want in cases:
        print(f"=== IMAP AUTHENTICATE {label}")
        r = Raw(ctx.wrap_socket(socket.create_connection((env["ADDR"], int(env["PORT_IMAPS"])), timeout=10),
                                server_hostname=env["TLS_NAME"]))
        r.line()
        b64 = base64.b64encode(resp.encode()).decode()
        out = r.cmd(f"AUTHENTICATE {mech} {b64}", f"AUTHENTICATE {mech} {b64[:40]}...")
        if out[-1].startswith("+ "):
            print("   decoded:", base64.b64decode(out[-1][2:]).decode())
            r.send("", "(empty line)")
            out.append(r.line())
        tagged = out[-1].split(" ", 2)[1]
        check(tagged == want, f"{label}: {want}")
        r.sock.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
