//! squall's time shim: a shared library preloaded into a node (`LD_PRELOAD`) that fakes its clocks as the
//! control file named by `SQUALL_CLOCK_FILE` says, changed live by squall while the node runs.
//!
//! Built by `chaos/build.rs` with `rustc --crate-type cdylib` alone (no crates, no std), so a fresh clone
//! needs nothing beyond the Rust toolchain. The layout of the control file and the meaning of its laws are
//! defined in `chaos/src/clock.rs`, which writes it; the two are kept in step by the tests in
//! `chaos/tests/time_shim.rs`, which run real processes under this library.
//!
//! Why a shim of our own rather than libfaketime: libfaketime (0.9.10) computes every faked clock from one
//! faked start time, so any jump of the wall clock also moves `CLOCK_MONOTONIC`, and a monotonic clock that
//! goes back stalls every timer of the process until real time catches up. Here the realtime clocks and
//! the monotonic clocks each follow their own law, so a jump moves only wall-clock time (as an NTP step
//! does), while rates and strobes reach the monotonic clock that timers read, and the monotonic clock
//! never returns a value below one it returned before.
//!
//! Each law is `fake = real + off0 + (t - t0) * (rate - 1) [+ strobe in even seconds since t0]`, with `t`
//! the real monotonic time in ns. Sleeps and waits with a timeout (`nanosleep`, `clock_nanosleep`,
//! `epoll_wait`, `epoll_pwait`, `poll`, `ppoll`) are scaled by the monotonic rate, so a node's timers
//! fire at the faked pace; absolute `clock_nanosleep` deadlines are translated from faked to real time.
//! Futex waits issued through `syscall(2)` (std's `Condvar::wait_timeout`) are not translated.

#![no_std]
// `real!` is used both inside and outside `unsafe` blocks; `c_long` casts are no-ops only on 64-bit targets.
#![allow(
    non_camel_case_types,
    unused_unsafe,
    clippy::missing_safety_doc,
    clippy::unnecessary_cast
)]

use core::ffi::{c_char, c_int, c_long, c_void};
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering, fence};

#[repr(C)]
pub struct timespec {
    tv_sec: i64,
    tv_nsec: c_long,
}

#[repr(C)]
pub struct timeval {
    tv_sec: i64,
    tv_usec: c_long,
}

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn getenv(name: *const c_char) -> *const c_char;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn getpid() -> c_int;
    fn abort() -> !;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort never returns and needs no state.
    unsafe { abort() }
}

const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;
const O_RDWR: c_int = 2;
const O_CLOEXEC: c_int = 0o2000000;
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 1;
const MAP_FAILED: *mut c_void = !0usize as *mut c_void;
const TIMER_ABSTIME: c_int = 1;

const CLOCK_REALTIME: c_int = 0;
const CLOCK_MONOTONIC: c_int = 1;
const CLOCK_MONOTONIC_RAW: c_int = 4;
const CLOCK_REALTIME_COARSE: c_int = 5;
const CLOCK_MONOTONIC_COARSE: c_int = 6;
const CLOCK_BOOTTIME: c_int = 7;
const CLOCK_TAI: c_int = 11;

// The control file (see chaos/src/clock.rs): 64-bit words.
const MAGIC: u64 = u64::from_le_bytes(*b"SQCLOCK1");
const MAP_LEN: usize = 4096;
const W_MAGIC: usize = 0;
const W_SEQ: usize = 1;
const W_PID: usize = 2;
const W_REALTIME: usize = 3;
const W_MONOTONIC: usize = 7;
const NS: i64 = 1_000_000_000;

/// The mapped control file; null until mapped, `MAP_FAILED` when there is none (real time passes through).
static CONTROL: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());

/// The largest value each monotonic clock has returned (by clock id), so that none ever goes back.
static LAST: [AtomicI64; 8] = [const { AtomicI64::new(i64::MIN) }; 8];

