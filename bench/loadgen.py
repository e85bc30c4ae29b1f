"""An open-loop HTTP load generator: requests leave on a fixed schedule (``rate`` per second) whether or not
earlier ones have come back, and each latency counts from the moment its request was due, so a slow server
cannot hide its queueing (no coordinated omission). Run in its own process:

    python -m bench.loadgen --port 8000 --rate 500 --count 5000 --token T --path '/api/customers/{id}/profile'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        cuts = statistics.quantiles(ordered, n=1000) if len(ordered) > 1 else ordered * 999

        def at(share: float) -> float:
            return cuts[int(share * 1000) - 1] * 1000

        return {
            "requests": len(ordered), "achieved_per_s": len(ordered) / self.elapsed, "p50_ms": at(0.5),
            "p90_ms": at(0.9), "p99_ms": at(0.99), "p999_ms": at(0.999), "max_ms": ordered[-1] * 1000,
            "non_2xx": sum(n for status, n in self.statuses.items() if not 200 <= status < 300),
        }  # fmt: skip


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return status


async def open_loop(
    port: int, paths: list[str], rate: float, headers: dict[str, str], *, host: str = "127.0.0.1", connections: int = 64
) -> LoadResult:
    """Send one GET per path, the i-th due at start + i / rate, over up to ``connections`` keep-alive connections."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = 0
    result = LoadResult()
    tasks = []

    async def one(path: str, due: float) -> None:
        nonlocal opened
        if idle.empty() and opened < connections:
            opened += 1
            idle.put_nowait(await asyncio.open_connection(host, port))
        reader, writer = await idle.get()
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
        status = await _exchange(reader, writer, request)
        result.latencies.append(time.perf_counter() - due)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        idle.put_nowait((reader, writer))

    start = time.perf_counter()
    for index, path in enumerate(paths):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(path, due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    while not idle.empty():
        _, writer = idle.get_nowait()
        writer.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--token", default="")
    parser.add_argument("--path", default="/api/customers/{id}/profile")
    parser.add_argument("--ids", type=int, default=23_570, help="customer ids drawn uniformly from 1..ids")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    draw = random.Random(args.seed)
    paths = [args.path.format(id=draw.randint(1, args.ids)) for _ in range(args.count)]
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    result = asyncio.run(open_loop(args.port, paths, args.rate, headers))
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main()
