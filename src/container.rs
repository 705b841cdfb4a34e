//! The `.nc` container: header, block headers, trailer index. `FORMAT.md` is the spec; this
//! module is its only implementation, and every integer goes through `to_le_bytes` /
//! `from_le_bytes`.
//!
//! ```text
//! stream  = header block* end-block trailer
//! header  = 28 bytes (magic, version, flags, block size, predictor config, CRC32), or 76
//!           with the model identity of a neural expert (and always 76 before version 6)
//! block   = 16-byte block header + payload (range-coded or stored)
//! end     = 16-byte block header of kind END whose payload is the trailer
//! trailer = index entries (8 bytes per block) + 16-byte tail (28 before version 6) ending "NCix"
//! ```

use std::io::{self, Read, Seek, SeekFrom};

use crate::error::{Error, Location};

pub use crate::format::{
    predictor_id, BLOCK_HEADER_LEN, DICT_LEN, DICT_VERSION, EXPERT_CONTEXT_STATS, EXPERT_NEURAL,
    FLAG_DICT, FLAG_FROM_DICT, FLAG_NO_NEURAL, FLAG_PRIMED, FLAG_SYNC, FLAG_X86, HEADER_PREFIX_LEN,
    INDEX_ENTRY_LEN, LEGACY_TAIL_LEN, MAGIC, MAX_BLOCKS, MAX_BLOCK_SIZE, MAX_HEADER_LEN, MAX_RATIO,
    MIN_BLOCK_SIZE, MIN_HEADER_LEN, MIXING_RATIO, OLDEST_READABLE_VERSION, TAIL_LEN, TAIL_MAGIC,
    TEMPERATURE_ONE, VERSION,
};
use crate::format::{
    profile_mask, BITS_VERSION, CODED_RATIO, COMPACT_HEADER_VERSION, FILTER_VERSION, LIGHT_RATIO,
    LIGHT_VERSION, MIX_EXPERTS, NEURAL_RATIO, PLAIN_VERSION, PRIMED_VERSION, RATIO_VERSION,
};

/// The oldest format version whose streams of `predictor` this build decodes: the version
/// that last changed that predictor's arithmetic (`FORMAT.md`, "Versioning").
fn oldest_version(predictor: u16) -> u16 {
    match predictor {
        predictor_id::MIX => 2,
        _ => 1,
    }
}

/// Whether predictor `predictor` with experts `mask` runs a neural model.
fn uses_model(predictor: u16, mask: u32) -> bool {
    predictor == predictor_id::NEURAL
        || (predictor == predictor_id::MIX && mask & EXPERT_NEURAL != 0)
}

/// Header length of a stream of format `version`, predictor `predictor` and experts `mask`.
fn header_len(version: u16, predictor: u16, mask: u32) -> usize {
    if version < COMPACT_HEADER_VERSION || uses_model(predictor, mask) {
        MAX_HEADER_LEN
    } else {
        MIN_HEADER_LEN
    }
}

/// Size of the tail of a format `version` stream.
pub fn tail_len(version: u16) -> usize {
    if version < COMPACT_HEADER_VERSION {
        LEGACY_TAIL_LEN
    } else {
        TAIL_LEN
    }
}

/// The stream header: everything a decoder needs to rebuild the encoder's predictor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version (always [`VERSION`] when written by this build).
    pub version: u16,
    /// Header flags: [`FLAG_PRIMED`] or none.
    pub flags: u16,
    /// Uncompressed bytes per checkpoint block (the last block of a flush may be shorter).
    pub block_size: u32,
    /// Which predictor coded the stream ([`predictor_id`]).
    pub predictor: u16,
    /// log2 of the frequency-table total.
    pub quant_bits: u8,
    /// Highest order of the context statistics.
    pub context_order: u8,
    /// Softmax temperature of a neural expert, Q8.8 (256 = 1.0).
    pub temperature: u16,
    /// Which experts take part ([`EXPERT_CONTEXT_STATS`], ...).
    pub expert_mask: u32,
    /// Name of the model, ASCII, zero-padded; all zero when the predictor has no model.
    pub model_name: [u8; 16],
    /// SHA-256 of the model bytes; all zero when the predictor has no model.
    pub model_fingerprint: [u8; 32],
}

impl Header {
    /// Whether the predictor runs a neural model, whose identity the header then carries.
    pub fn uses_model(&self) -> bool {
        uses_model(self.predictor, self.expert_mask)
    }

    /// Length of this header in the stream: [`MIN_HEADER_LEN`], or [`MAX_HEADER_LEN`] with
    /// a model identity or before format version 6.
    pub fn size(&self) -> usize {
        header_len(self.version, self.predictor, self.expert_mask)
    }

