//! `NcReader`: decompresses from any `Read` (and seeks, when the source can).
//!
//! ```text
//! R -> [ header | block headers + payloads -> batch of lanes -> engine -> verified bytes ] -> read()
//! ```
//!
//! The reader is a state machine over one structure at a time (header, block header, payload,
//! trailer piece). A structure is gathered in `buf` across as many `read` calls of the source
//! as it takes, so `WouldBlock` or `Interrupted` from the source lose nothing, and the source
//! is never asked for more bytes than the current structure still needs.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use crate::config::Config;
use crate::container::{
    read_exact_or, tail_len, BlockHeader, BlockKind, BlockLocation, Header, IndexEntry,
    StreamIndex, Tail, BLOCK_HEADER_LEN, FLAG_DICT, FLAG_SYNC, HEADER_PREFIX_LEN, INDEX_ENTRY_LEN,
    LEGACY_TAIL_LEN, MAGIC,
};
use crate::engine::Engine;
use crate::error::{Error, Location};
use crate::experts::NeuralModel;

/// The gathering buffer grows from this size by doubling as a structure's bytes arrive.
const FILL_STEP: usize = 64 << 10;

/// Index entries read per piece of the trailer (bounds the buffer whatever the stream says).
const TRAILER_PIECE_ENTRIES: u64 = 4096;

/// What the reader expects next from the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The stream header.
    Header,
    /// A block header (or the END block header).
    BlockHeader,
    /// The payload of this block.
    Payload(BlockHeader),
    /// Index entries `next..count` of the trailer.
    Entries { next: u64, count: u64 },
    /// The trailer's fixed tail.
    Tail { count: u64 },
    /// The stream is complete; only end-of-input may follow.
    Eof,
    /// Done: end of input confirmed (or a seek went past the end).
    Done,
}

/// Decompresses a `.nc` stream read from `R`.
///
/// Every byte it returns has passed its block's CRC32; the trailer (block index, total
/// length, checksum of the whole content) is checked at the end, and data after the stream
/// is an error. Errors: truncated input → `UnexpectedEof`, corrupt input → `InvalidData`,
/// an unknown version, predictor or model → `Unsupported`; the message names the block and
/// offset. After `InvalidData` or `Unsupported` the reader keeps returning that error.
///
/// With `R: Read + Seek`, `NcReader` implements [`Seek`] over the *uncompressed* bytes,
/// using the trailer index to jump straight to the block that holds the target.
///
/// ```
/// use std::io::{Read, Write};
/// let mut w = nc_codec::NcWriter::new(Vec::new())?;
/// w.write_all(b"to be or not to be")?;
/// let compressed = w.finish()?;
///
/// let mut text = String::new();
/// nc_codec::NcReader::new(&compressed[..]).read_to_string(&mut text)?;
/// assert_eq!(text, "to be or not to be");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct NcReader<R> {
    /// The source.
    inner: R,
    /// Lanes and threads for the engine: the lanes as set, or `None` for the default of
    /// the stream's predictor (more for a neural model, whose calls amortise over lanes).
    lanes: Option<usize>,
    threads: usize,
    /// The memory limit ([`Config::memlimit`]).
    memlimit: u64,
    /// A neural model besides the embedded default, for streams that name it.
    model: Option<Arc<NeuralModel>>,
    /// The stream header, once read (or given to `resume`).
    header: Option<Header>,
    /// Built from the header.
    engine: Option<Engine>,
    /// What comes next.
    stage: Stage,
    /// The structure being gathered; `buf[..filled]` has arrived.
    buf: Vec<u8>,
    filled: usize,
    /// Blocks read but not yet decoded (decoded together as lanes).
    pending: Vec<(BlockHeader, Vec<u8>)>,
    /// Decoded, verified bytes not yet returned.
    decoded: Vec<u8>,
    decoded_pos: usize,
    /// Bytes to discard from the next decoded batch (a seek into the middle of a block).
    skip: usize,
    /// Offset in the compressed stream of the next structure, when known.
    offset: Option<u64>,
    /// Number of the next block.
    block_no: u64,
    /// Number of the block reading started at (0 from the start of the stream).
    first_block: u64,
    /// Index entries of the blocks seen since `first_block`, checked against the trailer.
    seen: Vec<IndexEntry>,
    /// CRC32 and length of the content since the start (valid when `first_block == 0`).
    content_crc: crc32fast::Hasher,
    content_len: u64,
    /// Hasher over the trailer's index entries as they arrive.
    trailer_crc: crc32fast::Hasher,
    /// Uncompressed position of the next byte `read` returns.
    pos: u64,
    /// The trailer index, loaded on the first seek.
    index: Option<StreamIndex>,
    /// Position of the stream's first byte in `inner`, once known.
    base: Option<u64>,
    /// A data error that ends the stream (`InvalidData` or `Unsupported`), repeated forever.
    poisoned: Option<(io::ErrorKind, String)>,
    /// Stop at the end of the first stream instead of reading on ([`NcReader::single_stream`]).
    single: bool,
    /// Streams whose header has been read (more than one when streams are concatenated).
    streams: u64,
    /// Compressed bytes consumed from the source, all streams together.
    total_in: u64,
    /// Uncompressed bytes returned.
    total_out: u64,
}

