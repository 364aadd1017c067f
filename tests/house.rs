//! The house stays clean: the module import graph of `src/`, computed from the source text, has no circle and
//! no arrow from a lower layer up to a higher one.
//!
//! How the graph is drawn. The module tree is discovered from `src/lib.rs` through its `mod NAME;` declarations
//! (`#[path]` included). Every path a file names — in `use` trees and in expressions — that starts with
//! `crate::`, `super::`, `self::` or with one of the file's own child modules is resolved to the module it
//! reaches; a name a module re-exports (`pub use x::Y`) is followed to the module that defines it, so a front
//! door (`state/mod.rs`) is not mistaken for the room behind it. An arrow between two modules is then lifted to
//! the folder where their paths part: `app.rs → scenario/export.rs` is an arrow between the siblings `app.rs`
//! and `scenario/` of the crate root; `cluster/command.rs → cluster/fault.rs` one between siblings of
//! `cluster/`. A folder's `mod.rs` counts as a sibling of its files when they use what it defines (its
//! re-exports are not arrows), so a file that reaches back up into its folder's front door for shared code is
//! seen too. A circle is a strongly connected set of two or more siblings.
//!
//! The layers of the crate root, lowest first (a module may use what is in its own layer or below, never
//! above; see [`LAYERS`]):
//! 0. `units`: formatting of durations and sizes, used everywhere.
//! 0½. `command`: the command vocabulary as values (parse, print, the verb table), below everything that
//!    reads, performs or records a command.
//! 1. `state`, `check`: pure data and pure checkers, no I/O.
//! 2. `cli`: clap definitions (flag values only).
//! - `kind`, then `remote`: node kinds; hosts files, the agent protocol and the SSH transport.
//! 3. `cluster`: the running cluster (processes, proxies, status polling, actions → events).
//! 4. `setup`, `record`, `input`, `ui`, `scenario`: the rooms a session is built from: exit and runtime
//!    helpers and the cluster specification; event log, casts and the replay player; key mapping; widgets;
//!    scenario files (parse, validate, plan, export).
//! 5. `session`, `histories`, `report`, `render`, `agent` (`squall agent`, one host's nodes and proxies): one running session (start, fold its events, end) that `up`, `run`
//!    and `bench` all start from, and the commands that read an event log.
//! 6. `app`, `run`, `bench`: the loops of `up` (dashboard and console), `run` and `bench`.
//! 7. `commands`: the subcommands `main.rs` dispatches to.
//!
//! Folders whose circles are known and being taken apart on other branches of issue 19 are listed in
//! [`KNOWN_CIRCLES`]; their circles are printed, not failed on, and the entry must go once its folder is
//! clean (the test fails on an entry that no longer has a circle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate root's modules by layer, lowest first. A module not listed here fails the test: say where it
/// belongs.
const LAYERS: &[&[&str]] = &[
    &["units"],
    &["command"],
    &["state", "check"],
    &["cli"],
    &["kind"],
    &["remote"],
    &["cluster"],
    &["setup", "record", "input", "ui", "scenario"],
    &["session", "histories", "report", "render", "agent"],
    &["app", "run", "bench"],
    &["commands"],
];

/// Folders with a known circle, and why it is tolerated for now. `cluster/`: the command vocabulary
/// (`command.rs`) and the fault kinds (`fault.rs`, `disk.rs`, `clock.rs`) use each other, and every room of
/// the folder uses the `Cluster` handle of `mod.rs` that uses them (the command branch moves the vocabulary
/// out; the integrator splits `mod.rs` after merging).
const KNOWN_CIRCLES: &[&str] = &[];

