"""Turns bench/*.json (examples/loadgen reports) into the markdown tables of
the README's Performance section. Usage: python3 scripts/bench-table.py bench"""

import json
import os
import platform
import sys

folder = sys.argv[1]


def load(name):
    path = os.path.join(folder, f"{name}.json")
    return json.load(open(path)) if os.path.exists(path) else None


def ms(value):
    return "–" if value is None else f"{value:.2f}"


def failed(run):
    ends = run["ends"]
    bad = sum(v for k, v in ends.items() if k != "Complete")
    return f"{bad}"


def late(run):
    block = run.get("sluice_release_lateness_ms")
    bound = block and block.get("p99_at_most")
    return "–" if bound is None else f"{bound:g}"


def busy(run):
    value = run.get("machine_busy_percent")
    if value is None:
        return "–"
    return f"{value:.0f}{' (saturated)' if run['machine_saturated'] else ''}"


def pct(run, key, field):
    block = run["ms"].get(key)
    return None if not block else block[field]


def err(run, key, field):
    block = run["error_ms"].get(key)
    return None if not block else block[field]


cpu_model = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
print(f"Machine: {os.cpu_count()} cores ({cpu_model}), Linux {platform.release()}. "
      "loadgen runs on one thread beside sluice. *machine busy* is all CPU time but idle, from /proc/stat, "
      "softirq included (loopback TCP's receive work, which no process is charged for); over 85 % counts as saturated. "
      "*sluice late p99* is sluice's own `sluice_release_lateness_seconds` histogram: 99 % of tokens left at most this late "
      "(a bucket bound), before the kernel and the load generator add theirs.\n")

print("**Mock, the Node mock's defaults** (100 ms first token, 20 ms interval, 50 tokens):\n")
print("| streams | streams/s | tokens/s | first token p50 / p99 ms | error p99 / max ms | gap p99 ms | gap error p99 / max ms | sluice late p99 ≤ ms | failed | sluice CPU cores | % core per 1k events/s | peak RSS MiB | loadgen cores | machine busy % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for n, name in [(100, "mock-paced-100"), (1000, "mock-paced-1000"), ("1000 OpenAI Chat", "mock-openai-paced-1000"),
                ("1000 Gemini", "mock-gemini-paced-1000"), ("1000 Bedrock", "mock-bedrock-paced-1000"),
                ("1000 with [capacity]", "mock-capacity-paced-1000"),
                ("1000, limits, schedule, capacity", "mock-fleet-off-paced-1000"),
                ("1000, the same with [fleet] (Redis)", "mock-fleet-paced-1000"),
                (2000, "mock-paced-2000"), (4000, "mock-paced-4000")]:
    run = load(name)
    if not run:
        continue
    t = run["target"]
    print(f"| {n} | {run['streams_per_s']:.0f} | {run['tokens_per_s']:.0f} | "
          f"{ms(pct(run, 'first_token', 'p50'))} / {ms(pct(run, 'first_token', 'p99'))} | "
          f"{ms(err(run, 'first_token', 'p99'))} / {ms(err(run, 'first_token', 'max'))} | "
          f"{ms(pct(run, 'gap', 'p99'))} | {ms(err(run, 'gap', 'p99'))} / {ms(err(run, 'gap', 'max'))} | "
          f"{late(run)} | {failed(run)} | {t['cpu_cores']:.2f} | {t['cpu_percent_per_1k_events_per_s']:.3f} | "
          f"{t['peak_rss_kib'] / 1024:.1f} | {run['loadgen_cpu_cores']:.2f} | {busy(run)} |")

floor_rows = []
for n in (1000, 2000):
    for r in (1, 2):
        f, h, s = (load(f"floor-paced-{n}-{r}"), load(f"hyper-paced-{n}-{r}"),
                   load(f"sluice-floor-paced-{n}-{r}"))
        if f and s:
            floor_rows.append((n, r, f, h, s))
