//! Clock faults for a process: squall's time shim, preloaded into the process, and the control file through
//! which a [`FakeClock`] changes the process's clocks while it runs.
//!
//! The shim (`shim/time_shim.rs`, built by `build.rs` and embedded here as [`SHIM`]) intercepts
//! `clock_gettime`, `gettimeofday` and `time`, and scales the timeouts of `nanosleep`, `clock_nanosleep`,
//! `epoll_wait`, `epoll_pwait`, `poll` and `ppoll`. It reads two laws from a shared mapping of the control
//! file: one for the realtime clocks (`CLOCK_REALTIME`, its coarse variant, `CLOCK_TAI`), one for the
//! monotonic clocks (`CLOCK_MONOTONIC`, `_RAW`, `_COARSE`, `CLOCK_BOOTTIME`). Each law is
//!
//! ```text
//! fake = real + offset + (t - t0) × (rate − 1) [+ strobe, in even seconds since t0]
//! ```
//!
//! with `t` the real monotonic time. What each fault does to the two laws:
//!
//! | fault            | realtime                              | monotonic                                  |
//! |------------------|---------------------------------------|--------------------------------------------|
//! | jump ±D          | offset ± D                            | unchanged (an NTP step moves only realtime) |
//! | rate ×R          | runs at R                             | runs at R; sleeps and timeouts scaled by 1/R |
//! | strobe D         | D ahead, then back, every second      | D ahead, then held until real time catches up |
//! | heal             | true again (it may step back)         | rate 1 from where it stands: never back    |
//!
//! The shim never returns a monotonic value below one it returned before, so a strobe's backward half (and
//! any race with a change of law) holds the clock still instead of moving it back: timers fire late, none
//! stalls for longer than the strobe. Processes that do not load the preload (statically linked binaries,
//! Go programs, which read the vDSO themselves) keep real time; [`FakeClock::attached_pid`] tells whether
//! the shim reached the process.
//!
//! The control file is a page of 64-bit words, written with a sequence lock (as the kernel's vDSO data
//! page is): `[magic "SQCLOCK1", seq, pid, realtime t0, offset, rate bits, strobe, monotonic t0, offset,
//! rate bits, strobe]`, every time in ns.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

use nix::sys::mman::{MapFlags, ProtFlags};

/// The time shim, a shared library for Linux on the target squall was built for.
pub const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libsquall_time_shim.so"));

/// The file name [`install_shim`] gives the shim.
pub const SHIM_FILE_NAME: &str = "time-shim.so";

/// The environment variable naming the control file for the shim.
pub const CLOCK_FILE_ENV: &str = "SQUALL_CLOCK_FILE";

/// The largest offset of a realtime clock from true time, either way: far enough for day-scale
/// experiments (leases, certificates, TTLs), near enough that no time computation overflows.
pub const MAX_OFFSET: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often a strobe flips, and so the largest strobe: a larger one would hold the monotonic clock for
/// longer than the strobe's period.
pub const STROBE_PERIOD: Duration = Duration::from_secs(1);

const MAGIC: u64 = u64::from_le_bytes(*b"SQCLOCK1");
const MAP_LEN: usize = 4096;
const W_MAGIC: usize = 0;
const W_SEQ: usize = 1;
const W_PID: usize = 2;
const W_REALTIME: usize = 3;
const W_MONOTONIC: usize = 7;

/// Why a clock could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// The shim or the control file could not be written or mapped.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A jump would put the realtime clock further from true time than [`MAX_OFFSET`].
    #[error(
        "the clock would be {} {}, beyond the limit of ±{} (168h)",
        human(offset.unsigned_abs()),
        if *offset < 0 { "behind" } else { "ahead" },
        human(MAX_OFFSET.as_nanos() as u64)
    )]
    TooFar {
        /// The offset it would have, in ns.
        offset: i64,
    },
    /// A rate that is not a positive finite number.
    #[error("a clock rate must be a positive number, not {0}")]
    BadRate(f64),
    /// A strobe larger than [`STROBE_PERIOD`].
    #[error("a strobe is at most {}, not {}", human(STROBE_PERIOD.as_nanos() as u64), human(.0.as_nanos() as u64))]
    BadStrobe(Duration),
}

