#!/usr/bin/env python3
"""Minimal SMTP servers for the benchmarks (loopback or a private network namespace only).

  sinks.py tls PORT CERT KEY [BIND]   EHLO offers STARTTLS and PIPELINING; 250 to MAIL/RCPT/RSET
  sinks.py nagle PORT   no TLS, Nagle's algorithm ON and one write per reply: its second pipelined
                        reply waits for the client's ACK of the first (RFC 896), the peer behind
                        the delayed-ACK stall of issue 11
  sinks.py proxy PORT HOST:PORT DELAY_MS   a TCP proxy to HOST:PORT (loopback) that delays
                                every chunk DELAY_MS in each direction (no netem on this kernel);
                                PROXY_LOG=1 logs each chunk's arrival and how late it left
"""
import asyncio, os, queue, socket, ssl, sys, threading, time

async def tls_session(reader, writer, ctx):
    if ctx is None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    async def send(t):
        writer.write(t.encode())
        await writer.drain()
    try:
        await send("220 sink.test ESMTP\r\n")
        tls = False
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = line.decode(errors="replace").strip().upper()
            if cmd.startswith("EHLO"):
                caps = "" if tls or ctx is None else "250-STARTTLS\r\n"
                await send("250-sink.test\r\n" + caps + "250 PIPELINING\r\n")
            elif cmd == "STARTTLS" and not tls:
                await send("220 2.0.0 Ready to start TLS\r\n")
                await writer.start_tls(ctx)
                tls = True
            elif cmd.startswith("QUIT"):
                await send("221 2.0.0 Bye\r\n")
                break
            else:
                await send("250 2.0.0 Ok\r\n")
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()

def quickack(sock):
    """Acknowledge at once what was read: a delay line must not add delayed-ACK stalls (a
    sender with Nagle on waits for that ACK before its next small segment)."""
    if hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass

def delay_line(src, dst, delay, name, log):
    """Copies src to dst, every chunk leaving `delay` after it arrived (its own deadline, not
    queued behind the previous chunk's delay), in order. Threads and time.sleep, not asyncio:
    epoll's millisecond timeouts made every chunk up to 1 ms late."""
    q = queue.Queue()
    def pump():
        while True:
            due, data = q.get()
            time.sleep(max(0.0, due - time.monotonic()))
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                dst.sendall(data)
            except OSError:
                return
            if log:
                late = (time.monotonic() - due) * 1000
                print(f"{time.monotonic():.4f} {name} sent {len(data)} B, {late:.2f} ms late",
                      file=sys.stderr, flush=True)
    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        quickack(src)
        if log and data:
            print(f"{time.monotonic():.4f} {name} read {len(data)} B", file=sys.stderr, flush=True)
        q.put((time.monotonic() + delay, data))
        if not data:
            return

def proxy(port, upstream, delay):
    host, uport = upstream.rsplit(":", 1)
    log = bool(os.environ.get("PROXY_LOG"))
    lsock = socket.create_server(("127.0.0.1", port), backlog=128)
    while True:
        client, _ = lsock.accept()
        server = socket.create_connection((host, int(uport)))
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for args in ((client, server, delay, "c->s", log), (server, client, delay, "s->c", log)):
            threading.Thread(target=delay_line, args=args, daemon=True).start()

async def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "tls":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        handler = lambda r, w: tls_session(r, w, ctx)
        host = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1"
    elif mode == "nagle":
        handler = lambda r, w: tls_session(r, w, None)
        host = "127.0.0.1"
    else:
        raise SystemExit(f"unknown mode {mode}")
    server = await asyncio.start_server(handler, host, port, backlog=4096)
    async with server:
        await server.serve_forever()

if sys.argv[1] == "proxy":
    proxy(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]) / 1000)
else:
    asyncio.run(main())
