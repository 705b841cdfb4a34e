//! `nccat`: compress, decompress, list and test `.nc` streams, zcat/xz style.
//!
//! ```text
//! nccat [-z|-d|-l|-t] [-o OUT] [-b BLOCK] [-P PREDICTOR] [-m MODEL.onnx] [-T THREADS] [-L LANES]
//!       [--no-primer] [--offset N --length N] [FILE|-]...
//! ```
//!
//! Output goes to stdout unless `-o` names a file; several inputs are processed in turn and
//! their outputs concatenated, like `cat`. Errors are one line on stderr and a non-zero exit.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nc_codec::container::{tail_len, BlockHeader, StreamIndex, BLOCK_HEADER_LEN};
use nc_codec::experts::NeuralModel;
use nc_codec::{Config, NcReader, NcWriter, PredictorKind};

const USAGE: &str = "\
usage: nccat [-z|-d|-l|-t] [-o OUT] [-b BLOCK] [-P PREDICTOR] [-m MODEL.onnx]
             [-T THREADS] [-L LANES] [--no-primer] [--offset N --length N] [-q]
             [FILE|-]...
  -z            compress
  -d            decompress (the default)
  -l            list the header and block table of each FILE
  -t            test: decompress and verify, print nothing but errors
  -o OUT        write to OUT instead of stdout
  -b BLOCK      block size when compressing, e.g. 65536, 256K, 1M (default 1M)
  -P PREDICTOR  when compressing: fast, default or max (profiles of the mixing
                predictor; max adds the neural model), ctx (context statistics
                alone) or neural (the neural model alone); default: default
  -m MODEL      a neural model (.onnx from onnx-models/export.py) to compress with
                (implies -P neural unless -P max) or to decode streams that name it;
                default: the embedded model
  -T THREADS    worker threads (default: number of cores)
  -L LANES      blocks coded side by side (default: one per thread, 8 with a model)
  --no-primer   when compressing with fast, default or max: start blocks from empty
                tables instead of the embedded primer's state (saves ~0.9 s of
                start-up per process on tiny inputs; output is larger)
  --offset N    decompress only from uncompressed offset N ...
  --length N    ... and at most N bytes (uses the index: only the blocks needed are read)
  -q            no progress line
  -h, --help    this text";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Compress,
    Decompress,
    List,
    Test,
}

struct Options {
    mode: Mode,
    output: Option<String>,
    config: Config,
    offset: Option<u64>,
    length: Option<u64>,
    quiet: bool,
    inputs: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size '{s}'"))
}

fn parse_args() -> Result<Options, String> {
    use lexopt::prelude::*;
    let mut opts = Options {
        mode: Mode::Decompress,
        output: None,
        config: Config::new(),
        offset: None,
        length: None,
        quiet: false,
        inputs: Vec::new(),
    };
    let mut parser = lexopt::Parser::from_env();
    let value = |parser: &mut lexopt::Parser| -> Result<String, String> {
        parser
            .value()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|_| "argument is not valid UTF-8".to_string())
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('z') => opts.mode = Mode::Compress,
            Short('d') => opts.mode = Mode::Decompress,
            Short('l') => opts.mode = Mode::List,
            Short('t') => opts.mode = Mode::Test,
            Short('q') => opts.quiet = true,
            Short('o') => opts.output = Some(value(&mut parser)?),
            Short('b') => {
                let n = parse_size(&value(&mut parser)?)?;
                let n = u32::try_from(n).map_err(|_| format!("block size {n} too large"))?;
                opts.config = opts.config.block_size(n);
            }
            Short('P') => {
                let kind: PredictorKind =
                    value(&mut parser)?.parse().map_err(|e| format!("{e}"))?;
                opts.config = opts.config.predictor(kind);
            }
            Short('m') => {
                let path = value(&mut parser)?;
                let model = NeuralModel::from_file(&path).map_err(|e| format!("{path}: {e}"))?;
                opts.config = opts.config.model(Arc::new(model));
                if !opts.config.get_predictor().uses_model() {
                    opts.config = opts.config.predictor(PredictorKind::Neural);
                }
            }
            Short('T') => {
                let n = parse_size(&value(&mut parser)?)? as usize;
                opts.config = opts.config.threads(n);
            }
            Short('L') => {
                let n = parse_size(&value(&mut parser)?)? as usize;
                opts.config = opts.config.lanes(n);
            }
            Long("no-primer") => opts.config = opts.config.primer(false),
            Long("offset") => opts.offset = Some(parse_size(&value(&mut parser)?)?),
            Long("length") => opts.length = Some(parse_size(&value(&mut parser)?)?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Value(v) => opts.inputs.push(
                v.into_string()
                    .map_err(|_| "file name is not valid UTF-8")?,
            ),
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected())),
        }
    }
    if opts.inputs.is_empty() {
        opts.inputs.push("-".into());
    }
    if (opts.offset.is_some() || opts.length.is_some()) && opts.mode != Mode::Decompress {
        return Err("--offset/--length only apply when decompressing".into());
    }
    Ok(opts)
}

