//! The table printed by the backend's `./manage.py get_outgoing_organization`.
//!
//! The command (substra-backend `organization/management/commands/get_outgoing_organization.py`)
//! prints a header and one row per outgoing organization, in database order. Every cell is a
//! space, the value centred in the column width with Python's `^` format spec (an odd leftover
//! space goes to the right), and a space; cells are joined by `|` and the line is wrapped in
//! `|`. A column is as wide as its longest value, header included. The status cell is a status
//! code or the text of a `requests` exception, which may itself contain `|`, so a row is split
//! into its first two cells from the left and the rest is the status.
//!
//! [`format_outgoing_table`] renders exactly that layout (the simulator prints it);
//! [`parse_outgoing_table`] reads it back, whatever the provider.

/// The header row of the table.
pub const HEADER: [&str; 3] = ["org_id", "org_address", "http_status"];

/// One row of the table: an outgoing organization as the backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRow {
    /// The peer's MSP id.
    pub org_id: String,
    /// The address the peer registered with the orchestrator.
    pub address: String,
    /// A status code such as `200`, or the text of the exception the request raised.
    pub status: String,
}

impl OutgoingRow {
    /// The status as an HTTP code, if the request got a response.
    pub fn status_code(&self) -> Option<u16> {
        if self.status.len() == 3 {
            self.status.parse().ok()
        } else {
            None
        }
    }
}

/// Why a table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("the output has no table header (expected `| org_id | org_address | http_status |`)")]
    MissingHeader,
    #[error("line {line} of the table is not a `| org_id | org_address | http_status |` row")]
    MalformedRow { line: usize },
}

/// Centres `value` in `width` columns as Python's `f"{value: ^{width}}"` does.
fn centre(value: &str, width: usize) -> String {
    let length = value.chars().count();
    let padding = width.saturating_sub(length);
    let left = padding / 2;
    let right = padding - left;
    format!("{}{}{}", " ".repeat(left), value, " ".repeat(right))
}

/// Renders the table byte for byte as the real command prints it without colour: one line per
/// row, each terminated by a newline.
pub fn format_outgoing_table(rows: &[OutgoingRow]) -> String {
    let lines: Vec<[&str; 3]> = std::iter::once(HEADER)
        .chain(rows.iter().map(|row| {
            [
                row.org_id.as_str(),
                row.address.as_str(),
                row.status.as_str(),
            ]
        }))
        .collect();
    let mut widths = [0usize; 3];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut output = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!(" {} ", centre(cell, width)))
            .collect();
        output.push('|');
        output.push_str(&cells.join("|"));
        output.push_str("|\n");
    }
    output
}

/// Removes ANSI colour sequences (`ESC [ ... m`), which Django adds on a TTY.
fn strip_ansi(line: &str) -> String {
    let mut output = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            output.push(c);
        }
    }
    output
}

