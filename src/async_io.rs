//! Async adapters (feature `tokio`): [`AsyncNcWriter`] and [`AsyncNcReader`] over tokio's
//! `AsyncWrite`/`AsyncRead`, and [`NcCodec`], a `tokio_util::codec` encoder and decoder that
//! sends each message as one `.nc` stream.
//!
//! ```text
//! AsyncNcWriter: poll_write -> chunk -> spawn_blocking(NcWriter) -> coded bytes -> W
//! AsyncNcReader: R -> compressed bytes -> spawn_blocking(NcReader) -> decoded bytes -> poll_read
//! ```
//!
//! Coding is CPU-bound (milliseconds per kilobyte), so the adapters never code on the async
//! executor: each batch runs on tokio's blocking pool while the task waits on its handle.
//! The codec's `encode`/`decode` are synchronous by trait; on a multi-threaded runtime they
//! code inside `block_in_place`, which moves the worker's other tasks elsewhere.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::container::{
    tail_len, BlockHeader, BlockKind, Header, BLOCK_HEADER_LEN, HEADER_PREFIX_LEN, MAGIC,
};
use crate::error::{Error, Location};
use crate::read::NcReader;
use crate::write::NcWriter;

/// Uncompressed bytes handed to the blocking pool per job: large enough that a job's
/// overhead (microseconds) is lost in its coding time, small enough to keep memory flat.
const CHUNK: usize = 256 << 10;

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> io::Result<T> {
    r.map_err(|e| io::Error::other(format!("coding task failed: {e}")))
}

/// The blocking writer, sent to the blocking pool and back.
type BoxedWriter = Box<NcWriter<Vec<u8>>>;
/// A coding job: the writer comes back with what the job's calls returned.
type WriteJob = JoinHandle<(BoxedWriter, io::Result<()>)>;
/// A decoding job: the reader comes back with the bytes it decoded.
type ReadJob = JoinHandle<(Box<NcReader<SharedFeed>>, io::Result<Vec<u8>>)>;

/// What the writer is doing.
enum WriteState {
    /// Accepting input.
    Idle(Box<NcWriter<Vec<u8>>>),
    /// Coding on the blocking pool; `Op` says what to do when it is back.
    Coding(WriteJob, Op),
    /// Writing coded bytes to the sink.
    Draining(Box<NcWriter<Vec<u8>>>, Op),
    /// Failed or finished.
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Flush,
    Shutdown,
}

/// Compresses into an `AsyncWrite`, coding on tokio's blocking pool.
///
/// `poll_write` takes input into a buffer and returns at once; full chunks are coded in the
/// background. `poll_flush` codes what was written so far (as [`NcWriter`]'s `flush` does)
/// and flushes the sink; `poll_shutdown` finishes the stream (writes the trailer), then shuts
/// the sink down. A stream is complete only after `shutdown`.
pub struct AsyncNcWriter<W> {
    inner: W,
    state: WriteState,
    input: Vec<u8>,
    /// How much of the coded bytes (the writer's sink `Vec`) the sink has taken.
    out_pos: usize,
}

