#!/usr/bin/env python3
"""Check a running lab instance replies as documented in README.md.

Usage: selfcheck.py DIR   (DIR as given to `lab.sh start`; reads DIR/lab.env)
Exits non-zero on the first mismatch. Standard library only.
"""
import smtplib
import socket
import ssl
import sys
import time


def main(lab_dir):
    env = {}
    with open(f"{lab_dir}/lab.env") as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            env[key] = value
    addr, name, rcpt = env["ADDR"], env["TLS_NAME"], env["VALID_RCPT"]
    p_smtp, p_tlsreq, p_smtps = (int(env[k]) for k in ("PORT_SMTP", "PORT_TLSREQ", "PORT_SMTPS"))
    ctx = ssl.create_default_context(cafile=env["CA_FILE"])

    def expect(what, got, code, text):
        ok = got[0] == code and got[1].decode() == text
        print(f"{'ok ' if ok else 'BAD'} {what}: {got[0]} {got[1].decode()}")
        if not ok:
            sys.exit(f"expected {code} {text}")

    def session(port):
        c = smtplib.SMTP(addr, port, local_hostname="client.test", timeout=10)
        c._host = name  # server_hostname for STARTTLS certificate checks
        return c

    t = time.monotonic()
    with socket.create_connection((addr, p_smtp), timeout=5) as s:
        banner = s.recv(512).decode().strip()
    ms = (time.monotonic() - t) * 1000
    print(f"ok  banner in {ms:.1f} ms: {banner}")
    assert banner == f"220 {name} ESMTP mxtrace-lab" and ms < 100, banner

    c = session(p_smtp)
    c.ehlo()
    assert c.has_extn("starttls"), "STARTTLS not offered"
    print("ok  EHLO offers STARTTLS")
    c.mail("a@sender.test")
    expect("RCPT unknown (plain)", c.rcpt("nobody@contoso.test"), 550,
           "5.1.1 <nobody@contoso.test>: Recipient address rejected: User unknown in virtual mailbox table")
    expect("RCPT relay (plain)", c.rcpt("x@fabrikam.test"), 554,
           "5.7.1 <x@fabrikam.test>: Relay access denied")
    c.rset()
    expect("STARTTLS", c.starttls(context=ctx), 220, "2.0.0 Ready to start TLS")
    c.ehlo()
    expect("MAIL", c.mail("a@sender.test"), 250, "2.1.0 Ok")
    expect("RCPT valid", c.rcpt(rcpt), 250, "2.1.5 Ok")
    code, text = c.data(b"From: a@sender.test\r\nTo: " + rcpt.encode()
                        + b"\r\nSubject: lab\r\n\r\nhello\r\n")
    print(f"{'ok ' if code == 250 else 'BAD'} DATA: {code} {text.decode()}")
    assert code == 250 and text.startswith(b"2.0.0 Ok: queued as ")
    c.quit()

    c = session(p_tlsreq)
    c.ehlo()
    expect("TLS-required MAIL before STARTTLS", c.mail("a@sender.test"), 530,
           "5.7.0 Must issue a STARTTLS command first")
    c.starttls(context=ctx)
    c.ehlo()
    expect("TLS-required MAIL after STARTTLS", c.mail("a@sender.test"), 250, "2.1.0 Ok")
    c.quit()

    with socket.create_connection((addr, p_smtps), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            banner = s.recv(512).decode().strip()
            print(f"ok  SMTPS implicit TLS ({s.version()}): {banner}")

    c = session(p_smtp)
    c.ehlo()
    try:
        c.starttls(context=ssl.create_default_context())
        sys.exit("BAD verification succeeded without the lab CA")
    except ssl.SSLCertVerificationError as e:
        print(f"ok  without CA_FILE: {e.verify_message}")
    print("all ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
