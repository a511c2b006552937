//! The rotation check (DESIGN §4): after `rotate-secrets`, orgmesh itself presents the new and
//! the old secret of a directed link A→B to B, and reads which of the two B accepts.
//!
//! The auth check runs from A's pod with whatever A has stored, so it stays green when neither
//! side took the new secret: both still hold the old one. Only a probe that knows both secrets
//! can tell a rotation that took effect from one that did not. The request is the credential
//! probe's — `GET <B>/model/` with Basic (msp(A), secret) and `Substra-Channel-Name` — sent from
//! the harness, which reaches B's address directly (a loopback address in the simulator, a node
//! port on kind).
//!
//! The revoked check is the same request after `remove-organization`: the secret the removed
//! organization presented to a remaining one must now be rejected, since the remaining one's
//! upgrade deleted the entry.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::provider::sim::client::{PeerOutcome, PeerRequest, send};
use crate::report::{CheckKind, CheckResult};
use crate::run::Cancel;
use crate::scenario::AuthOutcome;
use crate::secrets::Secret;

use super::VerifyOptions;

/// One rotated directed link to check.
#[derive(Debug, Clone)]
pub struct RotationTarget {
    pub from: String,
    pub to: String,
    /// msp(A): the user name both secrets are presented with.
    pub from_msp: String,
    /// B's address, with scheme.
    pub to_address: String,
    /// A channel A and B share.
    pub channel: String,
    pub old: Secret,
    pub new: Secret,
    /// What B should answer to the new and to the old secret.
    pub expected: (AuthOutcome, AuthOutcome),
}

/// One link of a removed organization: `from` is gone, `to` remains.
#[derive(Debug, Clone)]
pub struct RevokedTarget {
    pub from: String,
    pub to: String,
    pub from_msp: String,
    pub to_address: String,
    pub channel: String,
    pub secret: Secret,
    /// `rejected`, unless the chart keeps removed entries.
    pub expected: AuthOutcome,
}

/// The vocabulary of `expected` and `observed`: `new accepted, old rejected`.
pub fn rotation_text(new: AuthOutcome, old: AuthOutcome) -> String {
    format!("new {new}, old {old}")
}

/// What one answer means: 200 accepted, 401 rejected, anything else an error (facts §6).
pub fn classify(outcome: &PeerOutcome) -> AuthOutcome {
    match outcome {
        PeerOutcome::Status(200) => AuthOutcome::Accepted,
        PeerOutcome::Status(401) => AuthOutcome::Rejected,
        PeerOutcome::Status(_) | PeerOutcome::Error(_) => AuthOutcome::Error,
    }
}

/// Why an answer was an error, for `detail`; never contains a secret (only the status or the
/// exception text of the request).
fn error_detail(label: &str, outcome: &PeerOutcome) -> Option<String> {
    match outcome {
        PeerOutcome::Status(200 | 401) => None,
        PeerOutcome::Status(code) => Some(format!("the {label} secret got HTTP {code}")),
        PeerOutcome::Error(text) => Some(format!("the {label} secret: {text}")),
    }
}

/// Presents `(user, secret)` to the backend at `address` on `channel`.
async fn present(
    address: &str,
    user: &str,
    channel: &str,
    secret: &Secret,
    timeout: Duration,
) -> PeerOutcome {
    let request = PeerRequest {
        // The harness is no cluster: let the system pick the source address.
        source: Ipv4Addr::UNSPECIFIED,
        url: format!("{}/model/", address.trim_end_matches('/')),
        credentials: Some((user.to_owned(), secret.expose().to_owned())),
        channel: Some(channel.to_owned()),
    };
    send(&request, |_, _| false, timeout).await
}