impl<W: AsyncWrite + Unpin> AsyncNcWriter<W> {
    /// A writer with `config`.
    ///
    /// # Errors
    /// As [`NcWriter::with_config`].
    pub fn new(inner: W, config: &Config) -> io::Result<Self> {
        Ok(AsyncNcWriter {
            inner,
            state: WriteState::Idle(Box::new(NcWriter::with_config(Vec::new(), config)?)),
            input: Vec::new(),
            out_pos: 0,
        })
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the sink (after `shutdown`, the stream in it is complete).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Drives the state machine until it is idle again after `op`.
    fn poll_op(&mut self, cx: &mut Context<'_>, op: Op) -> Poll<io::Result<()>> {
        loop {
            match std::mem::replace(&mut self.state, WriteState::Done) {
                WriteState::Idle(mut writer) => {
                    let pending = std::mem::take(&mut self.input);
                    if pending.is_empty() && op == Op::Write {
                        self.state = WriteState::Idle(writer);
                        return Poll::Ready(Ok(()));
                    }
                    let job = tokio::task::spawn_blocking(move || {
                        let r = writer.write_all(&pending).and_then(|()| match op {
                            Op::Write => Ok(()),
                            Op::Flush => writer.flush(),
                            Op::Shutdown => writer.try_finish(),
                        });
                        (writer, r)
                    });
                    self.state = WriteState::Coding(job, op);
                }
                WriteState::Coding(mut job, op) => match Pin::new(&mut job).poll(cx) {
                    Poll::Pending => {
                        self.state = WriteState::Coding(job, op);
                        return Poll::Pending;
                    }
                    Poll::Ready(r) => {
                        let (writer, result) = joined(r)?;
                        result?;
                        self.state = WriteState::Draining(writer, op);
                    }
                },
                WriteState::Draining(mut writer, op) => {
                    let out = writer.get_mut();
                    while self.out_pos < out.len() {
                        match Pin::new(&mut self.inner).poll_write(cx, &out[self.out_pos..]) {
                            Poll::Pending => {
                                self.state = WriteState::Draining(writer, op);
                                return Poll::Pending;
                            }
                            Poll::Ready(Ok(0)) => {
                                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
                            }
                            Poll::Ready(Ok(n)) => self.out_pos += n,
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        }
                    }
                    out.clear();
                    self.out_pos = 0;
                    self.state = WriteState::Idle(writer);
                    return Poll::Ready(Ok(()));
                }
                WriteState::Done => return Poll::Ready(Err(Error::Finished.into())),
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncNcWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.input.len() >= CHUNK || !matches!(this.state, WriteState::Idle(_)) {
            ready!(this.poll_op(cx, Op::Write))?;
        }
        let n = buf.len().min(CHUNK.saturating_sub(this.input.len()).max(1));
        this.input.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.state, WriteState::Idle(_)) {
            ready!(this.poll_op(cx, Op::Flush))?;
        } else {
            // Finish the job under way, then flush what it left.
            ready!(this.poll_op(cx, Op::Write))?;
            ready!(this.poll_op(cx, Op::Flush))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &this.state {
                WriteState::Done => break,
                WriteState::Idle(_) => {
                    ready!(this.poll_op(cx, Op::Shutdown))?;
                    this.state = WriteState::Done;
                }
                WriteState::Coding(_, op) | WriteState::Draining(_, op) => {
                    // A job under way (possibly the finish itself) completes first.
                    let finishing = *op == Op::Shutdown;
                    ready!(this.poll_op(cx, Op::Write))?;
                    if finishing {
                        this.state = WriteState::Done;
                    }
                }
            }
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Compressed bytes shared between the async side (which fills it) and the decoder on the
/// blocking pool (which reads it, and sees `WouldBlock` when it runs dry before the end).
#[derive(Default)]
struct Feed {
    bytes: BytesMut,
    eof: bool,
}

#[derive(Clone, Default)]
struct SharedFeed(Arc<Mutex<Feed>>);

impl SharedFeed {
    fn with<T>(&self, f: impl FnOnce(&mut Feed) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Read for SharedFeed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|feed| {
            if feed.bytes.is_empty() {
                return if feed.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(feed.bytes.len());
            buf[..n].copy_from_slice(&feed.bytes[..n]);
            feed.bytes.advance(n);
            Ok(n)
        })
    }
}

/// Decompresses from an `AsyncRead`, decoding on tokio's blocking pool. Reads every stream
/// that follows, as [`NcReader`] does; the same checks, the same errors.
pub struct AsyncNcReader<R> {
    inner: R,
    feed: SharedFeed,
    reader: Option<Box<NcReader<SharedFeed>>>,
    job: Option<ReadJob>,
    decoded: Bytes,
    /// The decoder asked for more input than the feed held.
    starved: bool,
    done: bool,
}

impl<R: AsyncRead + Unpin> AsyncNcReader<R> {
    /// A reader with `config`'s lanes, threads, memory limit and model.
    ///
    /// # Errors
    /// As [`NcReader::with_config`].
    pub fn new(inner: R, config: &Config) -> io::Result<Self> {
        let feed = SharedFeed::default();
        Ok(AsyncNcReader {
            inner,
            reader: Some(Box::new(NcReader::with_config(feed.clone(), config)?)),
            feed,
            job: None,
            decoded: Bytes::new(),
            starved: true,
            done: false,
        })
    }

    /// Returns the source.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads more compressed bytes into the feed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut buf = [0u8; 64 << 10];
        let mut rb = ReadBuf::new(&mut buf);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        let filled = rb.filled();
        self.feed.with(|feed| {
            if filled.is_empty() {
                feed.eof = true;
            } else {
                feed.bytes.extend_from_slice(filled);
            }
        });
        self.starved = false;
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncNcReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.decoded.is_empty() {
                let n = out.remaining().min(this.decoded.len());
                out.put_slice(&this.decoded.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.done {
                return Poll::Ready(Ok(()));
            }
            if let Some(job) = &mut this.job {
                let (reader, result) = joined(ready!(Pin::new(job).poll(cx)))?;
                this.job = None;
                this.reader = Some(reader);
                match result {
                    Ok(bytes) if bytes.is_empty() => this.done = true,
                    Ok(bytes) => this.decoded = Bytes::from(bytes),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => this.starved = true,
                    Err(e) => return Poll::Ready(Err(e)),
                }
                continue;
            }
            let eof = this.feed.with(|f| f.eof);
            if this.starved && !eof {
                ready!(this.poll_fill(cx))?;
                continue;
            }
            let Some(mut reader) = this.reader.take() else {
                return Poll::Ready(Err(Error::Finished.into()));
            };
            this.job = Some(tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; CHUNK];
                let result = reader.read(&mut buf).map(|n| {
                    buf.truncate(n);
                    buf
                });
                (reader, result)
            }));
        }
    }
}

/// A `tokio_util::codec` encoder and decoder of messages, each sent as one complete `.nc`
/// stream: for framing a connection into compressed messages with `Framed`.
///
/// The decoder finds a stream's end from its block headers without decoding, so it waits
/// for a whole message (at most [`NcCodec::max_frame_len`] compressed bytes) and then
/// decodes and checks it in one go.
#[derive(Clone, Debug)]
pub struct NcCodec {
    config: Config,
    max_frame: usize,
}

impl NcCodec {
    /// A codec that compresses with `config` and decodes with its lanes, threads, memory
    /// limit and model. Frames up to 64 MiB compressed.
    pub fn new(config: Config) -> Self {
        NcCodec {
            config,
            max_frame: 64 << 20,
        }
    }

    /// Sets the largest compressed frame the decoder accepts (a bound on what one message
    /// may make it buffer).
    #[must_use]
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// The length of the complete stream at the start of `buf`, once all of it is there.
    fn frame_len(&self, buf: &[u8]) -> io::Result<Option<usize>> {
        if buf.len() < HEADER_PREFIX_LEN {
            if buf.len() >= MAGIC.len() && buf[..MAGIC.len()] != MAGIC {
                return Err(Error::NotNcStream.into());
            }
            return Ok(None);
        }
        let prefix: &[u8; HEADER_PREFIX_LEN] = buf
            .first_chunk()
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let header_len = Header::size_from_prefix(prefix)?;
        let Some(header_bytes) = buf.get(..header_len) else {
            return Ok(None);
        };
        let header = Header::parse(header_bytes)?;
        let tail = tail_len(header.version);
        let mut at = header_len;
        let mut index = 0u64;
        loop {
            if at > self.max_frame {
                return Err(Error::corrupt(
                    format!("a message over the frame limit of {} bytes", self.max_frame),
                    Location::default(),
                )
                .into());
            }
            let Some(b) = buf.get(at..at + BLOCK_HEADER_LEN) else {
                return Ok(None);
            };
            let b: &[u8; BLOCK_HEADER_LEN] = b
                .try_into()
                .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            let location = Location {
                block: Some(index),
                offset: Some(at as u64),
            };
            let h = BlockHeader::parse(b, header.block_size, tail, index, location)?;
            at += BLOCK_HEADER_LEN + h.payload_len as usize;
            if h.kind == BlockKind::End {
                return Ok((buf.len() >= at).then_some(at));
            }
            index += 1;
        }
    }

    /// Runs CPU-bound `f` without stalling a multi-threaded runtime's other tasks.
    fn off_executor<T>(f: impl FnOnce() -> T) -> T {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(f)
            }
            _ => f(),
        }
    }
}

impl tokio_util::codec::Encoder<Bytes> for NcCodec {
    type Error = io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        let packed = Self::off_executor(|| crate::compress(&item, &self.config))?;
        dst.extend_from_slice(&packed);
        Ok(())
    }
}

impl tokio_util::codec::Decoder for NcCodec {
    type Item = Bytes;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        let Some(len) = self.frame_len(src)? else {
            return Ok(None);
        };
        let frame = src.split_to(len);
        let config = &self.config;
        let mut out = Vec::new();
        Self::off_executor(|| {
            NcReader::with_config(&frame[..], config)?
                .single_stream(true)
                .read_to_end(&mut out)
        })?;
        Ok(Some(Bytes::from(out)))
    }
}