fn human(ns: u64) -> String {
    humanish(Duration::from_nanos(ns))
}

/// A duration in the largest whole unit that fits (`7d`, `3h`, `250ms`).
fn humanish(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// Writes the shim into `dir` (through a temporary name, so a process that has the old copy mapped keeps
/// it intact); returns its path.
pub fn install_shim(dir: &Path) -> Result<PathBuf, ClockError> {
    let path = dir.join(SHIM_FILE_NAME);
    let tmp = dir.join(format!(".{SHIM_FILE_NAME}.{}", std::process::id()));
    let io = |source| ClockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, SHIM).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

/// The environment a process runs with to have its clocks faked through `control` by the shim at `shim`.
pub fn preload_env(shim: &Path, control: &Path) -> Vec<(OsString, OsString)> {
    vec![
        ("LD_PRELOAD".into(), shim.as_os_str().to_owned()),
        (CLOCK_FILE_ENV.into(), control.as_os_str().to_owned()),
    ]
}

/// The real monotonic time, in ns (the `t` of every law).
pub fn monotonic_now() -> i64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always readable");
    ts.tv_sec() * 1_000_000_000 + ts.tv_nsec()
}

/// How one faked clock relates to the real one: `fake = real + offset + (t − t0) × (rate − 1)`, plus
/// `strobe` in even seconds since `t0`; `t` is the real monotonic time, every time in ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Law {
    /// The real monotonic time the law is anchored at.
    pub t0: i64,
    /// The offset at `t0`, strobe excluded.
    pub offset: i64,
    /// How fast the clock runs against the real one.
    pub rate: f64,
    /// How far the clock runs ahead in a strobe's ahead half (0: no strobe).
    pub strobe: i64,
}

impl Law {
    /// The true clock.
    pub const TRUE: Law = Law {
        t0: 0,
        offset: 0,
        rate: 1.0,
        strobe: 0,
    };

    /// The offset at real monotonic time `t`, strobe excluded.
    pub fn base_at(&self, t: i64) -> i64 {
        let dt = t.saturating_sub(self.t0).max(0);
        self.offset
            .saturating_add((dt as f64 * (self.rate - 1.0)) as i64)
    }

    /// The offset at real monotonic time `t`, strobe included (what the shim adds to the real clock).
    pub fn offset_at(&self, t: i64) -> i64 {
        let dt = t.saturating_sub(self.t0).max(0);
        let ahead = self.strobe > 0 && (dt / STROBE_PERIOD.as_nanos() as i64) % 2 == 0;
        self.base_at(t)
            .saturating_add(if ahead { self.strobe } else { 0 })
    }

    /// The same clock from `t` on, anchored there (so a change made at `t` is continuous but for itself).
    fn anchored(&self, t: i64) -> Law {
        Law {
            t0: t,
            offset: self.base_at(t),
            ..*self
        }
    }
}

/// The control file, mapped shared with every process that loaded the shim.
struct Control {
    path: PathBuf,
    words: NonNull<AtomicU64>,
}

// SAFETY: the mapping is only ever touched through atomics.
unsafe impl Send for Control {}
// SAFETY: as above.
unsafe impl Sync for Control {}

