//! `NcWriter`: compresses into any `Write`.
//!
//! ```text
//! write(bytes) -> [ input batch (<= lanes x block size) -> engine -> framed blocks ] -> W
//! ```

use std::io::{self, Write};

use crate::config::Config;
use crate::container::{
    BlockHeader, BlockKind, Header, IndexEntry, Tail, DICT_LEN, FLAG_SYNC, INDEX_ENTRY_LEN,
    MAX_BLOCKS, TAIL_LEN,
};
use crate::engine::Engine;
use crate::error::Error;

/// Where the writer is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Accepting data.
    Open,
    /// The trailer is queued in `out`; only draining remains.
    Closing,
    /// Everything was written to `W` and flushed.
    Done,
}

/// Compresses everything written to it into the `.nc` format and writes that to `W`.
///
/// Bytes are gathered until `lanes` blocks are full, then coded side by side. Nothing is
/// complete until [`finish`](NcWriter::finish) (or [`try_finish`](NcWriter::try_finish))
/// writes the trailer.
///
/// **Dropping an unfinished writer does not finish the stream**: the bytes not yet coded are
/// lost and the output has no trailer, so any reader reports it as truncated
/// (`UnexpectedEof`) instead of mistaking it for a complete stream.
///
/// [`flush`](Write::flush) codes the data written so far as (possibly short) blocks, marks
/// the last one so a reader decodes it at once, writes everything to `W` and flushes `W`: a
/// peer reading a socket can decode all bytes written before the flush. Without flushes the
/// output depends only on the input bytes and the [`Config`], never on how writes were
/// chunked.
///
/// ```
/// use std::io::Write;
/// let mut w = nc_codec::NcWriter::new(Vec::new())?;
/// w.write_all(b"hello hello hello")?;
/// let compressed: Vec<u8> = w.finish()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct NcWriter<W: Write> {
    /// The sink.
    inner: W,
    /// Codes batches of blocks.
    engine: Engine,
    /// Uncompressed bytes per block.
    block_size: usize,
    /// Uncompressed bytes not yet coded (at most `lanes * block_size`).
    input: Vec<u8>,
    /// Framed bytes not yet accepted by `inner`.
    out: Vec<u8>,
    /// How much of `out` `inner` has accepted.
    out_pos: usize,
    /// Hasher over the index entries written so far (for the trailer checksum).
    index_crc: crc32fast::Hasher,
    /// The index entries, kept until the trailer is written.
    index: Vec<IndexEntry>,
    /// CRC32 of all uncompressed bytes so far.
    content_crc: crc32fast::Hasher,
    /// Uncompressed bytes so far.
    total_len: u64,
    /// Life stage.
    stage: Stage,
    /// Set when coding failed: the stream is unusable from then on.
    failed: bool,
    /// The header, written again by [`NcWriter::reset`].
    header: Header,
    /// Compressed bytes the sink has accepted.
    total_out: u64,
}

impl<W: Write> NcWriter<W> {
    /// A writer with the default [`Config`].
    ///
    /// # Errors
    /// Only if the default configuration cannot be built (never with a valid build).
    pub fn new(inner: W) -> io::Result<Self> {
        Self::with_config(inner, &Config::new())
    }

