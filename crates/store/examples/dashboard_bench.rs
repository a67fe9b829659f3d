//! Times the safeguarding dashboard's summary query (`DashboardStore::
//! safeguarding_summary`) on a generated school: `--rows` activity events
//! (default 1,000,000) over 90 days on 300 computers, and `--violations`
//! violations (default 20,000). Prints the median of `--runs` runs for
//! 7, 30, 90 and 366 days, over every computer (an administrator) and over
//! one room of 30 (a teacher), and SQLite's query plan for each query.
//!
//!   bash bench/dashboard.sh                # release build, the defaults
//!   cargo run -p lectern-store --example dashboard_bench -- --rows 100000

use std::time::Instant;

use lectern_proto::ActivityEvent;
use lectern_store::dashboard::DashboardScope;
use lectern_store::{NewDevice, SqliteStore, Store, Violation};

const DAY: i64 = 24 * 60 * 60 * 1000;
const DEVICES: usize = 300;

/// A small deterministic generator (no seed from the clock: runs compare).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    /// Uniform enough below `n` (62 random bits: `next` gives 31).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() << 31) | self.next()) % n
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rows = arg("--rows", 1_000_000);
    let violations = arg("--violations", 20_000);
    let runs = arg("--runs", 5).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("bench.db")).expect("the database");
    let school = store.create_school("Bench").unwrap();
    let (token, _) = store
        .create_enrollment_token(
            school,
            "",
            DEVICES as i64,
            lectern_store::now_ms() + DAY,
            "bench",
        )
        .unwrap();
    let devices: Vec<i64> = (0..DEVICES)
        .map(|i| {
            store
                .enroll_device(
                    &token,
                    &NewDevice {
                        hostname: format!("R{:02}-PC{:02}", i / 30, i % 30),
                        os: "linux".into(),
                        agent_version: "bench".into(),
                    },
                )
                .unwrap()
                .unwrap()
                .0
                .id
        })
        .collect();
    let now = lectern_store::now_ms();
    let start = now - 90 * DAY;
    let mut rng = Lcg(0x5eed);
    let t = Instant::now();
    // One batch per device per round, as agents send them.
    let per_batch = 500;
    let mut left = rows;
    while left > 0 {
        let device = devices[rng.below(DEVICES as u64) as usize];
        let n = per_batch.min(left);
        let events: Vec<ActivityEvent> = (0..n)
            .map(|_| {
                let web = rng.below(10) < 7;
                ActivityEvent {
                    kind: if web { "web" } else { "app" }.into(),
                    user: Some(format!("student{}", rng.below(2000))),
                    url: web.then(|| {
                        format!(
                            "https://site{}.example/page/{}",
                            rng.below(3000),
                            rng.below(100)
                        )
                    }),
                    title: Some("A page".into()),
                    app: (!web).then(|| "editor".into()),
                    at: start + rng.below((90 * DAY) as u64) as i64,
                    blocked: false,
                }
            })
            .collect();
        store.add_activity(school, device, None, &events).unwrap();
        left -= n;
    }
    let categories = [
        "bullying",
        "drugs",
        "weapons",
        "self-harm",
        "adult content",
        "violence",
    ];
    for _ in 0..violations {
        let v = Violation {
            id: 0,
            device_id: devices[rng.below(DEVICES as u64) as usize],
            user: Some(format!("student{}", rng.below(2000))),
            term: "term".into(),
            category: categories[rng.below(categories.len() as u64) as usize].into(),
            severity: 1 + rng.below(5) as u8,
            matched: "term".into(),
            context: "some context".into(),
            source: "url".into(),
            action: "log".into(),
            screenshots: 0,
            at: start + rng.below((90 * DAY) as u64) as i64,
            person_id: None,
            person: None,
            retrospective: false,
        };
        store.add_violation(school, &v).unwrap();
    }
    println!(
        "generated {rows} activity events and {violations} violations on {DEVICES} computers in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let room: Vec<i64> = devices[..30].to_vec();
    println!("| period | computers | violations | activity | median ms | min ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for days in [7, 30, 90, 366] {
        for (who, devs) in [("all 300", &devices), ("one room of 30", &room)] {
            let scope = DashboardScope {
                devices: devs.clone(),
                since: now - days * DAY,
                until: now,
            };
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..runs {
                let t = Instant::now();
                let s = store
                    .dashboard()
                    .safeguarding_summary(school, &scope)
                    .unwrap();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                last = Some(s);
            }
            times.sort_by(|a, b| a.total_cmp(b));
            let s = last.unwrap();
            println!(
                "| {days} days | {who} | {} | {} | {:.0} | {:.0} | {:.0} |",
                s.violations,
                s.activity,
                times[times.len() / 2],
                times[0],
                times[times.len() - 1]
            );
        }
    }
    for (name, plan) in lectern_store::dashboard::query_plans(&store).unwrap() {
        println!("plan {name}: {plan}");
    }
}
