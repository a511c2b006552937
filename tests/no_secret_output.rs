//! No command prints a generated secret (DESIGN §3): not `validate`, `plan` or `render`, on
//! stdout or stderr, whole or as a 32-character prefix.

mod common;

use std::path::PathBuf;

use rstest::rstest;

use common::{SECRET_LENGTH, orgmesh, relative, rendered_secrets, secret_like_runs};

/// How much of a secret is already too much to print.
const PREFIX_LENGTH: usize = 32;

#[rstest]
fn no_command_prints_a_secret(#[files("scenarios/*.yaml")] path: PathBuf) {
    let scenario = relative(&path);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let out = directory.path().join("values");
    let render = |force: bool| {
        let mut command = orgmesh();
        command
            .args(["render", "--seed", "7", "--out"])
            .arg(&out)
            .arg(&scenario);
        if force {
            command.arg("--force");
        }
        command.output().expect("orgmesh runs")
    };
    let first = render(false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let secrets = rendered_secrets(&out);
    assert!(
        !secrets.is_empty(),
        "{}: render wrote no secrets",
        scenario.display()
    );
    assert!(secrets.iter().all(|s| s.len() == SECRET_LENGTH));

    let outputs = [
        ("render", first),
        (
            "validate",
            orgmesh()
                .arg("validate")
                .arg(&scenario)
                .output()
                .expect("orgmesh runs"),
        ),
        (
            "plan",
            orgmesh()
                .arg("plan")
                .arg(&scenario)
                .output()
                .expect("orgmesh runs"),
        ),
        ("render --force", render(true)),
        // Without --force the refusal names the existing file; it must not quote its content.
        ("render (refused)", render(false)),
    ];
    for (command, output) in &outputs {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for secret in &secrets {
            assert!(
                !text.contains(&secret[..PREFIX_LENGTH]),
                "`orgmesh {command}` printed (a prefix of) a secret:\n{text}"
            );
        }
        assert_eq!(
            secret_like_runs(&text),
            Vec::<String>::new(),
            "`orgmesh {command}`"
        );
    }
    assert_eq!(
        outputs[4].1.status.code(),
        Some(2),
        "render refuses existing files without --force"
    );
    // The forced render reproduces the same seeded secrets, and keeps the files private.
    assert_eq!(rendered_secrets(&out), secrets);
}
