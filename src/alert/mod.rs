//! Alerts: turns detector episode events into one JSON object per line, EVE-compatible
//! where EVE has a field (`timestamp`, `event_type`, `src_ip`, `src_port`, `dest_ip`,
//! `dest_port`, `proto`, `community_id`), with the alert lifecycle (`state`: `new`,
//! `ongoing`, `resolved`), a stable `alert_id` per episode, and the observed value against
//! its threshold and window.
//!
//! One alert per attack episode and victim: an episode produces one `new` record, then
//! `ongoing` records at most once per update interval (or when its severity rises), and one
//! `resolved` record.

pub mod record;

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::detect::{severity, AlertKind, Event, Phase};

pub use record::{AlertRecord, Severity};

struct OpenAlert {
    alert_id: String,
    last_emit_ns: u64,
    severity: Severity,
    pending: Option<Event>,
}

/// Alert lifecycle bookkeeping: ids, update rate limiting, counts.
pub struct AlertManager {
    open: HashMap<(AlertKind, u64, std::net::IpAddr, u64), OpenAlert>,
    update_interval_ns: u64,
    sensor: String,
    /// Episodes opened, by kind and severity at opening.
    pub opened: HashMap<(AlertKind, Severity), u64>,
}

impl AlertManager {
    /// `update_interval_ns`: least capture time between two `ongoing` records of one alert.
    /// `sensor`: name written in every record's `sensor` field (host name by default).
    pub fn new(update_interval_ns: u64, sensor: String) -> Self {
        AlertManager {
            open: HashMap::new(),
            update_interval_ns,
            sensor,
            opened: HashMap::new(),
        }
    }

    /// Alerts currently open, per kind.
    pub fn open_count(&self, kind: AlertKind) -> usize {
        self.open.keys().filter(|k| k.0 == kind).count()
    }

    /// Handle one event; the records to emit are pushed to `out`.
    pub fn handle(&mut self, ev: Event, out: &mut Vec<AlertRecord>) {
        let key = (ev.kind, ev.episode, ev.entity, ev.scope);
        let sev = Severity::of(severity(ev.peak.max(ev.observed), ev.threshold));
        match ev.phase {
            Phase::Open => {
                let alert_id = alert_id(&ev);
                *self.opened.entry((ev.kind, sev)).or_insert(0) += 1;
                out.push(AlertRecord::from_event(&ev, &alert_id, sev, "new", &self.sensor));
                self.open.insert(
                    key,
                    OpenAlert {
                        alert_id,
                        last_emit_ns: ev.last_seen_ns,
                        severity: sev,
                        pending: None,
                    },
                );
            }
            Phase::Update => {
                let Some(a) = self.open.get_mut(&key) else { return };
                let due = ev.last_seen_ns.saturating_sub(a.last_emit_ns) >= self.update_interval_ns;
                if due || sev > a.severity {
                    a.last_emit_ns = ev.last_seen_ns;
                    a.severity = a.severity.max(sev);
                    a.pending = None;
                    out.push(AlertRecord::from_event(
                        &ev,
                        &a.alert_id,
                        a.severity,
                        "ongoing",
                        &self.sensor,
                    ));
                } else {
                    a.pending = Some(ev);
                }
            }
            Phase::Close => {
                let Some(a) = self.open.remove(&key) else { return };
                out.push(AlertRecord::from_event(
                    &ev,
                    &a.alert_id,
                    a.severity.max(sev),
                    "resolved",
                    &self.sensor,
                ));
            }
        }
    }

    /// Emit the last held-back `ongoing` record of every open alert (end of input or
    /// shutdown), so the final numbers are never lost.
    pub fn flush(&mut self, out: &mut Vec<AlertRecord>) {
        let mut keys: Vec<_> = self.open.keys().copied().collect();
        keys.sort_by_key(|k| (k.0.as_str(), k.1));
        for k in keys {
            if let Some(a) = self.open.get_mut(&k) {
                if let Some(ev) = a.pending.take() {
                    a.last_emit_ns = ev.last_seen_ns;
                    out.push(AlertRecord::from_event(
                        &ev,
                        &a.alert_id,
                        a.severity,
                        "ongoing",
                        &self.sensor,
                    ));
                }
            }
        }
    }
}

/// Stable id of an episode: the same capture gives the same ids on every replay.
fn alert_id(ev: &Event) -> String {
    let h = foldhash::quality::FixedState::with_seed(0xa1e7).hash_one((
        ev.kind.as_str(),
        ev.entity,
        ev.scope,
        ev.first_seen_ns,
    ));
    format!("{:016x}", h)
}