    /// Length of the header that starts with `prefix` (its first [`HEADER_PREFIX_LEN`]
    /// bytes).
    ///
    /// # Errors
    /// `NotNcStream` for a wrong magic, `UnsupportedVersion` for a version this build does
    /// not read.
    pub fn size_from_prefix(prefix: &[u8; HEADER_PREFIX_LEN]) -> Result<usize, Error> {
        if prefix[0..4] != MAGIC {
            return Err(Error::NotNcStream);
        }
        let version = u16::from_le_bytes([prefix[4], prefix[5]]);
        if !(1..=VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion { version });
        }
        let predictor = u16::from_le_bytes([prefix[12], prefix[13]]);
        let mask = u32::from_le_bytes([prefix[20], prefix[21], prefix[22], prefix[23]]);
        Ok(header_len(version, predictor, mask))
    }

    /// Serialises the header ([`Header::size`] bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = self.size();
        let mut b = vec![0u8; len];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.block_size.to_le_bytes());
        b[12..14].copy_from_slice(&self.predictor.to_le_bytes());
        b[14] = self.quant_bits;
        b[15] = self.context_order;
        b[16..18].copy_from_slice(&self.temperature.to_le_bytes());
        // b[18..20] reserved, zero
        b[20..24].copy_from_slice(&self.expert_mask.to_le_bytes());
        if len == MAX_HEADER_LEN {
            b[24..40].copy_from_slice(&self.model_name);
            b[40..72].copy_from_slice(&self.model_fingerprint);
        }
        let crc = crc32fast::hash(&b[..len - 4]);
        b[len - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and validates a header; `b` must hold exactly the header
    /// ([`Header::size_from_prefix`] of its first bytes).
    ///
    /// # Errors
    /// `NotNcStream` for a wrong magic, `UnsupportedVersion` for another version, `Corrupt`
    /// for a checksum mismatch, an out-of-range field or a length that is not the header's,
    /// `Unsupported` for flags or a predictor this build does not know.
    pub fn parse(b: &[u8]) -> Result<Header, Error> {
        let at = Location {
            block: None,
            offset: Some(0),
        };
        let Some(prefix) = b.first_chunk::<HEADER_PREFIX_LEN>() else {
            return Err(Error::Truncated { what: "header", at });
        };
        let len = Header::size_from_prefix(prefix)?;
        if b.len() != len {
            return Err(Error::corrupt(
                format!("a header of {} bytes where {len} belong", b.len()),
                at,
            ));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        let stored = u32::from_le_bytes([b[len - 4], b[len - 3], b[len - 2], b[len - 1]]);
        if crc32fast::hash(&b[..len - 4]) != stored {
            return Err(Error::corrupt("header checksum mismatch", at));
        }
        let flags = u16::from_le_bytes([b[6], b[7]]);
        if b[18..20] != [0, 0] {
            return Err(Error::corrupt("reserved header bytes are not zero", at));
        }
        let mut model_name = [0u8; 16];
        let mut model_fingerprint = [0u8; 32];
        if len == MAX_HEADER_LEN {
            model_name.copy_from_slice(&b[24..40]);
            model_fingerprint.copy_from_slice(&b[40..72]);
        }
        let header = Header {
            version,
            flags,
            block_size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            predictor: u16::from_le_bytes([b[12], b[13]]),
            quant_bits: b[14],
            context_order: b[15],
            temperature: u16::from_le_bytes([b[16], b[17]]),
            expert_mask: u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
            model_name,
            model_fingerprint,
        };
        header.validate().map_err(|e| match e {
            Error::InvalidConfig { what } => Error::corrupt(what, at),
            other => other,
        })?;
        let oldest = oldest_version(header.predictor);
        if version < oldest {
            // That predictor's arithmetic changed since: decoding with today's would give
            // wrong bytes, so say so instead.
            return Err(Error::Unsupported {
                what: format!(
                    "a format version {version} stream of predictor {}: this build decodes \
                     that predictor from version {oldest} on (its arithmetic changed); use \
                     the nc release that wrote it",
                    header.predictor
                ),
            });
        }
        Ok(header)
    }

    /// Checks that every field is in range and names a predictor this build has, and that
    /// the flags are ones that predictor has in this version.
    ///
    /// # Errors
    /// `InvalidConfig` for out-of-range values, `Unsupported` for unknown predictors or
    /// flags.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_fields()?;
        let known = if self.version >= PRIMED_VERSION && self.predictor == predictor_id::MIX {
            FLAG_PRIMED
        } else {
            0
        };
        if self.flags & !known != 0 {
            return Err(Error::Unsupported {
                what: format!(
                    "header flags {:#06x} in a version {} stream of predictor {}",
                    self.flags, self.version, self.predictor
                ),
            });
        }
        Ok(())
    }

    /// [`Header::validate`] for everything but the flags.
    fn validate_fields(&self) -> Result<(), Error> {
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            return Err(Error::InvalidConfig {
                what: format!(
                    "block size {} outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}",
                    self.block_size
                ),
            });
        }
        let bits = u32::from(self.quant_bits);
        if !(crate::quantizer::MIN_BITS..=crate::quantizer::MAX_BITS).contains(&bits) {
            return Err(Error::InvalidConfig {
                what: format!("quantizer precision {bits} bits outside 10..=16"),
            });
        }
        match self.predictor {
            predictor_id::CONTEXT_STATS => {
                let max = crate::experts::context_stats::MAX_ORDER;
                if !(1..=max).contains(&self.context_order) {
                    return Err(Error::InvalidConfig {
                        what: format!("context order {} outside 1..={max}", self.context_order),
                    });
                }
                if self.expert_mask != EXPERT_CONTEXT_STATS {
                    return Err(Error::Unsupported {
                        what: format!("expert set {:#x}", self.expert_mask),
                    });
                }
                if self.temperature != TEMPERATURE_ONE {
                    return Err(Error::InvalidConfig {
                        what: "temperature must be 1.0 for a predictor without a neural expert"
                            .into(),
                    });
                }
                if self.model_name != [0; 16] || self.model_fingerprint != [0; 32] {
                    return Err(Error::Unsupported {
                        what: "a model identity for the model-free context predictor".into(),
                    });
                }
                Ok(())
            }
            predictor_id::NEURAL => {
                if self.expert_mask != EXPERT_NEURAL {
                    return Err(Error::Unsupported {
                        what: format!("expert set {:#x}", self.expert_mask),
                    });
                }
                if self.context_order != 0 {
                    return Err(Error::InvalidConfig {
                        what: "context order must be 0 for the neural predictor".into(),
                    });
                }
                if self.temperature == 0 {
                    return Err(Error::InvalidConfig {
                        what: "temperature must be above 0".into(),
                    });
                }
                if self.model_fingerprint == [0; 32] {
                    return Err(Error::InvalidConfig {
                        what: "the neural predictor needs a model fingerprint".into(),
                    });
                }
                Ok(())
            }
            predictor_id::MIX => {
                if self.expert_mask & !MIX_EXPERTS != 0 || self.expert_mask & MIX_EXPERTS == 0 {
                    return Err(Error::Unsupported {
                        what: format!("expert set {:#x}", self.expert_mask),
                    });
                }
                if self.context_order != 0 {
                    return Err(Error::InvalidConfig {
                        what: "context order must be 0 for the mixing predictor".into(),
                    });
                }
                let neural = self.expert_mask & EXPERT_NEURAL != 0;
                if neural && (self.temperature == 0 || self.model_fingerprint == [0; 32]) {
                    return Err(Error::InvalidConfig {
                        what: "a neural expert needs a temperature above 0 and a model".into(),
                    });
                }
                if !neural
                    && (self.temperature != TEMPERATURE_ONE
                        || self.model_name != [0; 16]
                        || self.model_fingerprint != [0; 32])
                {
                    return Err(Error::Unsupported {
                        what: "a model identity without a neural expert".into(),
                    });
                }
                Ok(())
            }
            other => Err(Error::Unsupported {
                what: format!("predictor id {other}"),
            }),
        }
    }

    /// Reads and parses a header from `r`.
    ///
    /// # Errors
    /// As [`Header::parse`], plus `UnexpectedEof` for a stream shorter than a header.
    pub fn read_from<R: Read>(r: &mut R) -> io::Result<Header> {
        let mut prefix = [0u8; HEADER_PREFIX_LEN];
        read_exact_or(r, &mut prefix, "header", Location::default())?;
        let len = Header::size_from_prefix(&prefix)?;
        let mut b = [0u8; MAX_HEADER_LEN];
        b[..HEADER_PREFIX_LEN].copy_from_slice(&prefix);
        read_exact_or(
            r,
            &mut b[HEADER_PREFIX_LEN..len],
            "header",
            Location::default(),
        )?;
        Ok(Header::parse(&b[..len])?)
    }

    /// A readable name for the predictor, for listings.
    pub fn predictor_name(&self) -> &'static str {
        match self.predictor {
            predictor_id::CONTEXT_STATS => "context-stats",
            predictor_id::NEURAL => "neural",
            predictor_id::MIX => match self.expert_mask {
                profile_mask::FAST | profile_mask::FAST_BEFORE_9 => "mix (fast)",
                profile_mask::DEFAULT => "mix (default)",
                profile_mask::MAX => "mix (max)",
                _ => "mix (custom)",
            },
            _ => "unknown",
        }
    }
}

