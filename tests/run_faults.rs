//! Faults and explicit expectations through `orgmesh run` on the simulator (DESIGN §4).
//!
//! Each fault alone, then all of them in one scenario with overlapping faults on some links,
//! runs on four organizations in three clusters. The expected outcome of every link is
//! computed here from DESIGN §4's table and precedence rule, written out as data, and not
//! read back from the topology module: this way the test checks the topology and the
//! simulator together. A detected fault is a pass, so each of these runs exits 0.
//!
//! Explicit expectations come last: one the network does not meet, and one that overrides a
//! fault's derived expectation, both must fail the run with exit 1 and say why.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use orgmesh::report::CheckKind;
use rstest::rstest;

use common::run::{Run, checks_by_key, key, run_text};

/// The organizations and the cluster each runs in, in file order. `a` and `b` share a
/// cluster, so a partition between clusters cuts two organizations at once.
const ORGANIZATIONS: [(&str, &str); 4] = [
    ("a", "cluster-1"),
    ("b", "cluster-1"),
    ("c", "cluster-2"),
    ("d", "cluster-3"),
];

const CLUSTERS: [&str; 3] = ["cluster-1", "cluster-2", "cluster-3"];

/// A fault as the scenario writes it.
#[derive(Debug, Clone, Copy)]
enum Fault {
    WrongSecret(&'static str, &'static str),
    MissingIncoming(&'static str, &'static str),
    MissingOutgoing(&'static str, &'static str),
    ChannelOnIncoming(&'static str),
    /// From one cluster to another.
    Partition(&'static str, &'static str),
}

use Fault::{ChannelOnIncoming, MissingIncoming, MissingOutgoing, Partition, WrongSecret};

/// DESIGN §4's table: the reach and auth a fault makes every link it touches show.
fn derived(fault: Fault) -> (&'static str, &'static str) {
    match fault {
        WrongSecret(..) | MissingIncoming(..) | ChannelOnIncoming(..) => ("200", "rejected"),
        MissingOutgoing(..) => ("absent", "absent"),
        Partition(..) => ("error", "error"),
    }
}

/// What a link shows without faults.
const HEALTHY: (&str, &str) = ("200", "accepted");

/// When several faults touch one link, `absent` wins over `error`, which wins over
/// `rejected` (DESIGN §4); earlier in these lists wins.
const REACH_PRECEDENCE: [&str; 3] = ["absent", "error", "200"];
const AUTH_PRECEDENCE: [&str; 4] = ["absent", "error", "rejected", "accepted"];

fn stronger<'a>(precedence: &[&str], one: &'a str, other: &'a str) -> &'a str {
    let rank = |value: &str| {
        precedence
            .iter()
            .position(|p| *p == value)
            .unwrap_or_else(|| panic!("{value} is not in {precedence:?}"))
    };
    if rank(other) < rank(one) { other } else { one }
}

fn cluster_of(organization: &str) -> &'static str {
    ORGANIZATIONS
        .iter()
        .find(|(name, _)| *name == organization)
        .map(|(_, cluster)| *cluster)
        .expect("a known organization")
}

impl Fault {
    /// Whether the fault changes what the directed link `from`→`to` shows.
    fn touches(self, from: &str, to: &str) -> bool {
        match self {
            WrongSecret(a, b) | MissingIncoming(a, b) | MissingOutgoing(a, b) => {
                (a, b) == (from, to)
            }
            ChannelOnIncoming(at) => at == to,
            Partition(source, destination) => {
                cluster_of(from) == source && cluster_of(to) == destination
            }
        }
    }

    fn yaml(self) -> String {
        match self {
            WrongSecret(from, to) => format!("wrong-secret: {{ from: {from}, to: {to} }}"),
            MissingIncoming(from, to) => {
                format!("missing-incoming: {{ from: {from}, to: {to} }}")
            }
            MissingOutgoing(from, to) => {
                format!("missing-outgoing: {{ from: {from}, to: {to} }}")
            }
            ChannelOnIncoming(at) => format!("channel-on-incoming: {{ at: {at} }}"),
            Partition(from, to) => format!("partition: {{ from: {from}, to: {to} }}"),
        }
    }
}

