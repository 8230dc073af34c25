"""The fleet test's checks (scripts/fleet-test.sh), on k6's JSON output.

  python tests/fleet/check.py steady K6_JSON EPOCH WINDOW_FROM WINDOW_UNTIL WRITTEN ERROR_RATE
  python tests/fleet/check.py drain K6_JSON KILLED_REPLICA KILLED_AT
  python tests/fleet/check.py store K6_JSON RATE_PER_S BURST FIRST_REQUESTS REPLICAS
  python tests/fleet/check.py outage K6_JSON STOPPED_AT STARTED_AT

Times are Unix seconds (float). Prints the figures; exits 1 on a failed check.
"""

import collections
import datetime
import json
import math
import sys

failures = []


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def points(path: str) -> list[dict]:
    out = []
    for line in open(path):
        item = json.loads(line)
        if item.get("type") != "Point" or item.get("metric") != "fleet_responses":
            continue
        stamp = item["data"]["time"]
        # 2026-12-02T15:20:01.123456789Z (k6 writes nanoseconds; Python reads micro).
        head, _, frac = stamp.rstrip("Z").partition(".")
        frac = frac.split("+")[0].split("-")[0]
        when = datetime.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()
        out.append({"at": when, **item["data"]["tags"]})
    return out


def replica_of(point: dict) -> str:
    # The balancer's $upstream_addr; after a retry it lists every address tried.
    return point["replica"].split(",")[-1].strip()


def steady(path, epoch, start, until, written, rate):
    responses = points(path)
    replicas = sorted({replica_of(p) for p in responses})
    print(f"{len(responses)} responses from {len(replicas)} replicas: {replicas}")
    check(len(replicas) == 3, "all three replicas answered")
    check(all(p["version"] != "none" for p in responses), "every response names its config version")

    # 1. The error rate, in aggregate, outside the outage window.
    outside = [p for p in responses if p["status"] != "503"]
    errors = sum(p["status"] == "500" for p in outside)
    n = len(outside)
    bound = 3 * math.sqrt(rate * (1 - rate) / n)
    measured = errors / n
    print(f"error rate: {errors}/{n} = {measured:.4f}; error_rate {rate} +/- {bound:.4f} (3 sigma)")
    check(abs(measured - rate) <= bound, "the aggregate error rate is within 3 sigma of error_rate")
    per = collections.Counter(replica_of(p) for p in outside if p["status"] == "500")
    print(f"  errors by replica: {dict(per)}")

    # 2. The outage window, set by the shared epoch, on every replica.
    opens, closes = epoch + start, epoch + until
    for replica in replicas:
        mine = [p for p in responses if replica_of(p) == replica]
        outage = [p["at"] for p in mine if p["status"] == "503"]
        check(bool(outage), f"{replica}: the outage happened")
        if not outage:
            continue
        first, last = min(outage), max(outage)
        # A response completes a few ms after its request arrived: 503s may
        # complete at most 100 ms after the window, never before it.
        inside = [p for p in mine if opens + 0.1 <= p["at"] <= closes]
        print(
            f"  {replica}: first 503 {1000 * (first - opens):+.1f} ms from the window's start, "
            f"last {1000 * (last - closes):+.1f} ms from its end; {len(outage)} 503s"
        )
        check(opens <= first <= opens + 0.1, f"{replica}: the outage starts within 100 ms of epoch + {start}s")
        check(closes - 0.1 <= last <= closes + 0.1, f"{replica}: the outage ends within 100 ms of epoch + {until}s")
        check(all(p["status"] == "503" for p in inside), f"{replica}: every request inside the window got 503")

    # 3. A config written once, applied by every replica within 2 s.
    versions = sorted({p["version"] for p in responses})
    print(f"config versions seen: {versions}")
    check(len(versions) == 2, "two config versions, the same on every replica: before and after the write")
    number = lambda p: int(p["version"].split("-")[0])
    for replica in replicas:
        mine = [p for p in responses if replica_of(p) == replica]
        old = min(number(p) for p in mine)
        new_at = [p["at"] for p in mine if number(p) > old]
        old_after = [p["at"] for p in mine if number(p) == old and p["at"] > written]
        applied = (min(new_at) - written) if new_at else math.inf
        stale = (max(old_after) - written) if old_after else 0.0
        print(f"  {replica}: first response on the new config {1000 * applied:.0f} ms after the write; "
              f"last on the old {1000 * stale:.0f} ms after")
        check(applied <= 2.0 and stale <= 2.0, f"{replica}: the new config applied within 2 s")


