//! Add-account lines and the accounts they become, per backend chart version (facts §7, §8).
//!
//! The chart helper turns each `addAccountOperator` entry into one line of text and the
//! migrations Job turns lines into database rows. How a line is split and whether existing
//! rows are updated or deleted changed over the chart's history, and those changes are exactly
//! the linking bugs the harness must reproduce: the guide's `channel` key corrupting incoming
//! entries, and secret rotations silently ignored before chart 26.12.0.

use std::fmt;

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use super::config::AccountEntry;
use crate::charts::AccountSync;

/// The longest outgoing secret the database column holds (`CharField(max_length=128)`).
pub const OUTGOING_SECRET_MAX_LENGTH: usize = 128;

/// Renders an entry as the chart helper `common.users` does: `name secret channel` when the
/// entry has a non-empty `channel` (Go templates treat `""` as false), else `name secret`.
pub fn render_line(entry: &AccountEntry) -> String {
    match entry.channel.as_deref() {
        Some(channel) if !channel.is_empty() => {
            format!("{} {} {}", entry.name, entry.secret, channel)
        }
        _ => format!("{} {}", entry.name, entry.secret),
    }
}

/// An account line split into the id and the password the Job will store.
///
/// `Debug` hides the password, and the id too: a corrupted line puts the secret in the id.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountLine {
    pub id: String,
    pub password: String,
}

impl fmt::Debug for AccountLine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("AccountLine(<redacted>)")
    }
}

/// Splits a line as the Job of the given chart generation does.
pub fn parse_line(line: &str, sync: AccountSync) -> AccountLine {
    let (id, password) = match sync {
        // `line.rsplit(" ", maxsplit=1)` in `sync_*`, and awk/sed on the last word in 26.6.6+.
        AccountSync::Sync | AccountSync::CreateLastWord => {
            line.rsplit_once(' ').unwrap_or((line, ""))
        }
        // `read user password <<< "$line"`: the first word, then the rest with outer blanks
        // trimmed, so a third field ends up inside the password.
        AccountSync::CreateFirstWord => {
            let trimmed = line.trim_matches([' ', '\t']);
            match trimmed.split_once([' ', '\t']) {
                Some((id, rest)) => (id, rest.trim_matches([' ', '\t'])),
                None => (trimmed, ""),
            }
        }
    };
    AccountLine {
        id: id.to_owned(),
        password: password.to_owned(),
    }
}

/// A salted SHA-256 of an incoming organization's password: the plaintext is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassword {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl StoredPassword {
    pub fn new(password: &str, salt: [u8; 16]) -> Self {
        Self {
            salt,
            digest: Self::digest(&salt, password),
        }
    }

    fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// Whether `password` is the one this was made from.
    pub fn is_match(&self, password: &str) -> bool {
        Self::digest(&self.salt, password) == self.digest
    }
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("StoredPassword(<hashed>)")
    }
}

/// Why the migrations Job failed while writing accounts. No variant carries a secret or an
/// account id (which may contain one).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "django.db.utils.DataError: value too long for type character varying(128) (outgoing organization entry {position}, secret of {length} characters)"
    )]
    OutgoingSecretTooLong { position: usize, length: usize },
    #[error("could not draw a password salt from the operating system")]
    Salt(#[source] getrandom::Error),
}

/// The account tables of one backend database, in insertion order (the order of `objects.all()`).
#[derive(Default)]
pub struct AccountStore {
    pub incoming: IndexMap<String, StoredPassword>,
    /// Outgoing secrets are kept in clear: the backend must present them to its peers.
    pub outgoing: IndexMap<String, String>,
}

impl fmt::Debug for AccountStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AccountStore")
            .field("incoming", &self.incoming.len())
            .field("outgoing", &self.outgoing.len())
            .finish_non_exhaustive()
    }
}

