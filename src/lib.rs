#![doc = include_str!("../README.md")]
//!
//! # Organization
//!
//! Which type to use, by direction:
//!
//! | you have | you want | use |
//! |---|---|---|
//! | a `Write` sink | to compress into it | [`NcWriter`] |
//! | a `Read` source of `.nc` bytes | the original bytes | [`NcReader`] (also `Seek` when the source is) |
//! | a `.nc` file | its block table | [`container::StreamIndex::read_from`] |
//!
//! The modules follow the pipeline, in order: blocks of x86 machine code first go through
//! a reversible address filter (`filter`), [`experts`] predict the next byte of every
//! lane, the [`mixer`] weighs the experts into one distribution, the [`quantizer`] turns predictions into integer frequency tables, the
//! [`range_coder`] codes bytes under those tables, the [`container`] frames the coded blocks,
//! the engine drives lanes in lockstep, and [`NcWriter`]/[`NcReader`] only buffer, frame and
//! forward. `FORMAT.md` specifies the container byte for byte.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(feature = "tokio")]
pub mod async_io;
pub mod config;
pub mod container;
mod engine;
pub mod error;
pub mod experts;
mod filter;
pub mod format;
mod hint;
mod light;
mod logistic;
pub mod mixer;
mod oneshot;
pub mod quantizer;
pub mod range_coder;
mod read;
mod snapshot;
mod tracked;
mod wide;
mod write;

#[cfg(test)]
mod test_data;

pub use config::{Config, PredictorKind};
pub use container::Header;
pub use error::Error;
pub use mixer::{set_primed_cache_dir, Profile};
pub use oneshot::{compress, copy_decode, copy_encode, decompress};
pub use read::NcReader;
pub use write::{AutoFinishNcWriter, NcWriter};