macro_rules! real {
    ($name:literal, $ty:ty) => {{
        static F: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
        let mut p = F.load(Ordering::Relaxed);
        if p.is_null() {
            // SAFETY: the symbol name is a NUL-terminated literal.
            p = unsafe { dlsym(RTLD_NEXT, concat!($name, "\0").as_ptr().cast()) };
            if p.is_null() {
                // SAFETY: without the real function the process cannot go on.
                unsafe { abort() }
            }
            F.store(p, Ordering::Relaxed);
        }
        // SAFETY: `p` is libc's function of that name, whose type is `$ty`.
        unsafe { core::mem::transmute::<*mut c_void, $ty>(p) }
    }};
}

type ClockGettime = unsafe extern "C" fn(c_int, *mut timespec) -> c_int;

/// Maps the control file once; returns its words, or null when there is none.
fn control() -> *const AtomicU64 {
    let p = CONTROL.load(Ordering::Acquire);
    if !p.is_null() {
        return if p as *mut c_void == MAP_FAILED {
            core::ptr::null()
        } else {
            p
        };
    }
    // SAFETY: plain libc calls on a NUL-terminated name and a path from the environment.
    let mapped = unsafe {
        let path = getenv(c"SQUALL_CLOCK_FILE".as_ptr());
        if path.is_null() {
            MAP_FAILED
        } else {
            let fd = open(path, O_RDWR | O_CLOEXEC);
            if fd < 0 {
                MAP_FAILED
            } else {
                let m = mmap(
                    core::ptr::null_mut(),
                    MAP_LEN,
                    PROT_READ | PROT_WRITE,
                    MAP_SHARED,
                    fd,
                    0,
                );
                close(fd);
                m
            }
        }
    };
    let mut words = mapped as *mut AtomicU64;
    if mapped != MAP_FAILED {
        // SAFETY: the mapping is MAP_LEN bytes, page aligned.
        if unsafe { &*words.add(W_MAGIC) }.load(Ordering::Relaxed) == MAGIC {
            // SAFETY: as above; squall reads this to know the shim reached the process.
            unsafe { &*words.add(W_PID) }.store(unsafe { getpid() } as u64, Ordering::Relaxed);
        } else {
            // Not a control file: real time passes through (the mapping stays, a page at most).
            words = MAP_FAILED as *mut AtomicU64;
        }
    }
    match CONTROL.compare_exchange(
        core::ptr::null_mut(),
        words,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // Another thread mapped it first: keep its mapping (this one stays unused, a page at most).
        Err(other) if other as *mut c_void != MAP_FAILED => other,
        Err(_) => core::ptr::null(),
        Ok(_) if words as *mut c_void == MAP_FAILED => core::ptr::null(),
        Ok(_) => words,
    }
}

/// Maps the control file as the library loads, so squall sees the shim in place before any clock is read.
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;

extern "C" fn init() {
    control();
}

#[derive(Clone, Copy)]
struct Law {
    t0: i64,
    off0: i64,
    rate: f64,
    strobe: i64,
}

impl Law {
    const TRUE: Law = Law {
        t0: 0,
        off0: 0,
        rate: 1.0,
        strobe: 0,
    };

    fn is_true(&self) -> bool {
        self.off0 == 0 && self.rate == 1.0 && self.strobe == 0
    }

    fn changes_rate(&self) -> bool {
        self.rate != 1.0
    }

    /// The offset from real time at real monotonic time `t`, in ns.
    fn offset(&self, t: i64) -> i64 {
        let dt = t.saturating_sub(self.t0).max(0);
        let mut off = self
            .off0
            .saturating_add((dt as f64 * (self.rate - 1.0)) as i64);
        if self.strobe > 0 && (dt / NS) % 2 == 0 {
            off = off.saturating_add(self.strobe);
        }
        off
    }
}

/// The realtime and monotonic laws now (a seqlock read; both true when there is no control file).
fn laws() -> (Law, Law) {
    let w = control();
    if w.is_null() {
        return (Law::TRUE, Law::TRUE);
    }
    // SAFETY: `w` is the live mapping of MAP_LEN bytes; every word read is inside it.
    let word = |i: usize| unsafe { &*w.add(i) };
    let read = |base: usize| Law {
        t0: word(base).load(Ordering::Relaxed) as i64,
        off0: word(base + 1).load(Ordering::Relaxed) as i64,
        rate: f64::from_bits(word(base + 2).load(Ordering::Relaxed)),
        strobe: word(base + 3).load(Ordering::Relaxed) as i64,
    };
    loop {
        let s1 = word(W_SEQ).load(Ordering::Acquire);
        if s1 % 2 == 1 {
            core::hint::spin_loop();
            continue;
        }
        let laws = (read(W_REALTIME), read(W_MONOTONIC));
        fence(Ordering::Acquire);
        if word(W_SEQ).load(Ordering::Relaxed) == s1 {
            // A rate outside what squall writes means a damaged file: keep real time.
            let sane = |l: &Law| l.rate.is_finite() && l.rate > 0.0;
            return if sane(&laws.0) && sane(&laws.1) {
                laws
            } else {
                (Law::TRUE, Law::TRUE)
            };
        }
    }
}

