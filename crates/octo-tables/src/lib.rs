//! Tables of classified log messages: every line a service recognises becomes a row of its
//! message's table (`Auth`, `Web`, `Network`…), with the fixed columns every row has (time,
//! device, service, message, taxonomy, level) and the fields its pattern captured, typed by the
//! table's schema. This replaces Octopussy's RRD graphs and report queries: rows are selected by
//! time range and field values and counted grouped by any column.
//!
//! The layout is columnar, because the questions are (failed logins per source address over a
//! day is a scan of three columns over millions of rows):
//!
//! - rows are appended to an open, in-memory [`segment`] per table and sealed into an immutable
//!   file every few minutes or million rows; sealed files are never rewritten, only deleted by
//!   retention, so readers need no locks;
//! - each column of a segment is stored apart, dictionary-encoded when it holds text, so a
//!   query reads only the columns it names, evaluates a condition once per distinct value and
//!   then compares small integer codes, and counts groups in an array indexed by code;
//! - a segment's footer keeps its time range, so a query skips segments outside its range
//!   without reading them.
//!
//! The tables are derived data: the raw store holds every line, and a flush records how far
//! each device's lines were classified ([`store::Checkpoint`]), so that after a crash the lines
//! since are classified again, exactly once.
//!
//! The parts: [`schema`] (what a table holds) → [`column`] (encoding) → [`segment`] (files) →
//! [`store`] (tables, flushes, retention) → [`query`] (filters, rows, grouped counts).

#![warn(missing_docs)]

pub mod column;
pub mod query;
pub mod schema;
pub mod segment;
pub mod store;

pub use query::{Answer, Filter, Group, Op, Outcome, Query};
pub use schema::{ColumnType, TableSchema};
pub use store::{Checkpoint, Row, TableError, TableInfo, TableOptions, TableStore};
