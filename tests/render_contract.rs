//! The linking contract (DESIGN §3) checked on rendered values, pairwise: through the binary
//! for every scenario in `scenarios/`, and through the library for random topologies.
//!
//! For every directed link A→B, B's incoming entry named msp(A) and A's outgoing entry named
//! msp(B) carry the same secret, s(A→B); there are no other entries and no duplicates; entries
//! hold only `name` and `secret`; secrets are 128 hex characters and distinct across links.
//! A scenario's faults change exactly what DESIGN §4 says they change, and nothing else.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use orgmesh::scenario::{self, Fault, Scenario};
use orgmesh::secrets::{LinkSecrets, SecretSource};
use orgmesh::topology::Topology;
use orgmesh::values;
use proptest::prelude::*;
use rstest::rstest;
use serde_json::Value;

use common::{is_secret_like, orgmesh, read_yaml};

/// One `{name, secret}` entry, or a description of why it is not one.
fn entries<'a>(
    document: &'a Value,
    list: &str,
    organization: &str,
    problems: &mut Vec<String>,
) -> Vec<&'a serde_json::Map<String, Value>> {
    let Some(array) = document
        .pointer(&format!("/addAccountOperator/{list}"))
        .and_then(Value::as_array)
    else {
        problems.push(format!(
            "{organization}: addAccountOperator.{list} is not a list"
        ));
        return Vec::new();
    };
    array
        .iter()
        .filter_map(|entry| {
            let map = entry.as_object();
            if map.is_none() {
                problems.push(format!(
                    "{organization}: an entry of {list} is not a mapping"
                ));
            }
            map
        })
        .collect()
}

