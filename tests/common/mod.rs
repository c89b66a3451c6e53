//! Shared helpers of the integration tests: the capture directory, the tshark-derived
//! expected values and small runners around the library. Everything read here comes from
//! `tests/data/` only.
#![allow(dead_code)]

pub mod frames;
pub mod planes;

use std::path::{Path, PathBuf};

use fivewatch::alert::AlertRecord;
use fivewatch::capture::{FileSource, LinkType};
use fivewatch::config::Config;
use fivewatch::decode::{self, DecodeError, Decoded};
use fivewatch::pipeline::{Engine, Stats};

/// `tests/data` of this crate.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

/// Path of capture `name` in `tests/data`.
pub fn capture(name: &str) -> PathBuf {
    let p = data_dir().join(name);
    assert!(p.is_file(), "missing test capture {}", p.display());
    p
}

/// Every capture file (`*.pcap`, `*.pcapng`) in `tests/data`, sorted by name.
pub fn all_captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")))
        .collect();
    v.sort();
    v
}

/// The tshark-derived expected values of capture `name`, if any
/// (`tests/data/expected/<name>.json`, made by `scripts/tshark-expected.py`).
pub fn expected(name: &str) -> Option<serde_json::Value> {
    let p = data_dir().join("expected").join(format!("{name}.json"));
    let text = std::fs::read_to_string(p).ok()?;
    Some(serde_json::from_str(&text).expect("expected JSON parses"))
}

/// Names of every capture that has an expected JSON, sorted.
pub fn captures_with_expected() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data_dir().join("expected"))
        .expect("tests/data/expected")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("read expected")).expect("parse expected");
            v["capture"].as_str().expect("capture field").to_string()
        })
        .collect();
    v.sort();
    v
}

/// A u64 field of an expected JSON object (panics with the key when absent).
pub fn u(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("expected JSON has no integer {key:?}"))
}

/// Result of running the engine over one capture file.
pub struct Run {
    /// Engine counters after `finish`.
    pub stats: Stats,
    /// Every alert record, in emission order.
    pub records: Vec<AlertRecord>,
    /// Packets the file reader delivered.
    pub packets: u64,
    /// The reader's error, if the file ended early.
    pub error: Option<String>,
}

/// Run an [`Engine`] with `cfg` over `path` (frames in file order, then `finish`).
pub fn run_engine(cfg: &Config, path: &Path) -> Run {
    let mut engine = Engine::new(cfg, "test-sensor".into());
    let mut records = Vec::new();
    let mut packets = 0u64;
    let res = FileSource::open(path).and_then(|mut src| {
        src.for_each(|f| {
            packets += 1;
            engine.process(&f);
            records.extend(engine.take_records());
        })
    });
    engine.finish();
    records.extend(engine.take_records());
    Run {
        stats: engine.stats().clone(),
        records,
        packets,
        error: res.err().map(|e| e.to_string()),
    }
}

/// One frame of a capture, copied out of the reader.
pub struct OwnedFrame {
    /// Capture timestamp, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Link type.
    pub linktype: LinkType,
    /// Captured bytes.
    pub data: Vec<u8>,
}

/// Every frame of `path` (panics on a reader error).
pub fn frames(path: &Path) -> Vec<OwnedFrame> {
    let mut out = Vec::new();
    FileSource::open(path)
        .and_then(|mut s| {
            s.for_each(|f| {
                out.push(OwnedFrame {
                    ts_ns: f.ts_ns,
                    linktype: f.linktype,
                    data: f.data.to_vec(),
                })
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

/// Decode every frame of `path` with [`fivewatch::decode::decode`].
pub fn decode_all(path: &Path) -> Vec<Result<Decoded, DecodeError>> {
    frames(path)
        .iter()
        .map(|f| decode::decode(f.linktype, &f.data))
        .collect()
}

/// Feed one built Ethernet frame (captured whole) to `engine` at capture time `ts_ns`.
pub fn feed_ethernet(engine: &mut Engine, ts_ns: u64, data: &[u8]) {
    engine.process(&fivewatch::capture::Frame {
        ts_ns,
        linktype: LinkType::ETHERNET,
        data,
        wire_len: data.len() as u32,
    });
}

/// Feed every frame of capture `name` to `engine`, in file order; returns the last frame's
/// timestamp (ns since the Unix epoch).
pub fn feed_capture(engine: &mut Engine, name: &str) -> u64 {
    let mut last = 0;
    for f in frames(&capture(name)) {
        last = f.ts_ns;
        engine.process(&fivewatch::capture::Frame {
            ts_ns: f.ts_ns,
            linktype: f.linktype,
            data: &f.data,
            wire_len: f.data.len() as u32,
        });
    }
    last
}