/// What a block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// Range-coded payload.
    Coded,
    /// The uncompressed bytes themselves (coding would not have made them smaller).
    Stored,
    /// End of the blocks; the payload is the trailer.
    End,
    /// Coded by the light coder (format version 12 on): a block the stream's predictor
    /// would code smaller than its ratio bound allows.
    Light,
}

/// One block header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// What the payload holds.
    pub kind: BlockKind,
    /// Any of [`FLAG_SYNC`], [`FLAG_NO_NEURAL`], [`FLAG_X86`], [`FLAG_DICT`] and
    /// [`FLAG_FROM_DICT`].
    pub flags: u8,
    /// Uncompressed length (0 for END).
    pub raw_len: u32,
    /// Length of the payload that follows.
    pub payload_len: u32,
    /// CRC32 of the uncompressed bytes (0 for END).
    pub crc: u32,
}

impl BlockHeader {
    /// Serialises the header of block number `index` (the END block's number is the block
    /// count). The check covers the number, so a block moved, dropped or repeated fails it.
    pub fn to_bytes(&self, index: u64) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0] = match self.kind {
            BlockKind::Coded => 0,
            BlockKind::Stored => 1,
            BlockKind::End => 2,
            BlockKind::Light => 3,
        };
        b[1] = self.flags;
        b[4..8].copy_from_slice(&self.raw_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.crc.to_le_bytes());
        let check = Self::check(&b, index);
        b[2..4].copy_from_slice(&check.to_le_bytes());
        b
    }

    fn check(b: &[u8; BLOCK_HEADER_LEN], index: u64) -> u16 {
        let mut h = crc32fast::Hasher::new();
        h.update(&b[0..2]);
        h.update(&b[4..16]);
        h.update(&index.to_le_bytes());
        h.finalize() as u16
    }

    /// Parses the header of block number `index` and checks it against the stream's block
    /// size.
    ///
    /// # Errors
    /// `Corrupt` for a check mismatch (a damaged header, or a block out of place), an unknown
    /// kind or flag, or lengths the format forbids.
    /// `tail_len` is the stream's [`tail_len`], which an END block's payload ends with.
    pub fn parse(
        b: &[u8; BLOCK_HEADER_LEN],
        block_size: u32,
        tail_len: usize,
        index: u64,
        at: Location,
    ) -> Result<BlockHeader, Error> {
        if u16::from_le_bytes([b[2], b[3]]) != Self::check(b, index) {
            return Err(Error::corrupt(
                "block header check mismatch (damaged, or block out of place)",
                at,
            ));
        }
        let kind = match b[0] {
            0 => BlockKind::Coded,
            1 => BlockKind::Stored,
            2 => BlockKind::End,
            3 => BlockKind::Light,
            k => return Err(Error::corrupt(format!("unknown block kind {k}"), at)),
        };
        let flags = b[1];
        if flags & !(FLAG_SYNC | FLAG_NO_NEURAL | FLAG_X86 | FLAG_DICT | FLAG_FROM_DICT) != 0 {
            return Err(Error::corrupt(
                format!("reserved block flags {flags:#04x}"),
                at,
            ));
        }
        let header = BlockHeader {
            kind,
            flags,
            raw_len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            payload_len: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            crc: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        };
        let ok = match kind {
            BlockKind::Coded | BlockKind::Light => {
                (1..=block_size).contains(&header.raw_len)
                    && header.payload_len < header.raw_len
                    && header.payload_len >= 4
            }
            BlockKind::Stored => {
                (1..=block_size).contains(&header.raw_len) && header.payload_len == header.raw_len
            }
            BlockKind::End => {
                header.raw_len == 0
                    && header.crc == 0
                    && flags == 0
                    && header.payload_len >= tail_len as u32
                    && (header.payload_len - tail_len as u32).is_multiple_of(INDEX_ENTRY_LEN as u32)
            }
        };
        if !ok {
            return Err(Error::corrupt(
                format!(
                    "impossible block lengths (raw {}, payload {}, block size {block_size})",
                    header.raw_len, header.payload_len
                ),
                at,
            ));
        }
        Ok(header)
    }
}

