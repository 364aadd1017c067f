//! The report's SVG plots, drawn with `plotters` into strings: latency over time with fault windows and role
//! lanes, throughput, latency quantiles per second, and a failing window's operations per process.

use plotters::prelude::*;

use super::model::{Lane, Model, OpPoint};
use crate::check::{Failure, Outcome};

pub use super::stream::MAX_POINTS;
/// At most this many operations of a failing window are drawn.
pub const MAX_WINDOW_OPS: usize = 40;

const OK: RGBColor = RGBColor(31, 119, 180);
const FAIL: RGBColor = RGBColor(214, 39, 40);
const INFO: RGBColor = RGBColor(255, 127, 14);
const FAULT: RGBColor = RGBColor(150, 150, 150);

type Res = Result<(), String>;

fn e<E: std::fmt::Debug>(err: E) -> String {
    format!("{err:?}")
}

fn colour(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => OK,
        Outcome::Fail => FAIL,
        Outcome::Info => INFO,
    }
}

/// The points to plot: all of them, or every `fail`/`info` and an even sample of `ok` ones.
pub fn thin(points: &[OpPoint]) -> (Vec<OpPoint>, bool) {
    if points.len() <= MAX_POINTS {
        return (points.to_vec(), false);
    }
    let others = points.iter().filter(|p| p.outcome != Outcome::Ok).count();
    let oks = points.len() - others;
    let keep = MAX_POINTS.saturating_sub(others).max(1);
    let stride = oks.div_ceil(keep).max(1);
    let mut n = 0usize;
    let out = points
        .iter()
        .filter(|p| {
            if p.outcome != Outcome::Ok {
                return true;
            }
            n += 1;
            n.is_multiple_of(stride)
        })
        .copied()
        .collect();
    (out, true)
}

/// Latency of every operation over time (log scale), coloured by outcome, with fault windows shaded and
/// labelled, and each node's role lanes beneath.
pub fn latency(m: &Model) -> Result<String, String> {
    let mut svg = String::new();
    let nodes = m.lanes.len().max(m.nodes.len()).max(1);
    let lanes_h = 30 + 18 * nodes as u32;
    let (w, h) = (1000u32, 420 + lanes_h);
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let (top, bottom) = root.split_vertically(420);
        let end_s = (m.end_ms as f64 / 1e3).max(1.0);
        let (points, thinned) = thin(&m.ops);
        let max_ms = points.iter().map(|p| p.latency_ms).fold(1.0f64, f64::max) * 1.5;
        let caption = if thinned || m.ops_total > points.len() {
            format!(
                "Latency per operation ({} of {} shown: ok thinned evenly)",
                points.len(),
                m.ops_total
            )
        } else {
            format!("Latency per operation ({})", m.ops_total)
        };
        let mut chart = ChartBuilder::on(&top)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end_s, (0.05f64..max_ms).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the session started")
            .y_desc("latency (ms)")
            .draw()
            .map_err(e)?;
        shade_faults(&mut chart, m, 0.05, max_ms)?;
        for (o, name) in [
            (Outcome::Ok, "ok"),
            (Outcome::Fail, "fail"),
            (Outcome::Info, "info"),
        ] {
            let c = colour(o);
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.outcome == o)
                        .map(|p| Circle::new((p.at_s, p.latency_ms.max(0.05)), 2, c.filled())),
                )
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| Circle::new((x, y), 3, c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        role_lanes(&bottom, m, end_s)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

fn shade_faults<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>,
    >,
    m: &Model,
    lo: f64,
    hi: f64,
) -> Res {
    let end_s = m.end_ms as f64 / 1e3;
    for (i, f) in m.faults.iter().enumerate() {
        let a = f.start_ms as f64 / 1e3;
        let b = f.end_ms.map_or(end_s, |t| t as f64 / 1e3).max(a + 0.05);
        chart
            .draw_series([Rectangle::new([(a, lo), (b, hi)], FAULT.mix(0.18).filled())])
            .map_err(e)?;
        // Labels step down so neighbouring faults do not overwrite each other.
        let y = hi / 1.6f64.powi(1 + (i % 6) as i32);
        chart
            .draw_series([Text::new(
                short(&f.label, 28),
                (a, y),
                ("sans-serif", 11).into_font().color(&BLACK),
            )])
            .map_err(e)?;
    }
    Ok(())
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

fn role_lanes<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    m: &Model,
    end_s: f64,
) -> Res {
    let ids: Vec<u64> = if m.lanes.is_empty() {
        m.nodes.clone()
    } else {
        m.lanes.keys().copied().collect()
    };
    let n = ids.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .margin_left(10)
        .margin_right(10)
        .x_label_area_size(20)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..end_s, 0f64..n as f64)
        .map_err(e)?;
    let labels = ids.clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = *y as usize;
            labels.get(i).map_or(String::new(), |id| format!("n{id}"))
        })
        .draw()
        .map_err(e)?;
    for (row, id) in ids.iter().enumerate() {
        let Some(changes) = m.lanes.get(id) else {
            continue;
        };
        for (i, &(t, lane)) in changes.iter().enumerate() {
            let a = t as f64 / 1e3;
            let b = changes.get(i + 1).map_or(end_s, |&(t2, _)| t2 as f64 / 1e3);
            let c = match lane {
                Lane::Leader => RGBColor(44, 160, 44),
                Lane::Follower => RGBColor(200, 200, 200),
                Lane::Candidate => RGBColor(240, 200, 0),
                Lane::PreCandidate => RGBColor(250, 230, 150),
                Lane::Down => RGBColor(60, 60, 60),
            };
            let y = row as f64;
            chart
                .draw_series([Rectangle::new([(a, y + 0.15), (b, y + 0.85)], c.filled())])
                .map_err(e)?;
        }
    }
    Ok(())
}