/// Reads the rows of a table printed by `get_outgoing_organization`.
///
/// Lines before the header (warnings a real pod may print) are skipped; colour codes are
/// removed; blank lines are ignored.
pub fn parse_outgoing_table(output: &str) -> Result<Vec<OutgoingRow>, TableError> {
    let mut lines = output
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, strip_ansi(l)));
    let is_header = |line: &str| {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        cells == HEADER
    };
    lines
        .by_ref()
        .find(|(_, line)| is_header(line))
        .ok_or(TableError::MissingHeader)?;
    let mut rows = Vec::new();
    for (number, line) in lines {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            continue;
        }
        let inner = line
            .strip_prefix('|')
            .and_then(|rest| rest.strip_suffix('|'))
            .ok_or(TableError::MalformedRow { line: number })?;
        let mut cells = inner.splitn(3, '|');
        let (Some(org_id), Some(address), Some(status)) =
            (cells.next(), cells.next(), cells.next())
        else {
            return Err(TableError::MalformedRow { line: number });
        };
        let org_id = org_id.trim();
        if org_id.is_empty() {
            return Err(TableError::MalformedRow { line: number });
        }
        rows.push(OutgoingRow {
            org_id: org_id.to_owned(),
            address: address.trim().to_owned(),
            status: status.trim().to_owned(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(org_id: &str, address: &str, status: &str) -> OutgoingRow {
        OutgoingRow {
            org_id: org_id.into(),
            address: address.into(),
            status: status.into(),
        }
    }

    /// The layout of DESIGN §4, written out by hand from the Python formatting rules.
    const DESIGN_TABLE: &str = "\
|     org_id     |       org_address       |                               http_status                               |
| BiotechnicaMSP | http://172.18.0.3:30800 |                                   200                                   |
|    IngenMSP    | http://172.18.0.2:30800 | HTTPConnectionPool(host='172.18.0.2', port=30800): Max retries exceeded |
";

    #[test]
    fn formats_byte_for_byte_like_the_backend() {
        let rows = [
            row("BiotechnicaMSP", "http://172.18.0.3:30800", "200"),
            row(
                "IngenMSP",
                "http://172.18.0.2:30800",
                "HTTPConnectionPool(host='172.18.0.2', port=30800): Max retries exceeded",
            ),
        ];
        assert_eq!(format_outgoing_table(&rows), DESIGN_TABLE);
        assert_eq!(parse_outgoing_table(DESIGN_TABLE).unwrap(), rows);
    }

    #[test]
    fn odd_padding_goes_to_the_right() {
        // Python: f"{'ab': ^5}" == " ab  "
        assert_eq!(centre("ab", 5), " ab  ");
        assert_eq!(centre("abc", 5), " abc ");
    }

    #[test]
    fn the_guide_example_parses() {
        let guide = "\
|    org_id   |           org_address          | http_status |
| biotechnica | http://api.cluster-2.DOMAIN:80 |     200     |
";
        let rows = parse_outgoing_table(guide).unwrap();
        assert_eq!(
            rows,
            [row("biotechnica", "http://api.cluster-2.DOMAIN:80", "200")]
        );
        assert_eq!(rows[0].status_code(), Some(200));
    }

    #[test]
    fn a_status_containing_pipes_is_kept_whole() {
        let status = "HTTPConnectionPool(host='a', port=1): Read timed out | weird";
        let table = format_outgoing_table(&[row("AMSP", "http://a:1", status)]);
        let rows = parse_outgoing_table(&table).unwrap();
        assert_eq!(rows[0].status, status);
        assert_eq!(rows[0].status_code(), None);
    }

    #[test]
    fn colour_codes_and_leading_noise_are_ignored() {
        let coloured: String = DESIGN_TABLE
            .lines()
            .map(|l| format!("\u{1b}[32;1m{l}\u{1b}[0m\n"))
            .collect();
        let noisy = format!("some warning from django\n{coloured}");
        assert_eq!(
            parse_outgoing_table(&noisy).unwrap(),
            parse_outgoing_table(DESIGN_TABLE).unwrap()
        );
    }

    #[test]
    fn an_empty_table_has_no_rows() {
        let table = format_outgoing_table(&[]);
        assert_eq!(table, "| org_id | org_address | http_status |\n");
        assert!(parse_outgoing_table(&table).unwrap().is_empty());
    }

    #[test]
    fn a_traceback_is_not_a_table() {
        let crash = "Traceback (most recent call last):\n  ...\nKeyError: 'BiotechnicaMSP'\n";
        assert_eq!(parse_outgoing_table(crash), Err(TableError::MissingHeader));
    }

    #[test]
    fn a_broken_row_is_reported_with_its_line() {
        let table = format!("{}garbage\n", format_outgoing_table(&[]));
        assert_eq!(
            parse_outgoing_table(&table),
            Err(TableError::MalformedRow { line: 2 })
        );
    }
}
