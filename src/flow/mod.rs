//! Flows: canonical keys, per-flow statistics and the bounded flow table.

pub(crate) mod index;
pub mod key;
pub mod record;
pub mod stats;
pub mod table;
mod tunnel;

pub use key::{community_id, FlowKey};
pub use record::FlowRecord;
pub use stats::Spread;
pub use table::{EndReason, Flow, FlowHasher, FlowTable, TcpState, Timeouts};
