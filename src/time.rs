//! Capture-time formatting.

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