/// The expected (reach, auth) of `from`→`to` under `faults`.
fn expected(faults: &[Fault], from: &str, to: &str) -> (&'static str, &'static str) {
    faults
        .iter()
        .filter(|f| f.touches(from, to))
        .map(|f| derived(*f))
        .fold(HEALTHY, |(reach, auth), (fault_reach, fault_auth)| {
            (
                stronger(&REACH_PRECEDENCE, reach, fault_reach),
                stronger(&AUTH_PRECEDENCE, auth, fault_auth),
            )
        })
}

/// The four organizations, fully linked through one channel, with `faults` and the YAML
/// lines of `expect` entries.
fn scenario_text(faults: &[Fault], expectations: &[&str]) -> String {
    let mut text = String::from("name: faults-under-test\nclusters:\n");
    for cluster in CLUSTERS {
        writeln!(text, "  {cluster}: {{}}").expect("writing to a string");
    }
    let names: Vec<&str> = ORGANIZATIONS.iter().map(|(name, _)| *name).collect();
    writeln!(text, "channels:\n  lab: [{}]", names.join(", ")).expect("writing to a string");
    text.push_str("organizations:\n");
    for (name, cluster) in ORGANIZATIONS {
        writeln!(text, "  {name}: {{ cluster: {cluster} }}").expect("writing to a string");
    }
    if !faults.is_empty() {
        text.push_str("faults:\n");
        for fault in faults {
            writeln!(text, "  - {}", fault.yaml()).expect("writing to a string");
        }
    }
    if !expectations.is_empty() {
        text.push_str("expect:\n");
        for expectation in expectations {
            writeln!(text, "  - {expectation}").expect("writing to a string");
        }
    }
    text
}

fn run_faults(faults: &[Fault], expectations: &[&str]) -> Run {
    run_text(
        "scenario.yaml",
        &scenario_text(faults, expectations),
        &["--seed", "11"],
    )
}

#[rstest]
#[case::wrong_secret(&[WrongSecret("a", "b")])]
#[case::wrong_secret_on_a_self_link(&[WrongSecret("c", "c")])]
#[case::missing_incoming(&[MissingIncoming("b", "c")])]
#[case::missing_outgoing(&[MissingOutgoing("c", "a")])]
#[case::missing_outgoing_on_a_self_link(&[MissingOutgoing("d", "d")])]
#[case::missing_incoming_on_a_self_link(&[MissingIncoming("a", "a")])]
#[case::channel_on_incoming(&[ChannelOnIncoming("d")])]
#[case::partition(&[Partition("cluster-1", "cluster-2")])]
#[case::partition_both_ways(&[Partition("cluster-1", "cluster-3"), Partition("cluster-3", "cluster-1")])]
#[case::combined_with_overlaps(&[
    // error wins over rejected: a→c is cut and has a wrong secret.
    Partition("cluster-1", "cluster-2"),
    WrongSecret("a", "c"),
    // absent wins over error: b→c is cut and not listed at all.
    MissingOutgoing("b", "c"),
    // absent wins over rejected: d→b has a wrong secret and no outgoing entry.
    WrongSecret("d", "b"),
    MissingOutgoing("d", "b"),
    // Two faults giving rejected on c→d; channel-on-incoming also touches a→d, b→d, d→d.
    ChannelOnIncoming("d"),
    MissingIncoming("c", "d"),
    MissingIncoming("c", "a"),
])]
fn faults_show_their_derived_values_on_exactly_the_links_they_touch(#[case] faults: &[Fault]) {
    let run = run_faults(faults, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    let report = run.report();
    assert!(report.passed);
    let checks = checks_by_key(&report);
    let mut touched = 0;
    for (from, _) in ORGANIZATIONS {
        for (to, _) in ORGANIZATIONS {
            let (reach, auth) = expected(faults, from, to);
            if (reach, auth) != HEALTHY {
                touched += 1;
            }
            for (kind, value) in [(CheckKind::Reach, reach), (CheckKind::Auth, auth)] {
                let check = checks
                    .get(&key(kind, from, to))
                    .unwrap_or_else(|| panic!("no {kind} check for {from}→{to}"));
                assert_eq!(
                    (
                        check.expected.as_str(),
                        check.observed.as_str(),
                        check.passed
                    ),
                    (value, value, true),
                    "{} under {faults:?}",
                    check.name()
                );
            }
        }
        // The table lists every peer except those without an outgoing entry.
        let listed: BTreeSet<&str> = ORGANIZATIONS
            .iter()
            .map(|(to, _)| *to)
            .filter(|to| {
                !faults
                    .iter()
                    .any(|f| matches!(f, MissingOutgoing(..)) && f.touches(from, to))
            })
            .collect();
        let complete = checks[&key(CheckKind::Complete, from, "*")];
        let listed: Vec<&str> = listed.into_iter().collect();
        assert_eq!(complete.expected, listed.join(","), "{}", complete.name());
        assert!(complete.passed, "{}", complete.name());
    }
    assert!(touched > 0, "the case's faults touch no link");
    assert_eq!(checks.len(), 16 * 2 + 4);
}

/// Lines of the combined output that name all of `words`.
fn lines_naming<'a>(text: &'a str, words: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|line| words.iter().all(|word| line.contains(word)))
        .collect()
}