/// The most bytes a coded block's payload of `payload_len` bytes can decode to under
/// frequency tables of `2^quant_bits`.
///
/// Every symbol of a 16- or 256-symbol table has a frequency of at least 1, so the likeliest
/// symbol has at most `2^bits - 15` and each byte (two nibbles, or one byte symbol) costs at
/// least `30 / (2^bits ln 2)` = `43.28 / 2^bits` bits, while a payload carries at most
/// `8 * payload_len` bits (range coder invariant 5). A block that claims more cannot be valid,
/// and is refused before its predictor is built or primed.
pub fn max_raw_len(payload_len: u32, quant_bits: u8) -> u64 {
    // 43 < 43.28 and 64 bits of slack: the bound errs towards allowing.
    ((u64::from(payload_len) * 8 + 64) << quant_bits.min(16)) / 43
}

impl Header {
    /// The most bytes a coded block's payload of `payload_len` bytes can decode to in this
    /// stream, for a block that runs every expert of the stream (no [`FLAG_NO_NEURAL`]):
    /// [`max_raw_len`] under its tables, or, where the mixing predictor codes bit by bit
    /// (version [`BITS_VERSION`] on), under 16-bit tables: each of a byte's 8 decisions has
    /// probability at most `1 - 2^-13` (`mixer::P_MIN`), so a byte costs at least
    /// `2^-10 / ln 2` bits, more than the `43.28 / 2^16` bound of 16-bit tables. From
    /// version [`RATIO_VERSION`] on, also at most [`Header::coded_ratio`] bytes per payload
    /// byte.
    pub fn max_raw_len(&self, payload_len: u32) -> u64 {
        self.bound(payload_len, self.coded_ratio())
    }