/// A progress line on stderr, shown only when stderr is a terminal and work takes a while.
struct Progress {
    enabled: bool,
    name: String,
    start: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(name: &str, quiet: bool) -> Self {
        let now = Instant::now();
        Progress {
            enabled: !quiet && io::stderr().is_terminal(),
            name: name.to_string(),
            start: now,
            last: now,
            shown: false,
        }
    }

    fn update(&mut self, bytes: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r{}: {}, {:.2} MB/s   ",
            self.name,
            human(bytes),
            bytes as f64 / secs / 1e6
        );
        self.shown = true;
    }

    fn done(&mut self) {
        if self.shown {
            eprint!("\r{}\r", " ".repeat(self.name.len() + 60));
        }
    }
}

fn human(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// Counts what passes through a reader and reports progress.
struct Counting<'a, R> {
    inner: R,
    count: u64,
    progress: &'a mut Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.progress.update(self.count);
        Ok(n)
    }
}

fn open_input(name: &str) -> io::Result<Box<dyn Read>> {
    if name == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        Ok(Box::new(File::open(name)?))
    }
}

fn compress(name: &str, opts: &Options, out: &mut dyn Write) -> io::Result<()> {
    let mut progress = Progress::new(name, opts.quiet);
    let input = BufReader::with_capacity(1 << 20, open_input(name)?);
    let mut writer = NcWriter::with_config(out, &opts.config)?;
    let mut counting = Counting {
        inner: input,
        count: 0,
        progress: &mut progress,
    };
    io::copy(&mut counting, &mut writer)?;
    writer.finish()?;
    progress.done();
    Ok(())
}

fn decompress(name: &str, opts: &Options, out: &mut dyn Write) -> io::Result<()> {
    if opts.offset.is_some() || opts.length.is_some() {
        return decompress_slice(name, opts, out);
    }
    let mut progress = Progress::new(name, opts.quiet);
    let input = BufReader::with_capacity(1 << 16, open_input(name)?);
    let mut reader = NcReader::with_config(input, &opts.config)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        out.write_all(&buf[..n])?;
        progress.update(total);
    }
    progress.done();
    Ok(())
}

/// `--offset/--length`: seek with the trailer index (memory-mapped file), or skip on stdin.
fn decompress_slice(name: &str, opts: &Options, out: &mut dyn Write) -> io::Result<()> {
    let offset = opts.offset.unwrap_or(0);
    let length = opts.length.unwrap_or(u64::MAX);
    if name == "-" {
        let mut reader = NcReader::with_config(io::stdin().lock(), &opts.config)?;
        io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
        io::copy(&mut (&mut reader).take(length), out)?;
        return Ok(());
    }
    let file = File::open(name)?;
    let map = map_file(&file)?;
    let mut reader = NcReader::with_config(io::Cursor::new(&map[..]), &opts.config)?;
    reader.seek(SeekFrom::Start(offset))?;
    io::copy(&mut reader.take(length), out)?;
    Ok(())
}

