//! `tracer watch`: the transfers of processes the tracer did not write (a pid, every
//! process of a name, or a command it starts), each with its live ledger, the textbook
//! method it behaves like and the evidence, in the TUI or printed (`--headless`).
//!
//! `names` reads /proc for the transfers' paths and addresses.

pub mod names;
