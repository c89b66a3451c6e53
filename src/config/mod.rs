//! Configuration: the TOML file as written (`raw` structs, unknown keys rejected with
//! their name and line) and its validation into the settings the core uses.
//! `config/fivewatch.toml` documents every key with its default and unit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::capture::live::{Fanout, FanoutMode, LiveBackend, LiveOptions, RingConfig};
use crate::detect::port_scan::PortScanConfig;
use crate::detect::syn_flood::SynFloodConfig;
use crate::flow::Timeouts;

const SEC: u64 = 1_000_000_000;

/// A configuration error, with the file name and (for syntax / unknown-key errors) the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {cause}", .path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause (part of the message, so not chained as a `source`).
        cause: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong type.
    #[error("config file {}: {message}", .path.display())]
    Parse {
        /// File.
        path: PathBuf,
        /// toml's message (names the key, line and column).
        message: String,
    },
    /// A value out of range.
    #[error("config file {}: {key}: {message}", .path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// Dotted key name.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// `[capture]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSection {
    /// Live interface to capture on (empty: none).
    pub interface: String,
    /// Capture file for `run` (empty: none).
    pub pcap: String,
    /// Replay speed for `run --pcap`: 1.0 = recorded speed.
    pub replay_speed: f64,
    /// Replay the file again from the start when it ends (`run --pcap` only).
    pub replay_loop: bool,
    /// `ring` (`TPACKET_V3` memory-mapped ring, Linux default), `af_packet` (own socket read
    /// with `recvmsg`, kernel drop counters) or `pnet`.
    pub backend: String,
    /// Put the interface in promiscuous mode.
    pub promiscuous: bool,
    /// Socket receive buffer, bytes (0 = kernel default, else at least 65536).
    pub socket_buffer_bytes: usize,
    /// Frames queued between capture and worker before drops, in batches of up to 256.
    pub queue_batches: usize,
    /// `ring` backend: bytes per ring block (power of two, 64 KiB to 64 MiB).
    pub ring_block_size: u64,
    /// `ring` backend: number of ring blocks (at least 2; whole ring at most 2 GiB).
    pub ring_block_count: u64,
    /// `ring` backend: ms after which a block that is not full is handed over (1 to 1000).
    pub ring_block_timeout_ms: u64,
    /// `PACKET_FANOUT` group id shared with other sockets on the interface (0: none).
    pub fanout_group: u32,
    /// Fanout mode: `hash` (flow hash of the outer packet, fragments reassembled first),
    /// `lb`, `cpu` or `qm`.
    pub fanout_mode: String,
}

impl Default for CaptureSection {
    fn default() -> Self {
        CaptureSection {
            interface: String::new(),
            pcap: String::new(),
            replay_speed: 1.0,
            replay_loop: false,
            backend: "ring".into(),
            promiscuous: true,
            socket_buffer_bytes: 32 << 20,
            queue_batches: 1024,
            ring_block_size: RingConfig::default().block_size.into(),
            ring_block_count: RingConfig::default().block_count.into(),
            ring_block_timeout_ms: RingConfig::default().block_timeout_ms.into(),
            fanout_group: 0,
            fanout_mode: "hash".into(),
        }
    }
}

impl CaptureSection {
    /// The live-capture settings of a validated section (see [`Config::validate`]); values
    /// out of range (only possible without validation) saturate and are rejected by
    /// [`LiveSource::open_with`](crate::capture::LiveSource::open_with).
    pub fn live_options(&self) -> LiveOptions {
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        LiveOptions {
            backend: self.backend.parse().unwrap_or_default(),
            promiscuous: self.promiscuous,
            rcvbuf_bytes: self.socket_buffer_bytes,
            ring: RingConfig {
                block_size: u32_of(self.ring_block_size),
                block_count: u32_of(self.ring_block_count),
                block_timeout_ms: u32_of(self.ring_block_timeout_ms),
            },
            fanout: u16::try_from(self.fanout_group)
                .ok()
                .filter(|&g| g != 0)
                .map(|group| Fanout {
                    group,
                    mode: self.fanout_mode.parse().unwrap_or_default(),
                }),
        }
    }
}

