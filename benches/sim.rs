//! How `orgmesh run` on the simulator scales with the size of a full mesh: 10, 25, 50 and 100
//! organizations, each in its own cluster, all in one channel, every pair linked (n² directed
//! links with the self links, 2n² + n checks).
//!
//! For each size it prints the directed links, the checks, the wall time, checks per second
//! and the heap at its peak during the run and right after it (while the report is still
//! held), counted by a global allocator around `System`. The process's peak resident set
//! (VmHWM) comes once at the end: it includes the runtime and every size, so it bounds the
//! biggest one. The goal for 100 organizations
//! (10,000 links, 20,100 checks) is under 10 s and under 300 MiB.
//!
//! A run that fails is not measured: its timing would say nothing about a passing network.
//! Run with `cargo bench --bench sim`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orgmesh::run::{RunOptions, run};
use orgmesh::secrets::SecretSource;
use orgmesh::topology::Topology;

/// The mesh sizes, in organizations.
const SIZES: [usize; 4] = [10, 25, 50, 100];

/// Counts the bytes held on the heap and their peak since the last [`reset_peak`].
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `System` shares.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(pointer, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `System` frees the old block only when it succeeds.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            if new_size > layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts a new peak from what is held now.
fn reset_peak() {
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
}

fn mebibytes(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A full mesh of `count` organizations in one channel; clusters default to one per
/// organization.
fn full_mesh(count: usize) -> String {
    let names: Vec<String> = (1..=count).map(|i| format!("org-{i:03}")).collect();
    let mut text = format!("name: mesh-{count}\nlinks: {{ mode: full }}\nchannels:\n");
    writeln!(text, "  everyone: [{}]", names.join(", ")).expect("writing to a string");
    text.push_str("organizations:\n");
    for name in &names {
        writeln!(text, "  {name}: {{}}").expect("writing to a string");
    }
    text
}

/// What one size measured.
struct Measure {
    organizations: usize,
    links: usize,
    checks: usize,
    wall: Duration,
    peak_heap: usize,
    end_heap: usize,
}

fn measure(runtime: &tokio::runtime::Runtime, count: usize) -> Measure {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join(format!("mesh-{count}.yaml"));
    let scenario = orgmesh::scenario::parse(&path, &full_mesh(count)).expect("a valid mesh");
    let topology = Topology::build(&scenario).expect("a valid topology");
    let options = RunOptions {
        run_dir: Some(directory.path().join("run")),
        secrets: SecretSource::Seeded(1),
        ..Default::default()
    };
    reset_peak();
    let started = Instant::now();
    let outcome = runtime
        .block_on(run(&scenario, &topology, &options, &|_| {}))
        .expect("the run completes");
    let wall = started.elapsed();
    let peak_heap = PEAK.load(Ordering::Relaxed);
    let end_heap = CURRENT.load(Ordering::Relaxed);
    outcome.report.assert_passed();
    assert_eq!(
        outcome.report.checks.len(),
        topology.check_count(count),
        "every check was made"
    );
    Measure {
        organizations: count,
        links: topology.links.len(),
        checks: outcome.report.checks.len(),
        wall,
        peak_heap,
        end_heap,
    }
}

/// The process's peak resident set in KiB, from `/proc/self/status`.
fn peak_resident_kibibytes(status: &Path) -> Option<u64> {
    std::fs::read_to_string(status)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "{:>13} {:>7} {:>7} {:>9} {:>10} {:>14} {:>13}",
        "organizations", "links", "checks", "wall (s)", "checks/s", "peak heap MiB", "end heap MiB"
    );
    let mut measures = Vec::new();
    for count in SIZES {
        let measure = measure(&runtime, count);
        println!(
            "{:>13} {:>7} {:>7} {:>9.3} {:>10.0} {:>14.1} {:>13.1}",
            measure.organizations,
            measure.links,
            measure.checks,
            measure.wall.as_secs_f64(),
            measure.checks as f64 / measure.wall.as_secs_f64(),
            mebibytes(measure.peak_heap),
            mebibytes(measure.end_heap),
        );
        measures.push(measure);
    }
    match peak_resident_kibibytes(Path::new("/proc/self/status")) {
        Some(kibibytes) => println!(
            "process peak resident set (VmHWM): {:.1} MiB",
            kibibytes as f64 / 1024.0
        ),
        None => println!("process peak resident set: unavailable"),
    }
    let per_link = |m: &Measure| m.wall.as_secs_f64() / m.links as f64;
    if let (Some(smallest), Some(largest)) = (measures.first(), measures.last()) {
        println!(
            "time per link: {:.1} µs at {} organizations, {:.1} µs at {} ({:.2}x)",
            per_link(smallest) * 1e6,
            smallest.organizations,
            per_link(largest) * 1e6,
            largest.organizations,
            per_link(largest) / per_link(smallest),
        );
    }
}
