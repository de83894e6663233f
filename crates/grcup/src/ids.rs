//! One car number, two cars: stable, readable car ids for the official files.
//!
//! Anonymised exports can give one number to two cars of one race (two cars `3`, one with
//! GROUP `Legends`, one without). Nothing joins them, so they are two cars. The rule
//! ([`assign_car_ids`]), applied to the timing and results files alike:
//! * rows of one `NUMBER` whose GROUP / CLASS differ are different cars; each id is the
//!   number followed by the values of the columns that differ (`3-Legends`); the car with
//!   no distinguishing value keeps the plain number (`3`);
//! * rows whose GROUP and CLASS are identical but whose lap numbers restart (lap 1 again
//!   for the same number) are split by lap sequence: `3`, `3#2`, ... (results: a second
//!   line for the same number and values is `3#2`). Every such split is reported in the
//!   notes, since the files cannot say which car is which.

use std::collections::BTreeMap;

/// What tells the rows of one car number apart.
#[derive(Debug, Clone)]
pub(crate) struct CarKey<'a> {
    pub number: &'a str,
    pub group: Option<&'a str>,
    pub class: Option<&'a str>,
    /// The lap of a timing row (`None` in results: each repeated line is another car).
    pub lap: Option<u32>,
    pub line: u64,
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join("_")
}

/// The car id of every row (same order) and the notes on every number split.
pub(crate) fn assign_car_ids(rows: &[CarKey<'_>], what: &str) -> (Vec<String>, Vec<String>) {
    let mut ids: Vec<String> = rows.iter().map(|r| r.number.to_string()).collect();
    let mut notes = Vec::new();
    let mut by_number: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_number.entry(r.number).or_default().push(i);
    }
    for (number, idx) in by_number {
        // Distinct (GROUP, CLASS) in first-seen order.
        let mut keys: Vec<(Option<&str>, Option<&str>)> = Vec::new();
        for &i in &idx {
            if let Some(r) = rows.get(i) {
                let k = (r.group, r.class);
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let group_differs = keys.iter().any(|k| k.0 != keys[0].0);
        let class_differs = keys.iter().any(|k| k.1 != keys[0].1);
        let mut bases: Vec<String> = Vec::new();
        for k in &keys {
            let mut parts = Vec::new();
            if group_differs {
                if let Some(g) = k.0 {
                    parts.push(clean(g));
                }
            }
            if class_differs {
                if let Some(c) = k.1 {
                    parts.push(clean(c));
                }
            }
            let mut base = if parts.is_empty() {
                number.to_string()
            } else {
                format!("{number}-{}", parts.join("-"))
            };
            while bases.contains(&base) {
                base.push('_');
            }
            bases.push(base);
        }
        if keys.len() > 1 {
            let cols = match (group_differs, class_differs) {
                (true, true) => "GROUP and CLASS",
                (true, false) => "GROUP",
                _ => "CLASS",
            };
            notes.push(format!(
                "{what}: number {number} is {} cars told apart by {cols}: {}",
                keys.len(),
                bases.join(", ")
            ));
        }
        for (k, base) in keys.iter().zip(&bases) {
            // Rows of this (number, GROUP, CLASS), split into lap sequences.
            let mut seqs: Vec<Vec<u32>> = Vec::new();
            let mut restart_line = None;
            let mut count = 0u32;
            for &i in &idx {
                let Some(r) = rows.get(i) else { continue };
                if (r.group, r.class) != *k {
                    continue;
                }
                let s = match r.lap {
                    Some(lap) => match seqs.iter().position(|s| !s.contains(&lap)) {
                        Some(s) => s,
                        None => {
                            restart_line.get_or_insert(r.line);
                            seqs.push(Vec::new());
                            seqs.len() - 1
                        }
                    },
                    None => {
                        count += 1;
                        if count > 1 {
                            restart_line.get_or_insert(r.line);
                        }
                        seqs.push(Vec::new());
                        seqs.len() - 1
                    }
                };
                if let (Some(seq), Some(lap)) = (seqs.get_mut(s), r.lap) {
                    seq.push(lap);
                }
                if let Some(id) = ids.get_mut(i) {
                    *id = if s == 0 {
                        base.clone()
                    } else {
                        format!("{base}#{}", s + 1)
                    };
                }
            }
            if seqs.len() > 1 {
                let names: Vec<String> = (0..seqs.len())
                    .map(|s| {
                        if s == 0 {
                            base.clone()
                        } else {
                            format!("{base}#{}", s + 1)
                        }
                    })
                    .collect();
                let how = if rows.iter().any(|r| r.lap.is_some()) {
                    "lap numbers restart"
                } else {
                    "the number appears again"
                };
                notes.push(format!(
                    "{what}: number {number} has {} cars with the same GROUP/CLASS ({how} at line {}): split by sequence into {}; which is which cannot be told from this file",
                    seqs.len(),
                    restart_line.unwrap_or(0),
                    names.join(", ")
                ));
            }
        }
    }
    (ids, notes)
}
