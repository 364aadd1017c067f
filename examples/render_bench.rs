//! Measures how long one frame of a 9-node dashboard takes to draw, with the same fixture the snapshot tests
//! use, into ratatui's `TestBackend` (so terminal I/O is left out: this is the cost of the widgets).
//!
//! `cargo run --release --example render_bench -- [frames] [width] [height] [nodes] [--print]`

use std::time::Instant;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use squall::state::{ViewState, fixture};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let print = args.iter().any(|a| a == "--print");
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let frames = nums.first().copied().unwrap_or(2000);
    let width = nums.get(1).copied().unwrap_or(200) as u16;
    let height = nums.get(2).copied().unwrap_or(60) as u16;
    let nodes = nums.get(3).copied().unwrap_or(9) as usize;

    let state = fixture::sample_state(nodes);
    let view = ViewState {
        selected: Some(2),
        ..ViewState::new()
    };
    let mut terminal =
        Terminal::new(TestBackend::new(width, height)).expect("test backend never fails");
    // Warm up, so the first frame's allocations are not counted.
    for _ in 0..50 {
        terminal
            .draw(|f| squall::ui::draw(f, &state, &view))
            .expect("draw");
    }
    let mut times = Vec::with_capacity(frames as usize);
    for _ in 0..frames {
        let t = Instant::now();
        terminal
            .draw(|f| squall::ui::draw(f, &state, &view))
            .expect("draw");
        times.push(t.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<std::time::Duration>() / frames as u32;
    let pick = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "render {nodes} nodes at {width}x{height}: {frames} frames, mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
        mean,
        pick(0.5),
        pick(0.99),
        times[times.len() - 1]
    );
    if print {
        println!("{}", terminal.backend());
    }
}
