//! How rendering scales: full meshes of 50, 200 and 500 organizations through the library
//! (topology, OS secrets, values, YAML of every document), with wall time, links per second
//! and peak heap per size. Run with `cargo bench --bench render`; it prints figures and checks
//! nothing timing-dependent, because timings belong in a benchmark, not in a test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orgmesh::scenario;
use orgmesh::secrets::{LinkSecrets, SecretSource};
use orgmesh::topology::Topology;
use orgmesh::values;

/// The system allocator, counting the bytes currently allocated and their peak.
struct CountingAllocator;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl CountingAllocator {
    fn added(size: usize) {
        let current = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(current, Ordering::Relaxed);
    }

    fn removed(size: usize) {
        CURRENT.fetch_sub(size, Ordering::Relaxed);
    }

    /// Starts a new measurement: the peak becomes what is allocated now.
    fn reset_peak() -> usize {
        let current = CURRENT.load(Ordering::Relaxed);
        PEAK.store(current, Ordering::Relaxed);
        current
    }

    fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            Self::added(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            Self::added(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` was allocated by this allocator, that is by `System`, with `layout`.
        unsafe { System.dealloc(pointer, layout) };
        Self::removed(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's valid request.
        let new_pointer = unsafe { System.realloc(pointer, layout, new_size) };
        if !new_pointer.is_null() {
            Self::removed(layout.size());
            Self::added(new_size);
        }
        new_pointer
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A full mesh of `organizations` organizations, all in one channel.
fn full_mesh(organizations: usize) -> String {
    let names: Vec<String> = (0..organizations).map(|i| format!("org-{i}")).collect();
    let mut text = format!(
        "name: mesh-{organizations}\nchannels:\n  everyone: [{}]\norganizations:\n",
        names.join(", ")
    );
    for (index, name) in names.iter().enumerate() {
        text.push_str(&format!("  {name}: {{ mspId: Org{index}MSP }}\n"));
    }
    text.push_str("links:\n  mode: full\n");
    text
}

/// One measured render.
struct Measurement {
    organizations: usize,
    links: usize,
    elapsed: Duration,
    peak_bytes: usize,
    yaml_bytes: usize,
}

/// Renders the mesh in memory, as `orgmesh render` does minus the file writes.
fn render(organizations: usize) -> Measurement {
    let text = full_mesh(organizations);
    let baseline = CountingAllocator::reset_peak();
    let start = Instant::now();
    let scenario =
        scenario::parse(Path::new("mesh.yaml"), &text).expect("the mesh is a valid scenario");
    let topology = Topology::build(&scenario).expect("the mesh has a topology");
    let secrets =
        LinkSecrets::generate(&topology, [], SecretSource::Os).expect("the OS generator works");
    let (documents, _) =
        values::backend_values(&scenario, &topology, &secrets, &|_| serde_json::Value::Null);
    let mut yaml_bytes = values::to_yaml(&values::orchestrator_values(&scenario))
        .expect("YAML")
        .len();
    for document in &documents {
        yaml_bytes += black_box(values::to_yaml(&document.linked).expect("YAML")).len();
    }
    let elapsed = start.elapsed();
    let peak_bytes = CountingAllocator::peak().saturating_sub(baseline);
    let links = topology.links.len();
    assert_eq!(
        links,
        organizations * organizations,
        "a full mesh with self links"
    );
    drop(black_box((documents, secrets, topology, scenario)));
    Measurement {
        organizations,
        links,
        elapsed,
        peak_bytes,
        yaml_bytes,
    }
}

fn main() {
    // A warm-up render, so that the first measured size does not pay for lazy initialization.
    let _ = render(10);
    println!(
        "{:>13} {:>14} {:>11} {:>14} {:>13} {:>14}",
        "organizations", "directed links", "wall time", "links/second", "peak heap", "YAML written"
    );
    let mut measurements = Vec::new();
    for organizations in [50, 200, 500] {
        let measurement = render(organizations);
        println!(
            "{:>13} {:>14} {:>9.1}ms {:>14.0} {:>10.1}MiB {:>11.1}MiB",
            measurement.organizations,
            measurement.links,
            measurement.elapsed.as_secs_f64() * 1e3,
            measurement.links as f64 / measurement.elapsed.as_secs_f64(),
            measurement.peak_bytes as f64 / (1024.0 * 1024.0),
            measurement.yaml_bytes as f64 / (1024.0 * 1024.0),
        );
        measurements.push(measurement);
    }
    let per_link = |m: &Measurement| m.elapsed.as_secs_f64() / m.links as f64;
    let (first, last) = (&measurements[0], &measurements[measurements.len() - 1]);
    let ratio = per_link(last) / per_link(first);
    println!(
        "linear growth: time per link at {} organizations is {:.2}x that at {} ({:.2}µs vs {:.2}µs); {}",
        last.organizations,
        ratio,
        first.organizations,
        per_link(last) * 1e6,
        per_link(first) * 1e6,
        if ratio <= 2.0 {
            "linear in links (within 2x)"
        } else {
            "NOT linear in links (more than 2x)"
        }
    );
}