    /// [`Header::max_raw_len`] for a coded block with the flags of `b`: a plain block
    /// ([`FLAG_NO_NEURAL`]) is bound by [`Header::plain_ratio`].
    fn max_raw_len_of(&self, b: &BlockHeader) -> u64 {
        if b.flags & FLAG_NO_NEURAL != 0 {
            self.bound(b.payload_len, self.plain_ratio())
        } else {
            self.max_raw_len(b.payload_len)
        }
    }

    fn bound(&self, payload_len: u32, ratio: Option<u32>) -> u64 {
        let coded = if self.predictor == predictor_id::MIX && self.version >= BITS_VERSION {
            max_raw_len(payload_len, 16)
        } else {
            max_raw_len(payload_len, self.quant_bits)
        };
        match ratio {
            Some(ratio) => coded.min(u64::from(payload_len) * u64::from(ratio)),
            None => coded,
        }
    }

    /// The most bytes a coded block that runs every expert of the stream may hold per
    /// payload byte: [`MAX_RATIO`] from version [`RATIO_VERSION`], [`CODED_RATIO`] from
    /// [`LIGHT_VERSION`], and from [`PLAIN_VERSION`] [`NEURAL_RATIO`] where those experts
    /// include the neural one, [`MIXING_RATIO`] where they do not; no bound before
    /// (beyond [`max_raw_len`]).
    pub fn coded_ratio(&self) -> Option<u32> {
        if self.version >= PLAIN_VERSION && self.uses_model() {
            Some(NEURAL_RATIO)
        } else if self.version >= PLAIN_VERSION {
            Some(MIXING_RATIO)
        } else if self.version >= LIGHT_VERSION {
            Some(CODED_RATIO)
        } else if self.version >= RATIO_VERSION {
            Some(MAX_RATIO)
        } else {
            None
        }
    }

    /// The most bytes a plain block ([`FLAG_NO_NEURAL`]) may hold per payload byte:
    /// [`MIXING_RATIO`] in a stream of version [`PLAIN_VERSION`] on whose mixing predictor
    /// has the neural expert; `None` where plain blocks do not exist.
    pub fn plain_ratio(&self) -> Option<u32> {
        (self.version >= PLAIN_VERSION
            && self.predictor == predictor_id::MIX
            && self.expert_mask & EXPERT_NEURAL != 0)
            .then_some(MIXING_RATIO)
    }

    /// The most bytes a light block may hold per payload byte in this stream:
    /// [`LIGHT_RATIO`] from version [`LIGHT_VERSION`]; `None` before, where light blocks do
    /// not exist.
    pub fn light_ratio(&self) -> Option<u32> {
        (self.version >= LIGHT_VERSION).then_some(LIGHT_RATIO)
    }

    /// Whether this stream's blocks may be a dictionary ([`FLAG_DICT`]) or start from one
    /// ([`FLAG_FROM_DICT`]): version [`DICT_VERSION`] on, a primed mixing predictor.
    pub fn dictionaries(&self) -> bool {
        self.version >= DICT_VERSION
            && self.predictor == predictor_id::MIX
            && self.flags & FLAG_PRIMED != 0
    }

