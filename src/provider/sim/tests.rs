//! End-to-end tests of the simulated network over real loopback sockets: several
//! organizations on their own 127.0.x.1 addresses, one orchestrator, hand-written values.
//!
//! Each test uses its own cluster addresses so tests can run in parallel.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::client::{PeerOutcome, PeerRequest, send};
use super::{SimError, SimNetwork, SimOptions};
use crate::charts::ChartVersion;
use crate::verify::probe::{ProbeStatus, parse_probe_output, probe_argv, table_argv};
use crate::verify::table::{OutgoingRow, format_outgoing_table, parse_outgoing_table};

const CHANNEL: &str = "our-channel";
const LATEST: ChartVersion = ChartVersion::new(26, 15, 3);
const CREATE_ONLY: ChartVersion = ChartVersion::new(26, 9, 1);

fn cluster(third: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, third, 1)
}

fn options(sync_lag: Duration) -> SimOptions {
    SimOptions {
        sync_lag,
        ..SimOptions::default()
    }
}

fn orchestrator_values(members: &[&str]) -> Value {
    json!({"channels": [{"name": CHANNEL, "organizations": members}]})
}

fn accounts(entries: &[(&str, &str)]) -> Value {
    entries
        .iter()
        .map(|(name, secret)| json!({"name": name, "secret": secret}))
        .collect()
}

/// A backend values document in the chart's shape.
fn backend_values(
    msp_id: &str,
    address: &str,
    incoming: &[(&str, &str)],
    outgoing: &[(&str, &str)],
) -> Value {
    json!({
        "organizationName": msp_id.trim_end_matches("MSP").to_lowercase(),
        "config": {"ALLOWED_HOSTS": "[\".cluster-1.example\"]"},
        "server": {"defaultDomain": address},
        "orchestrator": {
            "mspID": msp_id,
            "channels": [{CHANNEL: {"restricted": false, "model_export_enabled": true}}]
        },
        "addAccountOperator": {
            "incomingOrganizations": accounts(incoming),
            "outgoingOrganizations": accounts(outgoing)
        }
    })
}

/// Binds and installs organizations `AMSP`, `BMSP`, ... on clusters `127.0.first.1`, ...,
/// each with a self link and links to every other, secret `s-<from>-<to>`.
async fn mesh(first_cluster: u8, count: u8, chart: ChartVersion, sim: &SimNetwork) -> Vec<String> {
    let names: Vec<String> = (0..count)
        .map(|index| format!("{}MSP", char::from(b'A' + index)))
        .collect();
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    sim.install_orchestrator(&orchestrator_values(&members))
        .await
        .unwrap();
    let mut addresses = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let ip = cluster(first_cluster + u8::try_from(index).unwrap());
        addresses.push(sim.bind_organization(name, ip).await.unwrap());
    }
    for (index, name) in names.iter().enumerate() {
        let incoming: Vec<(String, String)> = names
            .iter()
            .map(|peer| (peer.clone(), format!("s-{peer}-{name}")))
            .collect();
        let outgoing: Vec<(String, String)> = names
            .iter()
            .map(|peer| (peer.clone(), format!("s-{name}-{peer}")))
            .collect();
        let incoming: Vec<(&str, &str)> = incoming
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let outgoing: Vec<(&str, &str)> = outgoing
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        sim.install_backend(
            name,
            chart,
            &backend_values(name, &addresses[index], &incoming, &outgoing),
        )
        .await
        .unwrap();
    }
    addresses
}

async fn exec(sim: &SimNetwork, organization: &str, argv: &[String]) -> super::ExecOutput {
    sim.exec(organization, argv).await.unwrap()
}

/// Waits out the sync lag used by the tests that do not test it.
async fn synced() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

