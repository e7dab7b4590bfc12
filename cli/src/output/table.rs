//! kubectl-style tables from a server `Table`: uppercase headers, columns padded with three
//! spaces, NAMESPACE first across namespaces, priority > 0 columns only when wide.

use std::time::SystemTime;

use caravan_client::{Table, TableColumnDefinition, TableRow};
use serde_json::Value;

use super::age::age_of;

/// kubectl's tabwriter: a column is at least 6 wide, padding included.
const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

/// Which columns to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// Include columns of priority > 0 (`-o wide`).
    pub wide: bool,
    /// Prefix a NAMESPACE column (`-A`).
    pub namespace_column: bool,
}

/// The columns chosen from a Table's definitions and their widths so far. Kept across a watch
/// so rows printed later line up with the header (widths only ever grow).
#[derive(Debug, Clone)]
pub struct TableLayout {
    options: TableOptions,
    /// Indexes into the server's cells of the shown columns.
    columns: Vec<usize>,
    /// Whether each shown column holds dates, rendered as ages.
    dates: Vec<bool>,
    headers: Vec<String>,
    widths: Vec<usize>,
}

impl TableLayout {
    pub fn new(definitions: &[TableColumnDefinition], options: TableOptions) -> TableLayout {
        let mut headers = Vec::new();
        let mut columns = Vec::new();
        let mut dates = Vec::new();
        if options.namespace_column {
            headers.push("NAMESPACE".to_owned());
        }
        for (i, def) in definitions.iter().enumerate() {
            if def.priority > 0 && !options.wide {
                continue;
            }
            headers.push(def.name.to_uppercase());
            columns.push(i);
            dates.push(def.type_ == "date" || def.format == "date");
        }
        let widths = headers.iter().map(|h| h.chars().count()).collect();
        TableLayout {
            options,
            columns,
            dates,
            headers,
            widths,
        }
    }

    /// Whether the server sent any column definitions to lay out.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The shown cells of a row, as text.
    pub fn cells(&self, row: &TableRow, now: SystemTime) -> Vec<String> {
        let mut cells = Vec::with_capacity(self.headers.len());
        if self.options.namespace_column {
            cells.push(row.namespace().unwrap_or("").to_owned());
        }
        for (&i, &date) in self.columns.iter().zip(&self.dates) {
            let cell = row.cells.get(i).unwrap_or(&Value::Null);
            cells.push(cell_text(cell, date, now));
        }
        cells
    }

    /// Renders rows, with the header line first when `header` is set, growing the widths to
    /// fit them.
    pub fn render(&mut self, rows: &[TableRow], header: bool, now: SystemTime) -> String {
        let lines: Vec<Vec<String>> = rows.iter().map(|r| self.cells(r, now)).collect();
        for line in lines.iter().chain(header.then_some(&self.headers)) {
            for (w, cell) in self.widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        if header {
            out.push_str(&self.line(&self.headers));
        }
        for line in &lines {
            out.push_str(&self.line(line));
        }
        out
    }

    fn line(&self, cells: &[String]) -> String {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, (cell, width)) in cells.iter().zip(&self.widths).enumerate() {
            out.push_str(cell);
            if i < last {
                let column = (width + PADDING).max(MIN_WIDTH);
                out.extend(std::iter::repeat_n(' ', column - cell.chars().count()));
            }
        }
        out.push('\n');
        out
    }
}

/// Renders a whole table with its header.
pub fn render(table: &Table, options: TableOptions, now: SystemTime) -> String {
    TableLayout::new(&table.column_definitions, options).render(&table.rows, true, now)
}

/// A cell as kubectl prints it: `<none>` for null, dates as ages, scalars bare.
fn cell_text(cell: &Value, date: bool, now: SystemTime) -> String {
    match cell {
        Value::Null => "<none>".to_owned(),
        Value::String(s) if date => age_of(s, now).unwrap_or_else(|| s.clone()),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|v| cell_text(v, false, now))
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => cell.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column(name: &str, type_: &str, priority: i32) -> TableColumnDefinition {
        TableColumnDefinition {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority,
        }
    }

    fn row(ns: &str, cells: Value) -> TableRow {
        TableRow {
            cells: serde_json::from_value(cells).unwrap(),
            object: Some(json!({"metadata": {"namespace": ns}})),
        }
    }

    fn sample() -> Table {
        Table {
            column_definitions: vec![
                column("Name", "string", 0),
                column("Type", "string", 0),
                column("Status", "string", 0),
                column("Datacenters", "string", 1),
                column("Age", "date", 0),
            ],
            rows: vec![
                row(
                    "default",
                    json!(["web", "service", "running", "dc1", "2025-01-01T00:00:00Z"]),
                ),
                row(
                    "batch-jobs",
                    json!([
                        "nightly-report",
                        "batch",
                        null,
                        "dc1,dc2",
                        "2024-12-31T00:00:00Z"
                    ]),
                ),
            ],
            ..Table::default()
        }
    }

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2025-01-01T00:05:30Z").unwrap()
    }

    #[test]
    fn columns_are_padded_to_the_widest_cell_plus_three() {
        let out = render(&sample(), TableOptions::default(), now());
        assert_eq!(
            out,
            "NAME             TYPE      STATUS    AGE\n\
             web              service   running   5m30s\n\
             nightly-report   batch     <none>    24h\n"
        );
    }

    #[test]
    fn wide_adds_priority_columns() {
        let options = TableOptions {
            wide: true,
            ..TableOptions::default()
        };
        let out = render(&sample(), options, now());
        assert_eq!(
            out.lines().next().unwrap(),
            "NAME             TYPE      STATUS    DATACENTERS   AGE"
        );
        assert!(out.contains("nightly-report   batch     <none>    dc1,dc2       24h"));
    }

    #[test]
    fn all_namespaces_puts_namespace_first() {
        let options = TableOptions {
            namespace_column: true,
            ..TableOptions::default()
        };
        let out = render(&sample(), options, now());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "NAMESPACE    NAME             TYPE      STATUS    AGE"
        );
        assert_eq!(
            lines[1],
            "default      web              service   running   5m30s"
        );
        assert_eq!(
            lines[2],
            "batch-jobs   nightly-report   batch     <none>    24h"
        );
    }

    #[test]
    fn narrow_columns_keep_the_minimum_width() {
        let table = Table {
            column_definitions: vec![column("A", "string", 0), column("B", "integer", 0)],
            rows: vec![row("x", json!(["x", 1]))],
            ..Table::default()
        };
        assert_eq!(
            render(&table, TableOptions::default(), now()),
            "A     B\nx     1\n"
        );
    }

    #[test]
    fn later_rows_widen_columns_without_a_new_header() {
        let table = sample();
        let mut layout = TableLayout::new(&table.column_definitions, TableOptions::default());
        layout.render(&table.rows, true, now());
        let later = row(
            "default",
            json!([
                "a-much-longer-job-name",
                "service",
                "dead",
                "",
                "2025-01-01T00:05:00Z"
            ]),
        );
        let out = layout.render(&[later], false, now());
        assert_eq!(out, "a-much-longer-job-name   service   dead      30s\n");
    }
}
