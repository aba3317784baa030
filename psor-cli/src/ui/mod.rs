//! Everything that talks to a person: the progress bar, the prompt, tables and JSON.

pub mod confirm;
pub mod output;
pub mod progress;
pub mod stdout;