/// Observes with `observe` until the observation is `expected`, the run is cancelled or the
/// deadline passes. Returns the last observation, its detail and the number of attempts.
async fn poll<F, Fut>(
    expected: &str,
    options: &VerifyOptions,
    cancel: &Cancel,
    mut observe: F,
) -> (String, Option<String>, u32)
where
    F: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = (String, Option<String>)>,
{
    let mut attempts = 0;
    let mut backoff = options.initial_backoff;
    loop {
        attempts += 1;
        let timeout = options
            .deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(100), Duration::from_secs(10));
        let (observed, detail) = observe(timeout).await;
        let now = Instant::now();
        if observed == expected || cancel.is_cancelled() || now + backoff >= options.deadline {
            return (observed, detail, attempts);
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = cancel.cancelled() => return (observed, detail, attempts),
        }
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

/// After `remove-organization`: presents the removed organization's old secret to a
/// remaining former peer until the answer meets the expectation or the deadline passes.
pub async fn check_revoked(
    target: &RevokedTarget,
    options: &VerifyOptions,
    cancel: &Cancel,
) -> CheckResult {
    let started = Instant::now();
    let expected = target.expected.to_string();
    let (observed, detail, attempts) = poll(&expected, options, cancel, |timeout| async move {
        let outcome = present(
            &target.to_address,
            &target.from_msp,
            &target.channel,
            &target.secret,
            timeout,
        )
        .await;
        (
            classify(&outcome).to_string(),
            error_detail("old", &outcome),
        )
    })
    .await;
    let mismatch = format!(
        "{} still answers {observed} to the secret of the removed organization {}",
        target.to, target.from
    );
    let link = (target.from.as_str(), target.to.as_str());
    let polled = Polled {
        expected,
        observed,
        detail,
        attempts,
        started,
    };
    harness_result(CheckKind::Revoked, "", link, polled, mismatch)
}

/// What one harness-side check polled.
struct Polled {
    expected: String,
    observed: String,
    detail: Option<String>,
    attempts: u32,
    started: Instant,
}

/// The result of a harness-side check; `mismatch` explains a failure that raised no error.
fn harness_result(
    kind: CheckKind,
    step: &str,
    (from, to): (&str, &str),
    polled: Polled,
    mismatch: String,
) -> CheckResult {
    let passed = polled.observed == polled.expected;
    let detail = polled.detail.or_else(|| (!passed).then_some(mismatch));
    CheckResult {
        step: step.to_owned(),
        check: kind,
        from: from.to_owned(),
        to: to.to_owned(),
        expected: polled.expected,
        observed: polled.observed,
        passed,
        attempts: polled.attempts,
        duration_ms: polled.started.elapsed().as_millis() as u64,
        detail,
        diagnostics: None,
    }
}

/// Presents both secrets until B's answers meet the expectation (a backend may still be
/// applying the upgrade) or the deadline passes.
pub async fn check_rotation(
    target: &RotationTarget,
    step: &str,
    options: &VerifyOptions,
    cancel: &Cancel,
) -> CheckResult {
    let started = Instant::now();
    let expected = rotation_text(target.expected.0, target.expected.1);
    let (observed, detail, attempts) = poll(&expected, options, cancel, |timeout| async move {
        let present = |secret| {
            present(
                &target.to_address,
                &target.from_msp,
                &target.channel,
                secret,
                timeout,
            )
        };
        let new = present(&target.new).await;
        let old = present(&target.old).await;
        let observed = rotation_text(classify(&new), classify(&old));
        let detail = [error_detail("new", &new), error_detail("old", &old)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        (observed, (!detail.is_empty()).then(|| detail.join("; ")))
    })
    .await;
    let mismatch = format!(
        "{} answered {observed} to the secrets orgmesh generated for {}→{}",
        target.to, target.from, target.to
    );
    let link = (target.from.as_str(), target.to.as_str());
    let polled = Polled {
        expected,
        observed,
        detail,
        attempts,
        started,
    };
    harness_result(CheckKind::Rotation, step, link, polled, mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_like_the_credential_probe() {
        assert_eq!(classify(&PeerOutcome::Status(200)), AuthOutcome::Accepted);
        assert_eq!(classify(&PeerOutcome::Status(401)), AuthOutcome::Rejected);
        assert_eq!(classify(&PeerOutcome::Status(403)), AuthOutcome::Error);
        assert_eq!(
            classify(&PeerOutcome::Error("refused".into())),
            AuthOutcome::Error
        );
        assert_eq!(
            rotation_text(AuthOutcome::Accepted, AuthOutcome::Rejected),
            crate::report::HEALTHY_ROTATION
        );
    }
}