#[test]
fn src_has_no_import_circle_and_no_arrow_back_up() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = Graph::of_crate(&root.join("lib.rs"));
    let circles = graph.circles();
    let up = graph.arrows_back_up(LAYERS);
    let unplaced = graph.unplaced(LAYERS);
    let lifted = graph.lifted();
    let pairs: BTreeSet<(String, String)> = lifted
        .iter()
        .filter(|e| {
            lifted
                .iter()
                .any(|b| b.folder == e.folder && b.from == e.to && b.to == e.from)
        })
        .map(|e| {
            let (a, b) = if e.from < e.to {
                (&e.from, &e.to)
            } else {
                (&e.to, &e.from)
            };
            (a.clone(), b.clone())
        })
        .collect();
    println!(
        "{} modules, {} lifted arrows, {} circle(s), {} pair(s) of siblings that use each other: {pairs:?}",
        graph.modules.len(),
        lifted.len(),
        circles.len(),
        pairs.len()
    );
    for c in &circles {
        println!("circle in {}: {}", c.folder, c.describe());
    }
    for a in &up {
        println!("arrow back up: {a}");
    }
    assert!(
        unplaced.is_empty(),
        "modules of the crate root in no layer (add each to LAYERS in tests/house.rs): {unplaced:?}"
    );
    let new: Vec<&Circle> = circles
        .iter()
        .filter(|c| !KNOWN_CIRCLES.contains(&c.folder.as_str()))
        .collect();
    let gone: Vec<&&str> = KNOWN_CIRCLES
        .iter()
        .filter(|k| !circles.iter().any(|c| c.folder == **k))
        .collect();
    assert!(
        new.is_empty() && up.is_empty(),
        "{} import circle(s) and {} arrow(s) back up in src/ (listed above)",
        new.len(),
        up.len()
    );
    assert!(
        gone.is_empty(),
        "no circle left in {gone:?}: remove it from KNOWN_CIRCLES in tests/house.rs"
    );
}

/// The guard must see what it guards against: a tree with a circle through a front door, a re-export and a
/// child reaching back up is reported as such.
#[test]
fn the_guard_sees_circles_and_arrows_back_up() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, text: &str| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "lib.rs",
        "pub mod low;\npub mod high;\npub mod room;\npub mod other;\n",
    );
    write("other.rs", "pub fn o() {}\n");
    // `low` reaches up into `high` through a re-export of `room/mod.rs`.
    write(
        "low.rs",
        "use crate::room::Widget;\n/// a comment naming crate::high::x is not an arrow\nfn f() {}\n",
    );
    write(
        "high.rs",
        "use crate::low;\npub fn g() { low::f(); let _ = \"crate::room::fake\"; }\n",
    );
    write(
        "room/mod.rs",
        "mod a;\nmod b;\npub use a::Widget;\npub fn shared() {}\n",
    );
    write(
        "room/a.rs",
        "pub struct Widget;\nfn h() { super::shared(); crate::high::g(); }\n#[cfg(test)]\nmod tests { use super::*; use crate::other::o; }\n",
    );
    write("room/b.rs", "use super::{a::Widget, shared};\n");
    let graph = Graph::of_crate(&src.join("lib.rs"));
    let circles: Vec<String> = graph.circles().iter().map(Circle::describe).collect();
    // room/a.rs -> crate::high -> low -> room/a.rs (through the re-export): a circle at the root.
    assert_eq!(circles, vec!["high.rs → low.rs → room/ → high.rs"]);
    let up = graph.arrows_back_up(&[&["low"], &["room"], &["high"]]);
    assert_eq!(
        up,
        vec![
            "low.rs (layer 0) → room/ (layer 1): room/a.rs (Widget)".to_string(),
            "room/ (layer 1) → high.rs (layer 2): high.rs (g)".to_string(),
        ]
    );
    // The front door's own code (`shared`) is a sibling of the files that use it; its re-export is not an arrow.
    let in_room: BTreeSet<(String, String)> = graph
        .lifted()
        .into_iter()
        .filter(|e| e.folder == "room/")
        .map(|e| (e.from, e.to))
        .collect();
    assert_eq!(
        in_room,
        BTreeSet::from([
            ("room/a.rs".into(), "room/mod.rs".into()),
            ("room/b.rs".into(), "room/a.rs".into()),
            ("room/b.rs".into(), "room/mod.rs".into()),
        ])
    );
    // Test code draws no arrow.
    assert!(graph.lifted().iter().all(|e| e.to != "other.rs"));
    assert_eq!(graph.unplaced(&[&["low", "other"]]), vec!["high", "room"]);
}

/// A module: its path from the crate root and the file that holds it.
#[derive(Debug)]
struct Module {
    file: PathBuf,
    /// Whether it is a folder's front door (`mod.rs`, or `lib.rs`).
    front: bool,
    /// Names this module re-exports (`pub use`) → the path they come from.
    reexports: BTreeMap<String, Vec<String>>,
    /// Paths it names, resolved to absolute segments, with the path as written (for messages).
    uses: Vec<Vec<String>>,
}

struct Graph {
    modules: BTreeMap<Vec<String>, Module>,
}

/// One arrow between two siblings of a folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Lifted {
    /// The folder, as `cluster/` (`""` for the crate root).
    folder: String,
    from: String,
    to: String,
    /// The module and item the arrow reaches, for the message.
    reaches: String,
}

