//! psor-core: the engine behind `psor`.
#![deny(missing_docs)]

pub mod layout;