/// `[pipeline]`: flow workers (see [`crate::pipeline::workers`]).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Flow worker threads, each with its own flow table (`flow.capacity` is split between
    /// them) and session-table replica; 0 = one per available CPU core. `replay` with one
    /// worker runs everything on its own thread.
    pub workers: usize,
    /// Batches of up to 256 packets queued per worker. When a worker falls behind, live
    /// capture drops (counted per worker), file replay waits.
    pub worker_queue_batches: usize,
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            workers: 0,
            worker_queue_batches: 64,
        }
    }
}

impl PipelineSection {
    /// The number of flow workers: `workers`, or the available CPU cores when 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Listen address of the HTTP server (`/metrics`, `/healthz`); empty disables it.
    pub listen: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: DEFAULT_METRICS_LISTEN.into(),
        }
    }
}

/// Default metrics listen address.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9977";

/// Most flow workers `pipeline.workers` (and `--workers`) accepts.
pub const MAX_WORKERS: usize = 256;

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// JSON-lines alert file, appended to (empty: none).
    pub file: String,
    /// Also write alerts to standard output.
    pub stdout: bool,
    /// Least capture time between two `ongoing` records of one alert, seconds.
    pub update_interval_s: f64,
    /// Sensor name in every record (empty: host name).
    pub sensor_name: String,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            file: String::new(),
            stdout: true,
            update_interval_s: 60.0,
            sensor_name: String::new(),
        }
    }
}

/// `[flow]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSection {
    /// Most flows held at once; beyond it the flow nearest its idle timeout is evicted. Each
    /// flow held costs about 136 bytes (a 128-byte entry plus the hash index;
    /// BENCHMARKS.md), so 10 000 000 flows take about 1.4 GB.
    pub capacity: usize,
    /// Idle timeout of TCP flows before the handshake completes, seconds.
    pub tcp_new_timeout_s: f64,
    /// Idle timeout of established TCP flows, seconds.
    pub tcp_established_timeout_s: f64,
    /// Idle timeout of TCP flows after RST / FIN both ways, seconds.
    pub tcp_closed_timeout_s: f64,
    /// Idle timeout of UDP flows, seconds.
    pub udp_timeout_s: f64,
    /// Idle timeout of other flows (ICMP, SCTP, fragments ...), seconds.
    pub other_timeout_s: f64,
    /// JSON-lines file that gets one record per flow when it ends (empty: none). Used by
    /// `run`, and by `replay` unless `--flows` is given.
    pub records_file: String,
}

impl Default for FlowSection {
    fn default() -> Self {
        FlowSection {
            capacity: 1_000_000,
            tcp_new_timeout_s: 30.0,
            tcp_established_timeout_s: 300.0,
            tcp_closed_timeout_s: 10.0,
            udp_timeout_s: 60.0,
            other_timeout_s: 30.0,
            records_file: String::new(),
        }
    }
}

/// `[session]`: the PFCP session table (`crate::session`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    /// Most PFCP sessions held; the least recently active one is evicted beyond it.
    pub capacity: usize,
    /// Seconds after the first packet during which a GTP-U TEID without PFCP state counts as
    /// "unknown" (its session may have been set up before the sensor started) rather than
    /// "unmapped".
    pub learning_period_s: f64,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection {
            capacity: 100_000,
            learning_period_s: 60.0,
        }
    }
}

/// `[decode]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeSection {
    /// A UDP port on which GTP-U is decoded in addition to 2152 (0: none).
    pub extra_gtpu_port: u16,
}

