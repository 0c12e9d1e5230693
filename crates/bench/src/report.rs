//! What a suite produces: tables with named columns, notes, targets and
//! failures, printed as Markdown, CSV or JSON and written, with the SVG
//! charts, into the results directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::Options;
use crate::charts::Chart;

/// One table cell.
#[derive(Clone, Debug)]
pub enum Cell {
    Text(String),
    Int(u64),
    /// A value and the decimals to print it with.
    Num(f64, usize),
    /// Not measured (e.g. QEMU not installed).
    Missing,
}

impl Cell {
    pub fn num(value: f64, decimals: usize) -> Self {
        if value.is_finite() {
            Cell::Num(value, decimals)
        } else {
            Cell::Missing
        }
    }

    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(v, d) => format!("{v:.*}", *d),
            Cell::Missing => "—".into(),
        }
    }

    pub fn csv(&self) -> String {
        match self {
            Cell::Text(s) if s.contains([',', '"', '\n']) => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            Cell::Missing => String::new(),
            other => other.display(),
        }
    }

    pub fn json(&self) -> String {
        match self {
            Cell::Text(s) => json_string(s),
            Cell::Missing => "null".into(),
            other => other.display(),
        }
    }

    pub fn is_text(&self) -> bool {
        matches!(self, Cell::Text(_))
    }
}

/// A column: a machine-readable key (CSV header, JSON field) and a header.
pub struct Column {
    pub key: String,
    pub header: String,
}

/// A table with named columns.
pub struct Table {
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(title: impl Into<String>, columns: &[(&str, &str)]) -> Self {
        Self::with_columns(
            title,
            columns
                .iter()
                .map(|&(k, h)| (k.to_string(), h.to_string()))
                .collect(),
        )
    }

    pub fn with_columns(title: impl Into<String>, columns: Vec<(String, String)>) -> Self {
        Self {
            title: title.into(),
            columns: columns
                .into_iter()
                .map(|(key, header)| Column { key, header })
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        assert_eq!(row.len(), self.columns.len(), "row width");
        self.rows.push(row);
    }

    /// GitHub-flavoured Markdown, aligned in a terminal too: text left,
    /// numbers right.
    pub fn markdown(&self, out: &mut String) {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::display).collect())
            .collect();
        let width = |i: usize| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.columns[i].header.chars().count(), 3])
                .max()
                .unwrap_or(3)
        };
        let widths: Vec<usize> = (0..self.columns.len()).map(width).collect();
        let left = |i: usize| self.rows.first().is_none_or(|r| r[i].is_text());
        let pad = |s: &str, w: usize, left: bool| {
            let fill = " ".repeat(w.saturating_sub(s.chars().count()));
            if left {
                format!("{s}{fill}")
            } else {
                format!("{fill}{s}")
            }
        };
        let _ = writeln!(out, "### {}\n", self.title);
        let header: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| pad(&c.header, widths[i], left(i)))
            .collect();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if left(i) {
                    format!(":{}", "-".repeat(w - 1))
                } else {
                    format!("{}:", "-".repeat(w - 1))
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
        for row in &cells {
            let padded: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, s)| pad(s, widths[i], left(i)))
                .collect();
            let _ = writeln!(out, "| {} |", padded.join(" | "));
        }
        out.push('\n');
    }
}