#[test]
fn an_unmet_explicit_expectation_fails_the_run_and_says_which() {
    let run = run_faults(&[], &["{ from: a, to: b, auth: rejected }"]);
    assert_eq!(run.code(), Some(1), "{}", run.transcript());
    let output = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        !lines_naming(&output, &["a→b", "auth", "rejected", "accepted"]).is_empty(),
        "no line names the link, the check, the expected and the observed value:\n{output}"
    );

    let report = run.report();
    assert!(!report.passed);
    let failed: Vec<String> = report.failed_checks().map(|c| c.name()).collect();
    assert_eq!(failed, ["auth a→b"]);
    let check = report
        .check(CheckKind::Auth, "a", "b")
        .expect("an auth check for a→b");
    assert_eq!(check.expected, "rejected");
    assert_eq!(check.observed, "accepted");
    assert_eq!(check.diagnostics.as_deref(), Some("diagnostics/a/"));
    assert!(run.run_dir.join("diagnostics/a").is_dir());
    assert!(
        !run.run_dir.join("diagnostics/b").exists(),
        "diagnostics are for organizations with a failed check"
    );
    assert!(run.junit().contains("<failure"));
}

#[test]
fn an_explicit_expectation_overrides_the_fault_it_contradicts() {
    let run = run_faults(
        &[WrongSecret("a", "b")],
        &["{ from: a, to: b, auth: accepted }"],
    );
    assert_eq!(run.code(), Some(1), "{}", run.transcript());
    let report = run.report();
    let failed: Vec<String> = report.failed_checks().map(|c| c.name()).collect();
    assert_eq!(failed, ["auth a→b"]);
    let check = report
        .check(CheckKind::Auth, "a", "b")
        .expect("an auth check for a→b");
    assert_eq!(
        (check.expected.as_str(), check.observed.as_str()),
        ("accepted", "rejected")
    );
    // The explicit entry sets auth only; reach keeps the fault's derived value.
    let reach = report
        .check(CheckKind::Reach, "a", "b")
        .expect("a reach check for a→b");
    assert_eq!((reach.expected.as_str(), reach.passed), ("200", true));
}

#[test]
fn an_explicit_expectation_that_matches_a_fault_passes() {
    let run = run_faults(
        &[Partition("cluster-1", "cluster-2")],
        &["{ from: a, to: c, reach: error, auth: error }"],
    );
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
}

/// A verify budget far shorter than the three stable observations a check needs.
const NO_TIME_TO_SETTLE: &str = "1ms";

#[test]
fn a_check_that_never_settles_fails_even_where_an_error_is_expected() {
    // A partition's links are expected to show `error`, which is also what a check that ran
    // out of time reports: only a settled observation may count as a detected fault.
    let run = common::run::run_scenario(
        std::path::Path::new("scenarios/partition.yaml"),
        &["--seed", "4", "--timeout", NO_TIME_TO_SETTLE],
    );
    assert_eq!(run.code(), Some(1), "{}", run.transcript());
    let report = run.report();
    let cut = report
        .check(CheckKind::Reach, "north", "south")
        .expect("a reach check for north→south");
    assert_eq!(cut.expected, "error");
    assert!(!cut.passed, "an unsettled check passed: {cut:?}");
    let passed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.passed)
        .map(|c| c.name())
        .collect();
    assert!(
        passed.is_empty(),
        "checks passed without settling: {passed:?}"
    );
}