struct Circle {
    folder: String,
    /// A closed walk through every member, from the first in name order.
    members: Vec<String>,
    /// The arrows among the members.
    arrows: Vec<(String, String)>,
}

impl Circle {
    /// A simple circle as `a → b → a`; a larger tangle as its members and the arrows among them.
    fn describe(&self) -> String {
        let distinct: BTreeSet<&String> = self.members.iter().collect();
        if distinct.len() == self.members.len() {
            let mut m = self.members.clone();
            m.push(self.members[0].clone());
            return m.join(" → ");
        }
        let arrows: Vec<String> = self
            .arrows
            .iter()
            .map(|(a, b)| format!("{a} → {b}"))
            .collect();
        format!("{} modules: {}", distinct.len(), arrows.join(", "))
    }
}

impl Graph {
    fn of_crate(lib: &Path) -> Graph {
        let mut modules = BTreeMap::new();
        let mut todo = vec![(Vec::<String>::new(), lib.to_path_buf(), true, false)];
        let mut parsed = BTreeMap::new();
        while let Some((path, file, front, test)) = todo.pop() {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let toks = tokens(&text);
            for (name, attr, child_test) in declared_mods(&toks) {
                let dir = if front {
                    file.parent().unwrap().to_path_buf()
                } else {
                    file.with_extension("")
                };
                let (child, child_front) = match attr {
                    Some(p) => {
                        let f = file.parent().unwrap().join(p);
                        let fr = f.file_name().is_some_and(|n| n == "mod.rs");
                        (f, fr)
                    }
                    None if dir.join(format!("{name}.rs")).exists() => {
                        (dir.join(format!("{name}.rs")), false)
                    }
                    None => (dir.join(&name).join("mod.rs"), true),
                };
                let mut p = path.clone();
                p.push(name);
                todo.push((p, child, child_front, test || child_test));
            }
            if !test {
                parsed.insert(path.clone(), toks);
            }
            modules.insert(
                path,
                Module {
                    file,
                    front,
                    reexports: BTreeMap::new(),
                    uses: Vec::new(),
                },
            );
        }
        let known: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
        for (path, toks) in &parsed {
            let (reexports, uses) = paths(toks, path, &known);
            let m = modules.get_mut(path).unwrap();
            m.reexports = reexports;
            m.uses = uses;
        }
        Graph { modules }
    }

