//! `[fleet]` with a real Redis (Debian's `redis-server`, started here on a
//! free port): three replicas in this process, each with its own listeners,
//! sharing one store. Requests go round robin, as behind a balancer.
//! docs/fleet.md has the semantics these check.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic on failure")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{
    KillOnDrop, WithAdmin, admin_json, eventually, messages, metric, send, text_request,
};
use tokio::time::Instant;

/// A Redis server on a free port, stopped when dropped.
struct Redis {
    port: u16,
    _dir: tempfile::TempDir,
    child: Option<KillOnDrop>,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, _dir: tempfile::tempdir().unwrap(), child: None };
        redis.restart();
        redis
    }

    /// Starts it (again) on its port, with nothing persisted.
    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(self._dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test.sh installs Debian's redis-server)");
        self.child = Some(KillOnDrop(child));
        let deadline = std::time::SystemTime::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::SystemTime::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        self.child = None;
    }

    /// Sends it `signal` (`STOP` freezes it: connected, answering nothing).
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status =
            std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status();
        assert!(status.unwrap().success());
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Three replicas of `knobs` on the store at `url`, each told its name.
/// Store calls may take 2 s: a busy machine must not make a replica fall
/// back where a test counts on the store.
async fn fleet(url: &str, namespace: &str, knobs: &str) -> Vec<WithAdmin> {
    fleet_with_timeout(url, namespace, knobs, "2s").await
}

async fn fleet_with_timeout(
    url: &str,
    namespace: &str,
    knobs: &str,
    timeout: &str,
) -> Vec<WithAdmin> {
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        let toml = format!(
            "{knobs}\n[fleet]\nstore = \"{url}\"\nnamespace = \"{namespace}\"\ntimeout = \"{timeout}\"\n"
        );
        let mut config = sluice::Config::from_toml_str(&toml, "fleet.toml").unwrap();
        config.replica = Some(name.to_string());
        replicas.push(support::start_config_with_admin(config).await);
    }
    // Every replica has had a heartbeat (and so knows the generation).
    answering_the_store(&replicas).await;
    replicas
}

/// Waits until every replica's store answers.
async fn answering_the_store(replicas: &[WithAdmin]) {
    for replica in replicas {
        eventually("the store to answer", || async {
            (metric(replica.admin, "sluice_fleet_store_up").await == 1.0).then_some(())
        })
        .await;
    }
}

/// `n` streamed requests sent all at once, round robin; their responses.
async fn at_once(replicas: &[WithAdmin], n: usize) -> Vec<support::Received> {
    let requests: Vec<_> = (0..n)
        .map(|i| {
            let api = replicas[i % replicas.len()].api;
            tokio::spawn(async move { send(api, messages(&text_request())).await })
        })
        .collect();
    let mut responses = Vec::with_capacity(n);
    for request in requests {
        responses.push(request.await.unwrap());
    }
    responses
}

/// The statuses of `n` requests sent one after another, round robin.
async fn round_robin(replicas: &[WithAdmin], n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for i in 0..n {
        statuses.push(status_of(replicas[i % replicas.len()].api).await);
    }
    statuses
}

const QUICK: &str = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"0ms\"\ntokens_per_response = 3\n";