/// Writes `lines` into `table` as the Job does: always create missing ids; under
/// [`AccountSync::Sync`] also update existing ids in place and delete ids absent from the lines.
fn write_lines<T>(
    table: &mut IndexMap<String, T>,
    lines: Vec<AccountLine>,
    sync: AccountSync,
    mut make: impl FnMut(&str) -> Result<T, AccountError>,
) -> Result<(), AccountError> {
    let mut seen = std::collections::HashSet::new();
    for line in lines {
        let exists = table.contains_key(&line.id);
        if !exists || sync == AccountSync::Sync {
            // `IndexMap::insert` on an existing key keeps its position, like an UPDATE.
            let value = make(&line.password)?;
            table.insert(line.id.clone(), value);
        }
        seen.insert(line.id);
    }
    if sync == AccountSync::Sync {
        table.retain(|id, _| seen.contains(id));
    }
    Ok(())
}

impl AccountStore {
    /// Applies the incoming and outgoing lists of one values document. Entries are validated
    /// before anything is written, so a failing Job leaves the tables as they were.
    pub fn apply(
        &mut self,
        incoming: &[AccountEntry],
        outgoing: &[AccountEntry],
        sync: AccountSync,
        salt: &mut dyn FnMut() -> Result<[u8; 16], AccountError>,
    ) -> Result<(), AccountError> {
        let to_lines = |entries: &[AccountEntry]| -> Vec<AccountLine> {
            entries
                .iter()
                .map(|entry| parse_line(&render_line(entry), sync))
                .collect()
        };
        let incoming_lines = to_lines(incoming);
        let outgoing_lines = to_lines(outgoing);
        for (position, line) in outgoing_lines.iter().enumerate() {
            let length = line.password.chars().count();
            let is_written = sync == AccountSync::Sync || !self.outgoing.contains_key(&line.id);
            if is_written && length > OUTGOING_SECRET_MAX_LENGTH {
                return Err(AccountError::OutgoingSecretTooLong { position, length });
            }
        }
        let mut incoming_table = self.incoming.clone();
        write_lines(&mut incoming_table, incoming_lines, sync, |password| {
            Ok(StoredPassword::new(password, salt()?))
        })?;
        write_lines(&mut self.outgoing, outgoing_lines, sync, |password| {
            Ok(password.to_owned())
        })?;
        self.incoming = incoming_table;
        Ok(())
    }

    /// Whether `(id, password)` authenticates as an incoming organization.
    pub fn is_incoming_valid(&self, id: &str, password: &str) -> bool {
        self.incoming
            .get(id)
            .is_some_and(|stored| stored.is_match(password))
    }
}

