#!/usr/bin/env python3
"""Writes N bytes of generated, log-like text to stdout: the huge-stream input of issue #5.

    python3 benches/genlog.py 1073741824 | nccat -z -q > big.nc

Deterministic (seeded): the same N gives the same bytes, so a decompressed stream can be
compared with a second run of the generator instead of a 1 GiB file on disk:

    cmp <(python3 benches/genlog.py N) <(nccat -d -q < big.nc)

The lines mix web access logs, service logs with levels and key=value pairs, JSON events and
the occasional stack trace, with timestamps that advance, counters, addresses and ids drawn at
random: structured and repetitive the way real logs are, never a repeat of one block.
"""
import random
import sys

PATHS = ["/", "/index.html", "/api/v1/users", "/api/v1/orders", "/api/v2/search", "/static/app.js",
         "/static/style.css", "/login", "/logout", "/health", "/metrics", "/images/logo.png"]
METHODS = ["GET"] * 8 + ["POST"] * 3 + ["PUT", "DELETE"]
STATUS = [200] * 20 + [201, 204, 301, 302, 304, 304, 400, 401, 403, 404, 404, 500, 502, 503]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
          "curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", "kube-probe/1.30"]
SERVICES = ["auth", "billing", "search", "gateway", "scheduler", "mailer", "storage"]
LEVELS = ["INFO"] * 12 + ["DEBUG"] * 6 + ["WARN"] * 3 + ["ERROR"]
WORDS = ("request completed cache miss hit retry connection opened closed timeout user session "
         "token refreshed expired queue job started finished failed backoff shard replica "
         "leader elected snapshot written compaction flushed rows bytes latency slow query "
         "rate limited upstream downstream healthy unhealthy config reloaded").split()


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 30
    rnd = random.Random(20261127)
    t = 1_764_201_600.0  # 2025-11-27T00:00:00Z
    out = sys.stdout.buffer
    written = 0
    chunk = []
    size = 0
    req = 0
    while written < total:
        t += rnd.expovariate(50.0)
        secs = int(t)
        hms = f"{(secs // 3600) % 24:02}:{(secs // 60) % 60:02}:{secs % 60:02}"
        day = 27 + secs // 86400 - 20419
        stamp = f"2025-11-{day:02}T{hms}.{int((t % 1) * 1000):03}Z"
        kind = rnd.random()
        req += 1
        if kind < 0.55:
            ip = f"10.{rnd.randrange(4)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
            path = rnd.choice(PATHS)
            if path.startswith("/api"):
                path += f"/{rnd.randrange(100000)}?page={rnd.randrange(1, 20)}"
            line = (f'{ip} - - [{stamp}] "{rnd.choice(METHODS)} {path} HTTP/1.1" '
                    f'{rnd.choice(STATUS)} {rnd.randrange(100, 60000)} '
                    f'{rnd.lognormvariate(-4, 1):.3f} "{rnd.choice(AGENTS)}"\n')
        elif kind < 0.85:
            svc = rnd.choice(SERVICES)
            msg = " ".join(rnd.choice(WORDS) for _ in range(rnd.randrange(2, 8)))
            line = (f"{stamp} {rnd.choice(LEVELS):5} [{svc}-{rnd.randrange(8)}] {msg} "
                    f"req_id={req:08x} duration_ms={rnd.randrange(1, 5000)} "
                    f"user={rnd.randrange(1, 50000)}\n")
        elif kind < 0.995:
            line = (f'{{"ts":"{stamp}","service":"{rnd.choice(SERVICES)}","event":"{rnd.choice(WORDS)}",'
                    f'"id":{req},"ok":{str(rnd.random() < 0.95).lower()},'
                    f'"latency":{rnd.lognormvariate(2, 1):.2f},"shard":{rnd.randrange(64)}}}\n')
        else:
            svc = rnd.choice(SERVICES)
            frames = "".join(
                f"    at com.example.{svc}.{rnd.choice(WORDS).capitalize()}Handler.handle"
                f"({rnd.choice(WORDS).capitalize()}.java:{rnd.randrange(20, 900)})\n"
                for _ in range(rnd.randrange(3, 12)))
            line = (f"{stamp} ERROR [{svc}] java.lang.IllegalStateException: "
                    f"{rnd.choice(WORDS)} {rnd.choice(WORDS)}\n{frames}")
        data = line.encode()
        chunk.append(data)
        size += len(data)
        if size >= 1 << 16 or written + size >= total:
            block = b"".join(chunk)
            block = block[: total - written]
            out.write(block)
            written += len(block)
            chunk, size = [], 0
    out.flush()


if __name__ == "__main__":
    main()