if floor_rows:
    print("\n**Against the floor** (`examples/floor.rs`: one thread, epoll and a timerfd, writing sluice's own captured "
          "response at the same deadlines, one write per due group, with sluice's timer batching), and hyper alone "
          "(`examples/paced_hyper.rs`: the same response on hyper, tokio and sluice's precise timer, on per-core "
          "runtimes as sluice's shards; nothing of sluice's own); the three run back to back:\n")
    print("| streams | round | floor % core per 1k events/s (user share) | hyper alone % (ratio to floor) | sluice % (user share) | sluice ratio to floor | floor first token / gap error p99 ms | sluice first token / gap error p99 ms | machine busy % floor / sluice |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, r, f, h, s in floor_rows:
        fp, sp = f["target"]["cpu_percent_per_1k_events_per_s"], s["target"]["cpu_percent_per_1k_events_per_s"]
        hyper = "—"
        if h:
            hp = h["target"]["cpu_percent_per_1k_events_per_s"]
            hyper = f"{hp:.3f} ({hp / max(fp, 1e-9):.2f}×)"
        print(f"| {n} | {r} | {fp:.3f} ({f['target'].get('user_share', 0):.0%}) | {hyper} | {sp:.3f} ({s['target'].get('user_share', 0):.0%}) | "
              f"{sp / max(fp, 1e-9):.2f}× | {ms(err(f, 'first_token', 'p99'))} / {ms(err(f, 'gap', 'p99'))} | "
              f"{ms(err(s, 'first_token', 'p99'))} / {ms(err(s, 'gap', 'p99'))} | {busy(f)} / {busy(s)} |")

ceiling = load("mock-ceiling")
if ceiling:
    t = ceiling["target"]
    print(f"\n**Mock, zero delays** (64 connections, back to back): **{ceiling['streams_per_s']:.0f} streams/s** of 50 tokens, "
          f"{ceiling['events_per_s']:.0f} events/s, sluice {t['cpu_cores']:.2f} cores, loadgen {ceiling['loadgen_cpu_cores']:.2f} cores"
          f"{' (saturated)' if ceiling['machine_saturated'] else ''}.")

limited = load("mock-ceiling-rate-limited-10k")
if ceiling and limited:
    def us_per_stream(run):
        return run["target"]["cpu_cores"] * 1e6 / run["streams_per_s"]
    print(f"\n**Rate limits at 10,000 keys** (the same zero-delay load, each request with one of 10,000 API keys, "
          f"`[rate_limits]` on requests, input and output tokens, none refused): {limited['streams_per_s']:.0f} streams/s, "
          f"sluice {us_per_stream(limited):.1f} µs of CPU a stream against {us_per_stream(ceiling):.1f} µs without limits "
          f"(one key). The limiter alone (`examples/limiter_cost.rs`):\n")
    try:
        print(open(os.path.join(sys.argv[1], "limiter-cost.md")).read().rstrip())
    except OSError:
        pass

tls = load("mock-tls-paced-1000")
plain = load("mock-paced-1000")
if tls and plain:
    ratio = tls["target"]["cpu_percent_per_1k_events_per_s"] / max(plain["target"]["cpu_percent_per_1k_events_per_s"], 1e-9)
    print(f"\n**TLS** (`[tls] self_signed`, HTTP/1.1 by ALPN, the loadgen trusting only the CA): 1,000 paced streams, "
          f"first token p50 / p99 {tls['ms']['first_token']['p50']:.2f} / {tls['ms']['first_token']['p99']:.2f} ms, "
          f"{tls['target']['cpu_percent_per_1k_events_per_s']:.3f} % of a core per 1k events/s "
          f"({ratio:.2f}× plain HTTP's {plain['target']['cpu_percent_per_1k_events_per_s']:.3f}).", end="")
    h2 = load("mock-tls-h2-paced-1000")
    if h2:
        h2_ratio = h2["target"]["cpu_percent_per_1k_events_per_s"] / max(plain["target"]["cpu_percent_per_1k_events_per_s"], 1e-9)
        print(f" Over HTTP/2: first token p50 / p99 {h2['ms']['first_token']['p50']:.2f} / {h2['ms']['first_token']['p99']:.2f} ms, "
              f"{h2['target']['cpu_percent_per_1k_events_per_s']:.3f} % ({h2_ratio:.2f}× plain).", end="")
    for mode in ("full", "resumed"):
        h = load(f"tls-handshakes-{mode}")
        if h:
            print(f" {mode.capitalize()} handshakes: {h['handshakes_per_s']:.0f}/s on 16 connections, "
                  f"{h['target_cpu_us_per_handshake']:.0f} µs of sluice's CPU each.", end="")
    print()

idle = load("mock-idle")
if idle:
    print(f"\n**Idle open streams:** {idle['open_streams']} streams stalled after their first token add "
          f"{idle['bytes_per_idle_stream'] / 1024:.1f} KiB each to sluice's RSS ({idle['rss_before_kib'] / 1024:.1f} → {idle['rss_open_kib'] / 1024:.1f} MiB).", end="")
    for proto, n in (("h1", 10000), ("h2", 10000), ("h2", 50000)):
        row = load(f"mock-idle-{proto}-{n}")
        if row:
            name = "HTTP/1.1" if proto == "h1" else "HTTP/2, 100 a connection"
            print(f" {n:,} over {name}: {row['bytes_per_idle_stream'] / 1024:.1f} KiB each.", end="")
    proxied = load("proxy-idle")
    if proxied:
        print(f" Proxied, the upstream stalled: {proxied['bytes_per_idle_stream'] / 1024:.1f} KiB each in the proxy.", end="")
    print()

direct, via_sluice, via_nginx = load("direct"), load("via-sluice"), load("via-nginx")
via_bare = load("via-bare-hyper")
if direct:
    print("\n**Pass-through** (a zero-delay `sluice mock` upstream, 32 connections; the proxies add no delay and no fault):\n")
    print("| path | streams/s | time to head p50 / p99 ms | added p50 / p99 ms | first token p99 ms | proxy CPU cores | proxy % core per 1k events/s | failed |")
    print("|---|---|---|---|---|---|---|---|")
    base50, base99 = pct(direct, "head", "p50"), pct(direct, "head", "p99")
    for name, run in (("direct", direct), ("via sluice proxy", via_sluice),
                      ("via hyper alone (examples/bare_proxy.rs)", via_bare), ("via nginx", via_nginx)):
        if not run:
            continue
        h50, h99 = pct(run, "head", "p50"), pct(run, "head", "p99")
        added = "–" if run is direct else f"{h50 - base50:.2f} / {h99 - base99:.2f}"
        t = run["target"]
        cpu = "–" if run is direct else f"{t['cpu_cores']:.2f}"
        per = "–" if run is direct else f"{t['cpu_percent_per_1k_events_per_s']:.3f}"
        print(f"| {name} | {run['streams_per_s']:.0f} | {ms(h50)} / {ms(h99)} | {added} | {ms(pct(run, 'first_token', 'p99'))} | {cpu} | {per} | {failed(run)} |")

rows = [(n, load(f"proxy-paced-{n}")) for n in (1000, 4000)]
if any(r for _, r in rows):
    print("\n**Proxy pacing a fast upstream** (100 ms / 20 ms added to a zero-delay `sluice mock`):\n")
    print("| streams | tokens/s | first token error p99 / max ms | gap error p99 / max ms | sluice late p99 ≤ ms | failed | proxy CPU cores | peak RSS MiB | machine busy % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, run in rows:
        if not run:
            continue
        t = run["target"]
        print(f"| {n} | {run['tokens_per_s']:.0f} | {ms(err(run, 'first_token', 'p99'))} / {ms(err(run, 'first_token', 'max'))} | "
              f"{ms(err(run, 'gap', 'p99'))} / {ms(err(run, 'gap', 'max'))} | {late(run)} | {failed(run)} | {t['cpu_cores']:.2f} | "
              f"{t['peak_rss_kib'] / 1024:.1f} | {busy(run)} |")

def load_plain(name):
    path = os.path.join(folder, name)
    return json.load(open(path)) if os.path.exists(path) else None


recording, paced_recording = load("via-sluice-recording"), load("proxy-paced-1000-recording")
if via_sluice and recording:
    def us_per(run, key):
        return run["target"]["cpu_cores"] * 1e6 / max(run[key], 1e-9)
    counts = load_plain("recording-pass-through.json") or {}
    written = counts.get("counts", {}).get("written", 0)
    dropped = sum(v for k, v in counts.get("counts", {}).items() if k != "written")
    print(f"\n**Recording** (`--record`, docs/record-replay.md). Pass-through, the load above: "
          f"{recording['streams_per_s']:.0f} streams/s against {via_sluice['streams_per_s']:.0f}; sluice "
          f"{us_per(recording, 'streams_per_s'):.1f} µs of CPU a stream against {us_per(via_sluice, 'streams_per_s'):.1f} "
          f"({us_per(recording, 'streams_per_s') - us_per(via_sluice, 'streams_per_s'):+.1f} µs a stream, "
          f"{us_per(recording, 'events_per_s') - us_per(via_sluice, 'events_per_s'):+.2f} µs an event, the file write "
          f"included); {written:.0f} cassettes written ({counts.get('bytes', 0) / 1e6:.0f} MB), {dropped:.0f} dropped.", end="")
    plain_paced = load("proxy-paced-1000")
    if paced_recording and plain_paced:
        c = load_plain("recording-paced.json") or {}
        print(f" 1,000 paced streams: {paced_recording['target']['cpu_percent_per_1k_events_per_s']:.3f} % of a core per 1k "
              f"events/s against {plain_paced['target']['cpu_percent_per_1k_events_per_s']:.3f}, first token error p99 "
              f"{ms(err(paced_recording, 'first_token', 'p99'))} ms against {ms(err(plain_paced, 'first_token', 'p99'))}, "
              f"gap error p99 {ms(err(paced_recording, 'gap', 'p99'))} against {ms(err(plain_paced, 'gap', 'p99'))}; "
              f"{c.get('counts', {}).get('written', 0):.0f} cassettes written.", end="")
    print()