/// Draws a password salt from the operating system.
pub fn random_salt() -> Result<[u8; 16], AccountError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(AccountError::Salt)?;
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn entry(name: &str, secret: &str, channel: Option<&str>) -> AccountEntry {
        AccountEntry {
            name: name.into(),
            secret: secret.into(),
            channel: channel.map(Into::into),
        }
    }

    fn fixed_salt() -> Result<[u8; 16], AccountError> {
        Ok([7; 16])
    }

    #[rstest]
    #[case(entry("bio", "SECRET", None), "bio SECRET")]
    #[case(entry("bio", "SECRET", Some("our-channel")), "bio SECRET our-channel")]
    #[case(entry("bio", "SECRET", Some("")), "bio SECRET")]
    fn lines_render_like_the_chart_helper(#[case] entry: AccountEntry, #[case] line: &str) {
        assert_eq!(render_line(&entry), line);
    }

    #[rstest]
    #[case("bio SECRET", AccountSync::Sync, "bio", "SECRET")]
    #[case("bio SECRET chan", AccountSync::Sync, "bio SECRET", "chan")]
    #[case("bio SECRET chan", AccountSync::CreateLastWord, "bio SECRET", "chan")]
    #[case("bio SECRET chan", AccountSync::CreateFirstWord, "bio", "SECRET chan")]
    #[case("bio SECRET", AccountSync::CreateFirstWord, "bio", "SECRET")]
    fn lines_split_per_chart_generation(
        #[case] line: &str,
        #[case] sync: AccountSync,
        #[case] id: &str,
        #[case] password: &str,
    ) {
        let parsed = parse_line(line, sync);
        assert_eq!(
            (parsed.id.as_str(), parsed.password.as_str()),
            (id, password)
        );
    }

    #[test]
    fn passwords_are_hashed_not_kept() {
        let stored = StoredPassword::new("hunter2", [1; 16]);
        assert!(stored.is_match("hunter2"));
        assert!(!stored.is_match("hunter3"));
        assert_ne!(
            stored,
            StoredPassword::new("hunter2", [2; 16]),
            "salt matters"
        );
        assert_eq!(format!("{stored:?}"), "StoredPassword(<hashed>)");
    }

    #[test]
    fn sync_updates_in_place_and_deletes_the_rest() {
        let mut store = AccountStore::default();
        let first = [
            entry("a", "1", None),
            entry("b", "2", None),
            entry("c", "3", None),
        ];
        store
            .apply(&first, &first, AccountSync::Sync, &mut fixed_salt)
            .unwrap();
        let second = [entry("c", "33", None), entry("b", "22", None)];
        store
            .apply(&second, &second, AccountSync::Sync, &mut fixed_salt)
            .unwrap();
        assert_eq!(store.outgoing.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(store.outgoing["c"], "33");
        assert!(store.is_incoming_valid("b", "22"));
        assert!(!store.is_incoming_valid("b", "2"));
        assert!(!store.is_incoming_valid("a", "1"));
        // Recreating a deleted id appends it.
        let third = [
            entry("a", "1", None),
            entry("b", "22", None),
            entry("c", "33", None),
        ];
        store
            .apply(&third, &third, AccountSync::Sync, &mut fixed_salt)
            .unwrap();
        assert_eq!(store.outgoing.keys().collect::<Vec<_>>(), ["b", "c", "a"]);
    }

    #[rstest]
    #[case(AccountSync::CreateLastWord)]
    #[case(AccountSync::CreateFirstWord)]
    fn create_only_never_updates_or_deletes(#[case] sync: AccountSync) {
        let mut store = AccountStore::default();
        let first = [entry("a", "1", None), entry("b", "2", None)];
        store.apply(&first, &first, sync, &mut fixed_salt).unwrap();
        let second = [entry("b", "22", None)];
        store
            .apply(&second, &second, sync, &mut fixed_salt)
            .unwrap();
        assert_eq!(store.outgoing.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(store.outgoing["b"], "2");
        assert!(store.is_incoming_valid("b", "2"));
        assert!(!store.is_incoming_valid("b", "22"));
    }

    #[test]
    fn the_guide_channel_key_corrupts_incoming_and_deletes_the_good_row() {
        let mut store = AccountStore::default();
        let good = [entry("bio", "SECRET", None)];
        store
            .apply(&good, &[], AccountSync::Sync, &mut fixed_salt)
            .unwrap();
        let guide = [entry("bio", "SECRET", Some("our-channel"))];
        store
            .apply(&guide, &[], AccountSync::Sync, &mut fixed_salt)
            .unwrap();
        assert!(!store.is_incoming_valid("bio", "SECRET"));
        assert!(store.is_incoming_valid("bio SECRET", "our-channel"));
        assert_eq!(store.incoming.len(), 1);
    }

    #[test]
    fn an_overlong_outgoing_secret_fails_without_writing() {
        let mut store = AccountStore::default();
        let long = "x".repeat(129);
        let entries = [entry("a", "1", None), entry("b", &long, None)];
        let error = store
            .apply(&entries, &entries, AccountSync::Sync, &mut fixed_salt)
            .unwrap_err();
        assert!(matches!(
            error,
            AccountError::OutgoingSecretTooLong {
                position: 1,
                length: 129
            }
        ));
        assert!(!error.to_string().contains(&long));
        assert!(store.incoming.is_empty() && store.outgoing.is_empty());
        let exact = [entry("b", &"x".repeat(128), None)];
        store
            .apply(&[], &exact, AccountSync::Sync, &mut fixed_salt)
            .unwrap();
    }
}
