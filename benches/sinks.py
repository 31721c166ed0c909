#!/usr/bin/env python3
"""Minimal SMTP servers for the benchmarks (loopback or a private network namespace only).

  sinks.py tls PORT CERT KEY [BIND]   EHLO offers STARTTLS and PIPELINING; 250 to MAIL/RCPT/RSET
  sinks.py nagle PORT   no TLS, Nagle's algorithm ON and one write per reply: its second pipelined
                        reply waits for the client's ACK of the first (RFC 896), the peer behind
                        the delayed-ACK stall of issue 11
  sinks.py proxy PORT HOST:PORT DELAY_MS   a TCP proxy to HOST:PORT (loopback) that delays
                                every chunk DELAY_MS in each direction (no netem on this kernel)
"""
import asyncio, socket, ssl, sys

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

async def delayed_copy(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    async def pump():
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if data is None:
                writer.close()
                return
            writer.write(data)
            await writer.drain()
    task = asyncio.create_task(pump())
    while True:
        data = await reader.read(65536)
        await queue.put((loop.time() + delay, data or None))
        if not data:
            break
    await task

async def proxy_session(reader, writer, upstream, delay):
    host, port = upstream.rsplit(":", 1)
    ur, uw = await asyncio.open_connection(host, int(port))
    await asyncio.gather(delayed_copy(reader, uw, delay), delayed_copy(ur, writer, delay),
                         return_exceptions=True)

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
        upstream, delay = sys.argv[3], float(sys.argv[4]) / 1000
        handler = lambda r, w: proxy_session(r, w, upstream, delay)
        host = "127.0.0.1"
    server = await asyncio.start_server(handler, host, port, backlog=4096)
    async with server:
        await server.serve_forever()

asyncio.run(main())
