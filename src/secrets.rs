//! One secret per directed link (DESIGN §3), and the means to keep them out of every output.
//!
//! A secret is 64 random bytes from the OS generator, hex-encoded: 128 characters, like the
//! backend's own `Organization.generate_password()`, within its 128-character column, and
//! never containing whitespace or `:`. With a seed, secrets are derived from the seed and the
//! link's names by SHA-256, so a rendered network is reproducible for tests and snapshots.

use std::collections::HashMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::topology::Topology;

/// A link secret. It has no `Display`, and `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the values file and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Where secrets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// The operating system's generator: what every real run uses.
    Os,
    /// Derived from a seed: reproducible, for tests only.
    Seeded(u64),
}

/// Why secrets could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the operating system's random generator failed: {0}")]
    Random(getrandom::Error),
}

const SECRET_BYTES: usize = 64;

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    text
}

/// Generates one secret, `purpose` separating the kinds a link may need.
fn generate(
    source: SecretSource,
    from: &str,
    to: &str,
    purpose: &str,
) -> Result<Secret, SecretsError> {
    let mut bytes = [0u8; SECRET_BYTES];
    match source {
        SecretSource::Os => getrandom::fill(&mut bytes).map_err(SecretsError::Random)?,
        SecretSource::Seeded(seed) => {
            for (block, chunk) in bytes.chunks_mut(32).enumerate() {
                let mut hasher = Sha256::new();
                hasher.update(seed.to_le_bytes());
                for part in [purpose, from, to] {
                    hasher.update((part.len() as u64).to_le_bytes());
                    hasher.update(part.as_bytes());
                }
                hasher.update([block as u8]);
                chunk.copy_from_slice(&hasher.finalize()[..chunk.len()]);
            }
        }
    }
    Ok(Secret(hex(&bytes)))
}

/// The secrets of a network: s(A→B) for every directed link, plus the decoy secret a
/// `wrong-secret` fault puts in A's outgoing entry.
#[derive(Debug, Clone)]
pub struct LinkSecrets {
    link: HashMap<(String, String), Secret>,
    wrong: HashMap<(String, String), Secret>,
    /// Secrets replaced by [`LinkSecrets::rotate`]: no longer in any values file, but still
    /// in a backend's database when the rotation did not take effect, and redacted all the same.
    retired: Vec<Secret>,
    /// How many rotations happened: each derives seeded secrets for a new purpose.
    rotations: u32,
}

/// One directed link's secret before and after a rotation.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub from: String,
    pub to: String,
    pub old: Secret,
    pub new: Secret,
}