impl<R: Read> NcReader<R> {
    /// A reader of the stream that starts at `inner`'s current position. Nothing is read
    /// until the first `read`.
    pub fn new(inner: R) -> Self {
        Self::build(inner, &Config::new())
    }

    /// As [`new`](NcReader::new), with the lane and thread counts of `config` (the stream's
    /// own settings come from its header).
    ///
    /// # Errors
    /// `InvalidInput` when the lane or thread count is out of range.
    pub fn with_config(inner: R, config: &Config) -> io::Result<Self> {
        config.validate_runtime()?;
        Ok(Self::build(inner, config))
    }

    /// A reader that starts at checkpoint block `first_block` of a stream whose `header`
    /// was read earlier ([`Header::read_from`]); `inner` must be positioned at that block's
    /// header. The blocks from there on, the trailer and the end of input are verified; the
    /// whole-content checksum cannot be, since earlier bytes are not seen. Where block 0 is
    /// the stream's dictionary, the blocks after it need it too:
    /// [`with_dictionary`](NcReader::with_dictionary) gives it.
    ///
    /// # Errors
    /// `Unsupported` or `InvalidInput` when the header cannot be decoded by this build.
    pub fn resume(inner: R, header: Header, first_block: u64, config: &Config) -> io::Result<Self> {
        config.validate_runtime()?;
        let mut reader = Self::build(inner, config);
        reader.engine = Some(reader.engine_for(&header)?);
        reader.header = Some(header);
        reader.stage = Stage::BlockHeader;
        reader.offset = None;
        reader.block_no = first_block;
        reader.first_block = first_block;
        Ok(reader)
    }

    /// For a reader made by [`NcReader::resume`] in a stream whose block 0 is its
    /// dictionary ([`FLAG_DICT`] in [`StreamIndex`]'s `blocks[0].flags`): decodes that block
    /// from `frame` (its block header and payload as they are in the stream, from
    /// `blocks[0].offset` on), so the blocks after it, which start from its state, decode.
    /// Without it they fail with `InvalidData`.
    ///
    /// # Errors
    /// `InvalidData` when `frame` is not the stream's dictionary block, `UnexpectedEof` when
    /// it is cut short.
    pub fn with_dictionary(mut self, mut frame: &[u8]) -> io::Result<Self> {
        let (Some(engine), Some(header)) = (self.engine.as_mut(), self.header.as_ref()) else {
            return Err(Error::Finished.into());
        };
        decode_dictionary(engine, header, &mut frame, None)?;
        Ok(self)
    }

