//! The report's message-flow diagram: a Lamport (space-time) diagram of one window of the session, as
//! Maelstrom's `messages.svg` draws one (Lamport, "Time, Clocks, and the Ordering of Events in a Distributed
//! System", CACM 1978, figure 1): one vertical lane per node, time flowing down, an arrow per message from
//! its send on the sender's lane to its delivery on the receiver's, labelled with its kind. A dropped message
//! stops halfway under a red cross (with what dropped it); a message still held at the end waits at its
//! sender.
//!
//! The messages come from the session's message record ([`crate::record::messages`]), read for the window
//! only. The window is `--flow FROM..TO` (session seconds), by default the first fault and the election after
//! it. At most [`MAX_ARROWS`] arrows are drawn; a busier window is sampled evenly and the caption says so.

use std::fmt::Write as _;
use std::path::Path;

use squall_chaos::{Fate, MessageEvent};

use super::html::{Html, Svg};
use super::model::{Lane, Model};
use crate::record::messages::read_messages;

/// Arrows drawn at most; a busier window is sampled evenly.
pub const MAX_ARROWS: usize = 1_500;

/// Width of the drawing, in SVG pixels.
const WIDTH: f64 = 900.0;
/// Room above the first message (lane names).
const TOP: f64 = 40.0;
/// The tallest drawing, in SVG pixels.
const MAX_HEIGHT: f64 = 2_400.0;

/// A window of session time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start, inclusive.
    pub from_ms: u64,
    /// End, inclusive.
    pub to_ms: u64,
}

/// Reads `FROM..TO` in session seconds (`12..14.5`, `12s..14500ms`). The message names the input.
pub fn parse_window(s: &str) -> Result<Window, String> {
    let bad = || {
        format!(
            "--flow {s:?}: expected FROM..TO in session seconds, like 12..14.5 or 12s..14500ms, with FROM before TO"
        )
    };
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let at = |t: &str| -> Option<u64> {
        let t = t.trim();
        if let Some(ms) = t.strip_suffix("ms") {
            return ms
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| *v >= 0.0)
                .map(|v| v as u64);
        }
        let secs = t.strip_suffix('s').unwrap_or(t).trim();
        secs.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| (v * 1e3).round() as u64)
    };
    match (at(a), at(b)) {
        (Some(from_ms), Some(to_ms)) if from_ms < to_ms => Ok(Window { from_ms, to_ms }),
        _ => Err(bad()),
    }
}

/// The default window: from just before the first fault to just after the first leader elected after it;
/// without a fault, the first election of the session. `None` when the session has neither.
pub fn default_window(m: &Model) -> Option<Window> {
    let fault = m.faults.iter().map(|f| f.start_ms).min();
    let after = fault.unwrap_or(0);
    let elected = m
        .lanes
        .values()
        .flat_map(|l| l.iter())
        .filter(|(at, lane)| *at > after && matches!(lane, Lane::Leader))
        .map(|(at, _)| *at)
        .min();
    match (fault, elected) {
        (Some(f), Some(e)) => Some(Window {
            from_ms: f.saturating_sub(300),
            to_ms: e + 300,
        }),
        (Some(f), None) => Some(Window {
            from_ms: f.saturating_sub(300),
            to_ms: f + 3_000,
        }),
        (None, Some(e)) => Some(Window {
            from_ms: e.saturating_sub(2_000),
            to_ms: e + 300,
        }),
        (None, None) => None,
    }
}

/// How much of the session the diagram shows when it has neither a fault nor an election to centre on.
const FIRST_MESSAGES_MS: u64 = 2_000;

/// The window of a session with no fault and no election (a Maelstrom node that reports no role, say): from
/// its first message, [`FIRST_MESSAGES_MS`] long. `None` when it has no message record or no message.
fn first_messages_window(
    log: &Path,
) -> Result<Option<Window>, crate::record::eventlog::EventLogError> {
    let first = std::cell::Cell::new(u64::MAX);
    let read = read_messages(log, |x| {
        first.set(first.get().min(x.sent_us));
        false
    })?;
    Ok(read.filter(|_| first.get() != u64::MAX).map(|_| {
        let from_ms = first.get() / 1000;
        Window {
            from_ms,
            to_ms: from_ms + FIRST_MESSAGES_MS,
        }
    }))
}

/// When a message's arrow ends: its delivery or drop, or its send while it is held.
fn end_us(m: &MessageEvent) -> u64 {
    match m.fate {
        Fate::Delivered { at_us } | Fate::Dropped { at_us, .. } => at_us.max(m.sent_us),
        Fate::Held => m.sent_us,
    }
}

