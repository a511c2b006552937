//! The summary printed at the end of a run: a from × to matrix per check kind, the incomplete
//! outgoing tables, every failed check with its detail, and a one-line verdict.
//!
//! Every cell and line reads the same without colour (`ok`, `ok*`, `FAIL`, `·`), because CI
//! logs, `NO_COLOR` users and screen readers see no colour; colour only repeats what the text
//! already says.

// Writing into a `String` cannot fail, so the `fmt::Result`s below are discarded with `let _`.
use std::fmt::Write as _;
use std::time::Duration;

use indexmap::IndexSet;

use super::model::{CheckKind, CheckResult, Report};

/// Whether the summary may use ANSI colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// No colour: for files, pipes, panics and snapshots.
    pub const fn plain() -> Self {
        Self { color: false }
    }

    /// Colour when the output is a terminal and the user has not opted out with `NO_COLOR`
    /// (<https://no-color.org>: any non-empty value disables colour).
    pub fn detect(is_terminal: bool) -> Self {
        Self::from_environment(is_terminal, std::env::var_os("NO_COLOR").as_deref())
    }

    /// [`Style::detect`] with the value of `NO_COLOR` passed in, so it can be tested without
    /// changing the process environment.
    pub fn from_environment(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> Self {
        let is_opted_out = no_color.is_some_and(|value| !value.is_empty());
        Self {
            color: is_terminal && !is_opted_out,
        }
    }

    /// [`Style::detect`] for standard output, where the summary is printed.
    pub fn for_stdout() -> Self {
        use std::io::IsTerminal as _;
        Self::detect(std::io::stdout().is_terminal())
    }

    fn paint(self, paint: Paint, text: &str) -> String {
        if self.color {
            format!("\x1b[{}m{text}\x1b[0m", paint.code())
        } else {
            text.to_owned()
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Paint {
    Green,
    Yellow,
    Red,
    Dim,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Self::Green => "32",
            Self::Yellow => "33",
            Self::Red => "31",
            Self::Dim => "2",
        }
    }
}

/// Above this many organizations a grid no longer fits a terminal; one line per organization
/// replaces it.
const MAXIMUM_GRID_ORGANIZATIONS: usize = 12;
/// The width the grid tries to stay within before it abbreviates column headers.
const TARGET_WIDTH: usize = 80;
/// The widest cell text, `FAIL`; headers narrower than this cost nothing.
const CELL_WIDTH: usize = 4;
/// The longest prefix tried when abbreviating column headers before falling back to numbers.
const MAXIMUM_PREFIX: usize = 6;

const LEGEND: &str = "legend: ok = healthy link, ok* = fault expected and detected, \
                      FAIL = expectation not met, · = no link checked";

const COMPACT_LEGEND: &str = "legend: ok = healthy link, ok* = fault expected and detected, \
                              FAIL = expectation not met";

/// Renders the end-of-run summary; see the module documentation for its parts.
pub fn render_summary(report: &Report, style: Style) -> String {
    let mut output = String::new();
    let organizations = organizations(report);
    let _ = writeln!(
        output,
        "orgmesh run {}: scenario {} on {}{}, {}, {} in {}",
        report.run_id,
        report.scenario,
        report.provider,
        report
            .isolation
            .as_deref()
            .map(|isolation| format!(" ({isolation})"))
            .unwrap_or_default(),
        plural(organizations.len(), "organization"),
        plural(report.checks.len(), "check"),
        format_duration(report.duration()),
    );

    let grid_kinds = [
        (
            CheckKind::Reach,
            "reach (the row's outgoing table reaches the column's /info/)",
        ),
        (
            CheckKind::Auth,
            "auth (the column accepts the row's secret on /model/)",
        ),
    ];
    let has_links = report
        .checks
        .iter()
        .any(|check| check.check != CheckKind::Complete);
    if has_links {
        if organizations.len() > MAXIMUM_GRID_ORGANIZATIONS {
            output.push('\n');
            render_compact(&mut output, report, style);
            let _ = writeln!(output, "\n{COMPACT_LEGEND}");
        } else {
            let (rows, columns) = rows_and_columns(report);
            let labels = ColumnLabels::new(&rows, &columns);
            if let Some(note) = labels.note() {
                let _ = writeln!(output, "\n{note}");
            }
            for (kind, title) in grid_kinds {
                if report.checks.iter().any(|check| check.check == kind) {
                    let _ = writeln!(output, "\n{title}:");
                    render_grid(&mut output, report, kind, &rows, &columns, &labels, style);
                }
            }
            let _ = writeln!(output, "\n{LEGEND}");
        }
    }
    render_steps(&mut output, report);

    let incomplete: Vec<&CheckResult> = report
        .failed_checks()
        .filter(|check| check.check == CheckKind::Complete)
        .collect();
    if !incomplete.is_empty() {
        let _ = writeln!(output, "\nincomplete outgoing tables:");
        for check in incomplete {
            render_incomplete(&mut output, check);
        }
    }

    output.push('\n');
    output.push_str(&render_failures(report, style));
    output
}

/// The list of failed checks (when there are any) followed by the verdict line. The verdict
/// is also what [`Report::assert_passed`] panics with.
pub fn render_failures(report: &Report, style: Style) -> String {
    let mut output = String::new();
    let failed: Vec<&CheckResult> = report.failed_checks().collect();
    if !failed.is_empty() {
        let heading = if failed.len() == 1 {
            "1 failed check:".to_owned()
        } else {
            format!("{} failed checks:", failed.len())
        };
        let _ = writeln!(output, "{heading}");
        for check in &failed {
            let _ = write!(
                output,
                "  {}: expected {}, observed {} ({}, {})",
                check.name(),
                or_nothing(&check.expected),
                or_nothing(&check.observed),
                plural(
                    usize::try_from(check.attempts).unwrap_or(usize::MAX),
                    "attempt"
                ),
                format_duration(check.duration()),
            );
            if let Some(detail) = &check.detail {
                // Continuation lines are indented so a multi-line error stays under its check.
                let _ = write!(output, ": {}", detail.trim_end().replace('\n', "\n    "));
            }
            output.push('\n');
            if let Some(diagnostics) = &check.diagnostics {
                let _ = writeln!(output, "    diagnostics: {diagnostics}");
            }
        }
        output.push('\n');
    }
    let total = report.checks.len();
    let verdict = if !failed.is_empty() {
        style.paint(
            Paint::Red,
            &format!(
                "FAILED: {} of {total} checks did not meet their expectation",
                failed.len()
            ),
        )
    } else if report.passed {
        style.paint(
            Paint::Green,
            &format!("passed: {total} of {total} checks met their expectation"),
        )
    } else {
        // Every recorded check passed, yet the run did not: it stopped before verifying
        // everything, and the reason is in the run's error output, not in a check.
        style.paint(
            Paint::Red,
            &format!(
                "FAILED: the run did not pass although {total} of {total} recorded checks met \
                 their expectation"
            ),
        )
    };
    let _ = writeln!(output, "{verdict}");
    output
}

/// Formats a duration with about two significant digits: `0.12s`, `1.3s`, `42s`, `2m03s`,
/// `1h05m`. Rounding happens before choosing the unit so `9.96s` becomes `10s`, not `10.0s`.
pub fn format_duration(duration: Duration) -> String {
    let milliseconds = duration.as_millis();
    let centiseconds = (milliseconds + 5) / 10;
    if centiseconds < 100 {
        return format!("0.{centiseconds:02}s");
    }
    let deciseconds = (milliseconds + 50) / 100;
    if deciseconds < 100 {
        return format!("{}.{}s", deciseconds / 10, deciseconds % 10);
    }
    let seconds = (milliseconds + 500) / 1000;
    if seconds < 60 {
        return format!("{seconds}s");
    }
    if seconds < 3600 {
        return format!("{}m{:02}s", seconds / 60, seconds % 60);
    }
    let minutes = (seconds + 30) / 60;
    format!("{}h{:02}m", minutes / 60, minutes % 60)
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// An empty expected peer list would otherwise print as `expected ,`.
fn or_nothing(value: &str) -> &str {
    if value.is_empty() { "(none)" } else { value }
}

/// Every organization named by a check, in first-appearance order.
fn organizations(report: &Report) -> IndexSet<&str> {
    let mut organizations = IndexSet::new();
    for check in &report.checks {
        organizations.insert(check.from.as_str());
        if check.check != CheckKind::Complete {
            organizations.insert(check.to.as_str());
        }
    }
    organizations
}

/// The grid's rows (`from`) and columns (`to`), both in the one organization order of
/// [`organizations`], so that the diagonal is the self cell even without self links; shared by
/// both grids so they can be read side by side.
fn rows_and_columns(report: &Report) -> (Vec<&str>, Vec<&str>) {
    let mut sources = IndexSet::new();
    let mut targets = IndexSet::new();
    for check in &report.checks {
        if check.check != CheckKind::Complete {
            sources.insert(check.from.as_str());
            targets.insert(check.to.as_str());
        }
    }
    let order = organizations(report);
    let rows = order
        .iter()
        .copied()
        .filter(|o| sources.contains(o))
        .collect();
    let columns = order
        .iter()
        .copied()
        .filter(|o| targets.contains(o))
        .collect();
    (rows, columns)
}

/// How the grid names its columns: full names when they fit; else the shortest prefix that
/// tells them apart, of the names or of what follows their common prefix (`organization-01`
/// becomes `01`); else numbers that the row labels repeat.
#[derive(Debug)]
enum ColumnLabels {
    Names(Vec<String>),
    /// Names with a common prefix removed; the grid says which, so no information is lost.
    WithoutPrefix {
        prefix: String,
        labels: Vec<String>,
    },
    Numbers,
}

impl ColumnLabels {
    fn new(rows: &[&str], columns: &[&str]) -> Self {
        let row_width = rows.iter().map(|row| width(row)).max().unwrap_or(0);
        let grid_width = 2
            + row_width
            + columns
                .iter()
                .map(|column| 2 + width(column).max(CELL_WIDTH))
                .sum::<usize>();
        let full: Vec<String> = columns.iter().map(|&column| column.to_owned()).collect();
        if grid_width <= TARGET_WIDTH {
            return Self::Names(full);
        }
        if let Some(prefixes) = unique_prefixes(columns) {
            return Self::Names(prefixes);
        }
        let prefix = common_prefix(columns);
        let remainders: Vec<&str> = columns
            .iter()
            .map(|column| &column[prefix.len()..])
            .collect();
        if columns.len() > 1 && remainders.iter().all(|remainder| !remainder.is_empty()) {
            let labels = if remainders
                .iter()
                .all(|remainder| width(remainder) <= MAXIMUM_PREFIX)
            {
                Some(
                    remainders
                        .iter()
                        .map(|&remainder| remainder.to_owned())
                        .collect(),
                )
            } else {
                unique_prefixes(&remainders)
            };
            if let Some(labels) = labels {
                return Self::WithoutPrefix {
                    prefix: prefix.to_owned(),
                    labels,
                };
            }
        }
        Self::Numbers
    }

    /// A line explaining the labels, when they are not the organizations' names.
    fn note(&self) -> Option<String> {
        match self {
            Self::Names(_) => None,
            Self::WithoutPrefix { prefix, .. } => Some(format!(
                "columns: names without their common prefix {prefix:?}"
            )),
            Self::Numbers => Some("columns: numbered as the rows".to_owned()),
        }
    }

    fn labels(&self, columns: &[&str]) -> Vec<String> {
        match self {
            Self::Names(labels) | Self::WithoutPrefix { labels, .. } => labels.clone(),
            Self::Numbers => (1..=columns.len()).map(|index| index.to_string()).collect(),
        }
    }

    /// The row label: the organization, preceded by its column number when columns are
    /// numbered, so the grid stays readable without a separate key.
    fn row_label(&self, row: &str, columns: &[&str]) -> String {
        match self {
            Self::Names(_) | Self::WithoutPrefix { .. } => row.to_owned(),
            Self::Numbers => match columns.iter().position(|column| *column == row) {
                Some(index) => format!("{:>2} {row}", index + 1),
                None => format!("   {row}"),
            },
        }
    }
}

/// The shortest prefixes, at least 3 and at most [`MAXIMUM_PREFIX`] characters, that tell the
/// names apart; `None` when none that short do.
fn unique_prefixes(names: &[&str]) -> Option<Vec<String>> {
    (3..=MAXIMUM_PREFIX).find_map(|length| {
        let prefixes: Vec<String> = names
            .iter()
            .map(|name| name.chars().take(length).collect())
            .collect();
        let distinct: IndexSet<&String> = prefixes.iter().collect();
        (distinct.len() == prefixes.len()).then_some(prefixes)
    })
}

/// The prefix all names share, cut back to just after its last `-`, `_` or `.` when it has
/// one, so `organization-01` and `organization-02` share `organization-`, not `organization-0`.
fn common_prefix<'name>(names: &[&'name str]) -> &'name str {
    let Some((first, rest)) = names.split_first() else {
        return "";
    };
    let mut length = first.len();
    for name in rest {
        length = first
            .char_indices()
            .zip(name.chars())
            .take_while(|((_, left), right)| left == right)
            .last()
            .map_or(0, |((index, character), _)| index + character.len_utf8())
            .min(length);
    }
    let prefix = &first[..length];
    match prefix.rfind(['-', '_', '.']) {
        Some(index) => &prefix[..=index],
        None => prefix,
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// The text of one grid cell and the colour that repeats its meaning.
fn cell(check: Option<&CheckResult>) -> (&'static str, Option<Paint>) {
    match check {
        None => ("·", Some(Paint::Dim)),
        Some(check) if !check.passed => ("FAIL", Some(Paint::Red)),
        Some(check) if check.is_fault_expected() => ("ok*", Some(Paint::Yellow)),
        Some(_) => ("ok", Some(Paint::Green)),
    }
}

/// A grid cell over every verify step: a failure in any step shows, then a detected fault,
/// so a multi-step run's grid cannot hide a later step's failure behind an earlier pass.
fn step_cell(
    report: &Report,
    kind: CheckKind,
    row: &str,
    column: &str,
) -> (&'static str, Option<Paint>) {
    let matching = report
        .checks
        .iter()
        .filter(|check| check.check == kind && check.from == row && check.to == column);
    let mut shown = cell(None);
    for check in matching {
        let candidate = cell(Some(check));
        let rank = |text: &str| match text {
            "FAIL" => 3,
            "ok*" => 2,
            "ok" => 1,
            _ => 0,
        };
        if rank(candidate.0) > rank(shown.0) {
            shown = candidate;
        }
    }
    shown
}

/// One line per verify step when a run has several: how many of its checks met their
/// expectation.
fn render_steps(output: &mut String, report: &Report) {
    let mut steps: Vec<&str> = Vec::new();
    for check in &report.checks {
        if !steps.contains(&check.step.as_str()) {
            steps.push(check.step.as_str());
        }
    }
    if steps.len() < 2 {
        return;
    }
    let _ = writeln!(
        output,
        "\nper verify step (the grids combine them; a failure in any step shows):"
    );
    for step in steps {
        let checks: Vec<&CheckResult> = report.checks.iter().filter(|c| c.step == step).collect();
        let met = checks.iter().filter(|c| c.passed).count();
        let _ = writeln!(
            output,
            "  {step}: {met} of {} checks met their expectation",
            checks.len()
        );
    }
}

fn render_grid(
    output: &mut String,
    report: &Report,
    kind: CheckKind,
    rows: &[&str],
    columns: &[&str],
    labels: &ColumnLabels,
    style: Style,
) {
    let headers = labels.labels(columns);
    let widths: Vec<usize> = headers
        .iter()
        .map(|header| width(header).max(CELL_WIDTH))
        .collect();
    let row_labels: Vec<String> = rows
        .iter()
        .map(|row| labels.row_label(row, columns))
        .collect();
    let row_width = row_labels
        .iter()
        .map(|label| width(label))
        .max()
        .unwrap_or(0);

    let mut line = format!("  {}", " ".repeat(row_width));
    for (header, column_width) in headers.iter().zip(&widths) {
        line.push_str("  ");
        line.push_str(header);
        line.push_str(&" ".repeat(column_width - width(header)));
    }
    let _ = writeln!(output, "{}", line.trim_end());

    for (row, row_label) in rows.iter().zip(&row_labels) {
        let mut line = format!("  {row_label}{}", " ".repeat(row_width - width(row_label)));
        let last = columns.len().saturating_sub(1);
        for (index, (column, column_width)) in columns.iter().zip(&widths).enumerate() {
            let (text, paint) = step_cell(report, kind, row, column);
            line.push_str("  ");
            line.push_str(&match paint {
                Some(paint) => style.paint(paint, text),
                None => text.to_owned(),
            });
            // No padding after the last cell: trailing spaces only make diffs noisy.
            if index < last {
                line.push_str(&" ".repeat(column_width - width(text)));
            }
        }
        let _ = writeln!(output, "{line}");
    }
}

/// Counts per outgoing organization and kind, for networks too large for a grid.
fn render_compact(output: &mut String, report: &Report, style: Style) {
    let _ = writeln!(
        output,
        "reach and auth per organization (its outgoing links; failed ones are listed below):"
    );
    let (rows, columns) = rows_and_columns(report);
    let row_width = rows.iter().map(|row| width(row)).max().unwrap_or(0);
    // A row counts at most one check per column, so that bounds the digits needed.
    let count_width = columns.len().to_string().len();
    for row in rows {
        let mut line = format!("  {row}{}", " ".repeat(row_width - width(row)));
        for kind in [CheckKind::Reach, CheckKind::Auth] {
            let checks = report
                .checks
                .iter()
                .filter(|check| check.check == kind && check.from == row);
            let (mut healthy, mut detected, mut failed) = (0_usize, 0_usize, 0_usize);
            for check in checks {
                match cell(Some(check)).0 {
                    "FAIL" => failed += 1,
                    "ok*" => detected += 1,
                    _ => healthy += 1,
                }
            }
            let counts = [
                (healthy, "ok", Paint::Green),
                (detected, "ok*", Paint::Yellow),
                (failed, "FAIL", Paint::Red),
            ];
            let _ = write!(line, "   {kind}");
            for (count, label, paint) in counts {
                let text = format!("{count:>count_width$} {label:<4}");
                let text = if count > 0 {
                    style.paint(paint, &text)
                } else {
                    text
                };
                let _ = write!(line, " {text}");
            }
        }
        let _ = writeln!(output, "{}", line.trim_end());
    }
}

/// One incomplete outgoing table: what was expected, what was seen, and the difference, since
/// the difference is what an operator has to fix.
fn render_incomplete(output: &mut String, check: &CheckResult) {
    let peers = |list: &str| -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|peer| !peer.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let expected = peers(&check.expected);
    let observed = peers(&check.observed);
    let missing: Vec<&str> = expected
        .iter()
        .filter(|peer| !observed.contains(peer))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = observed
        .iter()
        .filter(|peer| !expected.contains(peer))
        .map(String::as_str)
        .collect();
    let mut differences = Vec::new();
    if !missing.is_empty() {
        differences.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        differences.push(format!("extra {}", extra.join(", ")));
    }
    let _ = write!(
        output,
        "  {}: expected {}, observed {}",
        check.from,
        or_nothing(&check.expected),
        or_nothing(&check.observed),
    );
    if !differences.is_empty() {
        let _ = write!(output, " ({})", differences.join("; "));
    }
    output.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use rstest::rstest;

    #[test]
    fn a_later_steps_failure_shows_in_the_combined_grid() {
        let mut report = fixtures::two_organizations();
        let mut later = fixtures::healthy(CheckKind::Auth, "ingen", "biotechnica");
        later.step = "verify-2".into();
        later.passed = false;
        later.observed = "rejected".into();
        report.checks.push(later);
        report.passed = false;
        let summary = render_summary(&report, Style::plain());
        let auth_grid = summary.split("auth (").nth(1).unwrap_or_default();
        let ingen_row = auth_grid
            .lines()
            .find(|l| l.starts_with("  ingen "))
            .unwrap_or_default();
        assert!(ingen_row.contains("FAIL"), "{summary}");
        assert!(
            summary.contains("verify-2: 0 of 1 checks met their expectation"),
            "{summary}"
        );
    }

    #[test]
    fn two_organizations_passing() {
        insta::assert_snapshot!(render_summary(
            &fixtures::two_organizations(),
            Style::plain()
        ));
    }

    #[test]
    fn three_organizations_with_detected_faults_and_one_failure() {
        insta::assert_snapshot!(render_summary(
            &fixtures::three_organizations(),
            Style::plain()
        ));
    }

    #[test]
    fn incomplete_outgoing_table() {
        insta::assert_snapshot!(render_summary(
            &fixtures::incomplete_table(),
            Style::plain()
        ));
    }

    #[test]
    fn eight_numbered_organizations_drop_their_common_prefix() {
        insta::assert_snapshot!(render_summary(
            &fixtures::many_organizations(8),
            Style::plain()
        ));
    }

    #[test]
    fn twenty_organizations_use_the_compact_form() {
        let summary = render_summary(&fixtures::many_organizations(20), Style::plain());
        assert!(
            !summary.contains("reach (the row"),
            "no grid expected:\n{summary}"
        );
        insta::assert_snapshot!(summary);
    }

    #[test]
    fn colour_only_when_asked() {
        let report = fixtures::three_organizations();
        assert!(!render_summary(&report, Style::plain()).contains('\x1b'));
        let coloured = render_summary(&report, Style { color: true });
        assert!(coloured.contains("\x1b[31mFAIL\x1b[0m"));
        assert!(coloured.contains("\x1b[33mok*\x1b[0m"));
        assert!(coloured.contains("\x1b[32mok\x1b[0m"));
    }

    #[test]
    fn eight_named_organizations_abbreviate_to_prefixes() {
        let names = [
            "ingen",
            "biotechnica",
            "tyrell",
            "weyland-yutani",
            "cyberdyne",
            "umbrella",
            "aperture",
            "massive-dynamic",
        ];
        let mut checks = Vec::new();
        for from in names {
            for kind in [CheckKind::Reach, CheckKind::Auth] {
                // Umbrella links with nobody but itself, to show the empty cells.
                for to in names
                    .iter()
                    .filter(|&&to| (from != "umbrella" && to != "umbrella") || from == to)
                {
                    checks.push(fixtures::healthy(kind, from, to));
                }
            }
        }
        let mut report = fixtures::two_organizations();
        report.scenario = "eight-organizations".to_owned();
        report.checks = checks;
        insta::assert_snapshot!(render_summary(&report, Style::plain()));
    }

    #[test]
    fn numbers_columns_when_nothing_shorter_tells_them_apart() {
        let organizations = ["x-aaaaaaa1", "x-aaaaaaa2", "x-bbbbbbbb"];
        let labels = ColumnLabels::new(&["x".repeat(70).as_str()], &organizations);
        assert!(matches!(labels, ColumnLabels::Numbers));
        assert_eq!(
            labels.row_label("x-aaaaaaa2", &organizations),
            " 2 x-aaaaaaa2"
        );
    }

    #[rstest]
    #[case(&["organization-01", "organization-02"], "organization-")]
    #[case(&["abc1", "abc2"], "abc")]
    #[case(&["ingen", "biotechnica"], "")]
    #[case(&["même-a", "même-b"], "même-")]
    fn finds_common_prefixes(#[case] names: &[&str], #[case] expected: &str) {
        assert_eq!(common_prefix(names), expected);
    }

    #[rstest]
    #[case(true, None, true)]
    #[case(true, Some(""), true)]
    #[case(true, Some("1"), false)]
    #[case(false, None, false)]
    fn colour_needs_a_terminal_and_no_no_color(
        #[case] is_terminal: bool,
        #[case] no_color: Option<&str>,
        #[case] expected: bool,
    ) {
        let no_color = no_color.map(std::ffi::OsStr::new);
        assert_eq!(
            Style::from_environment(is_terminal, no_color).color,
            expected
        );
    }

    #[rstest]
    #[case(Duration::ZERO, "0.00s")]
    #[case(Duration::from_millis(123), "0.12s")]
    #[case(Duration::from_millis(996), "1.0s")]
    #[case(Duration::from_millis(1_250), "1.3s")]
    #[case(Duration::from_millis(9_960), "10s")]
    #[case(Duration::from_millis(42_400), "42s")]
    #[case(Duration::from_secs(123), "2m03s")]
    #[case(Duration::from_secs(3_599), "59m59s")]
    #[case(Duration::from_secs(3_900), "1h05m")]
    fn formats_durations_with_two_significant_digits(
        #[case] duration: Duration,
        #[case] expected: &str,
    ) {
        assert_eq!(format_duration(duration), expected);
    }
}
