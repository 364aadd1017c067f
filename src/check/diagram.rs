//! A failing window drawn as text: one lane per client process, a bar from each operation's invocation to
//! its completion, the values, and the operation that cannot be placed marked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::history::Outcome;
use super::linear::{Failure, Report, Verdict};

/// One line of a diagram; `culprit` marks the lane holding the operation that cannot be placed, so a
/// terminal can highlight it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagramLine {
    /// The text.
    pub text: String,
    /// True on the culprit's lane.
    pub culprit: bool,
}

/// Draws `failure`'s window `width` columns wide for the bars (at least 10), plus lane labels and values.
/// Operations with an unknown outcome run to the right edge and end in `…`.
pub fn draw(failure: &Failure, width: usize) -> Vec<DiagramLine> {
    let width = width.max(10);
    let w = &failure.window;
    let mut out = vec![DiagramLine {
        text: format!(
            "key {}: state before the window {}; {} operation(s) cannot be linearized",
            failure.key,
            failure
                .state_before
                .map_or("nil".to_string(), |v| v.to_string()),
            w.len()
        ),
        culprit: false,
    }];
    if w.is_empty() {
        return out;
    }
    let t0 = w.iter().map(|o| o.invoke_time).min().unwrap_or(0);
    let t1 = w
        .iter()
        .map(|o| o.complete_time.unwrap_or(o.invoke_time))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let col = |t: u64| -> usize {
        (((t.saturating_sub(t0)) as f64 / (t1 - t0) as f64) * (width - 1) as f64).round() as usize
    };
    let mut lanes: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, o) in w.iter().enumerate() {
        lanes.entry(o.process).or_default().push(i);
    }
    for (process, ops) in lanes {
        let mut cells = vec![' '; width];
        let mut labels = Vec::new();
        let mut culprit = false;
        for i in ops {
            let o = &w[i];
            let a = col(o.invoke_time);
            let (b, open) = match (o.complete_time, o.outcome) {
                (Some(t), Outcome::Ok | Outcome::Fail) => (col(t).max(a), false),
                _ => (width - 1, true),
            };
            for c in cells.iter_mut().take(b + 1).skip(a) {
                *c = '─';
            }
            cells[a] = '├';
            cells[b] = if open { '…' } else { '┤' };
            let mut label = o.describe();
            if i == failure.culprit {
                label.push_str("  ✗ cannot be placed");
                culprit = true;
            }
            labels.push(label);
        }
        out.push(DiagramLine {
            text: format!(
                "p{process:<5} {}  {}",
                cells.into_iter().collect::<String>(),
                labels.join(", ")
            ),
            culprit,
        });
    }
    let span_ms = (t1 - t0) as f64 / 1e6;
    out.push(DiagramLine {
        text: format!(
            "{:7}{}{:>w$}",
            "",
            format_args!("0 ms"),
            format!("{span_ms:.1} ms"),
            w = width.saturating_sub(4)
        ),
        culprit: false,
    });
    out
}

/// The verdict as lines of text: a first line (`valid: …`, `invalid: …`, `unknown: …`) and, when invalid, the
/// failing window drawn as lanes and listed operation by operation.
pub fn describe(report: &Report, took: Duration) -> Vec<String> {
    let took = format_took(took);
    match &report.verdict {
        Verdict::Valid => vec![format!(
            "valid: {} operations on {} key(s) are linearizable (checked in {took})",
            report.operations, report.keys
        )],
        Verdict::Unknown(why) => vec![format!(
            "unknown: {why}; {} operations on {} key(s) not fully checked (gave up after {took})",
            report.operations, report.keys
        )],
        Verdict::Invalid(f) => {
            let mut out = vec![format!(
                "invalid: key {} cannot be linearized: no order of these {} operation(s) starting from {} \
                 explains what they returned (checked in {took})",
                f.key,
                f.window.len(),
                f.state_before
                    .map_or("nil (absent)".to_string(), |v| format!("value {v}"))
            )];
            out.extend(window_lines(f));
            out
        }
    }
}

/// The failing window as a lane diagram and a list with history indexes.
pub fn window_lines(f: &Failure) -> Vec<String> {
    let mut out: Vec<String> = draw(f, 48)
        .into_iter()
        .map(|l| format!("  {}", l.text))
        .collect();
    for (i, op) in f.window.iter().enumerate() {
        let done = match (op.complete_index, op.complete_time) {
            (Some(ci), Some(ct)) => format!("completed at index {ci} ({})", ms(ct)),
            _ => "never completed".to_string(),
        };
        out.push(format!(
            "  {} process {} {}: invoked at index {} ({}), {done}",
            if i == f.culprit { "✗" } else { "·" },
            op.process,
            op.describe(),
            op.invoke_index,
            ms(op.invoke_time),
        ));
    }
    out
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

fn format_took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
