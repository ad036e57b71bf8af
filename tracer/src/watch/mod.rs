//! `tracer watch`: the transfers of processes the tracer did not write (a pid, every
//! process of a name, or a command it starts), each with its live ledger, the textbook
//! method it behaves like and the evidence, in the TUI or printed (`--headless`).
//!
//! The `board` is the model and what watch keeps per transfer (pure); `names` reads /proc
//! for the transfers' paths and addresses; `report` prints, `expect` checks `--expect`.

pub mod board;
pub mod expect;
pub mod names;
pub mod report;

pub use board::{Board, Row, TransferReport};
pub use expect::Expectations;
pub use report::WatchReport;
