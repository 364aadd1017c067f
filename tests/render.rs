//! `squall render`: recordings to GIF and SVG, decoded back and checked. A small asciicast made here (its
//! changes known exactly) checks frames, delays, rectangles, size and a glyph's pixels; a real headless
//! session's event log checks the replay path with a marker as the start; bad input exits 2 naming it.

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::session::Up;

fn squall_render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("render")
        .args(args)
        .output()
        .unwrap()
}

/// Writes an asciicast v2 file of a `w`×`h` terminal with these events.
fn write_cast(dir: &Path, name: &str, (w, h): (u16, u16), events: &[(f64, &str, &str)]) -> PathBuf {
    let path = dir.join(name);
    let mut text = serde_json::json!({"version": 2, "width": w, "height": h}).to_string();
    for (t, code, data) in events {
        text.push('\n');
        text.push_str(&serde_json::json!([t, code, data]).to_string());
    }
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

/// One decoded frame: its rectangle and delay.
#[derive(Debug)]
struct Decoded {
    rect: (u16, u16, u16, u16),
    delay: u16,
}

/// xterm's colours 0 (black), 1 (red) and 7 (the default foreground), as the GIF's colour tables hold them.
const BLACK: [u8; 3] = [0, 0, 0];
const RED: [u8; 3] = [0xcd, 0, 0];
const GREY: [u8; 3] = [0xe5, 0xe5, 0xe5];

/// Decodes a GIF: its size, its frames, and the canvas (RGB) after all of them.
fn decode(path: &Path) -> ((u16, u16), Vec<Decoded>, Vec<[u8; 3]>) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(File::open(path).unwrap()).unwrap();
    let (w, h) = (dec.width(), dec.height());
    let mut canvas = vec![BLACK; usize::from(w) * usize::from(h)];
    let mut frames = Vec::new();
    while let Some(f) = dec.read_next_frame().unwrap() {
        for y in 0..f.height {
            for x in 0..f.width {
                let i = (usize::from(y) * usize::from(f.width) + usize::from(x)) * 4;
                let p = &f.buffer[i..i + 4];
                // Transparent pixels (unchanged) keep what the frames before drew.
                if p[3] != 0 {
                    canvas[usize::from(f.top + y) * usize::from(w) + usize::from(f.left + x)] =
                        [p[0], p[1], p[2]];
                }
            }
        }
        frames.push(Decoded {
            rect: (f.left, f.top, f.width, f.height),
            delay: f.delay,
        });
    }
    ((w, h), frames, canvas)
}

/// The pixels of an 8×16 cell: `fg` where Unifont's glyph of `ch` has a pixel, `bg` elsewhere.
fn expected_cell(ch: char, fg: [u8; 3], bg: [u8; 3]) -> Vec<[u8; 3]> {
    let glyph = unifont::get_glyph(ch).unwrap();
    (0..16)
        .flat_map(|y| (0..8).map(move |x| (x, y)))
        .map(|(x, y)| if glyph.get_pixel(x, y) { fg } else { bg })
        .collect()
}

/// The pixels of the cell at (`col`, `row`) of the canvas.
fn cell_pixels(canvas: &[[u8; 3]], width: u16, col: usize, row: usize) -> Vec<[u8; 3]> {
    (0..16)
        .flat_map(|y| (0..8).map(move |x| (x, y)))
        .map(|(x, y)| canvas[(row * 16 + y) * usize::from(width) + col * 8 + x])
        .collect()
}

/// A 20×4 recording whose changes are known: "hello" at 0 s; a red X and a Y at 0.5 s and 0.505 s (one
/// frame: closer than 20 ms); a marker at 1 s; a cursor move that changes nothing at 1.5 s; a line at 2 s;
/// nothing more until the recording ends at 4 s.
fn known_cast(dir: &Path) -> PathBuf {
    write_cast(
        dir,
        "known.cast",
        (20, 4),
        &[
            (0.0, "o", "\x1b[?25lhello"),
            (0.5, "o", "\r\n\x1b[31mX"),
            (0.505, "o", "\x1b[0mY"),
            (1.0, "m", "kill node 2 (leader, term 4)"),
            (1.5, "o", "\x1b[1;1H"),
            (2.0, "o", "\x1b[3;1H─"),
            (4.0, "o", ""),
        ],
    )
}

