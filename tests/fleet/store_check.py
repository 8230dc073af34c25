"""The fleet test's checks of `[fleet] store` through the admin ports
(scripts/fleet-test.sh; docs/fleet.md).

  python tests/fleet/store_check.py start-run ADMIN
      starts a run on one replica, waits until every replica has it open,
      prints its id
  python tests/fleet/store_check.py live ADMIN_FROM API_TO
      PUT /faults on one replica; how long until another serves it
  python tests/fleet/store_check.py report RUN_ID K6_JSON ADMIN_END ADMIN_READ ADMIN...
      ends the run on one replica, reads its report on another: it sums
      every replica's part, and its counts are k6's

Addresses are host:port. Exits 1 on a failed check.
"""

import collections
import json
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from check import check, failures, points  # noqa: E402


def call(method: str, url: str, body: str = "", headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=body.encode() if body else None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, dict(response.headers), (json.loads(text) if text.startswith(b"{") else {})
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, dict(error.headers), (json.loads(text) if text.startswith(b"{") else {})


def start_run(admin: str, others: list[str]) -> None:
    status, _, run = call("POST", f"http://{admin}/runs", '{"name": "fleet-test"}')
    check(status == 201, f"POST /runs on {admin}: {status}")
    check(run.get("fleet", {}).get("told") is True, f"the fleet was told of {run.get('id')}: {run.get('fleet')}")
    deadline = time.time() + 5
    for other in others:
        while True:
            _, _, runs = call("GET", f"http://{other}/runs")
            if any(r["id"] == run["id"] and r["ended_at"] is None for r in runs.get("runs", [])):
                break
            if time.time() > deadline:
                check(False, f"{other} knows the run")
                break
            time.sleep(0.02)
    print(run["id"])


def live(admin: str, api: str) -> None:
    message = json.dumps({"model": "fleet", "max_tokens": 16, "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]})
    headers = {"content-type": "application/json", "x-api-key": "live-control", "anthropic-version": "2023-06-01"}
    sent = time.time()
    status, _, body = call("PUT", f"http://{admin}/faults", '{"error_rate": 1}')
    check(status == 200 and body.get("fleet", {}).get("told") is True, f"PUT /faults on {admin}: {status} {body}")
    version = body.get("version", "")
    fingerprint = version.split("-", 1)[-1]
    seen = None
    while time.time() < sent + 5:
        # Every response names the config that served it, a 429 of the
        # rate limits included: its fingerprint is the same on every replica.
        _, response_headers, _ = call("POST", f"http://{api}/v1/messages", message, headers)
        config = response_headers.get("x-sluice-config", "")
        if config.endswith(fingerprint):
            seen = time.time()
            break
        time.sleep(0.005)
    took = (seen - sent) if seen else float("inf")
    print(f"PUT /faults on {admin} in force on {api} after {1000 * took:.0f} ms (config {version})")
    check(took <= 1.0, f"live control reached another replica within 1 s ({1000 * took:.0f} ms)")
    status, _, body = call("DELETE", f"http://{admin}/faults")
    check(status == 200 and body.get("fleet", {}).get("told") is True, f"DELETE /faults on {admin}: {status}")


def report(run_id: str, k6_json: str, admin_end: str, admin_read: str, admins: list[str]) -> None:
    responses = points(k6_json)
    statuses = collections.Counter(p["status"] for p in responses)
    status, _, ended = call("POST", f"http://{admin_end}/runs/{run_id}/end")
    check(status == 200, f"POST /runs/{run_id}/end on {admin_end}: {status}")
    deadline = time.time() + 5
    while True:
        _, _, got = call("GET", f"http://{admin_read}/runs/{run_id}/report")
        parts = got.get("sluice", {}).get("replicas", [])
        if len(parts) == len(admins) and all(p["ended"] for p in parts) and got["totals"]["requests"] >= len(responses):
            break
        if time.time() > deadline:
            break
        time.sleep(0.2)
    totals = got.get("totals", {})
    outcomes = totals.get("outcomes", {})
    print(f"report of {run_id} from {admin_read}: {totals.get('requests')} requests, outcomes {outcomes}, "
          f"parts {[(p['replica'], p['requests']) for p in parts]}; k6 saw {len(responses)}: {dict(statuses)}")
    check(len(parts) == len(admins), f"the report holds every replica's part ({len(parts)})")
    check(totals.get("requests") == len(responses), f"its requests are k6's ({totals.get('requests')} = {len(responses)})")
    check(sum(p["requests"] for p in parts) == totals.get("requests"), "the parts add up to the total")
    check(outcomes.get("rate_limited", 0) == statuses.get("429", 0),
          f"its rate-limited are k6's 429s ({outcomes.get('rate_limited', 0)} = {statuses.get('429', 0)})")
    check(got["timing"]["first_token_ms"]["count"] == statuses.get("200", 0),
          "its first tokens are k6's successful streams")


if sys.argv[1] == "start-run":
    start_run(sys.argv[2], sys.argv[3:])
elif sys.argv[1] == "live":
    live(sys.argv[2], sys.argv[3])
else:
    report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
sys.exit(1 if failures else 0)
