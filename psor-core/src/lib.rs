//! psor-core: the engine behind `psor`, for the Redis PSOR of Enterprise Server PACs.
//!
//! - [`connect`]: where psor connects (`--psor` specs, TLS, passwords) and the retry rule.
//! - [`keys`]: key prefixes, glob escaping, binary-safe display.
//! - [`layout`]: PAC store layouts (a catalog users extend), key naming, PAC modes.
//! - [`engine`]: fast scan / copy / delete of everything under a prefix.
//! - [`pac`]: the PAC lifecycle on a live PSOR (status, check-compat, create, set-mode,
//!   rem-old-pac, init-pac, sample).
//! - [`progress`]: counters a caller polls to show progress.
//! - [`snapshot`]: export a prefix to a `.psnap` file, import it back, inspect it offline.
//! - [`verify`]: compare a prefix with its copy (another prefix, server or snapshot file).
//!
//! The library never prints and never exits; it reports through return values and
//! [`progress::Progress`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use psor_core::{connect::{ConnectOptions, Psor, PsorSpec}, engine, keys::KeyPrefix, progress::Progress};
//!
//! # fn main() -> psor_core::Result<()> {
//! let psor = Psor::connect(&PsorSpec::parse("redis://127.0.0.1:6379")?, &ConnectOptions::default())?;
//! let opts = engine::DeleteOptions { prefix: KeyPrefix::new("MyPAC_8.0:")?, dry_run: true, sample: 5 };
//! let outcome = engine::delete(&psor, &opts, &engine::EngineOptions::default(), Arc::new(Progress::new()))?;
//! println!("{} keys would be deleted", outcome.counts.done);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod connect;
mod display;
pub mod engine;
mod error;
pub mod keys;
pub mod layout;
pub mod pac;
pub mod progress;
pub mod snapshot;
pub mod survey;
pub mod verify;

pub use error::{classify, classify_server, is_retryable, Error, ErrorClass, Result};
