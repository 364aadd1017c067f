//! The bundle `squall run` leaves behind: the scenario, `repro.sh`, the event log, the history, the report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::RunArgs;
use crate::scenario::WorkloadKind;

/// The bundle's directory, created. The default name (`squall-run-NAME-SEED`) gets `-2`, `-3`, … rather than
/// go over an earlier run. A path given with `--out` is used as it is: an existing file or non-empty directory
/// there is refused (the caller exits 2), unless `--force` asks to replace an earlier bundle (a directory
/// holding a `repro.sh`); anything else is never removed.
pub(super) fn bundle_dir(args: &RunArgs, name: &str, seed: u64) -> Result<PathBuf, String> {
    let dir = match &args.out {
        Some(out) => {
            if out_taken(args)? {
                std::fs::remove_dir_all(out).map_err(|e| {
                    format!(
                        "--out {}: cannot remove the earlier bundle: {e}",
                        out.display()
                    )
                })?;
            }
            out.clone()
        }
        None => {
            let base = PathBuf::from(format!("squall-run-{name}-{seed}"));
            let mut dir = base.clone();
            let mut n = 2;
            while !empty(&dir) {
                dir = PathBuf::from(format!("{}-{n}", base.display()));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("--out {}: cannot create it: {e}", dir.display()))?;
    Ok(dir)
}

/// Whether `--out` (if given) may be written, touching nothing: `Ok(false)` when it is free (absent, or an
/// empty directory), `Ok(true)` when it holds an earlier bundle that `--force` replaces, and `Err` with the
/// message for a person (exit 2) otherwise. `--dry-run` asks it too, so it refuses what the run would.
pub(super) fn out_taken(args: &RunArgs) -> Result<bool, String> {
    let Some(out) = &args.out else {
        return Ok(false);
    };
    if empty(out) {
        return Ok(false);
    }
    let bundle = is_bundle(out);
    if !args.force {
        return Err(format!(
            "--out {}: {} already exists; give another name{}",
            out.display(),
            if out.is_dir() {
                "a non-empty directory"
            } else {
                "a file"
            },
            if bundle {
                ", or add --force to replace that earlier bundle"
            } else {
                " (it is not a squall bundle, so --force will not replace it either)"
            }
        ));
    }
    if !bundle {
        return Err(format!(
            "--out {}: it exists and is not a squall bundle (a bundle holds a repro.sh and a \
             scenario.toml, and nothing squall did not write): --force replaces only an earlier bundle; \
             give another name",
            out.display()
        ));
    }
    Ok(true)
}

/// Nothing there, or an empty directory.
fn empty(p: &Path) -> bool {
    !p.exists()
        || (p.is_dir()
            && std::fs::read_dir(p)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false))
}

/// What `squall run` writes in a bundle (one run's, or a side by side's with a bundle per protocol).
const BUNDLE_ENTRIES: &[&str] = &[
    "scenario.toml",
    "repro.sh",
    "events.jsonl.gz",
    "events.messages.jsonl.gz",
    "history.jsonl",
    "report.html",
    "report.violations.txt",
    "run.cast",
    "cluster",
    "comparison.txt",
    "comparison.json",
    "raft",
    "paxos",
];

/// Whether `dir` is an earlier bundle that `--force` may remove: a directory holding a `repro.sh` and a
/// `scenario.toml`, every entry one that `squall run` writes, and so every sub-bundle (`raft/`, `paxos/`).
/// A person's directory that merely holds a `repro.sh` is not one (a new user lost a file that way).
fn is_bundle(dir: &Path) -> bool {
    if !dir.is_dir() || !dir.join("repro.sh").is_file() || !dir.join("scenario.toml").is_file() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.into_iter().all(|e| {
        let Ok(e) = e else { return false };
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        BUNDLE_ENTRIES.contains(&name)
            && (!matches!(name, "raft" | "paxos") || is_bundle(&e.path()))
    })
}

/// Copies the scenario into the bundle and writes `repro.sh`, the one command that reruns it.
pub(super) fn write_bundle_start(args: &RunArgs, out: &Path, seed: u64) -> Result<(), String> {
    let copy = out.join("scenario.toml");
    std::fs::copy(&args.file, &copy).map_err(|e| {
        format!(
            "cannot copy {} into {}: {e}",
            args.file.display(),
            out.display()
        )
    })?;
    let squall = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "squall".into());
    let record = if args.record { " --record" } else { "" };
    let record = if args.scale == 1.0 {
        record.to_string()
    } else {
        format!("{record} --scale {}", args.scale)
    };
    let record = if args.protocol.is_empty() {
        record
    } else {
        let names: Vec<&str> = args
            .protocol
            .iter()
            .map(|p| crate::scenario::protocol_name(*p))
            .collect();
        format!("{record} --protocol {}", names.join(","))
    };
    let (hosts, on_hosts) = hosts_flags(args);
    let record = format!("{record}{hosts}");
    let script = format!(
        "#!/bin/sh\n# Reruns this scenario with the same seed: the same settings, the same faults at the same times.\n\
         {on_hosts}\
         # ({squall} is the squall that ran it; `squall` on the PATH works too.) Each rerun writes a new bundle:\n\
         # repro, repro-2, ...\n\
         cd \"$(dirname \"$0\")\" || exit 2\n\
         out=repro; n=2; while [ -e \"$out\" ]; do out=repro-$n; n=$((n + 1)); done\n\
         exec {squall} run scenario.toml --seed {seed}{record} --out \"$out\" \"$@\"\n"
    );
    let path = out.join("repro.sh");
    std::fs::write(&path, script).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    Ok(())
}