    /// The module a resolved path reaches and the item it names there, following re-exports.
    fn target(&self, path: &[String]) -> (Vec<String>, String) {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let n = (0..=path.len())
                .rev()
                .find(|n| self.modules.contains_key(&path[..*n]))
                .unwrap_or(0);
            let module = path[..n].to_vec();
            let item = path.get(n).cloned().unwrap_or_default();
            match self.modules[&module].reexports.get(&item) {
                Some(src) if src.as_slice() != path.as_slice() => {
                    let mut next = src.clone();
                    next.extend(path[n + 1..].iter().cloned());
                    path = next;
                }
                _ => return (module, item),
            }
        }
        panic!("re-exports of {path:?} go round in a circle")
    }

    /// Every arrow, lifted to the folder where its two ends part.
    fn lifted(&self) -> Vec<Lifted> {
        let mut out = BTreeSet::new();
        for (from, m) in &self.modules {
            for used in &m.uses {
                let (to, item) = self.target(used);
                if &to == from {
                    continue;
                }
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                let folder: Vec<String> = from[..common].to_vec();
                let side = |p: &Vec<String>| -> Option<String> {
                    if p.len() == common {
                        // The folder itself: its front door, when it defines what is used.
                        let f = &self.modules[p];
                        f.front.then(|| name_in(&folder, None))
                    } else {
                        let child: Vec<String> = p[..=common].to_vec();
                        Some(name_in(&folder, Some((&child, &self.modules[&child]))))
                    }
                };
                // A front door using its own rooms (not re-exporting them) is an arrow down into them; a room
                // using its front door's own items is an arrow up to it. Both are arrows among siblings.
                let (Some(a), Some(b)) = (side(from), side(&to)) else {
                    continue;
                };
                out.insert(Lifted {
                    folder: folder_name(&folder),
                    from: a,
                    to: b,
                    reaches: format!("{} ({item})", file_name(&to, &self.modules[&to])),
                });
            }
        }
        out.into_iter().collect()
    }

    /// Strongly connected sets of two or more siblings (Tarjan's algorithm), each listed in a cycle order.
    fn circles(&self) -> Vec<Circle> {
        let lifted = self.lifted();
        let mut by_folder: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for e in &lifted {
            by_folder
                .entry(e.folder.clone())
                .or_default()
                .entry(e.from.clone())
                .or_default()
                .insert(e.to.clone());
        }
        let mut out = Vec::new();
        for (folder, adj) in by_folder {
            for scc in strongly_connected(&adj) {
                if scc.len() > 1 {
                    out.push(Circle {
                        folder: if folder.is_empty() {
                            "src/".into()
                        } else {
                            format!("src/{folder}")
                        },
                        members: cycle_order(&scc, &adj),
                        arrows: scc
                            .iter()
                            .flat_map(|a| {
                                adj.get(a)
                                    .into_iter()
                                    .flatten()
                                    .filter(|b| scc.contains(b))
                                    .map(move |b| (a.clone(), b.clone()))
                            })
                            .collect(),
                    });
                }
            }
        }
        out
    }

    /// Arrows among the crate root's modules from a lower layer to a higher one.
    fn arrows_back_up(&self, layers: &[&[&str]]) -> Vec<String> {
        let layer = |name: &str| {
            let bare = name.trim_end_matches('/').trim_end_matches(".rs");
            layers.iter().position(|l| l.contains(&bare))
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for e in self.lifted() {
            if !e.folder.is_empty() {
                continue;
            }
            if let (Some(a), Some(b)) = (layer(&e.from), layer(&e.to))
                && a < b
                && seen.insert((e.from.clone(), e.to.clone()))
            {
                out.push(format!(
                    "{} (layer {a}) → {} (layer {b}): {}",
                    e.from, e.to, e.reaches
                ));
            }
        }
        out
    }

    /// The crate root's modules that no layer lists.
    fn unplaced(&self, layers: &[&[&str]]) -> Vec<String> {
        self.modules
            .keys()
            .filter(|p| p.len() == 1)
            .map(|p| p[0].clone())
            .filter(|n| !layers.iter().any(|l| l.contains(&n.as_str())))
            .collect()
    }
}

fn folder_name(folder: &[String]) -> String {
    folder.iter().map(|s| format!("{s}/")).collect()
}

/// How a sibling is named in messages: `app.rs`, `scenario/`, `cluster/mod.rs`.
fn name_in(folder: &[String], child: Option<(&Vec<String>, &Module)>) -> String {
    let f = folder_name(folder);
    match child {
        None if folder.is_empty() => "lib.rs".into(),
        None => format!("{f}mod.rs"),
        Some((p, m)) if m.front => format!("{f}{}/", p.last().unwrap()),
        Some((p, _)) => format!("{f}{}.rs", p.last().unwrap()),
    }
}

fn file_name(p: &[String], m: &Module) -> String {
    if p.is_empty() {
        return "lib.rs".into();
    }
    let f = folder_name(&p[..p.len() - 1]);
    let leaf = p.last().unwrap();
    if m.front {
        format!("{f}{leaf}/mod.rs")
    } else {
        let _ = &m.file;
        format!("{f}{leaf}.rs")
    }
}

fn strongly_connected(adj: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        adj: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(next) = t.adj.get(v) {
            for w in next {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let l = t.low[w].min(t.low[v]);
                    t.low.insert(v, l);
                } else if t.on.contains(w) {
                    let l = t.index[w].min(t.low[v]);
                    t.low.insert(v, l);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            scc.sort();
            t.out.push(scc);
        }
    }
    let mut t = T {
        adj,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    let nodes: BTreeSet<&str> = adj
        .iter()
        .flat_map(|(a, bs)| std::iter::once(a.as_str()).chain(bs.iter().map(String::as_str)))
        .collect();
    for v in nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// A closed walk through every member of a strongly connected set, starting at its first member in name
/// order: a shortest path to each next unvisited member in turn (so a two-member circle reads `a → b`).
fn cycle_order(scc: &[String], adj: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let inside: BTreeSet<&str> = scc.iter().map(String::as_str).collect();
    let path = |from: &str, to: &BTreeSet<&str>| -> Vec<String> {
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(v) = queue.pop_front() {
            for w in adj.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !inside.contains(w) || !seen.insert(w) {
                    continue;
                }
                prev.insert(w, v);
                if to.contains(w) {
                    let mut p = vec![w.to_string()];
                    let mut at = w;
                    while let Some(b) = prev.get(at) {
                        if *b == from {
                            break;
                        }
                        p.push(b.to_string());
                        at = b;
                    }
                    p.reverse();
                    return p;
                }
                queue.push_back(w);
            }
        }
        vec![]
    };
    let mut walk = vec![scc[0].clone()];
    let mut left: BTreeSet<&str> = inside.iter().copied().filter(|s| *s != scc[0]).collect();
    while !left.is_empty() {
        let step = path(walk.last().unwrap(), &left);
        if step.is_empty() {
            break;
        }
        for s in &step {
            left.remove(s.as_str());
        }
        walk.extend(step);
    }
    walk
}

/// A token of Rust source with comments removed: an identifier or keyword, a string literal's text, `::`, or
/// one punctuation character.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Path,
    Punct(char),
}