    fn build(inner: R, config: &Config) -> Self {
        NcReader {
            inner,
            lanes: config.lanes_setting(),
            threads: config.get_threads(),
            memlimit: config.get_memlimit(),
            model: config.get_model().cloned(),
            header: None,
            engine: None,
            stage: Stage::Header,
            buf: Vec::new(),
            filled: 0,
            pending: Vec::new(),
            decoded: Vec::new(),
            decoded_pos: 0,
            skip: 0,
            offset: Some(0),
            block_no: 0,
            first_block: 0,
            seen: Vec::new(),
            content_crc: crc32fast::Hasher::new(),
            content_len: 0,
            trailer_crc: crc32fast::Hasher::new(),
            pos: 0,
            index: None,
            base: None,
            poisoned: None,
            single: false,
            streams: 0,
            total_in: 0,
            total_out: 0,
        }
    }

    /// Whether to stop at the end of the first stream (`true`) or, as by default, to read
    /// every stream that follows it as one: `cat a.nc b.nc` decodes to `a` then `b`, as
    /// gzip's members and zstd's frames do. A single-stream reader never reads a byte past
    /// its stream, so something else may follow on the same source (a socket, a container
    /// format) and be read from it afterwards ([`NcReader::into_inner`]).
    #[must_use]
    pub fn single_stream(mut self, single: bool) -> Self {
        self.single = single;
        self
    }

    fn engine_for(&self, header: &Header) -> Result<Engine, Error> {
        let lanes = crate::config::lanes_for(self.lanes, self.threads, header.uses_model());
        Engine::new(
            header,
            lanes,
            self.threads,
            self.model.as_ref(),
            self.memlimit,
        )
    }