/// A stated target and whether the measurement meets it.
pub struct Target {
    pub what: String,
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

/// What a suite produces.
pub struct Report {
    pub suite: &'static str,
    pub repeats: u32,
    pub setup: Vec<(String, String)>,
    pub tables: Vec<Table>,
    pub notes: Vec<String>,
    pub targets: Vec<Target>,
    /// Measurements that failed (a run that exited badly, a replay that
    /// did not verify): the report is still printed, samsara-bench exits 1.
    pub failures: Vec<String>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## samsara-bench --suite {}\n", self.suite);
        for (k, v) in &self.setup {
            let _ = writeln!(out, "- {k}: {v}");
        }
        out.push('\n');
        for table in &self.tables {
            table.markdown(&mut out);
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}\n");
        }
        if !self.targets.is_empty() {
            let mut t = Table::new(
                "Targets",
                &[
                    ("target", "target"),
                    ("goal", "goal"),
                    ("measured", "measured"),
                    ("met", "met"),
                ],
            );
            for target in &self.targets {
                t.push(vec![
                    Cell::Text(target.what.clone()),
                    Cell::Text(target.goal.clone()),
                    Cell::Text(target.measured.clone()),
                    Cell::Text(if target.met { "yes" } else { "NO" }.into()),
                ]);
            }
            t.markdown(&mut out);
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "### FAILURES\n");
            for f in &self.failures {
                let _ = writeln!(out, "- {f}");
            }
            out.push('\n');
        }
        out
    }

    /// One CSV block per table (a `# title` line, a header, the rows).
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for table in &self.tables {
            if self.tables.len() > 1 {
                let _ = writeln!(out, "# {}", table.title);
            }
            let keys: Vec<&str> = table.columns.iter().map(|c| c.key.as_str()).collect();
            let _ = writeln!(out, "{}", keys.join(","));
            for row in &table.rows {
                let cells: Vec<String> = row.iter().map(Cell::csv).collect();
                let _ = writeln!(out, "{}", cells.join(","));
            }
        }
        out
    }

    pub fn json(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"suite\":{},\"repeats\":{},\"setup\":{{",
            json_string(self.suite),
            self.repeats
        );
        let setup: Vec<String> = self
            .setup
            .iter()
            .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
            .collect();
        out += &setup.join(",");
        out += "},\"tables\":[";
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| {
                let rows: Vec<String> = t
                    .rows
                    .iter()
                    .map(|r| {
                        let fields: Vec<String> = t
                            .columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| format!("{}:{}", json_string(&c.key), v.json()))
                            .collect();
                        format!("{{{}}}", fields.join(","))
                    })
                    .collect();
                format!(
                    "{{\"title\":{},\"rows\":[{}]}}",
                    json_string(&t.title),
                    rows.join(",")
                )
            })
            .collect();
        out += &tables.join(",");
        out += "],\"notes\":[";
        let notes: Vec<String> = self.notes.iter().map(|n| json_string(n)).collect();
        out += &notes.join(",");
        out += "],\"targets\":[";
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|t| {
                format!(
                    "{{\"target\":{},\"goal\":{},\"measured\":{},\"met\":{}}}",
                    json_string(&t.what),
                    json_string(&t.goal),
                    json_string(&t.measured),
                    t.met
                )
            })
            .collect();
        out += &targets.join(",");
        out += "],\"failures\":[";
        let failures: Vec<String> = self.failures.iter().map(|f| json_string(f)).collect();
        out += &failures.join(",");
        out += "]}\n";
        out
    }
}

pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Write the report as Markdown, CSV and JSON into the results directory.
pub fn write_results(dir: &Path, report: &Report) -> Result<()> {
    for (ext, text) in [
        ("md", report.markdown()),
        ("csv", report.csv()),
        ("json", report.json()),
    ] {
        let path = dir.join(format!("{}.{ext}", report.suite));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// the report (the measurements are still printed).
pub fn report_with_files(
    report: &mut Report,
    options: &Options,
    charts: &[(&str, Chart)],
) -> Result<()> {
    let dir = &options.results;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, chart) in charts {
        let path = dir.join(format!("{name}.svg"));
        chart
            .draw(&path)
            .with_context(|| format!("cannot draw {}", path.display()))?;
        written.push(path);
    }
    let list = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.setup.push((
        "files".to_string(),
        format!(
            "{}{}{}.md, .csv, .json",
            list(&written),
            if written.is_empty() { "" } else { ", " },
            dir.join(report.suite).display()
        ),
    ));
    write_results(dir, report)?;
    Ok(())
}

pub fn finish(result: Result<()>) {
    if let Err(e) = result {
        eprintln!("bench: warning: {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_in_every_format() {
        let mut t = Table::new("T", &[("name", "name"), ("n", "count"), ("x", "x")]);
        t.push(vec![
            Cell::Text("a,b".into()),
            Cell::Int(7),
            Cell::num(1.3, 1),
        ]);
        t.push(vec![Cell::Text("c".into()), Cell::Int(10), Cell::Missing]);
        let report = Report {
            suite: "test",
            repeats: 1,
            setup: vec![("k".into(), "v \"q\"".into())],
            tables: vec![t],
            notes: vec!["note".into()],
            targets: vec![],
            failures: vec![],
        };
        let md = report.markdown();
        assert!(md.contains("| name | count |   x |"), "{md}");
        assert!(md.contains("| a,b  |     7 | 1.3 |"), "{md}");
        assert!(md.contains("| c    |    10 |   — |"), "{md}");
        assert_eq!(report.csv(), "name,n,x\n\"a,b\",7,1.3\nc,10,\n");
        let json = report.json();
        assert!(json.contains("\"k\":\"v \\\"q\\\"\""), "{json}");
        assert!(
            json.contains("{\"name\":\"c\",\"n\":10,\"x\":null}"),
            "{json}"
        );
    }
}