fn tokens(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == 'r' && matches!(c.get(i + 1), Some('"') | Some('#')) && {
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            c.get(j) == Some(&'"')
        } {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            let start = j;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            out.push(Tok::Str(c[start..j.min(c.len())].iter().collect()));
            i = j + 1 + hashes;
        } else if ch == '"' || (ch == 'b' && c.get(i + 1) == Some(&'"')) {
            let mut j = if ch == 'b' { i + 2 } else { i + 1 };
            let start = j;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            out.push(Tok::Str(c[start..j.min(c.len())].iter().collect()));
            i = j + 1;
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch == 'b' && c.get(i + 1) == Some(&'\'') {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Tok::Path);
            i += 2;
        } else {
            if !ch.is_whitespace() {
                out.push(Tok::Punct(ch));
            }
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

/// Whether the item whose keyword is at `i` (`mod`) carries `#[cfg(test)]`: test code may reach anywhere, so
/// it draws no arrow.
fn cfg_test(toks: &[Tok], i: usize) -> bool {
    let mut j = i;
    // Visibility: `pub`, `pub(crate)`, `pub(super)`.
    if j >= 4 && toks[j - 1] == Tok::Punct(')') && ident(toks.get(j - 4)) == Some("pub") {
        j -= 4;
    } else if j >= 1 && ident(toks.get(j - 1)) == Some("pub") {
        j -= 1;
    }
    while j >= 1 && toks[j - 1] == Tok::Punct(']') {
        let mut depth = 0;
        let mut k = j - 1;
        loop {
            match toks[k] {
                Tok::Punct(']') => depth += 1,
                Tok::Punct('[') => depth -= 1,
                _ => {}
            }
            if depth == 0 || k == 0 {
                break;
            }
            k -= 1;
        }
        let attr = &toks[k..j];
        if attr
            == [
                Tok::Punct('['),
                Tok::Ident("cfg".into()),
                Tok::Punct('('),
                Tok::Ident("test".into()),
                Tok::Punct(')'),
                Tok::Punct(']'),
            ]
        {
            return true;
        }
        if k == 0 || toks[k - 1] != Tok::Punct('#') {
            return false;
        }
        j = k - 1;
    }
    false
}

/// The `mod NAME;` declarations of a file (not inline `mod NAME { … }`): name, `#[path]` if any, and whether
/// it is test code (`#[cfg(test)]`).
fn declared_mods(toks: &[Tok]) -> Vec<(String, Option<String>, bool)> {
    let mut out = Vec::new();
    let mut path_attr: Option<String> = None;
    for i in 0..toks.len() {
        if ident(toks.get(i)) == Some("path")
            && toks.get(i + 1) == Some(&Tok::Punct('='))
            && let Some(Tok::Str(p)) = toks.get(i + 2)
        {
            path_attr = Some(p.clone());
        }
        if ident(toks.get(i)) == Some("mod")
            && let Some(name) = ident(toks.get(i + 1))
        {
            if toks.get(i + 2) == Some(&Tok::Punct(';')) {
                out.push((name.to_string(), path_attr.take(), cfg_test(toks, i)));
            } else {
                path_attr = None;
            }
        }
    }
    out
}

/// The paths a file names, resolved against its module path: `(re-exports by name, every path used)`. Paths
/// inside inline modules (`mod tests { … }`) resolve from there; they count as the file's own.
fn paths(
    toks: &[Tok],
    module: &[String],
    known: &BTreeSet<Vec<String>>,
) -> (BTreeMap<String, Vec<String>>, Vec<Vec<String>>) {
    let mut reexports = BTreeMap::new();
    let mut uses = Vec::new();
    // Inline modules: (name, brace depth inside them, whether test code).
    let mut inline: Vec<(String, usize, bool)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let here = |inline: &Vec<(String, usize, bool)>| -> Vec<String> {
        let mut m = module.to_vec();
        m.extend(inline.iter().map(|(n, _, _)| n.clone()));
        m
    };
    let in_test = |inline: &Vec<(String, usize, bool)>| inline.iter().any(|(_, _, t)| *t);
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d, _)| depth < *d) {
                    inline.pop();
                }
                i += 1;
            }
            Tok::Ident(k) if k == "mod" => {
                if let Some(name) = ident(toks.get(i + 1))
                    && toks.get(i + 2) == Some(&Tok::Punct('{'))
                {
                    depth += 1;
                    inline.push((name.to_string(), depth, cfg_test(toks, i)));
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Tok::Ident(k) if k == "use" => {
                let public = i > 0
                    && (ident(toks.get(i - 1)) == Some("pub")
                        || (toks.get(i - 1) == Some(&Tok::Punct(')'))
                            && (1..=5)
                                .any(|k| i > k && ident(toks.get(i - 1 - k)) == Some("pub"))));
                let mut trees = Vec::new();
                let end = use_tree(toks, i + 1, Vec::new(), &mut trees);
                let at = here(&inline);
                if in_test(&inline) {
                    trees.clear();
                }
                for (written, alias) in trees {
                    if let Some(abs) = resolve(&written, &at, known) {
                        if public && inline.is_empty() && !abs.is_empty() {
                            let name = alias.unwrap_or_else(|| abs.last().unwrap().clone());
                            if name != "*" && name != "self" {
                                reexports.insert(name, abs);
                            }
                        } else {
                            uses.push(abs);
                        }
                    }
                }
                i = end;
            }
            Tok::Ident(first)
                if toks.get(i + 1) == Some(&Tok::Path)
                    && (i == 0 || toks[i - 1] != Tok::Path)
                    && first != "Self" =>
            {
                let mut written = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Path) {
                    match ident(toks.get(j + 1)) {
                        Some(s) => {
                            written.push(s.to_string());
                            j += 2;
                        }
                        None => break,
                    }
                }
                if !in_test(&inline)
                    && let Some(abs) = resolve(&written, &here(&inline), known)
                {
                    uses.push(abs);
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    (reexports, uses)
}

/// Parses one use tree from `i` (after `use`, or inside braces); pushes `(path as written, alias)` for each
/// leaf and returns the index after the tree's end (`;`, `,` or `}` left for the caller, except `;`).
fn use_tree(
    toks: &[Tok],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    let mut path = prefix;
    if toks.get(i) == Some(&Tok::Path) {
        i += 1;
    }
    loop {
        match toks.get(i) {
            Some(Tok::Ident(s)) if s == "as" => {
                let alias = ident(toks.get(i + 1)).map(str::to_string);
                out.push((path.clone(), alias));
                i += 2;
                break;
            }
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
                if toks.get(i) == Some(&Tok::Path) {
                    i += 1;
                    continue;
                }
                out.push((path.clone(), None));
                break;
            }
            Some(Tok::Punct('*')) => {
                path.push("*".into());
                out.push((path.clone(), None));
                i += 1;
                break;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i) {
                        Some(Tok::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => i += 1,
                        None => return i,
                        _ => i = use_tree(toks, i, path.clone(), out),
                    }
                }
                break;
            }
            _ => break,
        }
    }
    if toks.get(i) == Some(&Tok::Punct(';')) {
        i += 1;
    }
    i
}

/// A path as written, made absolute from module `at`; `None` for paths into other crates, locals and items.
fn resolve(
    written: &[String],
    at: &[String],
    known: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut abs: Vec<String>;
    let mut rest = written;
    match written.first().map(String::as_str) {
        Some("crate") => {
            abs = vec![];
            rest = &written[1..];
        }
        Some("self") => {
            abs = at.to_vec();
            rest = &written[1..];
        }
        Some("super") => {
            abs = at.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                abs.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A child module of the file's own module, named without `self::`.
            let mut child = at.to_vec();
            child.push(first.to_string());
            let file_level = (0..=child.len())
                .rev()
                .find(|n| known.contains(&child[..*n]))
                .unwrap_or(0);
            if file_level != child.len() {
                return None;
            }
            abs = at.to_vec();
        }
        None => return None,
    }
    abs.extend(rest.iter().filter(|s| s.as_str() != "self").cloned());
    Some(abs)
}
