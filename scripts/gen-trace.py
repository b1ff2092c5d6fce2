#!/usr/bin/env python3
"""Deterministic generator of CSV usage traces for `vpa-recommender replay` and the upstream
oracle (tests/oracle). Python 3.11, standard library only.

  gen-trace.py example [--seed N] [--out examples/trace.csv]
      The example trace embedded in the recommender binary: 8.5 days at 5-minute resolution
      from 2026-11-01T00:00:00Z, Unix-seconds timestamps, namespaces `shop` and `batch`:
        shop/web      3 pods, `app` (diurnal CPU 0.2-1.4 cores, memory ~600-800 MiB) and `proxy`
                      (sidecar ~30m / ~60 MiB); rolling restart on day 4 (new pod names)
        batch/reports mostly idle (20m), bursts to ~3 cores for 30-60 min a few times a day,
                      memory bursting with them
        shop/cache    memory leak from 300 MiB, ~40 MiB/day
        batch/ingest  memory climbs to its 512Mi request, is OOM-killed (an `oom` row),
                      restarts with low memory, repeats

  gen-trace.py bench [--containers 1000] [--days 8] [--step 60] [--seed N] --out FILE
      A large benchmark trace: --containers concurrently running containers (a few hundred
      workloads, 1-3 pods x 1-3 containers each, varied shapes, some OOM kills and rolling
      restarts), one row per container per --step seconds, globally time-ordered.

Format: timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time

HEADER = "timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event"
START = 1793491200  # 2026-11-01T00:00:00Z
DAY = 86400
MI = 1024 * 1024

_ALNUM = "bcdfghjklmnpqrstvwxz2456789"


def pod_suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def cores(milli: float) -> str:
    """Millicores to a cores quantity with 3 decimals (e.g. 734 -> 0.734)."""
    m = max(0, int(round(milli)))
    return f"{m // 1000}.{m % 1000:03d}"


# --------------------------------------------------------------------------------------------
# example


def gen_example(seed: int) -> list[str]:
    rng = random.Random(seed)
    step = 300
    steps = int(8.5 * DAY) // step
    rows: list[tuple[int, int, str]] = []  # (timestamp, tie-break, line)
    seq = 0

    def add(ts: int, ns: str, wl: str, pod: str, ctr: str, cpu: str, mem: str, event: str = "") -> None:
        nonlocal seq
        rows.append((ts, seq, f"{ts},{ns},{wl},{pod},{ctr},{cpu},{mem},{event}"))
        seq += 1

    # (a) shop/web: 3 pods; rolling restart on day 4, one pod every 10 minutes from 10:00.
    rs_old, rs_new = pod_suffix(rng, 10), pod_suffix(rng, 10)
    old_pods = [f"web-{rs_old}-{pod_suffix(rng, 5)}" for _ in range(3)]
    new_pods = [f"web-{rs_new}-{pod_suffix(rng, 5)}" for _ in range(3)]
    restart_at = [START + 3 * DAY + 10 * 3600 + i * 600 for i in range(3)]
    pod_mem = [650.0 * MI + rng.uniform(-20, 20) * MI for _ in range(3)]
    for i in range(steps):
        ts = START + i * step
        phase = 2 * math.pi * ((ts - START) % DAY) / DAY
        # peak at 14:00 UTC, trough at 02:00
        level = 0.5 - 0.5 * math.cos(phase - 2 * math.pi * 2 / 24)
        for p in range(3):
            new = ts >= restart_at[p]
            if new and ts - restart_at[p] < step:
                pod_mem[p] = 600.0 * MI + rng.uniform(0, 15) * MI  # fresh process
            pod = new_pods[p] if new else old_pods[p]
            cpu = 200 + 1100 * level + rng.gauss(0, 45)
            cpu = min(1400.0, max(200.0, cpu))
            # memory drifts up with load and slowly during the pod's life, 600-800 MiB
            pod_mem[p] += rng.gauss(0.05, 0.6) * MI
            mem = pod_mem[p] + 90 * MI * level + rng.gauss(0, 4) * MI
            mem = min(800.0 * MI, max(600.0 * MI, mem))
            add(ts, "shop", "web", pod, "app", cores(cpu), str(int(mem)))
            pcpu = 30 + 8 * level + rng.gauss(0, 3)
            pmem = 60 * MI + rng.gauss(0, 1.5) * MI
            add(ts, "shop", "web", pod, "proxy", cores(max(5.0, pcpu)), str(int(pmem)))

    # (b) batch/reports: idle 20m with bursts to ~3 cores for 30-60 minutes, 3-4 times a day.
    reports_pod = f"reports-{pod_suffix(rng, 10)}-{pod_suffix(rng, 5)}"
    bursts: list[tuple[int, int]] = []
    for d in range(9):
        for _ in range(rng.choice((3, 3, 4))):
            b0 = START + d * DAY + rng.randrange(0, DAY // step) * step
            bursts.append((b0, b0 + rng.choice((30, 35, 40, 45, 50, 55, 60)) * 60))
    for i in range(steps):
        ts = START + i * step
        in_burst = any(b0 <= ts < b1 for b0, b1 in bursts)
        if in_burst:
            cpu = rng.uniform(2700, 3100)
            mem = rng.uniform(1100, 1500) * MI
        else:
            cpu = 20 + rng.gauss(0, 2)
            mem = 180 * MI + rng.gauss(0, 3) * MI
        add(ts, "batch", "reports", reports_pod, "reports", cores(max(1.0, cpu)), str(int(mem)))

    # (c) shop/cache: memory leak from 300 MiB, ~40 MiB/day; CPU ~60-120m.
    cache_pod = "cache-0"
    for i in range(steps):
        ts = START + i * step
        days = (ts - START) / DAY
        phase = 2 * math.pi * days
        cpu = 90 + 30 * math.sin(phase - 1.0) + rng.gauss(0, 6)
        mem = 300 * MI + 40 * MI * days + rng.gauss(0, 1.2) * MI
        add(ts, "shop", "cache", cache_pod, "redis", cores(cpu), str(int(mem)))

    # (d) batch/ingest: memory climbs to the 512Mi request, OOM kill, restart, repeat.
    ingest_pod = f"ingest-{pod_suffix(rng, 10)}-{pod_suffix(rng, 5)}"
    request = 512 * MI
    mem = 140.0 * MI
    rate = rng.uniform(9, 14) * MI  # per hour
    restart_until = 0
    for i in range(steps):
        ts = START + i * step
        if ts < restart_until:
            continue  # crash-loop back-off: no samples while the container restarts
        mem += rate * step / 3600 + rng.gauss(0, 1.5) * MI
        if mem >= request:
            # killed between two samples; the next sample comes from the restarted container
            kill = ts - rng.randrange(30, step - 30)
            add(kill, "batch", "ingest", ingest_pod, "ingest", "", str(request), "oom")
            mem = rng.uniform(120, 170) * MI
            rate = rng.uniform(9, 14) * MI
            restart_until = kill + rng.choice((60, 120, 300, 600))
            if ts < restart_until:
                continue
        cpu = 250 + 120 * (mem / request) + rng.gauss(0, 25)
        add(ts, "batch", "ingest", ingest_pod, "ingest", cores(cpu), str(int(mem)))

    rows.sort(key=lambda r: (r[0], r[1]))
    return [HEADER] + [r[2] for r in rows]


# --------------------------------------------------------------------------------------------
# bench

SHAPES = ("web", "web", "web", "steady", "steady", "bursty", "leak", "oom", "idle", "sidecar")


class Container:
    __slots__ = (
        "prefix", "shape", "cpu_base", "cpu_amp", "mem_base", "mem_amp", "noise_off", "phase",
        "mem", "mem_rate", "request", "burst_until", "mem_str", "down_until", "restart_at",
        "new_prefix",
    )


def plan_bench(rng: random.Random, n_containers: int, days: float, step: int) -> list[Container]:
    namespaces = ["shop", "batch", "payments", "search", "data", "platform", "ml", "infra"]
    names = ["api", "web", "worker", "cache", "ingest", "reports", "gateway", "indexer",
             "scheduler", "billing", "auth", "search", "feed", "notifier", "etl", "export"]
    ctr_names = ["app", "proxy", "metrics", "log-shipper", "init-sync", "agent"]
    out: list[Container] = []
    w = 0
    while len(out) < n_containers:
        ns = namespaces[w % len(namespaces)]
        wl = f"{names[rng.randrange(len(names))]}-{w:03d}"
        pods = rng.choice((1, 1, 2, 2, 2, 3, 4))
        ctrs = rng.choice((1, 2, 2, 2, 3))
        shape = SHAPES[rng.randrange(len(SHAPES))]
        rs = pod_suffix(rng, 9)
        restart = START + int(rng.uniform(0.5, days - 0.5) * DAY) if rng.random() < 0.3 else None
        for p in range(pods):
            pod = f"{wl}-{rs}-{pod_suffix(rng, 5)}"
            new_pod = f"{wl}-{pod_suffix(rng, 9)}-{pod_suffix(rng, 5)}"
            for k in range(ctrs):
                if len(out) >= n_containers:
                    break
                c = Container()
                cname = "app" if k == 0 else ctr_names[k]
                c.prefix = f",{ns},{wl},{pod},{cname},"
                c.new_prefix = f",{ns},{wl},{new_pod},{cname},"
                c.restart_at = (restart + p * 300) if restart is not None else None
                c.shape = shape if k == 0 else "sidecar"
                c.noise_off = rng.randrange(1 << 16)
                c.phase = rng.randrange(1440)
                if c.shape == "web":
                    c.cpu_base, c.cpu_amp = rng.uniform(50, 600), rng.uniform(100, 2500)
                    c.mem_base, c.mem_amp = rng.uniform(100, 2000) * MI, rng.uniform(20, 400) * MI
                elif c.shape == "steady":
                    c.cpu_base, c.cpu_amp = rng.uniform(20, 2000), 0.0
                    c.mem_base, c.mem_amp = rng.uniform(50, 4000) * MI, 0.0
                elif c.shape == "bursty":
                    c.cpu_base, c.cpu_amp = rng.uniform(5, 40), rng.uniform(1000, 6000)
                    c.mem_base, c.mem_amp = rng.uniform(100, 400) * MI, rng.uniform(300, 3000) * MI
                elif c.shape == "leak":
                    c.cpu_base, c.cpu_amp = rng.uniform(30, 300), rng.uniform(0, 100)
                    c.mem_base, c.mem_amp = rng.uniform(100, 1000) * MI, 0.0
                elif c.shape == "oom":
                    c.cpu_base, c.cpu_amp = rng.uniform(100, 800), rng.uniform(0, 200)
                    c.mem_base, c.mem_amp = rng.uniform(60, 200) * MI, 0.0
                elif c.shape == "idle":
                    c.cpu_base, c.cpu_amp = rng.uniform(1, 10), 0.0
                    c.mem_base, c.mem_amp = rng.uniform(10, 80) * MI, 0.0
                else:  # sidecar
                    c.cpu_base, c.cpu_amp = rng.uniform(3, 60), rng.uniform(0, 40)
                    c.mem_base, c.mem_amp = rng.uniform(15, 150) * MI, rng.uniform(0, 10) * MI
                c.mem = c.mem_base
                c.request = rng.choice((256, 384, 512, 768, 1024)) * MI
                if c.shape == "oom":
                    c.request = max(c.request, int(c.mem_base) + 128 * MI)
                # memory growth per step (leak: 10-200 MiB/day; oom: reach the request in 6-48h)
                if c.shape == "leak":
                    c.mem_rate = rng.uniform(10, 200) * MI * step / DAY
                elif c.shape == "oom":
                    c.mem_rate = (c.request - c.mem_base) / (rng.uniform(6, 48) * 3600 / step)
                else:
                    c.mem_rate = 0.0
                c.burst_until = -1
                c.down_until = -1
                c.mem_str = str(int(c.mem))
                out.append(c)
        w += 1
    return out


def gen_bench(out, n_containers: int, days: float, step: int, seed: int) -> int:
    rng = random.Random(seed)
    cs = plan_bench(rng, n_containers, days, step)
    steps = int(days * DAY) // step
    # Tables instead of per-row random calls and trigonometry.
    mask = (1 << 16) - 1
    noise = [rng.gauss(0.0, 1.0) for _ in range(1 << 16)]
    diurnal = [0.5 - 0.5 * math.cos(2 * math.pi * (m - 14 * 60 + 720) / 1440) for m in range(1440)]
    cpu_str = [cores(m) for m in range(20001)]
    max_m = 20000
    mem_every = max(1, 300 // step)  # memory is recomputed every ~5 minutes
    rows = 0
    write = out.write
    write(HEADER + "\n")
    for i in range(steps):
        ts = START + i * step
        tss = str(ts)
        minute = ((ts - START) // 60) % 1440
        mem_tick = i % mem_every == 0
        lines = []
        append = lines.append
        for c in cs:
            if ts < c.down_until:
                continue
            ra = c.restart_at
            if ra is not None and ts >= ra:
                c.prefix = c.new_prefix
                c.restart_at = None
                c.mem = c.mem_base
                c.mem_str = str(int(c.mem))
            j = (i + c.noise_off) & mask
            d = diurnal[(minute + c.phase) % 1440]
            shape = c.shape
            if shape == "bursty":
                if i < c.burst_until:
                    m = c.cpu_base + c.cpu_amp * (0.9 + 0.05 * noise[j])
                    if mem_tick:
                        c.mem_str = str(int(c.mem_base + c.mem_amp * (0.95 + 0.02 * noise[j])))
                else:
                    m = c.cpu_base * (1.0 + 0.1 * noise[j])
                    if noise[(j * 7 + 13) & mask] > 3.0:  # a few bursts a day at 1-minute steps
                        c.burst_until = i + (1800 + (j % 1800)) // step
                    if mem_tick:
                        c.mem_str = str(int(c.mem_base * (1.0 + 0.01 * noise[j])))
            else:
                m = (c.cpu_base + c.cpu_amp * d) * (1.0 + 0.08 * noise[j])
                if mem_tick:
                    if shape == "oom" or shape == "leak":
                        c.mem += c.mem_rate * mem_every * (1.0 + 0.3 * noise[(j + 101) & mask])
                        if shape == "oom" and c.mem >= c.request:
                            kill = ts - (j % step)
                            append(f"{kill}{c.prefix},{c.request},oom")
                            c.mem = c.mem_base
                            c.down_until = kill + 60 + (j % 4) * 60
                            c.mem_str = str(int(c.mem))
                            if ts < c.down_until:
                                continue
                        c.mem_str = str(int(c.mem))
                    else:
                        c.mem_str = str(int((c.mem_base + c.mem_amp * d) * (1.0 + 0.01 * noise[j])))
            mi = int(m)
            if mi < 0:
                mi = 0
            elif mi > max_m:
                mi = max_m
            append(f"{tss}{c.prefix}{cpu_str[mi]},{c.mem_str},")
        # OOM rows carry a time slightly before ts: keep the file globally time-ordered
        if lines and any(l.endswith("oom") for l in lines):
            lines.sort(key=lambda l: int(l[: l.index(",")]))
        rows += len(lines)
        write("\n".join(lines))
        write("\n")
    return rows


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("example", help="the example trace (examples/trace.csv)")
    ex.add_argument("--out", default="examples/trace.csv")
    ex.add_argument("--seed", type=int, default=20261101)
    be = sub.add_parser("bench", help="a large benchmark trace")
    be.add_argument("--containers", type=int, default=1000)
    be.add_argument("--days", type=float, default=8)
    be.add_argument("--step", type=int, default=60, help="seconds between samples")
    be.add_argument("--seed", type=int, default=1)
    be.add_argument("--out", required=True)
    args = ap.parse_args()

    t0 = time.monotonic()
    if args.cmd == "example":
        lines = gen_example(args.seed)
        with open(args.out, "w", newline="\n") as f:
            f.write("\n".join(lines) + "\n")
        n = len(lines) - 1
    else:
        if args.step <= 0 or args.containers <= 0 or args.days <= 0:
            ap.error("--containers, --days and --step must be positive")
        with open(args.out, "w", newline="\n", buffering=1 << 22) as f:
            n = gen_bench(f, args.containers, args.days, args.step, args.seed)
    print(f"{args.out}: {n} rows in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