    /// The stream header, once the first `read` has read it.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The source.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The source, mutably. Reading from it directly desynchronises the reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Returns the source.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// True once the whole stream, trailer and end of input included, has been verified.
    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Done && self.decoded_pos >= self.decoded.len()
    }

    /// Starts reading a new stream from `inner` and returns the old source. The predictors
    /// are kept, so a program that reads many streams with the same settings builds (and
    /// primes) them once, as [`crate::NcWriter::reset`] does for writers.
    pub fn reset(&mut self, inner: R) -> R {
        self.next_stream();
        self.streams = 0;
        self.offset = Some(0);
        self.filled = 0;
        self.pending.clear();
        self.decoded.clear();
        self.decoded_pos = 0;
        self.skip = 0;
        self.pos = 0;
        self.total_in = 0;
        self.total_out = 0;
        self.poisoned = None;
        std::mem::replace(&mut self.inner, inner)
    }

    /// Compressed bytes taken from the source so far (every stream, headers and trailers
    /// included, once each structure is complete).
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// Uncompressed bytes returned by `read` so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// How many streams reading has begun (1 for a single stream, more for concatenated
    /// ones; 0 before the first read).
    pub fn streams(&self) -> u64 {
        self.streams
    }

    fn here(&self, block: bool) -> Location {
        Location {
            block: block.then_some(self.block_no),
            offset: self.offset,
        }
    }

    /// Gathers the first `n` bytes of the current structure into `buf`.
    fn fill(&mut self, n: usize, what: &'static str, in_block: bool) -> io::Result<()> {
        while self.filled < n {
            // Grow with what arrives, not with what a length field claims: a short input
            // claiming a large block costs no more memory than it holds.
            let want = n.min(self.filled.max(FILL_STEP / 2) * 2);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            match self.inner.read(&mut self.buf[self.filled..want]) {
                Ok(0) => {
                    return Err(Error::Truncated {
                        what,
                        at: self.here(in_block),
                    }
                    .into())
                }
                Ok(k) => self.filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Marks the current structure of `n` bytes consumed.
    fn consume(&mut self, n: usize) {
        self.filled = 0;
        self.total_in += n as u64;
        self.offset = self.offset.map(|o| o + n as u64);
    }

    /// Length of this stream's trailer tail (known once the header is read).
    fn tail_len(&self) -> usize {
        crate::container::tail_len(
            self.header
                .as_ref()
                .map_or(crate::container::VERSION, |h| h.version),
        )
    }

    /// Advances by one structure.
    fn step(&mut self) -> io::Result<()> {
        match self.stage {
            Stage::Header => {
                // Check the magic first, so a short non-.nc input is named as such.
                self.fill(MAGIC.len(), "header", false)?;
                if self.buf[..MAGIC.len()] != MAGIC {
                    return Err(Error::NotNcStream.into());
                }
                self.fill(HEADER_PREFIX_LEN, "header", false)?;
                let mut prefix = [0u8; HEADER_PREFIX_LEN];
                prefix.copy_from_slice(&self.buf[..HEADER_PREFIX_LEN]);
                let len = Header::size_from_prefix(&prefix)?;
                self.fill(len, "header", false)?;
                let header = Header::parse(&self.buf[..len])?;
                // A stream that follows one with the same header reuses its predictors.
                if self.engine.is_none() || self.header.as_ref() != Some(&header) {
                    self.engine = None;
                    self.engine = Some(self.engine_for(&header)?);
                }
                self.header = Some(header);
                self.streams += 1;
                self.consume(len);
                self.stage = Stage::BlockHeader;
            }
            Stage::BlockHeader => {
                self.fill(BLOCK_HEADER_LEN, "block header", true)?;
                let mut b = [0u8; BLOCK_HEADER_LEN];
                b.copy_from_slice(&self.buf[..BLOCK_HEADER_LEN]);
                let block_size = self.header.as_ref().map_or(0, |h| h.block_size);
                let tail_len = self.tail_len();
                let header =
                    BlockHeader::parse(&b, block_size, tail_len, self.block_no, self.here(true))?;
                if header.kind == BlockKind::End {
                    let count =
                        u64::from(header.payload_len - tail_len as u32) / INDEX_ENTRY_LEN as u64;
                    if count != self.block_no {
                        return Err(Error::corrupt(
                            format!(
                                "trailer lists {count} blocks but the stream has {}",
                                self.block_no
                            ),
                            self.here(false),
                        )
                        .into());
                    }
                    self.decode_pending()?;
                    self.stage = Stage::Entries { next: 0, count };
                } else {
                    match self.header.as_ref() {
                        Some(h) => h.check_block(&header, self.here(true))?,
                        None => {
                            return Err(Error::corrupt(
                                "block before the stream header",
                                self.here(true),
                            )
                            .into())
                        }
                    }
                    self.stage = Stage::Payload(header);
                }
                self.consume(BLOCK_HEADER_LEN);
            }
            Stage::Payload(header) => {
                let n = header.payload_len as usize;
                self.fill(n, "block payload", true)?;
                let mut payload = std::mem::take(&mut self.buf);
                payload.truncate(n);
                self.consume(n);
                self.seen.push(IndexEntry {
                    payload_len: header.payload_len,
                    raw_len: header.raw_len,
                });
                self.pending.push((header, payload));
                self.block_no += 1;
                self.stage = Stage::BlockHeader;
                // A dictionary is decoded alone: the blocks after it start from its state.
                if self.pending.len() >= self.engine.as_ref().map_or(1, Engine::lanes)
                    || header.flags & (FLAG_SYNC | FLAG_DICT) != 0
                {
                    self.decode_pending()?;
                }
            }
            Stage::Entries { next, count } => {
                if next == count {
                    self.stage = Stage::Tail { count };
                    return Ok(());
                }
                let entries = (count - next).min(TRAILER_PIECE_ENTRIES);
                let n = entries as usize * INDEX_ENTRY_LEN;
                self.fill(n, "trailer index", false)?;
                self.trailer_crc.update(&self.buf[..n]);
                for (j, chunk) in self.buf[..n].chunks_exact(INDEX_ENTRY_LEN).enumerate() {
                    let block = next + j as u64;
                    let Some(i) = block.checked_sub(self.first_block) else {
                        continue;
                    };
                    if self.seen.get(i as usize) != Some(&IndexEntry::parse(chunk)) {
                        return Err(Error::corrupt(
                            format!("trailer index entry {block} does not match the block"),
                            self.here(false),
                        )
                        .into());
                    }
                }
                self.consume(n);
                self.stage = Stage::Entries {
                    next: next + entries,
                    count,
                };
            }
            Stage::Tail { count } => {
                let tail_len = self.tail_len();
                self.fill(tail_len, "trailer", false)?;
                let mut tail_bytes = [0u8; LEGACY_TAIL_LEN];
                let b = &mut tail_bytes[..tail_len];
                b.copy_from_slice(&self.buf[..tail_len]);
                let at = self.here(false);
                let tail = Tail::parse(b, self.trailer_crc.clone(), at)?;
                if tail.block_count != count {
                    return Err(Error::corrupt("trailer block count mismatch", at).into());
                }
                if self.first_block == 0
                    && (tail.legacy_total_len.is_some_and(|t| t != self.content_len)
                        || tail.content_crc != self.content_crc.clone().finalize())
                {
                    return Err(
                        Error::corrupt("whole-content length or checksum mismatch", at).into(),
                    );
                }
                self.consume(tail_len);
                self.stage = Stage::Eof;
            }
            Stage::Eof if self.single => self.stage = Stage::Done,
            Stage::Eof => {
                let mut probe = [0u8; 1];
                match self.inner.read(&mut probe) {
                    Ok(0) => self.stage = Stage::Done,
                    Ok(_) if probe[0] == MAGIC[0] && self.first_block == 0 => {
                        // Another stream follows: read it as a continuation of this one.
                        self.next_stream();
                        self.buf.resize(self.buf.len().max(1), 0);
                        self.buf[0] = probe[0];
                        self.filled = 1;
                    }
                    Ok(_) => {
                        return Err(Error::TrailingData {
                            offset: self.offset.unwrap_or(0),
                        }
                        .into())
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Stage::Done => {}
        }
        Ok(())
    }

    /// Resets what is counted per stream, for a stream that follows the one just verified
    /// (the header and engine stay until the next header says otherwise).
    fn next_stream(&mut self) {
        self.stage = Stage::Header;
        self.offset = self.offset.map(|_| 0);
        self.block_no = 0;
        self.first_block = 0;
        self.seen.clear();
        self.content_crc = crc32fast::Hasher::new();
        self.content_len = 0;
        self.trailer_crc = crc32fast::Hasher::new();
        self.index = None;
        self.base = None;
        // The engine stays for the next stream; the dictionary was this one's.
        if let Some(e) = &mut self.engine {
            e.clear_dictionary();
        }
    }

    /// Decodes the pending blocks as one batch of lanes into `decoded`.
    fn decode_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(engine) = self.engine.as_mut() else {
            return Err(Error::Finished.into());
        };
        let batch: Vec<(BlockHeader, &[u8])> =
            self.pending.iter().map(|(h, p)| (*h, &p[..])).collect();
        let first = self.block_no - batch.len() as u64;
        self.decoded.clear();
        self.decoded_pos = 0;
        engine.decode(&batch, &mut self.decoded, Some(first))?;
        self.pending.clear();
        if self.first_block == 0 {
            self.content_crc.update(&self.decoded);
            self.content_len += self.decoded.len() as u64;
        }
        self.decoded_pos = self.skip.min(self.decoded.len());
        self.skip = 0;
        Ok(())
    }
}

impl<R: Read> Read for NcReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.decoded_pos < self.decoded.len() {
                let n = out.len().min(self.decoded.len() - self.decoded_pos);
                out[..n].copy_from_slice(&self.decoded[self.decoded_pos..self.decoded_pos + n]);
                self.decoded_pos += n;
                self.pos += n as u64;
                self.total_out += n as u64;
                return Ok(n);
            }
            if let Some((kind, msg)) = &self.poisoned {
                return Err(io::Error::new(*kind, msg.clone()));
            }
            if self.stage == Stage::Done {
                return Ok(0);
            }
            if let Err(e) = self.step() {
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::Unsupported
                ) {
                    self.poisoned = Some((e.kind(), e.to_string()));
                }
                return Err(e);
            }
        }
    }
}

