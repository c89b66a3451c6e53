//! Wiring: the `replay` (offline, as fast as possible) and `run` (daemon: live interface or
//! paced capture file, HTTP metrics, signals) jobs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use prometheus::IntCounter;
use serde::Serialize;

use crate::alert::AlertRecord;
use crate::capture::file::{FileSource, Loaded, Pacer};
use crate::capture::live::{LiveBackend, LiveSource};
use crate::capture::{Frame, LinkType};
use crate::config::Config;
use crate::decode::{Layer, Reason};
use crate::detect::AlertKind;
use crate::export::http::HttpServer;
use crate::export::Metrics;
use crate::pipeline::{Engine, Stats, GTPU_MESSAGES, LINK_TYPES, TRANSPORTS};

/// Slowest accepted replay speed of `run --pcap` (`--speed`, `capture.replay_speed`): at
/// 0.001 one second of capture takes about 17 minutes.
pub const MIN_REPLAY_SPEED: f64 = 0.001;

/// Highest `--speed` / `capture.replay_speed`.
pub const MAX_REPLAY_SPEED: f64 = 1e6;
/// Longest accepted `run --linger`, seconds (about 115 days).
pub const MAX_LINGER_S: f64 = 1e7;
/// Alert records queued per sink of the daemon before records for that sink are dropped.
pub const ALERT_QUEUE_RECORDS: usize = 65536;
/// How long the daemon waits at shutdown for standard output to take the queued records.
pub const STDOUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Minimum interval between two repeated warnings about the same sink problem.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// A sink writes its buffered records once this many bytes are pending.
const SINK_FLUSH_BYTES: usize = 64 * 1024;

/// Checks that what the configuration points at exists, so that `check-config` (run as
/// `ExecStartPre`) catches what would stop `run`: the capture file can be opened and has a
/// capture header, the interface exists, and the alert file's directory exists. Errors name
/// the key and the problem. Creates nothing.
pub fn preflight(cfg: &Config) -> anyhow::Result<()> {
    if !cfg.capture.pcap.is_empty() {
        FileSource::open(Path::new(&cfg.capture.pcap)).context("capture.pcap")?;
    }
    // Validation only requires > 0; a replay at 1e-300 would take practically forever.
    let speed = cfg.capture.replay_speed;
    if speed.is_nan() || speed < MIN_REPLAY_SPEED {
        bail!("capture.replay_speed: must be at least {MIN_REPLAY_SPEED}, got {speed}");
    }
    let iface = &cfg.capture.interface;
    if !iface.is_empty() {
        if iface.contains('/') || iface == "." || iface == ".." {
            bail!("capture.interface: not an interface name: {iface:?}");
        }
        if !Path::new("/sys/class/net").join(iface).exists() {
            bail!("capture.interface: no network interface named {iface:?} on this host");
        }
    }
    for (key, file) in [
        ("alerts.file", &cfg.alerts.file),
        ("flow.records_file", &cfg.flow.records_file),
    ] {
        if file.is_empty() {
            continue;
        }
        let p = Path::new(file);
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!("{key}: directory {} does not exist", dir.display());
        }
        if p.is_dir() {
            bail!("{key}: {} is a directory", p.display());
        }
    }
    Ok(())
}

fn sensor_name(cfg: &Config) -> String {
    if !cfg.alerts.sensor_name.is_empty() {
        return cfg.alerts.sensor_name.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "fivewatch".into())
}

mod replay;
mod run;
mod sink;

pub use replay::{replay, replay_with, AlertLine, FileReport, ReplayOptions, ReplaySummary};
pub use run::{run, RunOptions, Source};
pub use sink::AlertSink;