/// Operations completed `ok` per second.
pub fn throughput(m: &Model) -> Result<String, String> {
    let secs = m.seconds();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let end_s = (m.end_ms as f64 / 1e3).max(1.0);
        let top = secs.iter().map(|s| s.ok).max().unwrap_or(1).max(1) as f64 * 1.2;
        let mut chart = ChartBuilder::on(&root)
            .caption("Throughput (ok operations per second)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end_s, 0f64..top)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ops/s")
            .draw()
            .map_err(e)?;
        let end_s = m.end_ms as f64 / 1e3;
        for f in &m.faults {
            let a = f.start_ms as f64 / 1e3;
            let b = f.end_ms.map_or(end_s, |t| t as f64 / 1e3).max(a + 0.05);
            chart
                .draw_series([Rectangle::new(
                    [(a, 0.0), (b, top)],
                    FAULT.mix(0.18).filled(),
                )])
                .map_err(e)?;
        }
        chart
            .draw_series(LineSeries::new(
                secs.iter().map(|s| (s.second as f64 + 0.5, s.ok as f64)),
                OK.stroke_width(2),
            ))
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

/// p50, p95, p99 and max latency of each second (log scale).
pub fn quantiles(m: &Model) -> Result<String, String> {
    let secs = m.seconds();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let end_s = (m.end_ms as f64 / 1e3).max(1.0);
        let hi = secs.iter().map(|s| s.max_ms).fold(1.0f64, f64::max) * 1.5;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency quantiles per second", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end_s, (0.05f64..hi).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("latency (ms)")
            .draw()
            .map_err(e)?;
        shade_faults(&mut chart, m, 0.05, hi)?;
        type Pick = fn(&super::model::Second) -> f64;
        let series: [(&str, RGBColor, Pick); 4] = [
            ("p50", RGBColor(31, 119, 180), |s| s.p50_ms),
            ("p95", RGBColor(44, 160, 44), |s| s.p95_ms),
            ("p99", RGBColor(255, 127, 14), |s| s.p99_ms),
            ("max", RGBColor(214, 39, 40), |s| s.max_ms),
        ];
        for (name, c, f) in series {
            chart
                .draw_series(LineSeries::new(
                    secs.iter().map(|s| (s.second as f64 + 0.5, f(s).max(0.05))),
                    c.stroke_width(2),
                ))
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 15, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

/// A failing window: one lane per process, a bar from invocation to completion (to the right edge for an
/// unknown outcome), the operation that cannot be placed in red. At most [`MAX_WINDOW_OPS`] operations.
pub fn window(f: &Failure) -> Result<String, String> {
    let ops: Vec<_> = f.window.iter().take(MAX_WINDOW_OPS).collect();
    let mut procs: Vec<u64> = ops.iter().map(|o| o.process).collect();
    procs.sort_unstable();
    procs.dedup();
    let t0 = ops.iter().map(|o| o.invoke_time).min().unwrap_or(0);
    let t1 = ops
        .iter()
        .map(|o| o.complete_time.unwrap_or(o.invoke_time))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let span = (t1 - t0) as f64 / 1e6;
    let right = span * 1.25 + 0.001;
    let mut svg = String::new();
    {
        let h = 80 + 36 * procs.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (1000, h)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Key {}: no order of these operations explains their results (state before: {})",
                    f.key,
                    f.state_before.map_or("nil".into(), |v| v.to_string())
                ),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..right, 0f64..procs.len().max(1) as f64)
            .map_err(e)?;
        let labels = procs.clone();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("ms from the window's first invocation")
            .y_labels(procs.len().max(1))
            .y_label_formatter(&|y| {
                labels
                    .get(*y as usize)
                    .map_or(String::new(), |p| format!("p{p}"))
            })
            .draw()
            .map_err(e)?;
        for (i, o) in f.window.iter().enumerate().take(MAX_WINDOW_OPS) {
            let row = procs.iter().position(|&p| p == o.process).unwrap_or(0) as f64;
            let a = (o.invoke_time - t0) as f64 / 1e6;
            let b = match (o.complete_time, o.outcome) {
                (Some(t), Outcome::Ok | Outcome::Fail) => (t - t0) as f64 / 1e6,
                _ => right,
            };
            let c = if i == f.culprit {
                FAIL
            } else {
                colour(o.outcome)
            };
            chart
                .draw_series([Rectangle::new(
                    [(a, row + 0.25), (b.max(a + right / 400.0), row + 0.75)],
                    c.mix(0.7).filled(),
                )])
                .map_err(e)?;
            let mut label = o.describe();
            if i == f.culprit {
                label.push_str("  ✗ cannot be placed");
            }
            chart
                .draw_series([Text::new(
                    label,
                    (a, row + 0.9),
                    ("sans-serif", 12).into_font().color(&BLACK),
                )])
                .map_err(e)?;
        }
        root.present().map_err(e)?;
    }
    Ok(svg)
}