impl<R: Read + Seek> NcReader<R> {
    /// Total uncompressed length, read from the trailer index.
    ///
    /// # Errors
    /// As for seeking: the index must be present and valid.
    pub fn uncompressed_len(&mut self) -> io::Result<u64> {
        Ok(self.load_index()?.total_len)
    }

    /// Loads (once) the trailer index of the stream, leaving the source where it was.
    fn load_index(&mut self) -> io::Result<&StreamIndex> {
        if self.index.is_none() {
            let here = self.inner.stream_position()?;
            let base = match (self.base, self.offset) {
                (Some(b), _) => b,
                (None, Some(offset)) => {
                    here.checked_sub(offset + self.filled as u64)
                        .ok_or_else(|| Error::InvalidSeek {
                            what: "the source moved under the reader".into(),
                        })?
                }
                (None, None) => {
                    return Err(Error::InvalidSeek {
                        what: "a reader resumed mid-stream cannot seek".into(),
                    }
                    .into())
                }
            };
            self.inner.seek(SeekFrom::Start(base))?;
            let index = StreamIndex::read_from(&mut self.inner)?;
            self.inner.seek(SeekFrom::Start(here))?;
            // Before this stream's header is read, a header kept from an earlier stream
            // (after `reset`) only says which predictors can be reused.
            let fresh = self.stage == Stage::Header;
            match &self.header {
                Some(h) if !fresh && *h != index.header => {
                    return Err(Error::corrupt(
                        "header changed under the reader",
                        Location::default(),
                    )
                    .into())
                }
                Some(_) if !fresh => {}
                _ => {
                    if self.engine.is_none() || self.header.as_ref() != Some(&index.header) {
                        self.engine = None;
                        self.engine = Some(self.engine_for(&index.header)?);
                    }
                    self.header = Some(index.header.clone());
                    self.streams = 1;
                    if self.stage == Stage::Header {
                        // The header is known now: skip it if reading goes on from here.
                        let len = index.header.size() as u64;
                        self.inner.seek(SeekFrom::Start(base + len))?;
                        self.filled = 0;
                        self.offset = Some(len);
                        self.stage = Stage::BlockHeader;
                    }
                }
            }
            self.base = Some(base);
            self.index = Some(index);
        }
        self.index.as_ref().ok_or_else(|| {
            Error::InvalidSeek {
                what: "no index".into(),
            }
            .into()
        })
    }
}

