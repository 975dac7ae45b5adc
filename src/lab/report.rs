//! A grade: one row per test, printed as a test161-style table (test,
//! points, passed, hint) with a total, or as CSV rows for a class.

use std::fmt::Write as _;

use super::catalog::Lab;

/// One test's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) test: String,
    pub(crate) points: u32,
    pub(crate) max: u32,
    /// Why it failed and what to look at (empty when it passed).
    pub(crate) hint: String,
}

impl Row {
    pub(crate) fn passed(&self) -> bool {
        self.points == self.max
    }
}

/// A graded copy.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub(crate) lab: String,
    /// What was graded (the copy's directory, or the reference tree).
    pub(crate) what: String,
    pub(crate) rows: Vec<Row>,
    /// Lines worth showing above the table (build failures, VM stops).
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// Zero on every test of `lab`, with `why` as the note.
    pub(crate) fn ungraded(lab: &Lab, why: &str) -> Report {
        Report {
            lab: lab.name.clone(),
            what: String::new(),
            rows: lab
                .tests
                .iter()
                .map(|t| Row {
                    test: t.name.clone(),
                    points: 0,
                    max: t.points,
                    hint: why.to_string(),
                })
                .collect(),
            notes: vec![why.to_string()],
        }
    }

    pub(crate) fn points(&self) -> u32 {
        self.rows.iter().map(|r| r.points).sum()
    }

    pub(crate) fn max_points(&self) -> u32 {
        self.rows.iter().map(|r| r.max).sum()
    }

    pub(crate) fn full_marks(&self) -> bool {
        self.points() == self.max_points()
    }

    /// The tests that failed, by name.
    pub(crate) fn failed(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| !r.passed())
            .map(|r| r.test.as_str())
            .collect()
    }

    /// The table `disco lab grade` prints.
    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "lab {}: {}", self.lab, self.what);
        for n in &self.notes {
            let _ = writeln!(s, "  {n}");
        }
        let w = self
            .rows
            .iter()
            .map(|r| r.test.len())
            .max()
            .unwrap_or(4)
            .max(5);
        let _ = writeln!(s, "{:<w$}  {:>7}  {:<6}  hint", "test", "points", "passed");
        for r in &self.rows {
            let pts = format!("{}/{}", r.points, r.max);
            let ok = if r.passed() { "yes" } else { "no" };
            let _ = writeln!(s, "{:<w$}  {pts:>7}  {ok:<6}  {}", r.test, r.hint);
        }
        let total = format!("{}/{}", self.points(), self.max_points());
        let _ = writeln!(s, "{:<w$}  {total:>7}", "total");
        // Trailing spaces of passed rows' empty hints.
        s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
    }
}

/// A class's grades: a header (submission, each test, total) and one row
/// per submission. Fields with a comma or quote are quoted.
pub(crate) fn csv(lab: &Lab, rows: &[(String, Report)]) -> String {
    let field = |f: &str| {
        if f.contains([',', '"', '\n']) {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f.to_string()
        }
    };
    let mut s = String::from("submission");
    for t in &lab.tests {
        s.push(',');
        s.push_str(&field(&t.name));
    }
    s.push_str(",total\n");
    for (who, r) in rows {
        s.push_str(&field(who));
        for row in &r.rows {
            let _ = write!(s, ",{}", row.points);
        }
        let _ = writeln!(s, ",{}", r.points());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            lab: "x".into(),
            what: "/tmp/copy".into(),
            rows: vec![
                Row {
                    test: "boot".into(),
                    points: 5,
                    max: 5,
                    hint: String::new(),
                },
                Row {
                    test: "getppid".into(),
                    points: 0,
                    max: 20,
                    hint: "return the parent's pid".into(),
                },
            ],
            notes: vec![],
        }
    }

    #[test]
    fn the_table_has_a_row_per_test_and_a_total() {
        let r = report();
        assert_eq!(
            r.table(),
            "lab x: /tmp/copy\n\
             test      points  passed  hint\n\
             boot         5/5  yes\n\
             getppid     0/20  no      return the parent's pid\n\
             total       5/25\n"
        );
        assert!(!r.full_marks());
        assert_eq!(r.failed(), ["getppid"]);
    }
}
