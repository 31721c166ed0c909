#!/usr/bin/env python3
"""An SMTP server on loopback that writes each pipelined reply in its own segment with
Nagle's algorithm ON, so its second reply waits for the client's ACK of the first (RFC 896):
the peer behind the delayed-ACK stall of issue 11. Usage: nagle_server.py PORT"""
import asyncio, socket, sys

async def session(reader, writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    async def send(text):
        writer.write(text.encode())
        await writer.drain()
    await send("220 nagle.test ESMTP\r\n")
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = line.decode(errors="replace").strip().upper()
        if cmd.startswith("EHLO"):
            await send("250-nagle.test\r\n250 PIPELINING\r\n")
        elif cmd.startswith("QUIT"):
            await send("221 bye\r\n")
            break
        else:
            # One write per reply, as a pipelining server that answers each command alone.
            await send("250 ok\r\n")
    writer.close()

async def main(port):
    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await server.serve_forever()

asyncio.run(main(int(sys.argv[1])))