impl Control {
    fn create(path: &Path) -> Result<Control, ClockError> {
        let io = |source| ClockError::Io {
            path: path.to_owned(),
            source,
        };
        let mut page = vec![0u8; MAP_LEN];
        page[..8].copy_from_slice(&MAGIC.to_ne_bytes());
        for base in [W_REALTIME, W_MONOTONIC] {
            let at = (base + 2) * 8;
            page[at..at + 8].copy_from_slice(&1.0f64.to_bits().to_ne_bytes());
        }
        // A fresh file each time: a process of an earlier session may still map the old one.
        let _ = std::fs::remove_file(path);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        f.write_all(&page).map_err(io)?;
        // SAFETY: a shared mapping of a file this process just wrote MAP_LEN bytes to.
        let p = unsafe {
            nix::sys::mman::mmap(
                None,
                NonZeroUsize::new(MAP_LEN).expect("non-zero"),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &f,
                0,
            )
        }
        .map_err(|e| io(e.into()))?;
        Ok(Control {
            path: path.to_owned(),
            words: p.cast(),
        })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i * 8 < MAP_LEN && i != W_MAGIC);
        // SAFETY: inside the live mapping of MAP_LEN bytes, aligned to a page.
        unsafe { &*self.words.as_ptr().add(i) }
    }

    /// Publishes both laws at once (sequence lock: odd while writing).
    fn publish(&self, realtime: &Law, monotonic: &Law) {
        let seq = self.word(W_SEQ);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (base, law) in [(W_REALTIME, realtime), (W_MONOTONIC, monotonic)] {
            self.word(base).store(law.t0 as u64, Ordering::Relaxed);
            self.word(base + 1)
                .store(law.offset as u64, Ordering::Relaxed);
            self.word(base + 2)
                .store(law.rate.to_bits(), Ordering::Relaxed);
            self.word(base + 3)
                .store(law.strobe as u64, Ordering::Relaxed);
        }
        seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `create`, unmapped once.
        let _ = unsafe { nix::sys::mman::munmap(self.words.cast(), MAP_LEN) };
    }
}

/// One process's faked clocks, changed live through its control file.
pub struct FakeClock {
    control: Control,
    realtime: Law,
    monotonic: Law,
}

impl FakeClock {
    /// Creates the control file at `path` with both clocks true. Start the process with
    /// [`preload_env`]`(shim, path)`.
    pub fn create(path: &Path) -> Result<FakeClock, ClockError> {
        let c = FakeClock {
            control: Control::create(path)?,
            realtime: Law::TRUE,
            monotonic: Law::TRUE,
        };
        c.publish();
        Ok(c)
    }

    /// The control file's path.
    pub fn path(&self) -> &Path {
        &self.control.path
    }

    fn publish(&self) {
        self.control.publish(&self.realtime, &self.monotonic);
    }

    /// Moves the realtime clock by `by` ns (negative: back); the monotonic clock is untouched. Refused when
    /// the realtime clock would end up more than [`MAX_OFFSET`] from true time.
    pub fn jump(&mut self, by: i64) -> Result<(), ClockError> {
        let now = monotonic_now();
        let mut rt = self.realtime.anchored(now);
        rt.offset = rt.offset.saturating_add(by);
        if rt.offset.unsigned_abs() > MAX_OFFSET.as_nanos() as u64 {
            return Err(ClockError::TooFar { offset: rt.offset });
        }
        self.realtime = rt;
        self.publish();
        Ok(())
    }