def drain(path, killed, killed_at):
    responses = points(path)
    ended = collections.Counter((replica_of(p), p["status"], p["ended"]) for p in responses)
    for key, count in sorted(ended.items()):
        print(f"  {key}: {count}")
    farewell = [p for p in responses if p["ended"] == "farewell"]
    failed = [p for p in responses if p["status"] != "200" or p["ended"] not in ("complete", "farewell")]
    check(len(farewell) > 0, f"streams open on {killed} at SIGTERM ended with the farewell event ({len(farewell)})")
    check(all(replica_of(p) == killed for p in farewell), "only the stopped replica's streams ended early")
    check(all(p["at"] >= killed_at for p in farewell), "they ended after the SIGTERM")
    check(not failed, f"no other request failed ({len(failed)} did)")
    after = [p for p in responses if p["at"] > killed_at + 3 and p["ended"] == "complete"]
    check(all(replica_of(p) != killed for p in after), "after the drain, the other replicas carry every request")
    print(f"complete streams: {sum(p['ended'] == 'complete' for p in responses)}, farewells: {len(farewell)}")


def store(path, rate, burst, first_requests, replicas):
    """`[fleet] store`: one key's requests through the balancer are admitted
    at the fleet's rate (the exact bucket, at most one block a replica
    fewer: docs/fleet.md), and `first_requests` faults that many in all."""
    responses = sorted(points(path), key=lambda p: p["at"])
    statuses = collections.Counter(p["status"] for p in responses)
    print(f"{len(responses)} responses: {dict(sorted(statuses.items()))}")
    check(len({replica_of(p) for p in responses}) == replicas, f"all {replicas} replicas answered")
    span = responses[-1]["at"] - responses[0]["at"]
    admitted = sum(p["status"] != "429" for p in responses)
    exact = burst + rate * span
    print(f"admitted {admitted} in {span:.2f} s: {admitted / span:.2f}/s; the exact bucket admits {exact:.1f}"
          f" ({rate}/s + {burst}); alone, each replica would admit its own")
    # Responses are stamped when they end, so the span is short of the test's
    # by up to one request: a unit of slack each side, and the blocks below.
    check(admitted <= exact + 1, f"the fleet admitted no more than the exact bucket ({admitted} <= {exact + 1:.1f})")
    check(admitted >= exact - replicas - 1, f"and at most one block a replica fewer ({admitted} >= {exact - replicas - 1:.1f})")
    faulted = statuses.get("500", 0)
    check(faulted == first_requests, f"first_requests = {first_requests} faulted exactly {faulted} fleet requests")
    first = [p["status"] for p in responses[:first_requests]]
    check(first == ["500"] * first_requests, f"the first {first_requests} answered were the faulted ones: {first}")
    check(set(statuses) <= {"200", "429", "500"}, "nothing else went wrong")


def outage(path, stopped_at, started_at):
    """The store stopped mid-run and came back: every request was answered,
    none waited long, and requests were served through the gap."""
    responses = points(path)
    statuses = collections.Counter(p["status"] for p in responses)
    print(f"{len(responses)} responses: {dict(sorted(statuses.items()))}")
    during = [p for p in responses if stopped_at <= p["at"] <= started_at]
    check(len(during) > 0, f"requests were answered while the store was down ({len(during)})")
    check(set(statuses) <= {"200", "429", "500"}, "no request failed for the store (only 200, 429, 500)")
    durations = sorted(float(p.get("duration", 0)) for p in responses)
    if durations:
        p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
        print(f"request duration p99 {p99:.1f} ms")
        check(p99 < 1000, f"no request stalled (p99 {p99:.1f} ms < 1 s)")


if __name__ == "__main__":
    if sys.argv[1] == "steady":
        steady(sys.argv[2], *map(float, sys.argv[3:8]))
    elif sys.argv[1] == "store":
        store(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "outage":
        outage(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        drain(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    sys.exit(1 if failures else 0)
