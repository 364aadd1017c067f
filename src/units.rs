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