/// Reads the stream's dictionary block (block 0, at stream offset `offset` where known)
/// from `r`, its header then its payload, and decodes it into `engine`.
fn decode_dictionary(
    engine: &mut Engine,
    header: &Header,
    r: &mut impl Read,
    offset: Option<u64>,
) -> io::Result<()> {
    let at = Location {
        block: Some(0),
        offset,
    };
    let mut b = [0u8; BLOCK_HEADER_LEN];
    read_exact_or(r, &mut b, "block header", at)?;
    let h = BlockHeader::parse(&b, header.block_size, tail_len(header.version), 0, at)?;
    header.check_block(&h, at)?;
    if h.flags & FLAG_DICT == 0 {
        return Err(Error::corrupt("block 0 is not a dictionary", at).into());
    }
    let mut payload = vec![0; h.payload_len as usize];
    read_exact_or(r, &mut payload, "block payload", at)?;
    engine.decode(&[(h, &payload)], &mut Vec::new(), Some(0))?;
    Ok(())
}

impl<R: Read + Seek> NcReader<R> {
    /// Decodes the stream's dictionary (block 0, at `d`), unless the engine has it, so that
    /// a seek past it can decode the blocks that start from its state.
    fn load_dictionary(&mut self, base: u64, d: BlockLocation) -> io::Result<()> {
        let (Some(engine), Some(header)) = (self.engine.as_mut(), self.header.as_ref()) else {
            return Err(Error::Finished.into());
        };
        if engine.has_dictionary() {
            return Ok(());
        }
        self.inner.seek(SeekFrom::Start(base + d.offset))?;
        decode_dictionary(engine, header, &mut self.inner, Some(d.offset))
    }
}

