//! The crate's one error type, and how it maps onto `std::io::ErrorKind`.
//!
//! Readers and writers speak `io::Error`, because that is what `Read`/`Write` users handle; the
//! precise cause travels inside it and can be recovered with [`Error::from_io`].

use std::fmt;
use std::io;

/// Where in a stream a problem was found: the block number (0-based, `None` for the header
/// and trailer) and the byte offset of the structure in the compressed stream, when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Location {
    /// Index of the block the problem is in, `None` outside any block.
    pub block: Option<u64>,
    /// Offset in the compressed stream of the structure that failed, `None` when unknown
    /// (a reader resumed mid-stream does not know its absolute offset).
    pub offset: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.block, self.offset) {
            (Some(b), Some(o)) => write!(f, " (block {b}, stream offset {o})"),
            (Some(b), None) => write!(f, " (block {b})"),
            (None, Some(o)) => write!(f, " (stream offset {o})"),
            (None, None) => Ok(()),
        }
    }
}

/// Everything that can go wrong while coding a `.nc` stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The stream does not start with the `.nc` magic bytes.
    NotNcStream,
    /// The stream was written by a format version this build cannot read.
    UnsupportedVersion {
        /// Version found in the header.
        version: u16,
    },
    /// The header asks for a feature (flag bit, predictor, model) this build does not have.
    Unsupported {
        /// What is missing.
        what: String,
    },
    /// A structure failed its checksum or holds values the format forbids.
    Corrupt {
        /// What was wrong.
        what: String,
        /// Where it was found.
        at: Location,
    },
    /// The stream ended before the structure being read was complete.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it started.
        at: Location,
    },
    /// Data followed the end of a complete stream.
    TrailingData {
        /// Offset of the first byte after the stream.
        offset: u64,
    },
    /// A configuration value is out of range.
    InvalidConfig {
        /// Which value, and the allowed range.
        what: String,
    },
    /// A seek asked for a position the stream cannot reach.
    InvalidSeek {
        /// Why.
        what: String,
    },
    /// A neural model file could not be loaded or run.
    Model {
        /// What went wrong.
        what: String,
    },
    /// The writer was used after `finish`, or after an earlier error left it unusable.
    Finished,
    /// Coding the stream would need more memory than the limit allows, even with one lane
    /// ([`crate::Config::memlimit`]). Nothing large was allocated.
    MemoryLimit {
        /// Bytes one lane needs (an upper bound from the header).
        need: u64,
        /// The limit in force.
        limit: u64,
    },
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>, at: Location) -> Self {
        Error::Corrupt {
            what: what.into(),
            at,
        }
    }

    /// The `io::ErrorKind` this error maps to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::NotNcStream
            | Error::Corrupt { .. }
            | Error::TrailingData { .. }
            | Error::Model { .. } => io::ErrorKind::InvalidData,
            Error::UnsupportedVersion { .. } | Error::Unsupported { .. } => {
                io::ErrorKind::Unsupported
            }
            Error::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            Error::InvalidConfig { .. } | Error::InvalidSeek { .. } => io::ErrorKind::InvalidInput,
            Error::Finished => io::ErrorKind::Other,
            Error::MemoryLimit { .. } => io::ErrorKind::OutOfMemory,
        }
    }

    /// Recovers the `Error` inside an `io::Error` produced by this crate, if there is one.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<Error>())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotNcStream => write!(f, "not an .nc stream (bad magic bytes)"),
            Error::UnsupportedVersion { version } => {
                write!(f, "unsupported .nc format version {version}")
            }
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
            Error::Corrupt { what, at } => write!(f, "corrupt stream: {what}{at}"),
            Error::Truncated { what, at } => {
                write!(f, "truncated stream: ended inside the {what}{at}")
            }
            Error::TrailingData { offset } => {
                write!(
                    f,
                    "trailing data after the end of the stream at offset {offset}"
                )
            }
            Error::InvalidConfig { what } => write!(f, "invalid configuration: {what}"),
            Error::InvalidSeek { what } => write!(f, "invalid seek: {what}"),
            Error::Model { what } => write!(f, "neural model: {what}"),
            Error::Finished => write!(f, "the writer is finished or failed earlier"),
            Error::MemoryLimit { need, limit } => write!(
                f,
                "the stream needs about {} MiB to code with one lane, above the memory limit of \
                 {} MiB (raise it with Config::memlimit or nccat --memlimit)",
                need.div_ceil(1 << 20),
                limit >> 20
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        io::Error::new(err.kind(), err)
    }
}