/// Checks the linking contract, with the fault rules of DESIGN §4, on the backend documents
/// of `scenario` (by organization name). Returns every violation found.
fn contract_violations(
    scenario: &Scenario,
    topology: &Topology,
    documents: &BTreeMap<String, Value>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let msp: HashMap<&str, &str> = scenario
        .organizations
        .iter()
        .map(|o| (o.name.as_str(), o.msp_id.as_str()))
        .collect();
    let faults: HashSet<&Fault> = scenario.faults.iter().map(|f| &f.value).collect();
    let directed = |kind: fn(String, String) -> Fault, from: &str, to: &str| {
        faults.contains(&kind(from.to_owned(), to.to_owned()))
    };
    let wrong = |from: String, to: String| Fault::WrongSecret { from, to };
    let missing_incoming = |from: String, to: String| Fault::MissingIncoming { from, to };
    let missing_outgoing = |from: String, to: String| Fault::MissingOutgoing { from, to };

    let names: BTreeSet<&String> = documents.keys().collect();
    let declared: BTreeSet<&String> = scenario.organizations.iter().map(|o| &o.name).collect();
    if names != declared {
        problems.push(format!(
            "documents for {names:?}, organizations {declared:?}"
        ));
    }

    // Entries by (organization, list, entry name); duplicates are violations.
    let mut incoming: HashMap<(&str, &str), &serde_json::Map<String, Value>> = HashMap::new();
    let mut outgoing: HashMap<(&str, &str), &serde_json::Map<String, Value>> = HashMap::new();
    for organization in &scenario.organizations {
        let Some(document) = documents.get(&organization.name) else {
            continue;
        };
        let name = organization.name.as_str();
        if document.pointer("/orchestrator/mspID")
            != Some(&Value::String(organization.msp_id.clone()))
        {
            problems.push(format!(
                "{name}: orchestrator.mspID is not {}",
                organization.msp_id
            ));
        }
        let channel_on_incoming = faults.contains(&Fault::ChannelOnIncoming {
            at: organization.name.clone(),
        });
        for (list, table, allows_channel) in [
            ("incomingOrganizations", &mut incoming, channel_on_incoming),
            ("outgoingOrganizations", &mut outgoing, false),
        ] {
            for entry in entries(document, list, name, &mut problems) {
                let mut keys: Vec<&str> = entry.keys().map(String::as_str).collect();
                keys.sort_unstable();
                let expected_keys: &[&str] = if allows_channel {
                    &["channel", "name", "secret"]
                } else {
                    &["name", "secret"]
                };
                if keys != expected_keys {
                    problems.push(format!(
                        "{name}: a {list} entry has keys {keys:?}, expected {expected_keys:?}"
                    ));
                }
                let Some(entry_name) = entry.get("name").and_then(Value::as_str) else {
                    problems.push(format!("{name}: a {list} entry has no string `name`"));
                    continue;
                };
                match entry.get("secret").and_then(Value::as_str) {
                    Some(secret) if is_secret_like(secret) => {}
                    _ => problems.push(format!(
                        "{name}: {list}[{entry_name}] has no 128-hex secret"
                    )),
                }
                if table.insert((name, entry_name), entry).is_some() {
                    problems.push(format!("{name}: {list} lists `{entry_name}` twice"));
                }
            }
        }
    }

    let secret = |entry: &serde_json::Map<String, Value>| {
        entry
            .get("secret")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut expected_incoming = HashSet::new();
    let mut expected_outgoing = HashSet::new();
    let mut link_secrets: HashMap<String, String> = HashMap::new();
    for link in &topology.links {
        let (from, to) = (link.from.as_str(), link.to.as_str());
        let (msp_from, msp_to) = (msp[from], msp[to]);
        let incoming_entry = incoming.get(&(to, msp_from));
        let outgoing_entry = outgoing.get(&(from, msp_to));
        if directed(missing_incoming, from, to) {
            if incoming_entry.is_some() {
                problems.push(format!(
                    "{from}→{to}: missing-incoming, yet {to} has an incoming entry for {msp_from}"
                ));
            }
        } else {
            expected_incoming.insert((to, msp_from));
            if incoming_entry.is_none() {
                problems.push(format!(
                    "{from}→{to}: {to} has no incoming entry named {msp_from}"
                ));
            }
        }
        if directed(missing_outgoing, from, to) {
            if outgoing_entry.is_some() {
                problems.push(format!(
                    "{from}→{to}: missing-outgoing, yet {from} has an outgoing entry for {msp_to}"
                ));
            }
        } else {
            expected_outgoing.insert((from, msp_to));
            if outgoing_entry.is_none() {
                problems.push(format!(
                    "{from}→{to}: {from} has no outgoing entry named {msp_to}"
                ));
            }
        }
        if let (Some(incoming_entry), Some(outgoing_entry)) = (incoming_entry, outgoing_entry) {
            let same = secret(incoming_entry) == secret(outgoing_entry);
            if directed(wrong, from, to) == same {
                problems.push(format!(
                    "{from}→{to}: {to}'s incoming and {from}'s outgoing secrets are {}",
                    if same {
                        "equal despite wrong-secret"
                    } else {
                        "different"
                    }
                ));
            }
        }
        // s(A→B) is what B accepts; without an incoming entry, what A presents.
        let link_secret = incoming_entry.or(outgoing_entry).and_then(|e| secret(e));
        if let Some(link_secret) = link_secret
            && let Some(other) = link_secrets.insert(link_secret, format!("{from}→{to}"))
        {
            problems.push(format!("{from}→{to} and {other} share a secret"));
        }
    }
    for key in incoming.keys() {
        if !expected_incoming.contains(key) {
            problems.push(format!("{}: unexpected incoming entry {}", key.0, key.1));
        }
    }
    for key in outgoing.keys() {
        if !expected_outgoing.contains(key) {
            problems.push(format!("{}: unexpected outgoing entry {}", key.0, key.1));
        }
    }
    problems
}

/// The orchestrator's channels name every member by MSP id, in file order.
fn orchestrator_violations(scenario: &Scenario, document: &Value) -> Vec<String> {
    let expected: Vec<Value> = scenario
        .channels
        .iter()
        .map(|channel| {
            let members: Vec<&str> = channel
                .members
                .iter()
                .map(|m| scenario.organization(m).map_or("?", |o| o.msp_id.as_str()))
                .collect();
            serde_json::json!({"name": channel.name, "organizations": members})
        })
        .collect();
    if document.get("channels") == Some(&Value::Array(expected.clone())) {
        Vec::new()
    } else {
        vec![format!(
            "orchestrator channels are {:?}, expected {expected:?}",
            document.get("channels")
        )]
    }
}

/// Renders every scenario through the binary, reads the files back and checks the contract.
#[rstest]
fn rendered_scenarios_keep_the_linking_contract(#[files("scenarios/*.yaml")] path: PathBuf) {
    let (scenario, topology) = orgmesh::cli::load(&path).expect("every shipped scenario is valid");
    let temporary = tempfile::tempdir().expect("a temporary directory");
    // A directory that does not exist yet, so that render creates it (mode 0700).
    let out = temporary.path().join("values");
    orgmesh()
        .args(["render", "--seed", "1", "--out"])
        .arg(&out)
        .arg(&path)
        .assert()
        .success();

    assert_eq!(
        mode(&out),
        0o700,
        "render creates its directory with mode 0700"
    );
    let mut expected_files: BTreeSet<String> = scenario
        .organizations
        .iter()
        .map(|o| format!("backend-{}-values.yaml", o.name))
        .collect();
    expected_files.insert("orchestrator-values.yaml".to_owned());
    let written: BTreeSet<String> = std::fs::read_dir(&out)
        .expect("the output directory is readable")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(written, expected_files, "{}", path.display());
    for file in &written {
        assert_eq!(
            mode(&out.join(file)),
            0o600,
            "{file} holds secrets: mode 0600"
        );
    }

    let documents: BTreeMap<String, Value> = scenario
        .organizations
        .iter()
        .map(|o| {
            let document = read_yaml(&out.join(format!("backend-{}-values.yaml", o.name)));
            (o.name.clone(), document)
        })
        .collect();
    let mut problems = contract_violations(&scenario, &topology, &documents);
    problems.extend(orchestrator_violations(
        &scenario,
        &read_yaml(&out.join("orchestrator-values.yaml")),
    ));
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        path.display(),
        problems.join("\n")
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("the rendered path exists")
        .permissions()
        .mode()
        & 0o777
}

/// The guide's four directed links, as data: the least powerful check that the shipped guide
/// scenario has the self links `links.self` defaults to.
#[test]
fn the_guide_has_two_pairs_and_two_self_links() {
    let (_, topology) = orgmesh::cli::load(&common::package_root().join("scenarios/guide.yaml"))
        .expect("the guide is valid");
    let links: Vec<(&str, &str)> = topology
        .links
        .iter()
        .map(|l| (l.from.as_str(), l.to.as_str()))
        .collect();
    assert_eq!(
        links,
        [
            ("ingen", "ingen"),
            ("ingen", "biotechnica"),
            ("biotechnica", "ingen"),
            ("biotechnica", "biotechnica"),
        ]
    );
}

/// The contract checker itself must catch a broken document, or the tests above prove nothing.
#[test]
fn the_contract_checker_catches_a_swapped_secret() {
    let path = common::package_root().join("scenarios/guide.yaml");
    let (scenario, topology) = orgmesh::cli::load(&path).expect("the guide is valid");
    let secrets = LinkSecrets::generate(&topology, [], SecretSource::Seeded(1)).expect("secrets");
    let (documents, _) = values::backend_values(&scenario, &topology, &secrets, &|_| Value::Null);
    let mut documents: BTreeMap<String, Value> = documents
        .into_iter()
        .map(|d| (d.organization, d.linked))
        .collect();
    assert!(contract_violations(&scenario, &topology, &documents).is_empty());
    let ingen = documents.get_mut("ingen").expect("ingen's document");
    ingen["addAccountOperator"]["outgoingOrganizations"][1]["secret"] =
        Value::String("0".repeat(128));
    assert!(!contract_violations(&scenario, &topology, &documents).is_empty());
}

/// A scenario with every fault that changes values: the checker applies DESIGN §4's rules
/// to it, and the same documents break the fault-free contract, so the faults are really there.
#[test]
fn faults_change_exactly_the_entries_they_name() {
    let text = "name: faults
channels:
  our-channel: [ingen, biotechnica, tyrell]
organizations:
  ingen: { mspId: IngenMSP }
  biotechnica: { mspId: BiotechnicaMSP }
  tyrell: { mspId: TyrellMSP }
faults:
  - wrong-secret: { from: ingen, to: biotechnica }
  - missing-incoming: { from: biotechnica, to: ingen }
  - missing-outgoing: { from: tyrell, to: ingen }
  - channel-on-incoming: { at: tyrell }
";
    let scenario = scenario::parse(Path::new("faults.yaml"), text).expect("a valid scenario");
    let topology = Topology::build(&scenario).expect("a topology");
    let wrong = [("ingen", "biotechnica")];
    let secrets =
        LinkSecrets::generate(&topology, wrong, SecretSource::Seeded(3)).expect("secrets");
    let (documents, _) = values::backend_values(&scenario, &topology, &secrets, &|_| Value::Null);
    let documents: BTreeMap<String, Value> = documents
        .into_iter()
        .map(|d| (d.organization, d.linked))
        .collect();
    let problems = contract_violations(&scenario, &topology, &documents);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let mut healthy = scenario.clone();
    healthy.faults.clear();
    let problems = contract_violations(&healthy, &topology, &documents);
    // One violation per fault at least: the wrong secret, the two missing entries, and the
    // `channel` key on each of tyrell's three incoming entries.
    assert!(problems.len() >= 6, "{}", problems.join("\n"));
}

/// A random scenario: organizations, channels with members, and how they are linked.
#[derive(Debug, Clone)]
struct RandomScenario {
    organizations: usize,
    /// `membership[o][c]`: organization `o` is a member of channel `c`.
    membership: Vec<Vec<bool>>,
    /// Whether organization `o` has an explicit `mspId`.
    explicit_msp: Vec<bool>,
    mode: &'static str,
    self_links: bool,
    /// Explicit mode: which candidate pairs (pairs sharing a channel) are listed.
    pair_choices: Vec<bool>,
}

fn organization_name(index: usize) -> String {
    format!("org-{index}")
}

fn msp_id(scenario: &RandomScenario, index: usize) -> String {
    if scenario.explicit_msp[index] {
        format!("Org{index}MSP")
    } else {
        organization_name(index)
    }
}

impl RandomScenario {
    /// Makes a valid scenario: every organization in a channel, no empty channel, and in full
    /// mode one channel shared by all (validation rejects full links across channels).
    fn normalized(mut self) -> Self {
        let channels = self.membership[0].len();
        for (index, row) in self.membership.iter_mut().enumerate() {
            if self.mode == "full" {
                row[0] = true;
            }
            if !row.iter().any(|&m| m) {
                row[index % channels] = true;
            }
        }
        let used: Vec<usize> = (0..channels)
            .filter(|&c| self.membership.iter().any(|row| row[c]))
            .collect();
        for row in &mut self.membership {
            *row = used.iter().map(|&c| row[c]).collect();
        }
        self
    }

    fn shares_channel(&self, a: usize, b: usize) -> bool {
        self.membership[a]
            .iter()
            .zip(&self.membership[b])
            .any(|(&x, &y)| x && y)
    }

    /// Unordered pairs a < b that share a channel, in a fixed order.
    fn candidate_pairs(&self) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for a in 0..self.organizations {
            for b in a + 1..self.organizations {
                if self.shares_channel(a, b) {
                    pairs.push((a, b));
                }
            }
        }
        pairs
    }

    fn explicit_pairs(&self) -> Vec<(usize, usize)> {
        self.candidate_pairs()
            .into_iter()
            .zip(self.pair_choices.iter().cycle())
            .filter_map(|(pair, &chosen)| chosen.then_some(pair))
            .collect()
    }

    /// The directed links the scenario must have: an oracle independent of `Topology`.
    fn expected_links(&self) -> BTreeSet<(String, String)> {
        let pairs = match self.mode {
            "explicit" => self.explicit_pairs(),
            // Full mode normalizes everyone into one channel, so both are "pairs sharing one".
            _ => self.candidate_pairs(),
        };
        let mut links = BTreeSet::new();
        for (a, b) in pairs {
            links.insert((organization_name(a), organization_name(b)));
            links.insert((organization_name(b), organization_name(a)));
        }
        if self.self_links {
            for a in 0..self.organizations {
                links.insert((organization_name(a), organization_name(a)));
            }
        }
        links
    }

    fn text(&self) -> String {
        let channels = self.membership[0].len();
        let mut text = String::from("name: random\nchannels:\n");
        for c in 0..channels {
            let members: Vec<String> = (0..self.organizations)
                .filter(|&o| self.membership[o][c])
                .map(organization_name)
                .collect();
            text.push_str(&format!("  channel-{c}: [{}]\n", members.join(", ")));
        }
        text.push_str("organizations:\n");
        for o in 0..self.organizations {
            if self.explicit_msp[o] {
                text.push_str(&format!(
                    "  {}: {{ mspId: {} }}\n",
                    organization_name(o),
                    msp_id(self, o)
                ));
            } else {
                text.push_str(&format!("  {}: {{}}\n", organization_name(o)));
            }
        }
        text.push_str(&format!(
            "links:\n  mode: {}\n  self: {}\n",
            self.mode, self.self_links
        ));
        if self.mode == "explicit" {
            let pairs: Vec<String> = self
                .explicit_pairs()
                .into_iter()
                .map(|(a, b)| format!("[{}, {}]", organization_name(a), organization_name(b)))
                .collect();
            text.push_str(&format!("  pairs: [{}]\n", pairs.join(", ")));
        }
        text
    }
}

