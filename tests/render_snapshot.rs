//! The guide's rendered backend values, byte for byte (`--seed 1` makes the secrets
//! reproducible, so nothing needs redacting). The structure the guide asks for is asserted in
//! code first, so that a snapshot accepted by mistake cannot hide a broken shape.

mod common;

use common::{is_secret_like, orgmesh, read_yaml};

/// Organizations of the guide and their MSP ids, as the scenario declares them.
const GUIDE_ORGANIZATIONS: [(&str, &str); 2] =
    [("ingen", "IngenMSP"), ("biotechnica", "BiotechnicaMSP")];

#[test]
fn guide_backend_values_match_the_snapshot() {
    let out = tempfile::tempdir().expect("a temporary directory");
    orgmesh()
        .args([
            "render",
            "scenarios/guide.yaml",
            "--seed",
            "1",
            "--force",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    let msp_ids: Vec<&str> = GUIDE_ORGANIZATIONS.iter().map(|(_, msp)| *msp).collect();
    for (organization, msp_id) in GUIDE_ORGANIZATIONS {
        let file = format!("backend-{organization}-values.yaml");
        let path = out.path().join(&file);
        let document = read_yaml(&path);
        assert_eq!(document["organizationName"], organization);
        assert_eq!(document["orchestrator"]["mspID"], msp_id);
        for list in ["incomingOrganizations", "outgoingOrganizations"] {
            let entries = document["addAccountOperator"][list]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: addAccountOperator.{list} is a list"));
            let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
            // Both organizations, the self link included; names are MSP ids, in file order.
            assert_eq!(names, msp_ids, "{file}: {list}");
            for entry in entries {
                let keys: Vec<&String> = entry
                    .as_object()
                    .expect("an entry is a mapping")
                    .keys()
                    .collect();
                assert_eq!(keys, ["name", "secret"], "{file}: {list}: no `channel` key");
                assert!(
                    is_secret_like(entry["secret"].as_str().unwrap_or_default()),
                    "{file}: {list}"
                );
            }
        }
        assert!(
            document
                .pointer("/addAccountOperator/incomingOrganizations/0/channel")
                .is_none()
        );
        let text = std::fs::read_to_string(&path).expect("the rendered file is readable");
        // `our-channel:` under `orchestrator.channels` is fine; an entry's `channel:` key is not.
        assert!(
            !text.lines().any(|line| line
                .trim_start()
                .trim_start_matches("- ")
                .starts_with("channel:")),
            "{file} must not carry the guide's `channel` key"
        );
        insta::assert_snapshot!(file, text);
    }
    // The orchestrator's values are a plain function of the scenario: assert them as data.
    let orchestrator = read_yaml(&out.path().join("orchestrator-values.yaml"));
    assert_eq!(
        orchestrator,
        serde_json::json!({"channels": [{"name": "our-channel", "organizations": ["IngenMSP", "BiotechnicaMSP"]}]})
    );
}