/// The report's section for the session whose event log is `log`: a heading, a caption and the diagram, or
/// a sentence saying why there is none. `Err` only for a message record that cannot be read.
pub fn section(log: &Path, m: &Model, window: Option<Window>) -> Result<Html, String> {
    let h = Html::new().el_text("h2", "Message flow").nl();
    let chosen = match window {
        Some(w) => Some((w, "")),
        None => match default_window(m) {
            Some(w) => Some((
                w,
                " (the first fault and the election after it; choose another with --flow FROM..TO)",
            )),
            None => first_messages_window(log)
                .map_err(|e| e.to_string())?
                .map(|w| {
                    (
                        w,
                        " (the first messages: the session has no fault and no election; choose another \
                         window with --flow FROM..TO)",
                    )
                }),
        },
    };
    let Some((w, why_this_window)) = chosen else {
        return Ok(h
            .el_text(
                "p",
                "No fault, no election and no message in this session: no window to draw (choose one with \
                 --flow FROM..TO).",
            )
            .nl());
    };
    let (from_us, to_us) = (w.from_ms * 1000, w.to_ms * 1000);
    let read = read_messages(log, |x| x.sent_us <= to_us && end_us(x) >= from_us)
        .map_err(|e| e.to_string())?;
    let Some(read) = read else {
        return Ok(h
            .el_text(
                "p",
                "This session wrote no message record (sessions from before it existed, or a node kind whose \
                 messages squall cannot classify).",
            )
            .nl());
    };
    let mut caption = format!(
        "{:.1} s to {:.1} s of the session{}: {} messages. One lane per node, time flowing down; an arrow \
         per message from its send to its delivery, labelled with its kind; dropped ones stop under a red \
         cross; held ones wait at their sender.",
        w.from_ms as f64 / 1e3,
        w.to_ms as f64 / 1e3,
        why_this_window,
        read.messages.len()
    );
    let drawn = if read.messages.len() > MAX_ARROWS {
        let _ = write!(
            caption,
            " {} of them are drawn, sampled evenly.",
            MAX_ARROWS
        );
        let step = read.messages.len() as f64 / MAX_ARROWS as f64;
        (0..MAX_ARROWS)
            .map(|i| read.messages[(i as f64 * step) as usize].clone())
            .collect()
    } else {
        read.messages.clone()
    };
    if read.left_out > 0 {
        let _ = write!(
            caption,
            " The session's record left out {} messages (its cap, or the trace was busier than it was read).",
            read.left_out
        );
    }
    if read.truncated {
        caption.push_str(" The record ends early (the session was killed).");
    }
    Ok(h.el_text("p", caption)
        .nl()
        .svg(Svg(diagram(&m.nodes, &drawn, w)))
        .nl())
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The colour of a message kind, as the dashboard's panel colours it.
fn colour(kind: &str) -> &'static str {
    match kind {
        k if k.starts_with("vote") || k.starts_with("pre-vote") => "#a3a",
        k if k.starts_with("append") => "#188",
        k if k.starts_with("snapshot") => "#33b",
        "heartbeat" => "#999",
        _ => "#555",
    }
}