    /// Checks that a block with header `b` may occur in this stream as far as its kind,
    /// flags and lengths go: light blocks only from version [`LIGHT_VERSION`], plain ones
    /// only where [`Header::plain_ratio`] says they exist, x86-filtered ones
    /// ([`FLAG_X86`]) only coded or light from version [`FILTER_VERSION`], coded and light blocks within
    /// their bounds on bytes per payload byte, a dictionary ([`FLAG_DICT`]) only as block 0
    /// (`at.block`) of at most [`DICT_LEN`] bytes and only where
    /// [`Header::dictionaries`] says they exist, coded and not plain, and the blocks that
    /// start from one ([`FLAG_FROM_DICT`], never block 0) coded. Readers check it before
    /// allocating or decoding anything for the block.
    ///
    /// # Errors
    /// `Corrupt` at `at` when it may not.
    pub fn check_block(&self, b: &BlockHeader, at: Location) -> Result<(), Error> {
        if b.flags & FLAG_NO_NEURAL != 0
            && (b.kind != BlockKind::Coded || self.plain_ratio().is_none())
        {
            return Err(Error::corrupt(
                format!(
                    "a plain {:?} block in a version {} stream of predictor {}",
                    b.kind, self.version, self.predictor
                ),
                at,
            ));
        }
        if b.flags & FLAG_X86 != 0
            && (!matches!(b.kind, BlockKind::Coded | BlockKind::Light)
                || self.version < FILTER_VERSION)
        {
            return Err(Error::corrupt(
                format!(
                    "an x86-filtered {:?} block in a version {} stream",
                    b.kind, self.version
                ),
                at,
            ));
        }
        if b.flags & (FLAG_DICT | FLAG_FROM_DICT) != 0 {
            let first = at.block == Some(0);
            let ok = self.dictionaries()
                && b.kind == BlockKind::Coded
                && if b.flags & FLAG_DICT != 0 {
                    first
                        && b.flags & (FLAG_FROM_DICT | FLAG_NO_NEURAL) == 0
                        && b.raw_len <= DICT_LEN
                } else {
                    !first
                };
            if !ok {
                return Err(Error::corrupt(
                    format!(
                        "a {:?} block with dictionary flags {:#04x} in a version {} stream",
                        b.kind,
                        b.flags & (FLAG_DICT | FLAG_FROM_DICT),
                        self.version
                    ),
                    at,
                ));
            }
        }
        let raw = u64::from(b.raw_len);
        let most = match b.kind {
            BlockKind::Coded => self.max_raw_len_of(b),
            BlockKind::Light => match self.light_ratio() {
                Some(ratio) => u64::from(b.payload_len) * u64::from(ratio),
                None => {
                    return Err(Error::corrupt(
                        format!("light block in a version {} stream", self.version),
                        at,
                    ));
                }
            },
            BlockKind::Stored | BlockKind::End => return Ok(()),
        };
        if raw > most {
            return Err(Error::corrupt(
                format!(
                    "a payload of {} bytes cannot code {} bytes",
                    b.payload_len, b.raw_len
                ),
                at,
            ));
        }
        Ok(())
    }
}

/// One trailer index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Payload length of the block (its frame is `BLOCK_HEADER_LEN` longer).
    pub payload_len: u32,
    /// Uncompressed length of the block.
    pub raw_len: u32,
}

impl IndexEntry {
    /// Serialises the entry.
    pub fn to_bytes(&self) -> [u8; INDEX_ENTRY_LEN] {
        let mut b = [0u8; INDEX_ENTRY_LEN];
        b[0..4].copy_from_slice(&self.payload_len.to_le_bytes());
        b[4..8].copy_from_slice(&self.raw_len.to_le_bytes());
        b
    }

