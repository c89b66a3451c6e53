//! Capture-time formatting and the wall clock.

/// The wall clock in ns since the Unix epoch (0 before 1970, saturating in 2554): the
/// capture time of live frames without a kernel timestamp, and of ticks on a quiet link.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// EVE-style timestamp `2021-04-28T10:30:21.099510+0000` from ns since the Unix epoch.
pub fn eve_timestamp(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let micros = (ns % 1_000_000_000) / 1000;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            micros
        ),
        Err(_) => format!("{secs}.{micros:06}"),
    }
}