#[test]
fn a_gif_has_one_frame_per_change_with_its_delay_its_rectangle_and_the_glyphs_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let cast = known_cast(dir.path());
    let gif = dir.path().join("out.gif");
    let out = squall_render(&[cast.to_str().unwrap(), "-o", gif.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 frames"), "{stdout}");
    let ((w, h), frames, canvas) = decode(&gif);
    // 20×4 cells of 8×16 pixels.
    assert_eq!((w, h), (160, 64));
    // Frames at 0, 0.5 and 2 s: shown 0.5 s, 1.5 s, and the last until the end at 4 s.
    let delays: Vec<u16> = frames.iter().map(|f| f.delay).collect();
    assert_eq!(delays, vec![50, 150, 200], "{frames:?}");
    // The first frame is whole; the others only the cells that changed.
    assert_eq!(frames[0].rect, (0, 0, 160, 64));
    assert_eq!(frames[1].rect, (0, 16, 16, 16), "X and Y on row 1");
    assert_eq!(frames[2].rect, (0, 32, 8, 16), "the line on row 2");
    // The red X is where it belongs, in red (xterm colour 1) on black, and the rest of the screen too.
    assert_eq!(
        cell_pixels(&canvas, w, 0, 1),
        expected_cell('X', RED, BLACK)
    );
    assert_eq!(
        cell_pixels(&canvas, w, 1, 1),
        expected_cell('Y', GREY, BLACK)
    );
    assert_eq!(
        cell_pixels(&canvas, w, 0, 0),
        expected_cell('h', GREY, BLACK)
    );
    assert_eq!(
        cell_pixels(&canvas, w, 0, 2),
        expected_cell('─', GREY, BLACK)
    );
    assert_eq!(
        cell_pixels(&canvas, w, 5, 0),
        vec![BLACK; 128],
        "blank after hello"
    );
}

#[test]
fn from_a_marker_to_a_time_at_double_speed() {
    let dir = tempfile::tempdir().unwrap();
    let cast = known_cast(dir.path());
    let gif = dir.path().join("part.gif");
    let out = squall_render(&[
        cast.to_str().unwrap(),
        "-o",
        gif.to_str().unwrap(),
        "--from",
        "kill node",
        "--to",
        "3",
        "--speed",
        "2",
    ]);
    assert!(out.status.success(), "{out:?}");
    let (_, frames, canvas) = decode(&gif);
    // From 1 s: the screen as it was then (hello, XY), then the line at 2 s, i.e. 0.5 s later at speed 2;
    // the last frame lasts until 3 s (0.5 s later) but at least 1 s.
    let delays: Vec<u16> = frames.iter().map(|f| f.delay).collect();
    assert_eq!(delays, vec![50, 100], "{frames:?}");
    assert_eq!(
        cell_pixels(&canvas, 160, 0, 1),
        expected_cell('X', RED, BLACK)
    );
}

#[test]
fn an_svg_is_well_formed_and_holds_the_text_and_the_animation() {
    let dir = tempfile::tempdir().unwrap();
    let cast = known_cast(dir.path());
    let svg = dir.path().join("out.svg");
    let out = squall_render(&[cast.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&svg).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut texts = String::new();
    let mut elements = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => {
                elements += 1
            }
            Ok(quick_xml::events::Event::Text(t)) => {
                texts.push_str(&t.decode().unwrap());
                texts.push('\n');
            }
            Ok(_) => {}
            Err(e) => panic!(
                "not well-formed at {}: {e}\n{text}",
                reader.buffer_position()
            ),
        }
    }
    assert!(elements > 5, "{text}");
    for want in ["hello", "X", "Y", "─"] {
        assert!(texts.contains(want), "{want:?} missing in {texts}");
    }
    assert!(
        text.contains(r#"width="180" height="72""#),
        "20×4 cells of 9×18"
    );
    // Three frames: the first drawn whole, the two later ones appear at 0.5 s and 2 s of 4 s.
    assert!(!text.contains("@keyframes k0"), "{text}");
    assert!(
        text.contains("@keyframes k1{0%{opacity:0}12.5%{opacity:1}}"),
        "{text}"
    );
    assert!(
        text.contains("@keyframes k2{0%{opacity:0}50%{opacity:1}}"),
        "{text}"
    );
    assert!(!text.contains("@keyframes k3"), "{text}");
    assert!(text.contains("animation-duration:4s"), "{text}");
}

#[test]
fn bad_input_exits_2_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cast = known_cast(dir.path());
    let garbage = dir.path().join("garbage.cast");
    std::fs::write(&garbage, "this is not a recording\n").unwrap();
    let missing = dir.path().join("missing.cast");
    let c = cast.to_str().unwrap();
    let gif = dir.path().join("x.gif");
    let g = gif.to_str().unwrap();
    let nowhere = dir.path().join("no/such/dir/x.gif");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![c, "-o", "x.png"], "x.png"),
        (vec![missing.to_str().unwrap(), "-o", g], "missing.cast"),
        (vec![garbage.to_str().unwrap(), "-o", g], "garbage.cast"),
        (
            vec![c, "-o", g, "--from", "partition"],
            "--from `partition`",
        ),
        (vec![c, "-o", g, "--to", "0"], "--to"),
        (vec![c, "-o", g, "--from", "9"], "after the end"),
        (vec![c, "-o", g, "--speed", "0"], "speed"),
        (
            vec![c, "-o", g, "--size", "80x24"],
            "--size is for event logs",
        ),
        (
            vec![c, "-o", nowhere.to_str().unwrap()],
            "no/such/dir/x.gif",
        ),
    ];
    for (args, named) in cases {
        let out = squall_render(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{args:?} should name {named:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".gif"))
        .collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

#[test]
fn a_real_sessions_event_log_renders_from_its_kill_marker() {
    let mut s = Up::new(&["-n", "3"]).wait(Duration::from_secs(60)).start();
    let (leader, term) = s.current_leader();
    s.ok("kill leader");
    s.until("a new leader", |nodes| {
        nodes
            .values()
            .find(|n| n.running && n.role == "leader" && n.id != leader && n.term > term)
            .map(|_| ())
    });
    let tmp = s.quit();
    let log = tmp.path().join("cluster/events.jsonl.gz");
    assert!(log.exists(), "no event log at {}", log.display());
    let gif = tmp.path().join("session.gif");
    let out = squall_render(&[
        log.to_str().unwrap(),
        "-o",
        gif.to_str().unwrap(),
        "--size",
        "100x30",
        "--from",
        "kill",
    ]);
    assert!(out.status.success(), "{out:?}");
    let ((w, h), frames, _) = decode(&gif);
    assert_eq!((w, h), (800, 480));
    assert!(
        frames.len() >= 2,
        "the replay moves after the kill: {frames:?}"
    );
    assert_eq!(frames[0].rect, (0, 0, 800, 480));
    // The frames' delays add up to the log's time after the kill (at least the final hold).
    let total: u32 = frames.iter().map(|f| u32::from(f.delay)).sum();
    assert!(total >= 100, "{total} cs");
    let svg = tmp.path().join("session.svg");
    let out = squall_render(&[
        log.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
        "--from",
        "kill",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("REPLAY"), "the replay's banner is drawn");
    assert!(text.contains("kill"), "the feed names the kill");
}