    /// Runs both clocks at `rate` from now on (sleeps and timeouts of the process scaled to match).
    pub fn set_rate(&mut self, rate: f64) -> Result<(), ClockError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ClockError::BadRate(rate));
        }
        let now = monotonic_now();
        self.realtime = Law {
            rate,
            ..self.realtime.anchored(now)
        };
        self.monotonic = Law {
            rate,
            ..self.monotonic.anchored(now)
        };
        self.publish();
        Ok(())
    }

    /// Strobes both clocks by `size` every [`STROBE_PERIOD`], starting ahead (the monotonic clock holds
    /// still in the backward half rather than go back).
    pub fn set_strobe(&mut self, size: Duration) -> Result<(), ClockError> {
        if size.is_zero() || size > STROBE_PERIOD {
            return Err(ClockError::BadStrobe(size));
        }
        let now = monotonic_now();
        let ns = size.as_nanos() as i64;
        self.realtime = Law {
            strobe: ns,
            ..self.realtime.anchored(now)
        };
        self.monotonic = Law {
            strobe: ns,
            ..self.monotonic.anchored(now)
        };
        self.publish();
        Ok(())
    }

    /// Makes the realtime clock true (it steps back if it was ahead) and the monotonic clock run at the
    /// real rate from where it stands, so it never goes back; returns the monotonic clock's lasting lead
    /// in ns (negative: behind).
    pub fn heal(&mut self) -> i64 {
        let now = monotonic_now();
        self.realtime = Law {
            t0: now,
            ..Law::TRUE
        };
        self.monotonic = Law {
            rate: 1.0,
            strobe: 0,
            ..self.monotonic.anchored(now)
        };
        self.publish();
        self.monotonic.offset
    }

    /// The realtime clock's offset from true time now, in ns (strobe excluded).
    pub fn realtime_offset(&self) -> i64 {
        self.realtime.base_at(monotonic_now())
    }

    /// The monotonic clock's offset from the real one now, in ns (strobe excluded).
    pub fn monotonic_offset(&self) -> i64 {
        self.monotonic.base_at(monotonic_now())
    }

    /// The laws in force: (realtime, monotonic).
    pub fn laws(&self) -> (Law, Law) {
        (self.realtime, self.monotonic)
    }

    /// The rate both clocks run at.
    pub fn rate(&self) -> f64 {
        self.realtime.rate
    }

    /// The strobe in force, if any.
    pub fn strobe(&self) -> Option<Duration> {
        (self.realtime.strobe > 0).then(|| Duration::from_nanos(self.realtime.strobe as u64))
    }

    /// Whether a fault is in force: the realtime clock is off, or either clock runs at another rate or
    /// strobes. A monotonic lead left by a healed rate is not a fault (timers read only differences).
    pub fn is_faked(&self) -> bool {
        self.realtime
            != Law {
                t0: self.realtime.t0,
                ..Law::TRUE
            }
            || self.monotonic.rate != 1.0
            || self.monotonic.strobe != 0
    }

    /// The pid of the last process that loaded the shim with this control file (`None`: none yet).
    pub fn attached_pid(&self) -> Option<u32> {
        match self.control.word(W_PID).load(Ordering::Relaxed) {
            0 => None,
            p => u32::try_from(p).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_law_adds_its_rate_and_strobe_to_its_offset() {
        let s = 1_000_000_000i64;
        let law = Law {
            t0: 10 * s,
            offset: 5 * s,
            rate: 4.0,
            strobe: 0,
        };
        assert_eq!(law.base_at(20 * s), 35 * s, "10 s at ×4 gains 30 s");
        assert_eq!(
            law.base_at(0),
            5 * s,
            "before its anchor a law is its offset"
        );
        let strobe = Law {
            strobe: s / 5,
            rate: 1.0,
            ..law
        };
        assert_eq!(
            strobe.offset_at(10 * s),
            5 * s + s / 5,
            "a strobe starts ahead"
        );
        assert_eq!(strobe.offset_at(11 * s + 1), 5 * s);
        assert_eq!(strobe.offset_at(12 * s + 1), 5 * s + s / 5);
    }

    #[test]
    fn a_jump_moves_only_realtime_and_heal_never_moves_monotonic_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FakeClock::create(&dir.path().join("clock")).unwrap();
        assert!(!c.is_faked());
        c.jump(3_600_000_000_000).unwrap();
        assert!(c.is_faked());
        assert_eq!(c.monotonic_offset(), 0, "a jump leaves the monotonic clock");
        assert!((c.realtime_offset() - 3_600_000_000_000).abs() < 1_000_000);
        c.set_rate(4.0).unwrap();
        let t = monotonic_now();
        std::thread::sleep(Duration::from_millis(50));
        let lead = c.monotonic_offset();
        assert!(lead >= 3 * (monotonic_now() - t) / 2, "×4 gains: {lead} ns");
        let kept = c.heal();
        assert!(kept >= lead, "heal keeps the monotonic lead {lead}: {kept}");
        assert_eq!(c.realtime_offset(), 0);
        assert!(!c.is_faked(), "a kept monotonic lead is no fault");
    }

    #[test]
    fn jumps_and_strobes_beyond_their_limits_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FakeClock::create(&dir.path().join("clock")).unwrap();
        let day = 86_400_000_000_000i64;
        c.jump(6 * day).unwrap();
        let e = c.jump(2 * day).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the clock would be 8d ahead, beyond the limit of ±7d (168h)"
        );
        assert!((c.realtime_offset() - 6 * day).abs() < 1_000_000_000);
        let e = c.set_strobe(Duration::from_secs(2)).unwrap_err();
        assert_eq!(e.to_string(), "a strobe is at most 1s, not 2s");
        assert!(c.set_rate(f64::NAN).is_err());
    }
}