#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is only read; a concurrent writer could change the bytes, which the
    // per-block CRC32 check turns into an InvalidData error rather than wrong output.
    unsafe { memmap2::Mmap::map(file) }
}

fn list(name: &str, out: &mut dyn Write) -> io::Result<()> {
    let mut file = BufReader::new(File::open(name)?);
    let index = StreamIndex::read_from(&mut file)?;
    let h = &index.header;
    let model = if h.model_fingerprint == [0; 32] {
        "none".to_string()
    } else {
        let name = String::from_utf8_lossy(&h.model_name);
        let hex: String = h
            .model_fingerprint
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{} sha256:{hex}", name.trim_end_matches('\0'))
    };
    let bpb = if index.total_len == 0 {
        0.0
    } else {
        index.stream_len as f64 * 8.0 / index.total_len as f64
    };
    writeln!(out, "{name}")?;
    writeln!(
        out,
        "  format v{}, predictor {} (context order {}, experts {:#x}, temperature {:.3}), quantizer {} bits",
        h.version,
        h.predictor_name(),
        h.context_order,
        h.expert_mask,
        f64::from(h.temperature) / 256.0,
        h.quant_bits
    )?;
    writeln!(out, "  model: {model}")?;
    if h.flags & nc_codec::container::FLAG_PRIMED != 0 {
        writeln!(
            out,
            "  primed: blocks start from the embedded primer's state (format v7)"
        )?;
    }
    writeln!(
        out,
        "  block size {}, {} blocks, {} -> {} bytes ({bpb:.3} bits/byte), content crc32 {:08x}",
        h.block_size,
        index.blocks.len(),
        index.total_len,
        index.stream_len,
        index.content_crc
    )?;
    writeln!(
        out,
        "  {:>8} {:>6} {:>14} {:>10} {:>14} {:>10} {:>7}",
        "block", "kind", "offset", "payload", "raw offset", "raw len", "bpb"
    )?;
    for (i, b) in index.blocks.iter().enumerate() {
        file.seek(SeekFrom::Start(b.offset))?;
        let mut hb = [0u8; BLOCK_HEADER_LEN];
        file.read_exact(&mut hb)?;
        let bh = BlockHeader::parse(
            &hb,
            h.block_size,
            tail_len(h.version),
            i as u64,
            Default::default(),
        )?;
        writeln!(
            out,
            "  {:>8} {:>6} {:>14} {:>10} {:>14} {:>10} {:>7.3}",
            i,
            format!("{:?}", bh.kind).to_lowercase(),
            b.offset,
            b.payload_len,
            b.raw_offset,
            b.raw_len,
            f64::from(b.payload_len) * 8.0 / f64::from(b.raw_len)
        )?;
    }
    Ok(())
}

fn run(opts: &Options) -> bool {
    let stdout = io::stdout();
    let mut out: Box<dyn Write> = match &opts.output {
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(BufWriter::with_capacity(1 << 20, f)),
            Err(e) => {
                eprintln!("nccat: {path}: {e}");
                return false;
            }
        },
        None => Box::new(BufWriter::with_capacity(1 << 20, stdout.lock())),
    };
    if opts.output.is_none() && opts.mode == Mode::Compress && io::stdout().is_terminal() {
        eprintln!("nccat: compressed data not written to a terminal (use -o or redirect)");
        return false;
    }
    let mut ok = true;
    for name in &opts.inputs {
        let result = match opts.mode {
            Mode::Compress => compress(name, opts, &mut out),
            Mode::Decompress => decompress(name, opts, &mut out),
            Mode::Test => decompress(name, opts, &mut io::sink()),
            Mode::List => list(name, &mut out),
        };
        if let Err(e) = result.and_then(|()| out.flush()) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return ok;
            }
            eprintln!("nccat: {name}: {e}");
            ok = false;
        }
    }
    ok
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(opts) => {
            if run(&opts) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(msg) => {
            eprintln!("nccat: {msg}");
            ExitCode::from(2)
        }
    }
}