async fn status_of(api: SocketAddr) -> u16 {
    send(api, messages(&text_request())).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_admits_the_configured_rate_not_three_times_it() {
    let redis = Redis::start();
    let knobs = format!("{QUICK}[rate_limits]\nrequests_per_minute = 600\nburst = 10\n");
    let replicas = fleet(&redis.url(), "limits", &knobs).await;
    let started = Instant::now();
    let mut admitted = 0u64;
    let mut refused = 0u64;
    for i in 0..60 {
        match status_of(replicas[i % 3].api).await {
            200 => admitted += 1,
            429 => refused += 1,
            other => panic!("status {other}"),
        }
    }
    let elapsed = started.elapsed();
    // The exact bucket: 10 at once and 10 a second; the fleet admits no more,
    // and at most one block (1 unit) a replica less (docs/fleet.md).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let exact = 10 + (elapsed.as_secs_f64() * 10.0).floor() as u64;
    assert!(
        admitted <= exact + 1,
        "admitted {admitted} of 60 in {elapsed:?}: more than the bucket's {exact}"
    );
    assert!(
        admitted + 3 >= exact,
        "admitted {admitted} of 60 in {elapsed:?}: the bucket held {exact}"
    );
    assert_eq!(admitted + refused, 60);
    // Each replica alone would have admitted 10 at once: 30.
    assert!(admitted < 30);
    // A refusal on another replica says how long the fleet's bucket needs.
    let refusal = send(replicas[1].api, messages(&text_request())).await;
    if refusal.status.as_u16() == 429 {
        let retry: f64 = refusal.header("retry-after").parse().unwrap();
        assert!(retry <= 1.0, "retry-after {retry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_faults_exactly_that_many_fleet_requests() {
    let redis = Redis::start();
    let knobs = format!("{QUICK}[[faults]]\nkind = \"http\"\nstatus = 500\nfirst_requests = 5\n");
    let replicas = fleet(&redis.url(), "schedules", &knobs).await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        statuses.push(status_of(replicas[i % 3].api).await);
    }
    // The first five the fleet saw, in order: one replica alone would fault
    // its own first five (15 in all).
    assert_eq!(statuses[..5], [500; 5]);
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 5, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_control_on_one_replica_reaches_every_replica() {
    let redis = Redis::start();
    let replicas = fleet(&redis.url(), "live", QUICK).await;
    let (status, body) =
        admin_json(replicas[0].admin, "PUT", "/faults", "{\"error_rate\": 1}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fleet"]["told"], true, "{body}");
    let version = body["version"].as_str().unwrap().to_string();
    let hash = version.split_once('-').map_or(version.as_str(), |(_, hash)| hash).to_string();
    for replica in &replicas[1..] {
        eventually("the fleet's PUT /faults on every replica", || async {
            let received = send(replica.api, messages(&text_request())).await;
            let config = received.header("x-sluice-config").to_string();
            (received.status.as_u16() >= 500 && config.ends_with(&hash)).then_some(())
        })
        .await;
    }
    let (status, body) = admin_json(replicas[2].admin, "DELETE", "/faults", "").await;
    assert_eq!((status, &body["fleet"]["told"]), (200, &serde_json::json!(true)), "{body}");
    eventually("the fleet's DELETE /faults on replica a", || async {
        (status_of(replicas[0].api).await == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_on_one_replica_is_reported_by_any_with_every_part() {
    let redis = Redis::start();
    let replicas = fleet(&redis.url(), "runs", QUICK).await;
    let (status, run) =
        admin_json(replicas[0].admin, "POST", "/runs", "{\"name\":\"fleet\"}").await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    for replica in &replicas {
        eventually("every replica to know the run", || async {
            let (_, runs) = admin_json(replica.admin, "GET", "/runs", "").await;
            let open = runs["runs"]
                .as_array()?
                .iter()
                .any(|r| r["id"] == id.as_str() && r["ended_at"].is_null());
            open.then_some(())
        })
        .await;
    }
    for i in 0..9 {
        assert_eq!(status_of(replicas[i % 3].api).await, 200);
    }
    let (status, _) = admin_json(replicas[1].admin, "POST", &format!("/runs/{id}/end"), "").await;
    assert_eq!(status, 200);
    let report = eventually("every part in the report", || async {
        let (_, report) =
            admin_json(replicas[2].admin, "GET", &format!("/runs/{id}/report"), "").await;
        (report["totals"]["requests"] == 9 && report["run"]["ended_at"].is_string())
            .then_some(report)
    })
    .await;
    assert_eq!(report["totals"]["outcomes"]["ok"], 9);
    assert_eq!(report["timing"]["first_token_ms"]["count"], 9);
    let parts: Vec<(&str, u64)> = report["sluice"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["replica"].as_str().unwrap(), p["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(parts, [("a", 3), ("b", 3), ("c", 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stops_answering_costs_one_timeout_and_is_reconciled_when_back() {
    let redis = Redis::start();
    let knobs = format!("{QUICK}[[faults]]\nkind = \"http\"\nstatus = 500\nfirst_requests = 100\n");
    let replicas = fleet_with_timeout(&redis.url(), "frozen", &knobs, "250ms").await;
    for i in 0..6 {
        assert_eq!(status_of(replicas[i % 3].api).await, 500);
    }
    redis.signal("STOP");
    // A frozen store: the first call on each replica waits out [fleet]
    // timeout (250 ms); after it, no request asks the store.
    let mut slow = 0;
    for i in 0..30 {
        let sent = Instant::now();
        assert_eq!(status_of(replicas[i % 3].api).await, 500);
        let took = sent.elapsed();
        assert!(took < Duration::from_secs(2), "request {i} took {took:?}");
        if took >= Duration::from_millis(200) {
            slow += 1;
        }
    }
    assert!(slow <= 3, "{slow} requests waited on the frozen store");
    for replica in &replicas {
        assert_eq!(metric(replica.admin, "sluice_fleet_store_up").await, 0.0);
    }
    redis.signal("CONT");
    answering_the_store(&replicas).await;
    // Nothing was lost: 6 counted by the store, 30 by the replicas alone,
    // so 64 of the first 100 are left to fault. A call that timed out was
    // still sent, and a frozen Redis runs it when it wakes: the request it
    // numbered counts twice, at most once a replica (docs/fleet.md).
    let statuses = round_robin(&replicas, 75).await;
    let faulted = statuses.iter().filter(|s| **s == 500).count();
    assert!(
        (64 - slow..=64).contains(&faulted),
        "{faulted} faulted, {slow} timed out: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_goes_away_stalls_nothing_and_is_reconciled_when_back() {
    let mut redis = Redis::start();
    let knobs = format!("{QUICK}[[faults]]\nkind = \"http\"\nstatus = 500\nfirst_requests = 100\n");
    let replicas = fleet(&redis.url(), "outage", &knobs).await;
    for i in 0..6 {
        assert_eq!(status_of(replicas[i % 3].api).await, 500);
    }
    redis.stop();
    // Every request is answered, within the store's timeout at worst.
    for i in 0..30 {
        let sent = Instant::now();
        assert_eq!(status_of(replicas[i % 3].api).await, 500);
        assert!(sent.elapsed() < Duration::from_secs(2), "request {i} took {:?}", sent.elapsed());
    }
    for replica in &replicas {
        assert_eq!(metric(replica.admin, "sluice_fleet_store_up").await, 0.0);
        assert!(
            metric(replica.admin, "sluice_fleet_fallbacks_total{what=\"schedules\"}").await >= 1.0
        );
    }
    redis.restart();
    answering_the_store(&replicas).await;
    // The store restarted empty (a new generation): the 6 it counted are
    // gone, the 30 counted alone are added to the new count, so 70 more of
    // the first 100 fault, then none.
    let statuses = round_robin(&replicas, 75).await;
    let faulted = statuses.iter().filter(|s| **s == 500).count();
    assert_eq!(faulted, 70, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_counts_the_fleets_streams() {
    let redis = Redis::start();
    // Streams of a second; four places for the fleet; a wait of 300 ms.
    let knobs = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"100ms\"\n\
                 tokens_per_response = 10\n[capacity]\nmax_concurrent = 4\nqueue_timeout = \"300ms\"\n";
    let replicas = fleet(&redis.url(), "capacity", knobs).await;
    let responses = at_once(&replicas, 6).await;
    let mut served = 0;
    let mut shed = 0;
    for received in responses {
        match (received.status.as_u16(), received.headers.get("x-sluice-capacity")) {
            (200, None) => served += 1,
            (529, Some(_)) => shed += 1,
            (status, capacity) => panic!("status {status}, x-sluice-capacity {capacity:?}"),
        }
    }
    // Alone, each replica would have served its two: all six.
    assert_eq!((served, shed), (4, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_at_start_is_said_and_the_replica_serves_alone() {
    // A port nothing listens on: the store is down from the first call.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let knobs = format!("{QUICK}[rate_limits]\nrequests_per_minute = 600\nburst = 2\n");
    let toml = format!("{knobs}\n[fleet]\nstore = \"redis://:pw@127.0.0.1:{port}\"\n");
    let replica = support::start_with_admin(&toml).await;
    eventually("the fallback to be counted", || async {
        (metric(replica.admin, "sluice_fleet_fallbacks_total{what=\"heartbeat\"}").await >= 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(metric(replica.admin, "sluice_fleet_store_up").await, 0.0);
    // Its own bucket: 2 at once, then refused.
    let statuses: Vec<u16> =
        [status_of(replica.api).await, status_of(replica.api).await, status_of(replica.api).await]
            .into();
    assert_eq!(statuses, [200, 200, 429]);
    let (_, fleet) = admin_json(replica.admin, "GET", "/fleet", "").await;
    assert_eq!(fleet["store_up"], false);
    assert_eq!(fleet["store"], format!("redis://<redacted>@127.0.0.1:{port}"));
    // Without [fleet], no fleet series at all.
    let alone = support::start_with_admin(QUICK).await;
    let text = send(alone.admin, support::admin_request("GET", "/metrics", "")).await.body();
    assert!(!String::from_utf8_lossy(&text).contains("sluice_fleet_store_up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_queue_counts_the_fleets_waiting_requests() {
    let redis = Redis::start();
    // Two places and one waiting request for the whole fleet; streams of a second.
    let knobs = "seed = 1\nerror_rate = 0\nfirst_token_delay = \"0ms\"\ntoken_interval = \"100ms\"\n\
                 tokens_per_response = 10\n[capacity]\nmax_concurrent = 2\nmax_queue = 1\nqueue_timeout = \"10s\"\n";
    let replicas = fleet(&redis.url(), "queue", knobs).await;
    let responses = at_once(&replicas, 6).await;
    let mut served = 0;
    let mut shed = 0;
    for received in responses {
        match received.status.as_u16() {
            200 => served += 1,
            529 => shed += 1,
            status => panic!("status {status}"),
        }
    }
    // Two served at once and one after its wait; the fleet's queue held one,
    // where a queue of one a replica would have held three.
    assert_eq!((served, shed), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_a_replica_was_not_subscribed_reaches_it_when_it_subscribes_again() {
    let redis = Redis::start();
    let replicas = fleet(&redis.url(), "resubscribe", QUICK).await;
    // Every subscription is cut; the change is published while they are gone.
    let killed = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "CLIENT", "KILL", "TYPE", "pubsub"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&killed.stdout).trim().parse::<u32>().unwrap() >= 3);
    let (status, body) =
        admin_json(replicas[0].admin, "PUT", "/faults", "{\"error_rate\": 1}").await;
    assert_eq!(status, 200, "{body}");
    for replica in &replicas[1..] {
        eventually("the change read again on subscribing", || async {
            (send(replica.api, messages(&text_request())).await.status.as_u16() >= 500)
                .then_some(())
        })
        .await;
    }
}