    /// Parses an entry.
    pub fn parse(b: &[u8]) -> IndexEntry {
        IndexEntry {
            payload_len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            raw_len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// The fixed tail that closes the trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    /// Number of blocks (= index entries) before the END block.
    pub block_count: u64,
    /// CRC32 of the whole uncompressed stream.
    pub content_crc: u32,
    /// Total uncompressed length, held by tails before format version 6 only (from
    /// version 6 it is the sum of the index's `raw_len`s); never written by this build.
    pub legacy_total_len: Option<u64>,
}

impl Tail {
    /// Serialises the tail as format version 6 writes it (`block_count` below 2^32, as
    /// [`MAX_BLOCKS`] is); `trailer_crc` is the CRC32 of the entries and the first 8 bytes
    /// of the tail.
    pub fn to_bytes(&self, entries_crc: crc32fast::Hasher) -> [u8; TAIL_LEN] {
        let mut b = [0u8; TAIL_LEN];
        b[0..4].copy_from_slice(&(self.block_count as u32).to_le_bytes());
        b[4..8].copy_from_slice(&self.content_crc.to_le_bytes());
        let mut h = entries_crc;
        h.update(&b[0..8]);
        b[8..12].copy_from_slice(&h.finalize().to_le_bytes());
        b[12..16].copy_from_slice(&TAIL_MAGIC);
        b
    }

    /// The block count of tail `b` ([`TAIL_LEN`] or [`LEGACY_TAIL_LEN`] bytes), read before
    /// its checksum can be checked (the checksum covers the entries the count locates).
    fn block_count_of(b: &[u8]) -> u64 {
        match b.len() {
            LEGACY_TAIL_LEN => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            TAIL_LEN => u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => 0,
        }
    }

    /// Parses a tail of [`TAIL_LEN`] bytes, or [`LEGACY_TAIL_LEN`] before format version 6,
    /// checking the magic and the trailer checksum (`entries_crc` has hashed the index
    /// entries before it).
    ///
    /// # Errors
    /// `Corrupt` for a wrong magic, checksum or length.
    pub fn parse(b: &[u8], entries_crc: crc32fast::Hasher, at: Location) -> Result<Tail, Error> {
        let legacy = match b.len() {
            TAIL_LEN => false,
            LEGACY_TAIL_LEN => true,
            n => return Err(Error::corrupt(format!("a trailer tail of {n} bytes"), at)),
        };
        let n = b.len();
        if b[n - 4..] != TAIL_MAGIC {
            return Err(Error::corrupt("trailer magic missing", at));
        }
        let mut h = entries_crc;
        h.update(&b[..n - 8]);
        if h.finalize() != u32::from_le_bytes([b[n - 8], b[n - 7], b[n - 6], b[n - 5]]) {
            return Err(Error::corrupt("trailer checksum mismatch", at));
        }
        let crc_at = if legacy { 16 } else { 4 };
        Ok(Tail {
            block_count: Tail::block_count_of(b),
            content_crc: u32::from_le_bytes([
                b[crc_at],
                b[crc_at + 1],
                b[crc_at + 2],
                b[crc_at + 3],
            ]),
            legacy_total_len: legacy.then(|| {
                u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]])
            }),
        })
    }
}

/// Where one block lives, in both the compressed and the uncompressed stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLocation {
    /// Offset of the block header from the start of the stream.
    pub offset: u64,
    /// Offset of the block's first byte in the uncompressed data.
    pub raw_offset: u64,
    /// Payload length.
    pub payload_len: u32,
    /// Uncompressed length.
    pub raw_len: u32,
    /// What the payload holds (coded, stored or light), from the block header.
    pub kind: BlockKind,
    /// The block header's flags ([`FLAG_SYNC`], [`FLAG_NO_NEURAL`], [`FLAG_X86`]).
    pub flags: u8,
}

/// The trailer index of a complete stream, read from its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamIndex {
    /// The stream's header.
    pub header: Header,
    /// Every block, in order.
    pub blocks: Vec<BlockLocation>,
    /// Total uncompressed length.
    pub total_len: u64,
    /// CRC32 of the whole uncompressed stream.
    pub content_crc: u32,
    /// Total compressed length, header to tail magic.
    pub stream_len: u64,
}

