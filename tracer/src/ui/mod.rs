//! The terminal UI (ratatui + crossterm): the animated data path, the mode-switch
//! timeline, the ledger and the narration, over live traced transfers (`tracer demo`), the
//! transfers of watched processes (`tracer watch`, with their list) or the textbook model
//! (`tracer lesson`, no root).
//!
//! Elm-shaped: `app::update(&mut App, Msg)` is the only place state changes; the view
//! (`view::draw`) only reads it; `run` owns the terminal and turns keys, ticks, signals
//! and the runner's steps into messages.

pub mod app;
mod compare;
pub mod escape;
mod help;
mod history;
mod ledger;
mod narration;
pub mod path;
mod picker;
pub mod run;
mod status;
mod theme;
pub mod timeline;
mod transfers;
pub mod view;
pub mod watching;
mod why;

#[cfg(test)]
mod tests;