/// The flags that put a rerun on the same hosts (`--hosts` with the file's absolute path, or `--host` as given;
/// shell-quoted), and a comment line for `repro.sh` saying so; both empty for a local run (tester 10's
/// finding 8: a run on hosts wrote a `repro.sh` that reran it locally).
fn hosts_flags(args: &RunArgs) -> (String, String) {
    let (flag, value) = match (&args.hosts, &args.host) {
        (Some(file), _) => {
            let abs = std::fs::canonicalize(file).unwrap_or_else(|_| {
                std::env::current_dir()
                    .map(|d| d.join(file))
                    .unwrap_or_else(|_| file.clone())
            });
            ("--hosts", abs.display().to_string())
        }
        (None, Some(host)) => ("--host", host.clone()),
        (None, None) => return (String::new(), String::new()),
    };
    let quoted = format!("'{}'", value.replace('\'', "'\\''"));
    (
        format!(" {flag} {quoted}"),
        format!(
            "# It ran on other machines ({flag} {value}), and so does the rerun; drop that flag to run it here.\n"
        ),
    )
}

/// The history and the report, written from the event log after the run.
pub(super) fn finish_bundle(out: &Path, kind: WorkloadKind) {
    let log = out.join("events.jsonl.gz");
    if kind == WorkloadKind::LinKv
        && let Ok(events) = crate::histories::history_of_log(&log)
    {
        let _ = std::fs::write(
            out.join("history.jsonl"),
            crate::check::format::to_jsonl(&events),
        );
    }
    let _ = crate::report::report(crate::cli::ReportArgs {
        log,
        output: out.join("report.html"),
        timeout: Duration::from_secs(60),
        flow: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["squall", "run", "s.toml"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Run(a) => a,
            other => panic!("not a run: {other:?}"),
        }
    }

    /// Tester 10's finding 8: `repro.sh` of a run on hosts reran it locally.
    #[test]
    fn a_run_on_hosts_is_rerun_on_the_same_hosts_and_a_local_one_locally() {
        assert_eq!(hosts_flags(&run_args(&[])), (String::new(), String::new()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("it's hosts.toml");
        std::fs::write(&file, "").unwrap();
        let abs = std::fs::canonicalize(&file).unwrap().display().to_string();
        let (flags, comment) = hosts_flags(&run_args(&["--hosts", file.to_str().unwrap()]));
        assert_eq!(flags, format!(" --hosts '{}'", abs.replace('\'', "'\\''")));
        assert!(
            comment.starts_with("# It ran on other machines (--hosts "),
            "{comment}"
        );
        let (flags, _) = hosts_flags(&run_args(&["--host", "1=a,2=root@b"]));
        assert_eq!(flags, " --host '1=a,2=root@b'");
    }
}
