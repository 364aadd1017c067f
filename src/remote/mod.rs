//! Nodes on other machines (issue 24): which host runs which node ([`hosts`]), the agent's wire protocol
//! ([`protocol`]), the controller's side of an agent connection ([`client`]) and the SSH transport that starts
//! agents ([`ssh`]), and keeping them connected ([`fleet`]: pings, unreachable hosts, reconnects). The agent itself (`squall agent`) is [`crate::agent`].

pub mod client;
pub mod connect;
pub mod fleet;
pub mod forward;
pub mod hosts;
pub mod protocol;
pub mod ssh;

use std::sync::OnceLock;

/// Which loopback this process has: `BOOT_ID/net:[INODE]` (the machine's boot id and the network namespace),
/// the same for two processes exactly when their 127.0.0.1 is one. An agent says it in its hello, so a host
/// entry without `address` that is not this machine is refused (its nodes would listen on a loopback nobody
/// else reaches; tester 10's finding 5). Empty when `/proc` does not tell.
pub fn loopback_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let net = std::fs::read_link("/proc/self/ns/net").unwrap_or_default();
    let (boot, net) = (boot.trim(), net.to_string_lossy());
    if boot.is_empty() || net.is_empty() {
        return String::new();
    }
    format!("{boot}/{net}")
}

/// This build's identity, `squall VERSION sha1:HEX` (the SHA-1 of the running executable): two binaries with
/// the same version but different code differ here, so the controller copies itself to a host whose binary is
/// not this very build. Computed once per process, and through [`build_id_cached`]'s file beside the
/// executable. `Err` when the executable cannot be read.
pub fn build_id() -> Result<String, String> {
    static ID: OnceLock<Result<String, String>> = OnceLock::new();
    ID.get_or_init(|| {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find squall's own executable: {e}"))?;
        build_id_cached(&exe)
    })
    .clone()
}

/// [`build_id_of`], remembered in a file beside the executable (`.NAME.build-id`: on a host, in the agent's
/// `dir`) under the executable's device, inode, size, modification and change times, and used while they all
/// stay the same: hashing a 280 MB debug binary takes most of a second, and `up --hosts` asked for it three
/// times per host (BENCHMARKS.md, "Nodes on other machines"). A new copy or a rebuild is a new inode or new
/// times (the change time cannot be set back), so it is hashed again. Where the file cannot be written the
/// id is computed each time.
pub fn build_id_cached(exe: &std::path::Path) -> Result<String, String> {
    let key = cache_key(exe);
    let cache = cache_path(exe);
    if let (Some(key), Some(cache)) = (&key, &cache)
        && let Ok(text) = std::fs::read_to_string(cache)
        && let Some((k, id)) = text.trim_end().split_once('\n')
        && k == key
        && id.starts_with("squall ")
    {
        return Ok(id.to_string());
    }
    let id = build_id_of(exe)?;
    // Only when the executable did not change while it was hashed.
    if let (Some(key), Some(cache)) = (key, cache)
        && cache_key(exe).as_ref() == Some(&key)
    {
        let tmp = cache.with_extension(format!("tmp.{}", std::process::id()));
        if std::fs::write(&tmp, format!("{key}\n{id}\n")).is_ok() {
            let _ = std::fs::rename(&tmp, &cache).map_err(|_| std::fs::remove_file(&tmp));
        }
    }
    Ok(id)
}

/// What [`build_id_cached`] keys its file by: this squall's version, and the executable's device, inode,
/// size, modification and change times (ns).
fn cache_key(exe: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(exe).ok()?;
    Some(format!(
        "{} dev {} ino {} size {} mtime {}.{:09} ctime {}.{:09}",
        env!("CARGO_PKG_VERSION"),
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// `.NAME.build-id` beside the executable `NAME`.
fn cache_path(exe: &std::path::Path) -> Option<std::path::PathBuf> {
    let name = exe.file_name()?.to_string_lossy();
    Some(exe.with_file_name(format!(".{name}.build-id")))
}

/// The identity [`build_id`] gives the squall executable at `exe` when it runs (its version is this
/// crate's: only a squall of this version is ever copied to a host).
pub fn build_id_of(exe: &std::path::Path) -> Result<String, String> {
    use sha1::{Digest, Sha1};
    use std::io::Read;
    let mut f =
        std::fs::File::open(exe).map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("squall {} sha1:{hex}", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached id is the hash's, is taken from the file while the executable stays the same, and is
    /// computed anew once it changes.
    #[test]
    fn a_build_id_is_cached_beside_the_executable_until_the_executable_changes() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("squall");
        std::fs::write(&exe, b"one build").unwrap();
        let first = build_id_cached(&exe).unwrap();
        assert_eq!(first, build_id_of(&exe).unwrap());
        let cache = dir.path().join(".squall.build-id");
        let text = std::fs::read_to_string(&cache).unwrap();
        assert!(text.ends_with(&format!("\n{first}\n")), "{text}");
        // The file is what answers while the key holds (a planted id under the same key is taken).
        let key = text.lines().next().unwrap();
        std::fs::write(&cache, format!("{key}\nsquall 0 sha1:cached\n")).unwrap();
        assert_eq!(build_id_cached(&exe).unwrap(), "squall 0 sha1:cached");
        // A new binary in its place (a copy, a rebuild): hashed again.
        std::fs::write(&exe, b"another build, longer").unwrap();
        let second = build_id_cached(&exe).unwrap();
        assert_eq!(second, build_id_of(&exe).unwrap());
        assert_ne!(second, first);
        // A cache file that is not one (damaged, foreign): ignored and rewritten.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let exe2 = other.join("squall");
        std::fs::write(&exe2, b"one build").unwrap();
        std::fs::write(other.join(".squall.build-id"), "garbage").unwrap();
        assert_eq!(build_id_cached(&exe2).unwrap(), first);
        let text = std::fs::read_to_string(other.join(".squall.build-id")).unwrap();
        assert!(text.ends_with(&format!("\n{first}\n")), "{text}");
    }
}
