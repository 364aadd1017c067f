//! Quantities as a person writes them: `5s`, `2.2s`, `150ms`, `1m30s`, never `5.000922246s`.

use std::time::Duration;

/// A duration at the precision a person would write it: whole microseconds below a millisecond, whole
/// milliseconds below a second, tenths of a second below ten seconds, whole seconds below a minute, then
/// minutes and seconds. Rounded to nearest.
pub fn duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        return "0s".into();
    }
    if us < 1_000 {
        return format!("{us}µs");
    }
    let ms = (us + 500) / 1_000;
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let tenths = (ms + 50) / 100;
    if tenths < 100 {
        return if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    let secs = (ms + 500) / 1_000;
    if secs < 60 {
        return format!("{secs}s");
    }
    if secs < 3_600 {
        return match secs % 60 {
            0 => format!("{}m", secs / 60),
            s => format!("{}m{s}s", secs / 60),
        };
    }
    // From an hour on, to the nearest minute: `49h`, not `2940m`.
    let mins = (secs + 30) / 60;
    let (h, m) = (mins / 60, mins % 60);
    match (h, m) {
        (h, 0) if h >= 24 && h % 24 == 0 => format!("{}d", h / 24),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// A duration exactly, as a person writes it and as the console and scenario files read it back
/// ([`crate::command::fault::read_duration`]): the largest unit that holds it whole (`7d`, `49h`, `2m`,
/// `10s`, `1.5s`, `1550ms`, `250us`, `10ns`), never rounded (`1550ms` stays `1550ms`, never `1.6s`). The
/// one ladder of units behind a command's text and a scenario file's times; [`duration`] is the rounded
/// one for measurements.
pub fn exact(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if !ns.is_multiple_of(1_000_000) {
        return if ns.is_multiple_of(1_000) {
            format!("{}us", ns / 1_000)
        } else {
            format!("{ns}ns")
        };
    }
    let ms = ns / 1_000_000;
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(86_400_000) {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else if ms.is_multiple_of(100) {
        format!("{}.{}s", ms / 1_000, (ms % 1_000) / 100)
    } else {
        format!("{ms}ms")
    }
}

/// The longest duration squall takes from a person (a fault's `for`, a delay, a scenario's times): one
/// week. A longer one is a typo; refusing it where it is read keeps the sums of such times (a run's end is
/// its duration plus its recovery, scaled) far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `d` when it is at most [`MAX_DURATION`], else an error naming `word` (the text it was read from) and the
/// limit.
pub fn within_limit(d: Duration, word: &str) -> Result<Duration, String> {
    if d > MAX_DURATION {
        Err(too_long(word))
    } else {
        Ok(d)
    }
}

/// The one message for a duration over [`MAX_DURATION`], naming `word` (the text it was read from).
pub fn too_long(word: &str) -> String {
    format!("`{word}` is too long, at most 7 days (168h)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fault::human` and `scenario::fmt_duration` were two ladders (one without days, one without tenths
    /// or sub-millisecond times); both are [`exact`] now, and what it writes reads back the same.
    #[test]
    fn exact_durations_read_back_as_the_same_duration() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(10), "10ns"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_millis(1_550), "1550ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(49 * 3_600), "49h"),
            (Duration::from_secs(7 * 86_400), "7d"),
            (Duration::from_millis(90_500), "90.5s"),
            (Duration::from_millis(90_550), "90550ms"),
        ] {
            assert_eq!(exact(d), text);
            assert_eq!(
                crate::command::fault::read_duration(text).ok(),
                Some(d),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_read_as_a_person_writes_them() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1_500), "1µs"),
            (Duration::from_micros(999), "999µs"),
            (Duration::from_millis(150), "150ms"),
            (Duration::from_nanos(5_000_922_246), "5s"),
            (Duration::from_millis(2_200), "2.2s"),
            (Duration::from_millis(12_400), "12s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(3_599), "59m59s"),
            (Duration::from_secs(3_600), "1h"),
            (Duration::from_secs(5_400), "1h30m"),
            (Duration::from_secs(2_940 * 60), "49h"),
            (Duration::from_secs(7 * 86_400), "7d"),
        ];
        for (d, want) in cases {
            assert_eq!(duration(d), want, "{d:?}");
        }
    }
}