    /// A writer with the given configuration; the header is written on the first write or
    /// flush.
    ///
    /// # Errors
    /// `InvalidInput` when the configuration is out of range; `OutOfMemory` when one lane
    /// would need more than [`Config::memlimit`].
    pub fn with_config(inner: W, config: &Config) -> io::Result<Self> {
        let header: Header = config.header()?;
        let engine = Engine::new(
            &header,
            config.get_lanes(),
            config.get_threads(),
            config.get_model(),
            config.get_memlimit(),
        )?;
        let mut out = Vec::with_capacity(header.size());
        out.extend_from_slice(&header.to_bytes());
        Ok(NcWriter {
            inner,
            engine,
            block_size: header.block_size as usize,
            input: Vec::new(),
            out,
            out_pos: 0,
            index_crc: crc32fast::Hasher::new(),
            index: Vec::new(),
            content_crc: crc32fast::Hasher::new(),
            total_len: 0,
            stage: Stage::Open,
            failed: false,
            header,
            total_out: 0,
        })
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The sink, mutably. Writing to it directly corrupts the stream.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the sink without finishing the stream (see the type's notes on `Drop`).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Uncompressed bytes accepted so far.
    pub fn total_in(&self) -> u64 {
        self.total_len + self.input.len() as u64
    }

    /// Compressed bytes the sink has accepted so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Starts a new stream into `inner` with the same configuration and returns the old
    /// sink. The predictors are kept, so a program that writes many streams pays for
    /// building (and priming) them once. Whatever the old stream had not finished is
    /// dropped: call [`try_finish`](NcWriter::try_finish) first.
    pub fn reset(&mut self, inner: W) -> W {
        self.input.clear();
        self.engine.clear_dictionary();
        self.out.clear();
        self.out.extend_from_slice(&self.header.to_bytes());
        self.out_pos = 0;
        self.index_crc = crc32fast::Hasher::new();
        self.index.clear();
        self.content_crc = crc32fast::Hasher::new();
        self.total_len = 0;
        self.total_out = 0;
        self.stage = Stage::Open;
        self.failed = false;
        std::mem::replace(&mut self.inner, inner)
    }

    /// A writer that finishes the stream when dropped, ignoring errors there (as zstd's
    /// `AutoFinishEncoder` does): for callers that cannot call `finish`. Prefer `finish`,
    /// which reports them.
    pub fn auto_finish(self) -> AutoFinishNcWriter<W> {
        AutoFinishNcWriter { writer: Some(self) }
    }

    /// Codes any pending data, writes the trailer and flushes the sink. Can be called again
    /// after an error such as `WouldBlock` to continue where it stopped.
    ///
    /// # Errors
    /// Errors of the sink; `Other` if the writer failed earlier.
    pub fn try_finish(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(Error::Finished.into());
        }
        if self.stage == Stage::Open {
            self.code_pending(false, false)?;
            self.queue_trailer();
            self.stage = Stage::Closing;
        }
        if self.stage == Stage::Closing {
            self.drain()?;
            self.inner.flush()?;
            self.stage = Stage::Done;
        }
        Ok(())
    }

    /// Finishes the stream and returns the sink.
    ///
    /// # Errors
    /// As [`try_finish`](NcWriter::try_finish).
    pub fn finish(mut self) -> io::Result<W> {
        self.try_finish()?;
        Ok(self.inner)
    }

    /// Writes as much of `out` to the sink as it takes; keeps the rest for the next call.
    fn drain(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.inner.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the sink accepted no bytes",
                    ))
                }
                Ok(n) => {
                    self.out_pos += n;
                    self.total_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Codes the pending input as blocks and frames them into `out`. With `sync`, the last
    /// block is flagged so readers decode at once. `more`: more input is on its way (the
    /// batch is full), so the stream will have another block.
    ///
    /// A stream's first block is its dictionary ([`FLAG_DICT`](crate::format::FLAG_DICT))
    /// where the engine has them and another block is known to follow, or the writer is
    /// flushed (the stream goes on: a socket's first message teaches the blocks of the
    /// messages after it): it is cut at [`DICT_LEN`] bytes and coded alone, and later
    /// blocks start from its state. What follows it waits for a full batch unless the
    /// stream is being finished or flushed.
    fn code_pending(&mut self, sync: bool, more: bool) -> io::Result<()> {
        if self.input.is_empty() {
            return Ok(());
        }
        let mut input = std::mem::take(&mut self.input);
        let mut result = Ok(());
        if self.index.is_empty()
            && self.engine.dictionaries()
            && (more || sync || input.len() > self.block_size)
        {
            let n = input.len().min(self.block_size).min(DICT_LEN as usize);
            let last = n == input.len();
            result = self.code_blocks(vec![&mut input[..n]], true, sync && last);
            input.drain(..n);
            if more && !sync {
                self.input = input;
                return result;
            }
        }
        if result.is_ok() && !input.is_empty() {
            let blocks = input.chunks_mut(self.block_size).collect();
            result = self.code_blocks(blocks, false, sync);
        }
        input.clear();
        self.input = input;
        result
    }

    /// Codes `blocks` (the stream's dictionary with `dictionary`) and frames them into
    /// `out`; with `sync` the last is flagged so readers decode at once.
    fn code_blocks(
        &mut self,
        mut blocks: Vec<&mut [u8]>,
        dictionary: bool,
        sync: bool,
    ) -> io::Result<()> {
        if self.index.len() as u64 + blocks.len() as u64 > MAX_BLOCKS {
            self.failed = true;
            return Err(Error::InvalidConfig {
                what: format!("stream exceeds {MAX_BLOCKS} blocks; use a larger block size"),
            }
            .into());
        }
        let coded = match self.engine.encode(&mut blocks, dictionary) {
            Ok(coded) => coded,
            Err(e) => {
                self.failed = true;
                return Err(e.into());
            }
        };
        let last = blocks.len() - 1;
        for (i, (raw, block)) in blocks.iter().zip(coded).enumerate() {
            let raw: &[u8] = raw;
            let payload: &[u8] = match block.kind {
                BlockKind::Stored => raw,
                _ => &block.payload,
            };
            let header = BlockHeader {
                kind: block.kind,
                flags: block.flags | if sync && i == last { FLAG_SYNC } else { 0 },
                raw_len: raw.len() as u32,
                payload_len: payload.len() as u32,
                crc: block.crc,
            };
            self.out
                .extend_from_slice(&header.to_bytes(self.index.len() as u64));
            self.out.extend_from_slice(payload);
            let entry = IndexEntry {
                payload_len: header.payload_len,
                raw_len: header.raw_len,
            };
            self.index_crc.update(&entry.to_bytes());
            self.index.push(entry);
            self.content_crc.update(raw);
            self.total_len += raw.len() as u64;
        }
        Ok(())
    }

    /// Appends the END block and the trailer to `out`.
    fn queue_trailer(&mut self) {
        let trailer_len = self.index.len() * INDEX_ENTRY_LEN + TAIL_LEN;
        let end = BlockHeader {
            kind: BlockKind::End,
            flags: 0,
            raw_len: 0,
            payload_len: trailer_len as u32,
            crc: 0,
        };
        self.out
            .extend_from_slice(&end.to_bytes(self.index.len() as u64));
        for entry in &self.index {
            self.out.extend_from_slice(&entry.to_bytes());
        }
        let tail = Tail {
            block_count: self.index.len() as u64,
            content_crc: self.content_crc.clone().finalize(),
            legacy_total_len: None,
        };
        self.out
            .extend_from_slice(&tail.to_bytes(self.index_crc.clone()));
        self.index = Vec::new();
    }
}