impl StreamIndex {
    /// Reads the header and the trailer index of the stream that starts at `r`'s current
    /// position and ends at the end of `r`.
    ///
    /// # Errors
    /// `InvalidData` when the header or index is corrupt or inconsistent, `UnexpectedEof`
    /// when the stream is too short to hold them.
    pub fn read_from<R: Read + Seek>(r: &mut R) -> io::Result<StreamIndex> {
        let base = r.stream_position()?;
        let header = Header::read_from(r)?;
        let end = r.seek(SeekFrom::End(0))?;
        let stream_len = end.saturating_sub(base);
        let header_len = header.size();
        let tail_len = tail_len(header.version);
        let min_len = (header_len + BLOCK_HEADER_LEN + tail_len) as u64;
        if stream_len < min_len {
            return Err(Error::Truncated {
                what: "trailer",
                at: Location {
                    block: None,
                    offset: Some(stream_len),
                },
            }
            .into());
        }
        let tail_at = stream_len - tail_len as u64;
        let at = Location {
            block: None,
            offset: Some(tail_at),
        };
        let mut tail_bytes = [0u8; LEGACY_TAIL_LEN];
        let tail = &mut tail_bytes[..tail_len];
        r.seek(SeekFrom::Start(base + tail_at))?;
        read_exact_or(r, tail, "trailer", at)?;
        if tail[tail_len - 4..] != TAIL_MAGIC {
            // No index at the end: the stream was cut short or never finished.
            return Err(Error::Truncated {
                what: "trailer (no index at the end of the stream)",
                at,
            }
            .into());
        }
        let count = Tail::block_count_of(tail);
        // The entries must fit between the header + END block header and the tail.
        let room = (tail_at - (header_len + BLOCK_HEADER_LEN) as u64) / INDEX_ENTRY_LEN as u64;
        if count > room || count > MAX_BLOCKS {
            return Err(Error::corrupt(format!("index claims {count} blocks"), at).into());
        }
        let entries_len = count as usize * INDEX_ENTRY_LEN;
        let entries_at = tail_at - entries_len as u64;
        let mut entries = vec![0u8; entries_len];
        r.seek(SeekFrom::Start(base + entries_at))?;
        read_exact_or(r, &mut entries, "trailer index", at)?;
        let mut h = crc32fast::Hasher::new();
        h.update(&entries);
        let tail = Tail::parse(tail, h, at)?;

        // Walk the entries, checking them against the format's limits and the file size.
        let end_block_at = entries_at - BLOCK_HEADER_LEN as u64;
        let mut blocks = Vec::with_capacity(count as usize);
        let mut offset = header_len as u64;
        let mut raw_offset = 0u64;
        for (i, chunk) in entries.chunks_exact(INDEX_ENTRY_LEN).enumerate() {
            let e = IndexEntry::parse(chunk);
            let bad = e.raw_len == 0
                || e.raw_len > header.block_size
                || e.payload_len > e.raw_len
                || offset + (BLOCK_HEADER_LEN as u64) + u64::from(e.payload_len) > end_block_at;
            if bad {
                return Err(Error::corrupt(
                    format!("index entry {i} is inconsistent with the stream"),
                    at,
                )
                .into());
            }
            blocks.push(BlockLocation {
                offset,
                raw_offset,
                payload_len: e.payload_len,
                raw_len: e.raw_len,
                // Filled in from the block header below.
                kind: BlockKind::Coded,
                flags: 0,
            });
            offset += (BLOCK_HEADER_LEN as u64) + u64::from(e.payload_len);
            raw_offset += u64::from(e.raw_len);
        }
        if offset != end_block_at || tail.legacy_total_len.is_some_and(|t| t != raw_offset) {
            return Err(Error::corrupt("index does not add up to the stream", at).into());
        }
        // The trailer's CRC only says the index was written as it is: a doctored index with
        // its CRC recomputed would send seeks to the wrong bytes. Each block header carries
        // its lengths under a check keyed by its number, so the index must agree with them.
        let mut check_block = |i: u64,
                               offset: u64,
                               expect: (u32, u32)|
         -> io::Result<BlockHeader> {
            let at = Location {
                block: Some(i),
                offset: Some(offset),
            };
            let mut b = [0u8; BLOCK_HEADER_LEN];
            r.seek(SeekFrom::Start(base + offset))?;
            read_exact_or(r, &mut b, "block header", at)?;
            let h = BlockHeader::parse(&b, header.block_size, tail_len, i, at)?;
            header.check_block(&h, at)?;
            if (h.kind == BlockKind::End) != (i == count) || (h.raw_len, h.payload_len) != expect {
                return Err(Error::corrupt(
                    format!("index entry {i} does not match its block header"),
                    at,
                )
                .into());
            }
            Ok(h)
        };
        for (i, b) in blocks.iter_mut().enumerate() {
            let h = check_block(i as u64, b.offset, (b.raw_len, b.payload_len))?;
            (b.kind, b.flags) = (h.kind, h.flags);
        }
        check_block(count, end_block_at, (0, (entries_len + tail_len) as u32))?;
        r.seek(SeekFrom::Start(base + header_len as u64))?;
        Ok(StreamIndex {
            header,
            blocks,
            total_len: raw_offset,
            content_crc: tail.content_crc,
            stream_len,
        })
    }

    /// Index of the block holding uncompressed offset `pos` (`pos < total_len`).
    pub fn block_at(&self, pos: u64) -> Option<usize> {
        if pos >= self.total_len {
            return None;
        }
        Some(
            self.blocks
                .partition_point(|b| b.raw_offset + u64::from(b.raw_len) <= pos),
        )
    }
}

/// `read_exact` that reports a short stream as `Error::Truncated` naming `what`.
pub(crate) fn read_exact_or<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
    at: Location,
) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Err(Error::Truncated { what, at }.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