/// `[detect.syn_flood]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SynFloodSection {
    /// Run the detector.
    pub enabled: bool,
    /// Sliding window, seconds.
    pub window_s: f64,
    /// Half-open SYN/s towards one host:port that raises an alert.
    pub port_threshold_syn_per_s: f64,
    /// Half-open SYN/s towards one host over all its ports that raises an alert.
    pub host_threshold_syn_per_s: f64,
    /// Seconds below half the threshold before the alert is resolved.
    pub resolve_after_s: f64,
    /// Most destination hosts tracked.
    pub max_tracked_hosts: usize,
    /// Most destination host:port pairs tracked.
    pub max_tracked_ports: usize,
    /// Most SYN-flood alerts open at once; further episodes are counted, not opened.
    pub max_open_alerts: usize,
}

impl Default for SynFloodSection {
    fn default() -> Self {
        SynFloodSection {
            enabled: true,
            window_s: 5.0,
            port_threshold_syn_per_s: 300.0,
            host_threshold_syn_per_s: 2000.0,
            resolve_after_s: 30.0,
            max_tracked_hosts: 65536,
            max_tracked_ports: 262144,
            max_open_alerts: 1024,
        }
    }
}

/// `[detect.port_scan]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PortScanSection {
    /// Run the detector.
    pub enabled: bool,
    /// Window over which unanswered probes are counted, seconds.
    pub window_s: f64,
    /// Distinct unanswered ports on one host that raise a vertical-scan alert.
    pub vertical_ports: u32,
    /// Distinct unanswered hosts on one port that raise a horizontal-scan alert.
    pub horizontal_hosts: u32,
    /// Seconds without new probes before the alert is resolved.
    pub resolve_after_s: f64,
    /// Most sources tracked.
    pub max_tracked_sources: usize,
    /// Most probe records (distinct target and port, answered or not) kept over all
    /// sources.
    pub max_tracked_probes: usize,
    /// Most port-scan alerts open at once; further episodes are counted, not opened.
    pub max_open_alerts: usize,
}

impl Default for PortScanSection {
    fn default() -> Self {
        PortScanSection {
            enabled: true,
            window_s: 60.0,
            vertical_ports: 100,
            horizontal_hosts: 100,
            resolve_after_s: 60.0,
            max_tracked_sources: 65536,
            max_tracked_probes: 1_000_000,
            max_open_alerts: 1024,
        }
    }
}