/// The diagram as an SVG document: `nodes` as lanes, `messages` as arrows, over window `w`.
pub fn diagram(nodes: &[u64], messages: &[MessageEvent], w: Window) -> String {
    let mut lanes: Vec<u64> = nodes.to_vec();
    for m in messages {
        for n in [m.link.from, m.link.to] {
            if !lanes.contains(&n) {
                lanes.push(n);
            }
        }
    }
    lanes.sort_unstable();
    let span_ms = (w.to_ms - w.from_ms).max(1) as f64;
    // A millisecond gets at least a fifth of a pixel and the whole at most MAX_HEIGHT.
    let px_per_ms = ((MAX_HEIGHT - TOP - 20.0) / span_ms).clamp(0.05, 2.0);
    let height = TOP + span_ms * px_per_ms + 30.0;
    let x = |n: u64| -> f64 {
        let i = lanes.iter().position(|l| *l == n).unwrap_or(0) as f64;
        if lanes.len() < 2 {
            WIDTH / 2.0
        } else {
            80.0 + i * (WIDTH - 160.0) / (lanes.len() - 1) as f64
        }
    };
    let y = |us: u64| -> f64 {
        TOP + ((us as f64 / 1e3) - w.from_ms as f64).clamp(0.0, span_ms) * px_per_ms
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"sans-serif\" font-size=\"10\" class=\"flow\">\
         <defs><marker id=\"flow-head\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"context-stroke\"/>\
         </marker></defs>"
    );
    // Time ticks every second (or every 100 ms in a short window).
    let tick_ms = if span_ms <= 2_000.0 { 100 } else { 1_000 };
    let mut t = w.from_ms.div_ceil(tick_ms) * tick_ms;
    while t <= w.to_ms {
        let ty = y(t * 1000);
        let _ = write!(
            s,
            "<line x1=\"0\" x2=\"{WIDTH}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#eee\"/>\
             <text x=\"2\" y=\"{:.1}\" fill=\"#999\">{:.1} s</text>",
            ty - 2.0,
            t as f64 / 1e3
        );
        t += tick_ms;
    }
    for &n in &lanes {
        let lx = x(n);
        let _ = write!(
            s,
            "<line x1=\"{lx:.1}\" x2=\"{lx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#bbb\" stroke-width=\"2\"/>\
             <text x=\"{lx:.1}\" y=\"20\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">n{n}</text>",
            TOP - 8.0,
            height - 10.0
        );
    }
    for m in messages {
        let kind = m.kind.as_deref().unwrap_or("other");
        let c = colour(kind);
        let (x1, y1) = (x(m.link.from), y(m.sent_us));
        let (x2, y2) = (x(m.link.to), y(end_us(m)));
        match m.fate {
            Fate::Delivered { .. } => {
                let _ = write!(
                    s,
                    "<g class=\"msg\" data-kind=\"{k}\"><title>{k} n{f}→n{t}</title><line x1=\"{x1:.1}\" \
                     y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{c}\" marker-end=\"url(#flow-head)\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\" text-anchor=\"middle\">{k}</text></g>",
                    (x1 + x2) / 2.0,
                    (y1 + y2) / 2.0 - 2.0,
                    k = esc(kind),
                    f = m.link.from,
                    t = m.link.to,
                );
            }
            Fate::Dropped { by, .. } => {
                let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
                let _ = write!(
                    s,
                    "<g class=\"msg dropped\" data-kind=\"{k}\"><title>{k} n{f}→n{t} dropped ({b})</title>\
                     <line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{mx:.1}\" y2=\"{my:.1}\" stroke=\"{c}\" \
                     stroke-dasharray=\"4 3\"/><path d=\"M{:.1},{:.1}l8,8m0,-8l-8,8\" stroke=\"#d33\" \
                     stroke-width=\"2\"/><text x=\"{mx:.1}\" y=\"{:.1}\" fill=\"#d33\" text-anchor=\"middle\">\
                     {k} ({b})</text></g>",
                    mx - 4.0,
                    my - 4.0,
                    my - 6.0,
                    k = esc(kind),
                    b = by.as_str(),
                    f = m.link.from,
                    t = m.link.to,
                );
            }
            Fate::Held => {
                let dir = if x2 >= x1 { 1.0 } else { -1.0 };
                let _ = write!(
                    s,
                    "<g class=\"msg held\" data-kind=\"{k}\"><title>{k} n{f}→n{t} held</title><line \
                     x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{:.1}\" y2=\"{y1:.1}\" stroke=\"#c80\" \
                     stroke-dasharray=\"2 2\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c80\" \
                     text-anchor=\"middle\">{k} held for n{t}</text></g>",
                    x1 + dir * 24.0,
                    x1 + dir * 40.0,
                    y1 - 3.0,
                    k = esc(kind),
                    f = m.link.from,
                    t = m.link.to,
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_chaos::{DropCause, LinkId};

    #[test]
    fn windows_parse_in_seconds_and_bad_ones_name_the_input() {
        assert_eq!(
            parse_window("12..14.5"),
            Ok(Window {
                from_ms: 12_000,
                to_ms: 14_500
            })
        );
        assert_eq!(
            parse_window("12s..14500ms"),
            Ok(Window {
                from_ms: 12_000,
                to_ms: 14_500
            })
        );
        for bad in ["", "12", "14..12", "a..b", "-1..2"] {
            let e = parse_window(bad).unwrap_err();
            assert!(e.contains("--flow") && e.contains("FROM..TO"), "{e}");
        }
    }

    #[test]
    fn the_diagram_has_an_arrow_per_message_and_crosses_dropped_ones() {
        let m = |id, from, to, kind: &'static str, fate| MessageEvent {
            id,
            link: LinkId::new(from, to),
            kind: Some(kind.into()),
            sent_us: 1_000_000 + id * 1_000,
            fate,
        };
        let svg = diagram(
            &[1, 2, 3],
            &[
                m(1, 1, 2, "vote", Fate::Delivered { at_us: 1_001_500 }),
                m(2, 2, 1, "vote-reply", Fate::Delivered { at_us: 1_002_500 }),
                m(
                    3,
                    1,
                    3,
                    "vote",
                    Fate::Dropped {
                        by: DropCause::Blackhole,
                        at_us: 1_003_000,
                    },
                ),
                m(4, 1, 3, "append", Fate::Held),
            ],
            Window {
                from_ms: 900,
                to_ms: 1_100,
            },
        );
        assert_eq!(svg.matches("marker-end=").count(), 2, "{svg}");
        assert!(svg.contains(">vote-reply</text>"), "{svg}");
        assert!(svg.contains("vote (cut)"), "{svg}");
        assert!(svg.contains("append held for n3"), "{svg}");
        assert_eq!(svg.matches(">n1</text>").count(), 1);
    }
}