fn to_ns(ts: &timespec) -> i64 {
    ts.tv_sec
        .saturating_mul(NS)
        .saturating_add(ts.tv_nsec as i64)
}

fn from_ns(ns: i64) -> timespec {
    timespec {
        tv_sec: ns.div_euclid(NS),
        tv_nsec: ns.rem_euclid(NS) as c_long,
    }
}

fn real_ns(clk: c_int) -> i64 {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { real!("clock_gettime", ClockGettime)(clk, &mut ts) };
    to_ns(&ts)
}

fn is_monotonic(clk: c_int) -> bool {
    matches!(
        clk,
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME
    )
}

fn is_realtime(clk: c_int) -> bool {
    matches!(clk, CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_TAI)
}

/// The faked value of clock `clk` whose real value is `real`, in ns (`None`: the clock is not faked).
fn fake(clk: c_int, real: i64, laws: (Law, Law)) -> Option<i64> {
    if is_realtime(clk) {
        let law = laws.0;
        if law.is_true() {
            return None;
        }
        let t = if law.changes_rate() || law.strobe > 0 {
            real_ns(CLOCK_MONOTONIC)
        } else {
            law.t0
        };
        Some(real.saturating_add(law.offset(t)))
    } else if is_monotonic(clk) {
        let law = laws.1;
        if law.is_true() {
            return None;
        }
        let t = if clk == CLOCK_MONOTONIC {
            real
        } else {
            real_ns(CLOCK_MONOTONIC)
        };
        let v = real.saturating_add(law.offset(t));
        let prev = LAST[clk as usize].fetch_max(v, Ordering::Relaxed);
        Some(v.max(prev))
    } else {
        None
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(clk: c_int, ts: *mut timespec) -> c_int {
    let laws = laws();
    // SAFETY: the caller's arguments go to libc's clock_gettime unchanged.
    let r = unsafe { real!("clock_gettime", ClockGettime)(clk, ts) };
    if r != 0 || ts.is_null() {
        return r;
    }
    // SAFETY: libc wrote a valid timespec at `ts`.
    let ts = unsafe { &mut *ts };
    if let Some(v) = fake(clk, to_ns(ts), laws) {
        *ts = from_ns(v);
    }
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, tz: *mut c_void) -> c_int {
    type F = unsafe extern "C" fn(*mut timeval, *mut c_void) -> c_int;
    // SAFETY: the caller's arguments go to libc's gettimeofday unchanged.
    let r = unsafe { real!("gettimeofday", F)(tv, tz) };
    if r != 0 || tv.is_null() {
        return r;
    }
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec; `tv` was written by libc just now.
    unsafe {
        clock_gettime(CLOCK_REALTIME, &mut ts);
        (*tv).tv_sec = ts.tv_sec;
        (*tv).tv_usec = ts.tv_nsec / 1000;
    }
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn time(t: *mut i64) -> i64 {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec; `t` is the caller's, null or writable.
    unsafe {
        clock_gettime(CLOCK_REALTIME, &mut ts);
        if !t.is_null() {
            *t = ts.tv_sec;
        }
    }
    ts.tv_sec
}

/// A relative wait of `ns` faked nanoseconds, in real nanoseconds.
fn scale(ns: i64, law: &Law) -> i64 {
    if law.changes_rate() && ns > 0 {
        // Rounded up (no `f64::ceil` without std): a wait never ends before its faked time.
        let q = ns as f64 / law.rate;
        let i = q as i64;
        (if (i as f64) < q { i + 1 } else { i }).max(1)
    } else {
        ns
    }
}

/// A timeout in ms for epoll_wait or poll (negative: forever), scaled to real time.
fn scale_ms(ms: c_int) -> c_int {
    let law = laws().1;
    if ms <= 0 || !law.changes_rate() {
        return ms;
    }
    let real = scale(i64::from(ms) * 1_000_000, &law);
    c_int::try_from((real + 999_999) / 1_000_000).unwrap_or(c_int::MAX)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    type F = unsafe extern "C" fn(*const timespec, *mut timespec) -> c_int;
    let law = laws().1;
    if req.is_null() || !law.changes_rate() {
        // SAFETY: the caller's arguments unchanged.
        return unsafe { real!("nanosleep", F)(req, rem) };
    }
    // SAFETY: `req` is the caller's valid timespec.
    let real_req = from_ns(scale(to_ns(unsafe { &*req }), &law));
    // SAFETY: `real_req` lives across the call; `rem` is the caller's.
    let r = unsafe { real!("nanosleep", F)(&real_req, rem) };
    if r != 0 && !rem.is_null() {
        // SAFETY: libc wrote what remained, in real time: hand it back in faked time.
        unsafe { *rem = from_ns((to_ns(&*rem) as f64 * law.rate) as i64) };
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clk: c_int,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    type F = unsafe extern "C" fn(c_int, c_int, *const timespec, *mut timespec) -> c_int;
    let laws = laws();
    let law = if is_realtime(clk) { laws.0 } else { laws.1 };
    if req.is_null() || law.is_true() || !(is_realtime(clk) || is_monotonic(clk)) {
        // SAFETY: the caller's arguments unchanged.
        return unsafe { real!("clock_nanosleep", F)(clk, flags, req, rem) };
    }
    // SAFETY: `req` is the caller's valid timespec.
    let want = to_ns(unsafe { &*req });
    let rel = if flags & TIMER_ABSTIME != 0 {
        // A faked deadline: how long until the faked clock reaches it, in real time.
        let now = fake(clk, real_ns(clk), laws).unwrap_or_else(|| real_ns(clk));
        let left = want.saturating_sub(now);
        if left <= 0 {
            return 0;
        }
        scale(left, &laws.1)
    } else {
        scale(want, &laws.1)
    };
    let real_req = from_ns(rel);
    // SAFETY: `real_req` lives across the call; `rem` is the caller's (unused for absolute sleeps).
    unsafe { real!("clock_nanosleep", F)(clk, 0, &real_req, rem) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut c_void,
    max: c_int,
    timeout: c_int,
) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut c_void, c_int, c_int) -> c_int;
    // SAFETY: the caller's arguments, with the timeout in real time.
    unsafe { real!("epoll_wait", F)(epfd, events, max, scale_ms(timeout)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut c_void,
    max: c_int,
    timeout: c_int,
    sigmask: *const c_void,
) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut c_void, c_int, c_int, *const c_void) -> c_int;
    // SAFETY: the caller's arguments, with the timeout in real time.
    unsafe { real!("epoll_pwait", F)(epfd, events, max, scale_ms(timeout), sigmask) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut c_void, n: u64, timeout: c_int) -> c_int {
    type F = unsafe extern "C" fn(*mut c_void, u64, c_int) -> c_int;
    // SAFETY: the caller's arguments, with the timeout in real time.
    unsafe { real!("poll", F)(fds, n, scale_ms(timeout)) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut c_void,
    n: u64,
    tmo: *const timespec,
    sigmask: *const c_void,
) -> c_int {
    type F = unsafe extern "C" fn(*mut c_void, u64, *const timespec, *const c_void) -> c_int;
    let law = laws().1;
    if tmo.is_null() || !law.changes_rate() {
        // SAFETY: the caller's arguments unchanged.
        return unsafe { real!("ppoll", F)(fds, n, tmo, sigmask) };
    }
    // SAFETY: `tmo` is the caller's valid timespec.
    let real_tmo = from_ns(scale(to_ns(unsafe { &*tmo }), &law));
    // SAFETY: `real_tmo` lives across the call.
    unsafe { real!("ppoll", F)(fds, n, &real_tmo, sigmask) }
}