impl LinkSecrets {
    /// Generates a secret for every link of `topology`; a decoy for each link in `wrong`.
    pub fn generate<'a>(
        topology: &Topology,
        wrong: impl IntoIterator<Item = (&'a str, &'a str)>,
        source: SecretSource,
    ) -> Result<Self, SecretsError> {
        let mut link = HashMap::with_capacity(topology.links.len());
        for l in &topology.links {
            link.insert(
                (l.from.clone(), l.to.clone()),
                generate(source, &l.from, &l.to, "link")?,
            );
        }
        let mut decoys = HashMap::new();
        for (from, to) in wrong {
            decoys.insert(
                (from.to_owned(), to.to_owned()),
                generate(source, from, to, "wrong")?,
            );
        }
        Ok(Self {
            link,
            wrong: decoys,
            retired: Vec::new(),
            rotations: 0,
        })
    }

    /// Gives each of `links` (directed, existing) a new secret and returns the old and new ones.
    /// Links without a secret are skipped.
    pub fn rotate(
        &mut self,
        links: &[(String, String)],
        source: SecretSource,
    ) -> Result<Vec<Rotated>, SecretsError> {
        self.rotations += 1;
        let purpose = format!("link-rotation-{}", self.rotations);
        let mut rotated = Vec::with_capacity(links.len());
        for (from, to) in links {
            let key = (from.clone(), to.clone());
            let Some(old) = self.link.get(&key).cloned() else {
                continue;
            };
            let new = generate(source, from, to, &purpose)?;
            self.link.insert(key, new.clone());
            self.retired.push(old.clone());
            rotated.push(Rotated {
                from: from.clone(),
                to: to.clone(),
                old,
                new,
            });
        }
        Ok(rotated)
    }

    /// s(from→to): what `from` presents to `to`.
    pub fn link(&self, from: &str, to: &str) -> Option<&Secret> {
        self.link.get(&(from.to_owned(), to.to_owned()))
    }

    /// The decoy for a `wrong-secret` fault on from→to.
    pub fn wrong(&self, from: &str, to: &str) -> Option<&Secret> {
        self.wrong.get(&(from.to_owned(), to.to_owned()))
    }

    /// Every secret, for redaction and for tests that search outputs for them.
    pub fn all(&self) -> impl Iterator<Item = &Secret> {
        self.link
            .values()
            .chain(self.wrong.values())
            .chain(self.retired.iter())
    }

    pub fn len(&self) -> usize {
        self.link.len() + self.wrong.len() + self.retired.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Replaces every occurrence of any known secret in `text` by `<redacted>`.
///
/// Secrets are 128 hex characters, so scanning for hex runs of that length finds every
/// candidate in one pass; only those are looked up.
pub fn redact(text: &str, secrets: &LinkSecrets) -> String {
    let known: std::collections::HashSet<&str> = secrets.all().map(Secret::expose).collect();
    let bytes = text.as_bytes();
    let mut output = String::with_capacity(text.len());
    let mut index = 0;
    let mut copied = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_hexdigit() {
            let start = index;
            while index < bytes.len() && bytes[index].is_ascii_hexdigit() {
                index += 1;
            }
            let run = &text[start..index];
            // A secret may sit inside a longer hex run only at its edges; check every window.
            if run.len() >= SECRET_BYTES * 2 {
                let mut position = 0;
                let mut replaced = String::new();
                let mut changed = false;
                while position + SECRET_BYTES * 2 <= run.len() {
                    let window = &run[position..position + SECRET_BYTES * 2];
                    if known.contains(window) {
                        replaced.push_str("<redacted>");
                        position += SECRET_BYTES * 2;
                        changed = true;
                    } else {
                        replaced.push_str(&run[position..position + 1]);
                        position += 1;
                    }
                }
                if changed {
                    replaced.push_str(&run[position..]);
                    output.push_str(&text[copied..start]);
                    output.push_str(&replaced);
                    copied = index;
                }
            }
        } else {
            index += 1;
        }
    }
    output.push_str(&text[copied..]);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_128_hex_characters() {
        for source in [SecretSource::Os, SecretSource::Seeded(7)] {
            let secret = generate(source, "a", "b", "link").unwrap();
            assert_eq!(secret.expose().len(), 128);
            assert!(secret.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn seeded_secrets_are_reproducible_and_distinct_per_direction() {
        let ab = generate(SecretSource::Seeded(1), "a", "b", "link").unwrap();
        assert_eq!(
            ab,
            generate(SecretSource::Seeded(1), "a", "b", "link").unwrap()
        );
        assert_ne!(
            ab,
            generate(SecretSource::Seeded(1), "b", "a", "link").unwrap()
        );
        assert_ne!(
            ab,
            generate(SecretSource::Seeded(2), "a", "b", "link").unwrap()
        );
        assert_ne!(
            ab,
            generate(SecretSource::Seeded(1), "a", "b", "wrong").unwrap()
        );
        // Length-prefixing keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            generate(SecretSource::Seeded(1), "ab", "c", "link").unwrap(),
            generate(SecretSource::Seeded(1), "a", "bc", "link").unwrap()
        );
    }

    #[test]
    fn rotation_replaces_the_secret_and_still_redacts_the_old_one() {
        let topology = Topology {
            links: vec![crate::topology::Link {
                from: "a".into(),
                to: "b".into(),
                channel: "c".into(),
                expected: crate::topology::Expected::HEALTHY,
            }],
        };
        let mut secrets = LinkSecrets::generate(&topology, [], SecretSource::Seeded(1)).unwrap();
        let old = secrets.link("a", "b").unwrap().clone();
        let rotated = secrets
            .rotate(&[("a".into(), "b".into())], SecretSource::Seeded(1))
            .unwrap();
        assert_eq!(rotated.len(), 1);
        assert_eq!(rotated[0].old, old);
        assert_ne!(rotated[0].new, old);
        assert_eq!(secrets.link("a", "b"), Some(&rotated[0].new));
        let text = format!("{} {}", old.expose(), rotated[0].new.expose());
        assert_eq!(redact(&text, &secrets), "<redacted> <redacted>");
        // A second rotation derives yet another secret.
        let again = secrets
            .rotate(&[("a".into(), "b".into())], SecretSource::Seeded(1))
            .unwrap();
        assert_ne!(again[0].new, rotated[0].new);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = generate(SecretSource::Seeded(3), "a", "b", "link").unwrap();
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn redaction_removes_every_known_secret() {
        let secrets = LinkSecrets {
            link: HashMap::from([(
                ("a".into(), "b".into()),
                generate(SecretSource::Seeded(1), "a", "b", "link").unwrap(),
            )]),
            wrong: HashMap::new(),
            retired: Vec::new(),
            rotations: 0,
        };
        let secret = secrets.link("a", "b").unwrap().expose().to_owned();
        let text = format!("x {secret} y abc{secret}ff");
        let redacted = redact(&text, &secrets);
        assert!(!redacted.contains(&secret));
        assert_eq!(redacted, "x <redacted> y abc<redacted>ff");
        assert_eq!(redact("nothing here", &secrets), "nothing here");
    }
}