fn random_scenario() -> impl Strategy<Value = RandomScenario> {
    (1usize..=12, 1usize..=4)
        .prop_flat_map(|(organizations, channels)| {
            (
                Just(organizations),
                proptest::collection::vec(
                    proptest::collection::vec(any::<bool>(), channels),
                    organizations,
                ),
                proptest::collection::vec(any::<bool>(), organizations),
                prop_oneof![Just("channels"), Just("full"), Just("explicit")],
                any::<bool>(),
                proptest::collection::vec(any::<bool>(), 1..=66),
            )
        })
        .prop_map(
            |(organizations, membership, explicit_msp, mode, self_links, pair_choices)| {
                RandomScenario {
                    organizations,
                    membership,
                    explicit_msp,
                    mode,
                    self_links,
                    pair_choices,
                }
                .normalized()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random topologies through the library: the links are exactly the oracle's, the values
    /// keep the contract, and the orchestrator lists every channel with MSP ids.
    #[test]
    fn random_topologies_keep_the_linking_contract(random in random_scenario(), seed in any::<u64>()) {
        let text = random.text();
        let scenario = scenario::parse(Path::new("random.yaml"), &text)
            .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.to_plain_text())))?;
        let topology = Topology::build(&scenario)
            .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.to_plain_text())))?;
        let links: Vec<(String, String)> =
            topology.links.iter().map(|l| (l.from.clone(), l.to.clone())).collect();
        let unique: BTreeSet<(String, String)> = links.iter().cloned().collect();
        prop_assert_eq!(unique.len(), links.len(), "duplicate links\n{}", text);
        prop_assert_eq!(&unique, &random.expected_links(), "\n{}", text);

        let secrets = LinkSecrets::generate(&topology, [], SecretSource::Seeded(seed))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (documents, warnings) =
            values::backend_values(&scenario, &topology, &secrets, &|_| Value::Null);
        prop_assert!(warnings.is_empty(), "{:?}", warnings);
        let documents: BTreeMap<String, Value> =
            documents.into_iter().map(|d| (d.organization, d.linked)).collect();
        let mut problems = contract_violations(&scenario, &topology, &documents);
        problems.extend(orchestrator_violations(&scenario, &values::orchestrator_values(&scenario)));
        for (index, organization) in scenario.organizations.iter().enumerate() {
            if organization.msp_id != msp_id(&random, index) {
                problems.push(format!("{}: MSP id {}", organization.name, organization.msp_id));
            }
        }
        prop_assert!(problems.is_empty(), "{}\n{}", problems.join("\n"), text);
    }
}