impl<W: Write> Write for NcWriter<W> {
    /// Accepts bytes into the current batch; a full batch is coded when more data arrives
    /// (or at `flush`/`finish`), and coded bytes reach the sink at the next call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed || self.stage != Stage::Open {
            return Err(Error::Finished.into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        self.drain()?;
        let capacity = self.engine.lanes() * self.block_size;
        if self.input.len() == capacity {
            self.code_pending(false, true)?;
        }
        let n = buf.len().min(capacity - self.input.len());
        self.input.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Codes everything written so far, writes it and flushes the sink.
    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(Error::Finished.into());
        }
        if self.stage == Stage::Open {
            self.code_pending(true, false)?;
        }
        self.drain()?;
        self.inner.flush()
    }
}

impl<W: Write + std::fmt::Debug> std::fmt::Debug for NcWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcWriter")
            .field("inner", &self.inner)
            .field("block_size", &self.block_size)
            .field("pending", &self.input.len())
            .field("total_in", &self.total_in())
            .field("stage", &self.stage)
            .finish()
    }
}

/// An [`NcWriter`] that finishes its stream when dropped ([`NcWriter::auto_finish`]).
pub struct AutoFinishNcWriter<W: Write> {
    writer: Option<NcWriter<W>>,
}

impl<W: Write> AutoFinishNcWriter<W> {
    /// The writer inside.
    pub fn get_ref(&self) -> Option<&NcWriter<W>> {
        self.writer.as_ref()
    }

    /// Finishes the stream now, reporting errors, and returns the sink.
    ///
    /// # Errors
    /// As [`NcWriter::finish`].
    pub fn finish(mut self) -> io::Result<W> {
        match self.writer.take() {
            Some(w) => w.finish(),
            None => Err(Error::Finished.into()),
        }
    }
}

impl<W: Write> Write for AutoFinishNcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.writer {
            Some(w) => w.write(buf),
            None => Err(Error::Finished.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Err(Error::Finished.into()),
        }
    }
}

impl<W: Write> Drop for AutoFinishNcWriter<W> {
    fn drop(&mut self) {
        if let Some(w) = &mut self.writer {
            // Drop cannot report: callers who need the error call `finish`.
            let _ = w.try_finish();
        }
    }
}
