"""A TCP listener that accepts connections and never answers: the "hanging" health-check
targets of bench/. Usage: hang.py PORT (0: any free port; the line it prints names it). Holds every connection open until it is stopped."""
import asyncio
import sys


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read and discard whatever the client sends; never write a byte back.
    while await reader.read(4096):
        pass
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(hold, "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"hang listening on 127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