impl<R: Read + Seek> Seek for NcReader<R> {
    /// Moves to an uncompressed offset; the next `read` decodes the block holding it.
    /// Seeking at or past the end makes `read` return 0.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let current = self.pos;
        let index = self.load_index()?;
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => index.total_len.checked_add_signed(d),
            SeekFrom::Current(d) => current.checked_add_signed(d),
        }
        .ok_or_else(|| Error::InvalidSeek {
            what: "position before the start or beyond 2^64".into(),
        })?;
        let block = index.block_at(target).map(|i| (i, index.blocks[i]));
        let dictionary = index
            .blocks
            .first()
            .filter(|b| b.flags & FLAG_DICT != 0)
            .copied();
        let base = self.base.unwrap_or(0);
        self.pending.clear();
        self.decoded.clear();
        self.decoded_pos = 0;
        self.filled = 0;
        self.seen.clear();
        self.trailer_crc = crc32fast::Hasher::new();
        self.content_crc = crc32fast::Hasher::new();
        self.content_len = 0;
        self.poisoned = None;
        self.pos = target;
        match block {
            Some((i, loc)) => {
                if let Some(d) = dictionary.filter(|_| i > 0) {
                    self.load_dictionary(base, d)?;
                }
                self.inner.seek(SeekFrom::Start(base + loc.offset))?;
                self.offset = Some(loc.offset);
                self.block_no = i as u64;
                self.first_block = i as u64;
                self.skip = (target - loc.raw_offset) as usize;
                self.stage = Stage::BlockHeader;
            }
            None => {
                self.skip = 0;
                self.stage = Stage::Done;
            }
        }
        Ok(target)
    }
}

impl<R: std::fmt::Debug> std::fmt::Debug for NcReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcReader")
            .field("inner", &self.inner)
            .field("header", &self.header)
            .field("stage", &self.stage)
            .field("block", &self.block_no)
            .field("position", &self.pos)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::config::{PredictorKind, DEFAULT_LANES};
    use crate::NcWriter;

    /// A reader takes its default lane count from the stream, not from the config's
    /// predictor (which only says how to compress): a neural stream decodes `DEFAULT_LANES`
    /// blocks per model call, as it was encoded, even through `NcReader::new`.
    #[test]
    fn the_default_lane_count_follows_the_stream() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("onnx-models/nc-test32.onnx");
        let model = Arc::new(NeuralModel::from_file(path).unwrap());
        let config = Config::new()
            .predictor(PredictorKind::Neural)
            .model(model.clone())
            .block_size(4096)
            .threads(1);
        let text: Vec<u8> = b"lanes follow the stream. ".repeat(400);
        let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
        w.write_all(&text).unwrap();
        let stream = w.finish().unwrap();
        let read_config = Config::new().model(model).threads(1);
        let mut r = NcReader::with_config(&stream[..], &read_config).unwrap();
        let mut first = [0u8; 1];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.engine.as_ref().map(Engine::lanes), Some(DEFAULT_LANES));
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!([&first[..], &rest].concat(), text);

        let plain = NcWriter::with_config(Vec::new(), &Config::new().threads(1))
            .and_then(|mut w| w.write_all(b"no model").and_then(|()| w.finish()))
            .unwrap();
        let mut r = NcReader::with_config(&plain[..], &read_config).unwrap();
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.engine.as_ref().map(Engine::lanes), Some(1));
    }
}