/// Sends one raw HTTP/1.1 request and returns (status, head, body).
async fn raw_get(
    address: SocketAddr,
    host: &str,
    extra_headers: &str,
    path: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_owned())
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_table_crashes_until_synced_then_matches_the_real_format() {
    let sim = SimNetwork::new(options(Duration::from_millis(300)));
    let addresses = mesh(11, 2, LATEST, &sim).await;
    let crash = exec(&sim, "AMSP", &table_argv()).await;
    assert_eq!(crash.exit_code, 1);
    assert_eq!(crash.stdout, "");
    assert!(
        crash
            .stderr
            .starts_with("Traceback (most recent call last):\n")
    );
    assert!(
        crash.stderr.ends_with("KeyError: 'AMSP'\n"),
        "{}",
        crash.stderr
    );
    let unsynced = parse_probe_output(&exec(&sim, "AMSP", &probe_argv()).await.stdout);
    assert_eq!(unsynced.len(), 2);
    assert!(
        unsynced
            .iter()
            .all(|line| line.status == ProbeStatus::Unsynced)
    );

    tokio::time::sleep(Duration::from_millis(350)).await;
    let table = exec(&sim, "AMSP", &table_argv()).await;
    assert_eq!((table.exit_code, table.stderr.as_str()), (0, ""));
    let expected_rows = [
        OutgoingRow {
            org_id: "AMSP".into(),
            address: addresses[0].clone(),
            status: "200".into(),
        },
        OutgoingRow {
            org_id: "BMSP".into(),
            address: addresses[1].clone(),
            status: "200".into(),
        },
    ];
    assert_eq!(table.stdout, format_outgoing_table(&expected_rows));
    // The layout written out by hand for these widths: org_id 6, address 22 or 21, status 11.
    let width = addresses[0].len().max(addresses[1].len());
    let header = format!("| org_id | {:^width$} | http_status |", "org_address");
    assert_eq!(table.stdout.lines().next().unwrap(), header);
    assert_eq!(
        table.stdout.lines().nth(1).unwrap(),
        format!("|  AMSP  | {:^width$} |     200     |", addresses[0])
    );
    // Filtering by organization id prints one row.
    let filtered = exec(
        &sim,
        "AMSP",
        &["./manage.py", "get_outgoing_organization", "BMSP"].map(String::from),
    )
    .await;
    assert_eq!(
        parse_outgoing_table(&filtered.stdout).unwrap(),
        expected_rows[1..]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_probe_accepts_matching_secrets_and_rejects_others() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    let addresses = mesh(21, 2, LATEST, &sim).await;
    // A presents a wrong secret to B from now on.
    sim.install_backend(
        "AMSP",
        LATEST,
        &backend_values(
            "AMSP",
            &addresses[0],
            &[("AMSP", "s-AMSP-AMSP"), ("BMSP", "s-BMSP-AMSP")],
            &[("AMSP", "s-AMSP-AMSP"), ("BMSP", "wrong")],
        ),
    )
    .await
    .unwrap();
    synced().await;
    let output = exec(&sim, "AMSP", &probe_argv()).await;
    assert_eq!(output.exit_code, 0);
    let lines = parse_probe_output(&output.stdout);
    let statuses: Vec<(&str, &ProbeStatus)> = lines
        .iter()
        .map(|line| (line.org_id.as_str(), &line.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("AMSP", &ProbeStatus::Code(200)),
            ("BMSP", &ProbeStatus::Code(401))
        ]
    );
    assert_eq!(lines[1].channel.as_deref(), Some(CHANNEL));
    assert_eq!(lines[1].address.as_deref(), Some(addresses[1].as_str()));
    let back = parse_probe_output(&exec(&sim, "BMSP", &probe_argv()).await.stdout);
    assert!(
        back.iter()
            .all(|line| line.status == ProbeStatus::Code(200))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_guide_channel_key_breaks_auth_but_not_reach() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    let addresses = mesh(31, 2, LATEST, &sim).await;
    let mut values = backend_values(
        "BMSP",
        &addresses[1],
        &[("AMSP", "s-AMSP-BMSP"), ("BMSP", "s-BMSP-BMSP")],
        &[("AMSP", "s-BMSP-AMSP"), ("BMSP", "s-BMSP-BMSP")],
    );
    values["addAccountOperator"]["incomingOrganizations"][0]["channel"] = json!(CHANNEL);
    sim.install_backend("BMSP", LATEST, &values).await.unwrap();
    synced().await;
    let probe = parse_probe_output(&exec(&sim, "AMSP", &probe_argv()).await.stdout);
    assert_eq!(probe[1].status, ProbeStatus::Code(401));
    let table = parse_outgoing_table(&exec(&sim, "AMSP", &table_argv()).await.stdout).unwrap();
    assert_eq!(table[1].status, "200");
    sim.shutdown().await;
}

/// Sends A's request to B's `/model/` with the given secret, from A's cluster.
async fn model_status(source: Ipv4Addr, address: &str, secret: &str) -> PeerOutcome {
    let request = PeerRequest {
        source,
        url: format!("{address}/model/"),
        credentials: Some(("AMSP".to_owned(), secret.to_owned())),
        channel: Some(CHANNEL.to_owned()),
    };
    send(&request, |_, _| false, Duration::from_secs(5)).await
}

#[tokio::test]
async fn rotation_takes_effect_from_26_12_0_and_is_silently_ignored_before() {
    for (first_cluster, chart, is_rotated) in [(41, LATEST, true), (43, CREATE_ONLY, false)] {
        let sim = SimNetwork::new(options(Duration::ZERO));
        let addresses = mesh(first_cluster, 2, chart, &sim).await;
        let rotated = [("AMSP", "new-A-B"), ("BMSP", "s-BMSP-BMSP")];
        sim.install_backend(
            "BMSP",
            chart,
            &backend_values("BMSP", &addresses[1], &rotated, &[]),
        )
        .await
        .unwrap();
        let source = cluster(first_cluster);
        let (new, old) = if is_rotated {
            (PeerOutcome::Status(200), PeerOutcome::Status(401))
        } else {
            (PeerOutcome::Status(401), PeerOutcome::Status(200))
        };
        assert_eq!(
            model_status(source, &addresses[1], "new-A-B").await,
            new,
            "chart {chart}"
        );
        assert_eq!(
            model_status(source, &addresses[1], "s-AMSP-BMSP").await,
            old,
            "chart {chart}"
        );
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn deleting_an_entry_removes_the_account_from_26_12_0_only() {
    for (first_cluster, chart, is_deleted) in [(51, LATEST, true), (53, CREATE_ONLY, false)] {
        let sim = SimNetwork::new(options(Duration::ZERO));
        let addresses = mesh(first_cluster, 2, chart, &sim).await;
        // B keeps only its self link, on both lists.
        let only_self = [("BMSP", "s-BMSP-BMSP")];
        sim.install_backend(
            "BMSP",
            chart,
            &backend_values("BMSP", &addresses[1], &only_self, &only_self),
        )
        .await
        .unwrap();
        synced().await;
        let expected = if is_deleted { 401 } else { 200 };
        assert_eq!(
            model_status(cluster(first_cluster), &addresses[1], "s-AMSP-BMSP").await,
            PeerOutcome::Status(expected),
            "chart {chart}"
        );
        let rows = parse_outgoing_table(&exec(&sim, "BMSP", &table_argv()).await.stdout).unwrap();
        let ids: Vec<&str> = rows.iter().map(|row| row.org_id.as_str()).collect();
        let expected_ids: &[&str] = if is_deleted {
            &["BMSP"]
        } else {
            &["AMSP", "BMSP"]
        };
        assert_eq!(ids, expected_ids, "chart {chart}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn allowed_hosts_are_checked_first() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    let addresses = mesh(61, 1, LATEST, &sim).await;
    let listen = sim.listen_address("AMSP").unwrap();
    let (status, _, body) = raw_get(listen, "evil.example", "", "/info/").await;
    assert_eq!((status, body.as_str()), (400, "<h1>Bad Request (400)</h1>"));
    let (status, _, _) = raw_get(listen, "evil.example", "", "/readiness").await;
    assert_eq!(status, 400);
    let (status, _, body) = raw_get(listen, "API.cluster-1.example:8000", "", "/info/").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(
            r#"{{"host":"{}","organization_id":"AMSP","organization_name":"a","config":{{}},"auth":{{}}}}"#,
            addresses[0]
        )
    );
    let (status, _, _) = raw_get(listen, "localhost", "", "/nowhere/").await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn model_answers_401_400_and_200_like_drf() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    mesh(63, 1, LATEST, &sim).await;
    let listen = sim.listen_address("AMSP").unwrap();
    let host = cluster(63).to_string();
    let (status, head, body) = raw_get(listen, &host, "", "/model/").await;
    assert_eq!(
        (status, body.as_str()),
        (
            401,
            r#"{"detail":"Authentication credentials were not provided."}"#
        )
    );
    assert!(head.contains("www-authenticate: token"), "{head}");
    let bad = "Authorization: Basic QU1TUDp3cm9uZw==\r\n"; // AMSP:wrong
    let (status, head, body) = raw_get(listen, &host, bad, "/model/").await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"detail":"Invalid username/password."}"#)
    );
    assert!(head.contains("www-authenticate: token"));
    let good = "Authorization: Basic QU1TUDpzLUFNU1AtQU1TUA==\r\n"; // AMSP:s-AMSP-AMSP
    let (status, _, body) = raw_get(listen, &host, good, "/model/").await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"detail":"Could not determine channel name"}"#)
    );
    let with_channel = format!("{good}Substra-Channel-Name: any\r\n");
    let (status, _, body) = raw_get(listen, &host, &with_channel, "/model/").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"count":0,"next":null,"previous":null,"results":[]}"#
        )
    );
    // `/info/` ignores Basic credentials, even wrong ones.
    let (status, _, _) = raw_get(listen, &host, bad, "/info/").await;
    assert_eq!(status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bound_but_uninstalled_backend_answers_503() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    sim.bind_organization("AMSP", cluster(65)).await.unwrap();
    let listen = sim.listen_address("AMSP").unwrap();
    let (status, _, _) = raw_get(listen, "localhost", "", "/info/").await;
    assert_eq!(status, 503);
    assert!(matches!(
        sim.exec("AMSP", &table_argv()).await,
        Err(SimError::NotInstalled { .. })
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn anonymous_requests_are_throttled_per_client_address() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    let addresses = mesh(71, 3, LATEST, &sim).await;
    // C allows two anonymous requests a minute.
    let mut values = backend_values(
        "CMSP",
        &addresses[2],
        &[
            ("AMSP", "s-AMSP-CMSP"),
            ("BMSP", "s-BMSP-CMSP"),
            ("CMSP", "s-CMSP-CMSP"),
        ],
        &[("CMSP", "s-CMSP-CMSP")],
    );
    values["config"]["DEFAULT_THROTTLE_RATES"] = json!("2");
    sim.install_backend("CMSP", LATEST, &values).await.unwrap();
    synced().await;
    let row_for_c = |output: super::ExecOutput| {
        let rows = parse_outgoing_table(&output.stdout).unwrap();
        rows.into_iter()
            .find(|row| row.org_id == "CMSP")
            .unwrap()
            .status
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(row_for_c(exec(&sim, "AMSP", &table_argv()).await));
    }
    assert_eq!(statuses, ["200", "200", "429"]);
    // B is on another cluster, so another client address.
    assert_eq!(row_for_c(exec(&sim, "BMSP", &table_argv()).await), "200");
    // Authenticated requests are not anonymously throttled.
    let probe = parse_probe_output(&exec(&sim, "AMSP", &probe_argv()).await.stdout);
    assert!(
        probe
            .iter()
            .all(|line| line.status == ProbeStatus::Code(200))
    );
    let (status, head, body) = raw_get(
        sim.listen_address("CMSP").unwrap(),
        "localhost",
        "",
        "/info/",
    )
    .await;
    assert_eq!(
        status, 200,
        "the test client is yet another address (127.0.0.1)"
    );
    assert!(!head.contains("retry-after") && body.contains("CMSP"));
    raw_get(
        sim.listen_address("CMSP").unwrap(),
        "localhost",
        "",
        "/info/",
    )
    .await;
    let (status, head, body) = raw_get(
        sim.listen_address("CMSP").unwrap(),
        "localhost",
        "",
        "/info/",
    )
    .await;
    assert_eq!(status, 429);
    let wait: u64 = body
        .strip_prefix(r#"{"detail":"Request was throttled. Expected available in "#)
        .and_then(|rest| rest.strip_suffix(r#" seconds."}"#))
        .unwrap_or_else(|| panic!("unexpected body {body}"))
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert!(head.contains(&format!("retry-after: {wait}")), "{head}");
    sim.shutdown().await;
}

#[tokio::test]
async fn partitions_and_refusals_read_like_urllib3() {
    let sim = SimNetwork::new(SimOptions {
        sync_lag: Duration::ZERO,
        // Long enough that waiting it out would be noticed.
        http_client_timeout: Duration::from_secs(30),
    });
    let addresses = mesh(81, 2, LATEST, &sim).await;
    sim.partition(cluster(81), cluster(82));
    let started = std::time::Instant::now();
    let rows = parse_outgoing_table(&exec(&sim, "AMSP", &table_argv()).await.stdout).unwrap();
    let port = port_of(&addresses[1]);
    assert_eq!(
        rows[1].status,
        format!(
            "HTTPConnectionPool(host='127.0.82.1', port={port}): Max retries exceeded with url: /info/ (Caused by ConnectTimeoutError(<urllib3.connection.HTTPConnection object at 0x7f3a2c1d9e50>, 'Connection to 127.0.82.1 timed out. (connect timeout=30)'))"
        )
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let probe = parse_probe_output(&exec(&sim, "AMSP", &probe_argv()).await.stdout);
    let ProbeStatus::Error(text) = &probe[1].status else {
        panic!("expected an error, got {:?}", probe[1].status);
    };
    assert!(
        text.contains("url: /model/ (Caused by ConnectTimeoutError"),
        "{text}"
    );
    // One direction only.
    let back = parse_outgoing_table(&exec(&sim, "BMSP", &table_argv()).await.stdout).unwrap();
    assert_eq!(back[0].status, "200");
    sim.heal(cluster(81), cluster(82));
    // A stopped peer refuses connections.
    let other = SimNetwork::new(options(Duration::ZERO));
    let stopped = other.bind_organization("ZMSP", cluster(83)).await.unwrap();
    other.shutdown().await;
    let outcome = send(
        &PeerRequest {
            source: cluster(81),
            url: format!("{stopped}/info/"),
            credentials: None,
            channel: None,
        },
        |_, _| false,
        Duration::from_secs(5),
    )
    .await;
    let port = port_of(&stopped);
    assert_eq!(
        outcome,
        PeerOutcome::Error(format!(
            "HTTPConnectionPool(host='127.0.83.1', port={port}): Max retries exceeded with url: /info/ (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f3a2c1d9e50>: Failed to establish a new connection: [Errno 111] Connection refused'))"
        ))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn charts_with_missing_sync_commands_fail_unless_the_image_is_overridden() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    sim.install_orchestrator(&orchestrator_values(&["AMSP"]))
        .await
        .unwrap();
    let address = sim.bind_organization("AMSP", cluster(91)).await.unwrap();
    let mut values = backend_values("AMSP", &address, &[("AMSP", "s")], &[("AMSP", "s")]);
    let chart = ChartVersion::new(26, 13, 0);
    let error = sim
        .install_backend("AMSP", chart, &values)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Unknown command: 'sync_users'"),
        "{error}"
    );
    values["server"]["image"] = json!({"tag": "1.0.0"});
    sim.install_backend("AMSP", chart, &values).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_orchestrator_enforces_membership_schemes_and_first_addresses() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    sim.install_orchestrator(&orchestrator_values(&["AMSP"]))
        .await
        .unwrap();
    let address = sim.bind_organization("AMSP", cluster(93)).await.unwrap();
    sim.bind_organization("XMSP", cluster(94)).await.unwrap();
    let error = sim
        .install_backend(
            "XMSP",
            LATEST,
            &backend_values("XMSP", "http://127.0.94.1:1", &[], &[]),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(r#"organization "XMSP" has not access to channel "our-channel""#),
        "{error}"
    );
    let error = sim
        .install_backend(
            "AMSP",
            LATEST,
            &backend_values("AMSP", "127.0.93.1:8000", &[], &[]),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, SimError::Registration { .. }), "{error}");
    let outgoing = [("AMSP", "s")];
    sim.install_backend(
        "AMSP",
        LATEST,
        &backend_values("AMSP", &address, &outgoing, &outgoing),
    )
    .await
    .unwrap();
    sim.install_backend(
        "AMSP",
        LATEST,
        &backend_values("AMSP", "http://moved.example:1", &outgoing, &outgoing),
    )
    .await
    .unwrap();
    synced().await;
    let rows = parse_outgoing_table(&exec(&sim, "AMSP", &table_argv()).await.stdout).unwrap();
    assert_eq!(
        rows[0].address, address,
        "the first registered address stays"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn overlong_outgoing_secrets_fail_the_job_without_leaking() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    sim.install_orchestrator(&orchestrator_values(&["AMSP"]))
        .await
        .unwrap();
    let address = sim.bind_organization("AMSP", cluster(95)).await.unwrap();
    let secret = "f".repeat(129);
    let error = sim
        .install_backend(
            "AMSP",
            LATEST,
            &backend_values("AMSP", &address, &[], &[("AMSP", &secret)]),
        )
        .await
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(matches!(error, SimError::MigrationJob { .. }), "{text}");
    assert!(!text.contains(&secret));
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_listening_and_is_idempotent() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    mesh(97, 1, LATEST, &sim).await;
    let listen = sim.listen_address("AMSP").unwrap();
    // Keep a connection open across the shutdown: its task must be aborted too.
    let mut open = tokio::net::TcpStream::connect(listen).await.unwrap();
    sim.shutdown().await;
    sim.shutdown().await;
    let refused = tokio::net::TcpStream::connect(listen).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let mut buffer = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the open connection was closed"
    );
    assert!(matches!(
        sim.bind_organization("BMSP", cluster(98)).await,
        Err(SimError::ShutDown)
    ));
}

/// The performance check of the brief: 100 organizations, one cluster each, full mesh; 100
/// table execs and 100 probe execs. Run with
/// `cargo test --release -- --ignored --nocapture full_mesh_of_100`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand in release mode"]
async fn full_mesh_of_100_organizations() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    let started = std::time::Instant::now();
    let names: Vec<String> = (1..=100).map(|index| format!("Org{index}MSP")).collect();
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    sim.install_orchestrator(&orchestrator_values(&members))
        .await
        .unwrap();
    let mut addresses = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let ip = Ipv4Addr::new(127, 0, u8::try_from(index + 1).unwrap(), 1);
        addresses.push(sim.bind_organization(name, ip).await.unwrap());
    }
    for (name, address) in names.iter().zip(&addresses) {
        let incoming: Vec<(String, String)> = names
            .iter()
            .map(|peer| (peer.clone(), format!("{peer}-{name}")))
            .collect();
        let outgoing: Vec<(String, String)> = names
            .iter()
            .map(|peer| (peer.clone(), format!("{name}-{peer}")))
            .collect();
        let incoming: Vec<(&str, &str)> = incoming
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let outgoing: Vec<(&str, &str)> = outgoing
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        sim.install_backend(
            name,
            LATEST,
            &backend_values(name, address, &incoming, &outgoing),
        )
        .await
        .unwrap();
    }
    println!("install of 100 organizations: {:?}", started.elapsed());
    synced().await;
    let tables = std::time::Instant::now();
    let outputs = futures::future::join_all(names.iter().map(|name| {
        let (sim, name) = (sim.clone(), name.clone());
        tokio::spawn(async move { sim.exec(&name, &table_argv()).await })
    }))
    .await;
    println!("100 tables x 100 /info/: {:?}", tables.elapsed());
    for output in outputs {
        let rows = parse_outgoing_table(&output.unwrap().unwrap().stdout).unwrap();
        assert_eq!(rows.len(), 100);
        assert!(rows.iter().all(|row| row.status == "200"));
    }
    let probes = std::time::Instant::now();
    let outputs = futures::future::join_all(names.iter().map(|name| {
        let (sim, name) = (sim.clone(), name.clone());
        tokio::spawn(async move { sim.exec(&name, &probe_argv()).await })
    }))
    .await;
    println!("100 probes x 100 /model/: {:?}", probes.elapsed());
    for output in outputs {
        let lines = parse_probe_output(&output.unwrap().unwrap().stdout);
        assert_eq!(lines.len(), 100);
        assert!(
            lines
                .iter()
                .all(|line| line.status == ProbeStatus::Code(200))
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_backend_without_orchestrator_never_becomes_ready() {
    let sim = SimNetwork::new(options(Duration::ZERO));
    let address = sim.bind_organization("AMSP", cluster(99)).await.unwrap();
    let error = sim
        .install_backend("AMSP", LATEST, &backend_values("AMSP", &address, &[], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, SimError::OrchestratorNotInstalled { .. }),
        "{error}"
    );
    assert!(matches!(
        sim.exec("NOBODY", &table_argv()).await,
        Err(SimError::UnknownOrganization { .. })
    ));
    assert!(matches!(
        sim.bind_organization("AMSP", cluster(99)).await,
        Err(SimError::AlreadyBound { .. })
    ));
    sim.shutdown().await;
}