/// `[detect]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSection {
    /// SYN flood.
    pub syn_flood: SynFloodSection,
    /// Port scan.
    pub port_scan: PortScanSection,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[capture]`.
    pub capture: CaptureSection,
    /// `[pipeline]`.
    pub pipeline: PipelineSection,
    /// `[metrics]`.
    pub metrics: MetricsSection,
    /// `[alerts]`.
    pub alerts: AlertsSection,
    /// `[decode]`.
    pub decode: DecodeSection,
    /// `[flow]`.
    pub flow: FlowSection,
    /// `[session]`.
    pub session: SessionSection,
    /// `[reassembly]`: outer IP fragment reassembly limits.
    pub reassembly: crate::reassembly::ReassemblyLimits,
    /// `[detect]`.
    pub detect: DetectSection,
}

fn secs(x: f64) -> u64 {
    (x * 1e9) as u64
}

impl Config {
    /// Read and validate `path`. Errors name the file, and the key and line where known.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.into(),
            cause,
        })?;
        Config::parse(&text, path)
    }

    /// Parse and validate TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
            // The key of a value of the wrong type or range, dotted, before TOML's own
            // message (line, column, the line itself), whose Rust type names are spelled out.
            let key = e.path().to_string();
            let mut message = plain_types(e.inner().to_string().trim_end());
            if !key.is_empty() && key != "." {
                message = format!("{key}: {message}");
            }
            ConfigError::Parse {
                path: path.into(),
                message,
            }
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Check ranges; the same checks run at start-up and in `check-config`.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &'static str, message: String| {
            Err(ConfigError::Invalid {
                path: path.into(),
                key,
                message,
            })
        };
        // A number in [lo, hi] (finite; `inf`/`nan` rejected).
        let range = |key: &'static str, v: f64, lo: f64, hi: f64| -> Result<(), ConfigError> {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    path: path.into(),
                    key,
                    message: format!("must be between {lo} and {hi}, got {v}"),
                })
            }
        };
        // Counts are checked as numbers too (exact: every limit is far below 2^53).
        let count = |key: &'static str, v: usize, lo: usize, hi: usize| range(key, v as f64, lo as f64, hi as f64);
        const DAY: f64 = 86_400.0;
        range("capture.replay_speed", self.capture.replay_speed, 0.001, 1e6)?;
        let backend = match self.capture.backend.parse::<LiveBackend>() {
            Ok(b) => b,
            Err(message) => return bad("capture.backend", message),
        };
        self.validate_ring_and_fanout(backend, path)?;
        if self.capture.socket_buffer_bytes != 0 {
            count(
                "capture.socket_buffer_bytes",
                self.capture.socket_buffer_bytes,
                65536,
                1 << 31,
            )?;
        }
        count("capture.queue_batches", self.capture.queue_batches, 1, 65536)?;
        count("pipeline.workers", self.pipeline.workers, 0, MAX_WORKERS)?;
        count(
            "pipeline.worker_queue_batches",
            self.pipeline.worker_queue_batches,
            1,
            4096,
        )?;
        if !self.capture.interface.is_empty() && !self.capture.pcap.is_empty() {
            return bad(
                "capture.pcap",
                "set either capture.interface or capture.pcap, not both".into(),
            );
        }
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "metrics.listen",
                format!("not an IP:port address: {:?}", self.metrics.listen),
            );
        }
        range("alerts.update_interval_s", self.alerts.update_interval_s, 1.0, DAY)?;
        count("flow.capacity", self.flow.capacity, 1, 100_000_000)?;
        count("session.capacity", self.session.capacity, 1, 100_000_000)?;
        range(
            "session.learning_period_s",
            self.session.learning_period_s,
            0.0,
            7.0 * DAY,
        )?;
        if let Err(e) = self.reassembly.validate() {
            return bad(e.key, e.message);
        }
        range("flow.tcp_new_timeout_s", self.flow.tcp_new_timeout_s, 0.001, 7.0 * DAY)?;
        range(
            "flow.tcp_established_timeout_s",
            self.flow.tcp_established_timeout_s,
            0.001,
            7.0 * DAY,
        )?;
        range(
            "flow.tcp_closed_timeout_s",
            self.flow.tcp_closed_timeout_s,
            0.001,
            7.0 * DAY,
        )?;
        range("flow.udp_timeout_s", self.flow.udp_timeout_s, 0.001, 7.0 * DAY)?;
        range("flow.other_timeout_s", self.flow.other_timeout_s, 0.001, 7.0 * DAY)?;
        let s = &self.detect.syn_flood;
        range("detect.syn_flood.window_s", s.window_s, 0.1, 3600.0)?;
        range(
            "detect.syn_flood.port_threshold_syn_per_s",
            s.port_threshold_syn_per_s,
            0.001,
            1e9,
        )?;
        range(
            "detect.syn_flood.host_threshold_syn_per_s",
            s.host_threshold_syn_per_s,
            0.001,
            1e9,
        )?;
        range("detect.syn_flood.resolve_after_s", s.resolve_after_s, 0.0, DAY)?;
        count(
            "detect.syn_flood.max_tracked_hosts",
            s.max_tracked_hosts,
            1,
            100_000_000,
        )?;
        count(
            "detect.syn_flood.max_tracked_ports",
            s.max_tracked_ports,
            1,
            100_000_000,
        )?;
        count("detect.syn_flood.max_open_alerts", s.max_open_alerts, 1, 1_000_000)?;
        let p = &self.detect.port_scan;
        range("detect.port_scan.window_s", p.window_s, 0.1, DAY)?;
        range("detect.port_scan.resolve_after_s", p.resolve_after_s, 0.0, DAY)?;
        count("detect.port_scan.vertical_ports", p.vertical_ports as usize, 2, 4096)?;
        count(
            "detect.port_scan.horizontal_hosts",
            p.horizontal_hosts as usize,
            2,
            4096,
        )?;
        count(
            "detect.port_scan.max_tracked_sources",
            p.max_tracked_sources,
            1,
            100_000_000,
        )?;
        count(
            "detect.port_scan.max_tracked_probes",
            p.max_tracked_probes,
            1,
            1_000_000_000,
        )?;
        count("detect.port_scan.max_open_alerts", p.max_open_alerts, 1, 1_000_000)?;
        // An open alert keeps its victim (scanner) in the detector's table: a table that open
        // alerts could fill would have to drop one of them without closing it.
        for (key, open, default, table, held, what) in [
            (
                "detect.syn_flood.max_open_alerts",
                s.max_open_alerts,
                SynFloodSection::default().max_open_alerts,
                "detect.syn_flood.max_tracked_hosts",
                s.max_tracked_hosts,
                "victim",
            ),
            (
                "detect.port_scan.max_open_alerts",
                p.max_open_alerts,
                PortScanSection::default().max_open_alerts,
                "detect.port_scan.max_tracked_sources",
                p.max_tracked_sources,
                "scanner",
            ),
        ] {
            if open >= held {
                let which = if open == default { " (its default)" } else { "" };
                let fix = if held >= 2 {
                    format!("set {key} to at most {} or raise {table} above {open}", held - 1)
                } else {
                    format!("raise {table} above {open}")
                };
                return bad(
                    key,
                    format!(
                        "must be below {table} ({held}), got {open}{which}: each open alert keeps \
                         its {what} in that table, which needs room for new ones; {fix}"
                    ),
                );
            }
        }
        Ok(())
    }

    /// The `[capture]` ring and fanout keys.
    fn validate_ring_and_fanout(&self, backend: LiveBackend, path: &Path) -> Result<(), ConfigError> {
        let c = &self.capture;
        let bad = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.into(),
            key,
            message,
        };
        let fits = |key: &'static str, v: u64| match u32::try_from(v) {
            Ok(x) => Ok(x),
            Err(_) => Err(bad(key, format!("{v} is far too large"))),
        };
        let ring = RingConfig {
            block_size: fits("capture.ring_block_size", c.ring_block_size)?,
            block_count: fits("capture.ring_block_count", c.ring_block_count)?,
            block_timeout_ms: fits("capture.ring_block_timeout_ms", c.ring_block_timeout_ms)?,
        };
        if let Err((field, message)) = ring.validate() {
            let key = match field {
                "ring_block_size" => "capture.ring_block_size",
                "ring_block_count" => "capture.ring_block_count",
                _ => "capture.ring_block_timeout_ms",
            };
            return Err(bad(key, message));
        }
        if c.fanout_group > u32::from(u16::MAX) {
            return Err(bad(
                "capture.fanout_group",
                format!("must be between 0 (none) and 65535, got {}", c.fanout_group),
            ));
        }
        if let Err(message) = c.fanout_mode.parse::<FanoutMode>() {
            return Err(bad("capture.fanout_mode", message));
        }
        if c.fanout_group != 0 && backend == LiveBackend::Pnet {
            return Err(bad(
                "capture.fanout_group",
                "a fanout group needs backend \"ring\" or \"af_packet\", not \"pnet\"".into(),
            ));
        }
        Ok(())
    }

    /// Flow-table timeouts in ns.
    pub fn timeouts(&self) -> Timeouts {
        let f = &self.flow;
        Timeouts {
            tcp_new_ns: secs(f.tcp_new_timeout_s),
            tcp_established_ns: secs(f.tcp_established_timeout_s),
            tcp_closed_ns: secs(f.tcp_closed_timeout_s),
            udp_ns: secs(f.udp_timeout_s),
            other_ns: secs(f.other_timeout_s),
        }
    }

    /// PFCP session-table settings.
    pub fn session(&self) -> crate::session::SessionConfig {
        crate::session::SessionConfig {
            capacity: self.session.capacity,
            learning_period_ns: secs(self.session.learning_period_s),
            ..crate::session::SessionConfig::default()
        }
    }

    /// SYN flood detector settings, or None when disabled.
    pub fn syn_flood(&self) -> Option<SynFloodConfig> {
        let s = &self.detect.syn_flood;
        s.enabled.then(|| SynFloodConfig {
            window_ns: secs(s.window_s).max(SEC / 10),
            port_threshold: s.port_threshold_syn_per_s,
            host_threshold: s.host_threshold_syn_per_s,
            resolve_after_ns: secs(s.resolve_after_s),
            max_hosts: s.max_tracked_hosts,
            max_ports: s.max_tracked_ports,
            max_open_alerts: s.max_open_alerts,
        })
    }

    /// Port scan detector settings, or None when disabled.
    pub fn port_scan(&self) -> Option<PortScanConfig> {
        let p = &self.detect.port_scan;
        p.enabled.then(|| PortScanConfig {
            window_ns: secs(p.window_s).max(SEC / 10),
            vertical_ports: p.vertical_ports,
            horizontal_hosts: p.horizontal_hosts,
            resolve_after_ns: secs(p.resolve_after_s),
            max_sources: p.max_tracked_sources,
            max_probes: p.max_tracked_probes,
            max_open_alerts: p.max_open_alerts,
        })
    }
}

/// `message` with serde's names of Rust types ("expected u32") in the words of a config
/// file's reader.
fn plain_types(message: &str) -> String {
    const PLAIN: [(&str, &str); 8] = [
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a string", "expected a string in quotes"),
    ];
    let mut m = message.to_string();
    for (from, to) in PLAIN {
        if let Some(i) = m.find(from) {
            // Only a whole word: "expected u32" but not "expected u32x".
            let end = i + from.len();
            if !m[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                m.replace_range(i..end, to);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = Config::parse("[flow]\ncapacity = 10\ncapacty = 5\n", Path::new("x.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("capacty") && msg.contains("line 3"), "{msg}");
    }

    /// A value of the wrong type names its dotted key and the expected value in words.
    #[test]
    fn wrong_type_names_dotted_key_in_plain_words() {
        let cases = [
            (
                "[detect.port_scan]\nvertical_ports = \"many\"\n",
                "detect.port_scan.vertical_ports: ",
                "expected a whole number from 0 to 4294967295",
            ),
            (
                "[flow]\ncapacity = -5\n",
                "flow.capacity: ",
                "expected a whole number, 0 or more",
            ),
            (
                "[detect.syn_flood]\nenabled = 3\n",
                "detect.syn_flood.enabled: ",
                "expected true or false",
            ),
        ];
        for (text, key, words) in cases {
            let msg = Config::parse(text, Path::new("x.toml")).unwrap_err().to_string();
            assert!(
                msg.contains(key) && msg.contains(words) && msg.contains("line 2"),
                "{msg}"
            );
            assert!(!msg.contains("expected u") && !msg.contains("usize"), "{msg}");
        }
    }

    #[test]
    fn out_of_range_names_key() {
        let e = Config::parse("[detect.syn_flood]\nwindow_s = 0\n", Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().contains("detect.syn_flood.window_s"), "{e}");
    }

    /// Open alerts must leave room in their detector's table (a table full of open alerts
    /// would have to drop one without closing it).
    #[test]
    fn open_alerts_leave_room_in_the_tables() {
        for (text, key) in [
            (
                "[detect.syn_flood]\nmax_tracked_hosts = 64\n",
                "detect.syn_flood.max_open_alerts",
            ),
            (
                "[detect.port_scan]\nmax_tracked_sources = 8\nmax_open_alerts = 8\n",
                "detect.port_scan.max_open_alerts",
            ),
        ] {
            let e = Config::parse(text, Path::new("x.toml")).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("must be below"), "{e}");
            assert!(e.contains("set detect.") && e.contains("to at most"), "{e}");
        }
        Config::parse(
            "[detect.syn_flood]\nmax_tracked_hosts = 64\nmax_open_alerts = 63\n",
            Path::new("x.toml"),
        )
        .unwrap();
    }

    /// Each bad `[capture]` ring / fanout value is rejected with its key and a reason.
    #[test]
    fn ring_and_fanout_errors_name_key_and_reason() {
        let cases = [
            ("ring_block_size = 100000", "capture.ring_block_size", "power of two"),
            ("ring_block_size = 4096", "capture.ring_block_size", "65536"),
            ("ring_block_size = 134217728", "capture.ring_block_size", "67108864"),
            ("ring_block_size = 99999999999", "capture.ring_block_size", "too large"),
            ("ring_block_count = 1", "capture.ring_block_count", "at least 2"),
            ("ring_block_count = 0", "capture.ring_block_count", "at least 2"),
            (
                "ring_block_size = 67108864\nring_block_count = 64",
                "capture.ring_block_count",
                "2 GiB",
            ),
            (
                "ring_block_timeout_ms = 0",
                "capture.ring_block_timeout_ms",
                "between 1 and 1000",
            ),
            (
                "ring_block_timeout_ms = 5000",
                "capture.ring_block_timeout_ms",
                "between 1 and 1000",
            ),
            ("fanout_group = 70000", "capture.fanout_group", "65535"),
            ("fanout_mode = \"rr\"", "capture.fanout_mode", "\"hash\""),
            (
                "backend = \"pnet\"\nfanout_group = 7",
                "capture.fanout_group",
                "not \"pnet\"",
            ),
            ("backend = \"tpacket\"", "capture.backend", "\"ring\""),
        ];
        for (body, key, reason) in cases {
            let text = format!("[capture]\n{body}\n");
            let e = Config::parse(&text, Path::new("x.toml")).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(reason), "{body:?}: {e}");
        }
    }

    #[test]
    fn ring_and_fanout_options() {
        let text = "[capture]\nring_block_size = 4194304\nring_block_count = 8\nring_block_timeout_ms = 50\nfanout_group = 42\nfanout_mode = \"lb\"\n";
        let o = Config::parse(text, Path::new("x.toml")).unwrap().capture.live_options();
        assert_eq!(o.backend, LiveBackend::Ring);
        assert_eq!(
            o.ring,
            RingConfig {
                block_size: 4 << 20,
                block_count: 8,
                block_timeout_ms: 50
            }
        );
        assert_eq!(
            o.fanout,
            Some(Fanout {
                group: 42,
                mode: FanoutMode::Lb
            })
        );
        let d = Config::default().capture.live_options();
        assert_eq!((d.fanout, d.ring), (None, RingConfig::default()));
        let text = "[capture]\nbackend = \"af_packet\"\nfanout_group = 1\n";
        let o = Config::parse(text, Path::new("x.toml")).unwrap().capture.live_options();
        assert_eq!(o.backend, LiveBackend::AfPacket);
        assert_eq!(o.fanout.map(|f| (f.group, f.mode)), Some((1, FanoutMode::Hash)));
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(Config::parse("", Path::new("x.toml")).unwrap(), Config::default());
    }
}

#[cfg(test)]
mod reference_file {
    use super::*;

    /// The shipped reference file documents the real defaults: parsing it must give
    /// exactly `Config::default()`.
    #[test]
    fn shipped_reference_equals_defaults() {
        let text = include_str!("../../config/fivewatch.toml");
        let cfg = Config::parse(text, Path::new("config/fivewatch.toml")).unwrap();
        assert_eq!(cfg, Config::default());
    }
}
