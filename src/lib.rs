//! fivewatch: 5G (GTP-U on N3/N9) and IP traffic anomaly detector.
//!
//! Packets flow [`capture`] → [`decode`] → [`flow`] → [`detect`] → [`alert`], driven by
//! [`pipeline::Engine`], with counters published by [`export`]. Capture time (packet
//! timestamps) is the only clock the core sees.

#![warn(missing_docs)]

pub mod alert;
pub mod app;
pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod export;
pub mod flow;
pub mod pipeline;
pub mod reassembly;
pub mod session;
pub mod time;
