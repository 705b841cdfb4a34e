//! `nccat`: compress, decompress, list and test `.nc` files, with the conventions of xz and
//! zstd: `nccat -z FILE` writes `FILE.nc` beside it and keeps `FILE`, `nccat -d FILE.nc`
//! writes `FILE`, `-c` writes to stdout. An existing output is never touched without `-f`,
//! an output is never one of the inputs, and a failed run leaves no partial output file:
//! outputs are written to a temporary file in the target's folder and renamed on success.
//!
//! Exit status: 0 success, 1 an error (one line on stderr naming the file), 2 bad usage.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nc_codec::container::{self, BlockKind, StreamIndex};
use nc_codec::experts::NeuralModel;
use nc_codec::{Config, NcReader, NcWriter, PredictorKind, Profile};

const USAGE: &str = "\
usage: nccat [OPTIONS] [FILE...]     (no FILE, or -: stdin to stdout)
  -z, --compress    compress FILE to FILE.nc (keeps FILE)
  -d, --decompress  decompress FILE.nc to FILE (the default mode)
  -t, --test        decompress and verify, write nothing
  -l, --list        show the header and block table of each FILE
  -c, --stdout      write to stdout instead of files
  -o OUT            write all output to OUT
  -f, --force       overwrite existing outputs
      --rm          remove each input after its output is complete
  -1 ... -9         level: 1-3 fast, 4-7 default, 8-9 max profile, and larger
                    blocks within each (default -5); --fast = -1, --best = -9
  -P PROFILE        fast, default or max; or ctx / neural (one expert alone)
  -b SIZE           block (checkpoint) size, e.g. 256K, 1M, 4M
  -T N              threads (0 = all cores; default all cores)
  -L N              blocks coded side by side (default: one per thread, 8 with
                    the neural model)
  -M, --memlimit SIZE  most memory to use (default 1G): fewer lanes, or refuse
  -m MODEL.onnx     another neural model, to compress with or to decode streams
                    that name it
      --no-primer   start blocks from empty tables (faster start on tiny inputs)
      --no-cache    prime without the primed states kept in NC_CACHE_DIR (by
                    default $XDG_CACHE_HOME/nc-codec or ~/.cache/nc-codec;
                    NC_CACHE_DIR= empty turns the cache off)
      --offset N    decompress from uncompressed offset N ...
      --length N    ... and at most N bytes (reads only the blocks needed)
  -v, --verbose     sizes, ratio and speed of each file
  -q, --quiet       no progress line, no warnings
  -V, --version     version, format versions read, embedded model
  -h, --help        this text
exit status: 0 ok, 1 error, 2 usage";

/// Block size per level; profile by level in [`profile_of_level`].
const LEVEL_BLOCKS: [u32; 9] = [
    256 << 10,
    1 << 20,
    4 << 20,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    1 << 20,
    4 << 20,
];
const DEFAULT_LEVEL: u8 = 5;

fn profile_of_level(level: u8) -> Profile {
    match level {
        1..=3 => Profile::Fast,
        4..=7 => Profile::Default,
        _ => Profile::Max,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Compress,
    Decompress,
    List,
    Test,
}

struct Options {
    mode: Mode,
    stdout: bool,
    output: Option<PathBuf>,
    force: bool,
    remove: bool,
    verbose: bool,
    quiet: bool,
    config: Config,
    offset: Option<u64>,
    length: Option<u64>,
    inputs: Vec<String>,
    /// `-m`: loaded after parsing, so a missing file is an error (1), not usage (2).
    model: Option<String>,
    /// Keep primed states on disk (`--no-cache` turns it off).
    cache: bool,
}

/// A usage error (exit 2).
struct Usage(String);

fn parse_size(s: &str) -> Result<u64, Usage> {
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
        .ok_or_else(|| Usage(format!("invalid size '{s}'")))
}

fn parse_args(args: Vec<std::ffi::OsString>) -> Result<Options, Usage> {
    use lexopt::prelude::*;
    let mut opts = Options {
        mode: Mode::Decompress,
        stdout: false,
        output: None,
        force: false,
        remove: false,
        verbose: false,
        quiet: false,
        config: Config::new(),
        offset: None,
        length: None,
        inputs: Vec::new(),
        model: None,
        cache: true,
    };
    let mut mode: Option<Mode> = None;
    let mut level: Option<u8> = None;
    let mut predictor: Option<PredictorKind> = None;
    let mut block: Option<u32> = None;
    let mut model: Option<String> = None;
    let mut parser = lexopt::Parser::from_args(args);
    let usage = |e: lexopt::Error| Usage(e.to_string());
    // An option's value that looks like another option is a missing value, not a name:
    // `nccat -o -z a` must not write to a file called "-z".
    let value = |parser: &mut lexopt::Parser, name: &str| -> Result<String, Usage> {
        let v = parser
            .value()
            .map_err(usage)?
            .into_string()
            .map_err(|_| Usage(format!("the value of {name} is not valid UTF-8")))?;
        if v.starts_with('-') && v != "-" {
            return Err(Usage(format!("{name} needs a value, got the option '{v}'")));
        }
        Ok(v)
    };
    let mut set_mode = |m: Mode| -> Result<(), Usage> {
        match mode {
            Some(old) if old != m => Err(Usage(format!(
                "conflicting modes: {} and {}",
                mode_flag(old),
                mode_flag(m)
            ))),
            _ => {
                mode = Some(m);
                Ok(())
            }
        }
    };
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('z') | Long("compress") => set_mode(Mode::Compress)?,
            Short('d') | Long("decompress") | Long("uncompress") => set_mode(Mode::Decompress)?,
            Short('l') | Long("list") => set_mode(Mode::List)?,
            Short('t') | Long("test") => set_mode(Mode::Test)?,
            Short('c') | Long("stdout") => opts.stdout = true,
            Short('k') | Long("keep") => opts.remove = false,
            Long("rm") => opts.remove = true,
            Short('f') | Long("force") => opts.force = true,
            Short('v') | Long("verbose") => opts.verbose = true,
            Short('q') | Long("quiet") => opts.quiet = true,
            Short('o') => opts.output = Some(PathBuf::from(value(&mut parser, "-o")?)),
            Short(c @ '1'..='9') => level = Some(c as u8 - b'0'),
            Long("fast") => level = Some(1),
            Long("best") => level = Some(9),
            Short('b') => {
                let n = parse_size(&value(&mut parser, "-b")?)?;
                block =
                    Some(u32::try_from(n).map_err(|_| Usage(format!("block size {n} too large")))?);
            }
            Short('P') => {
                let kind: PredictorKind = value(&mut parser, "-P")?
                    .parse()
                    .map_err(|e| Usage(format!("{e}")))?;
                predictor = Some(kind);
            }
            Short('m') => model = Some(value(&mut parser, "-m")?),
            Short('T') => {
                let n = parse_size(&value(&mut parser, "-T")?)?;
                let n = if n == 0 {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                } else {
                    usize::try_from(n).map_err(|_| Usage(format!("-T {n} too large")))?
                };
                opts.config = opts.config.threads(n);
            }
            Short('L') => {
                let n = parse_size(&value(&mut parser, "-L")?)?;
                if !(1..=nc_codec::config::MAX_LANES as u64).contains(&n) {
                    return Err(Usage(format!(
                        "-L {n} outside 1..={}",
                        nc_codec::config::MAX_LANES
                    )));
                }
                opts.config = opts.config.lanes(n as usize);
            }
            Short('M') | Long("memlimit") => {
                let n = parse_size(&value(&mut parser, "--memlimit")?)?;
                opts.config = opts.config.memlimit(n);
            }
            Long("no-primer") => opts.config = opts.config.primer(false),
            Long("no-cache") => opts.cache = false,
            Long("offset") => opts.offset = Some(parse_size(&value(&mut parser, "--offset")?)?),
            Long("length") => opts.length = Some(parse_size(&value(&mut parser, "--length")?)?),
            Short('h') | Long("help") => print_and_exit(USAGE),
            Short('V') | Long("version") => print_and_exit(&version_text()),
            Value(v) => opts.inputs.push(
                v.into_string()
                    .map_err(|_| Usage("file name is not valid UTF-8".into()))?,
            ),
            _ => return Err(Usage(arg.unexpected().to_string())),
        }
    }
    opts.mode = mode.unwrap_or(Mode::Decompress);
    let level_given = level.is_some();
    let level = level.unwrap_or(DEFAULT_LEVEL);
    let kind = predictor.unwrap_or(PredictorKind::Mix(profile_of_level(level)));
    let kind = match (&model, kind) {
        // A model given to compress with implies the neural expert.
        (Some(_), k) if !k.uses_model() && predictor.is_none() => PredictorKind::Neural,
        (_, k) => k,
    };
    opts.config = opts.config.predictor(kind);
    // A level names its block size; only the default level's may grow with one thread.
    opts.config = match (block, level_given) {
        (Some(block), _) => opts.config.block_size(block),
        (None, true) => opts.config.block_size(LEVEL_BLOCKS[usize::from(level - 1)]),
        (None, false) => opts
            .config
            .default_block_size(LEVEL_BLOCKS[usize::from(level - 1)]),
    };
    opts.model = model;
    if opts.inputs.is_empty() {
        opts.inputs.push("-".into());
    }
    if (opts.offset.is_some() || opts.length.is_some()) && opts.mode != Mode::Decompress {
        return Err(Usage(
            "--offset/--length only apply when decompressing".into(),
        ));
    }
    if opts.stdout && opts.output.is_some() {
        return Err(Usage("-c and -o both name the output".into()));
    }
    if opts.remove && (opts.stdout || opts.output.is_some()) {
        return Err(Usage(
            "--rm needs an output file per input (not -c or -o)".into(),
        ));
    }
    Ok(opts)
}

fn mode_flag(m: Mode) -> &'static str {
    match m {
        Mode::Compress => "-z",
        Mode::Decompress => "-d",
        Mode::List => "-l",
        Mode::Test => "-t",
    }
}

fn version_text() -> String {
    let model = match NeuralModel::default_model() {
        Ok(m) => format!("{} sha256:{}", m.name_str(), hex(&m.fingerprint())),
        Err(e) => format!("unavailable ({e})"),
    };
    let cache = cache_dir().map_or(
        "none (NC_CACHE_DIR empty, or no home directory)".into(),
        |d| d.display().to_string(),
    );
    format!(
        "nccat (nc-codec) {}\nwrites format v{}; reads v{}..=v{}\nembedded model: {model}\nprimed states kept in: {cache}",
        env!("CARGO_PKG_VERSION"),
        container::VERSION,
        container::OLDEST_READABLE_VERSION,
        container::VERSION,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A progress line on stderr, only when stderr is a terminal and the work takes a while:
/// bytes, speed, and with a known total the percentage and the time left.
struct Progress {
    enabled: bool,
    name: String,
    total: Option<u64>,
    start: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(name: &str, total: Option<u64>, quiet: bool) -> Self {
        let now = Instant::now();
        Progress {
            enabled: !quiet && io::stderr().is_terminal(),
            name: name.to_string(),
            total: total.filter(|&t| t > 0),
            start: now,
            last: now,
            shown: false,
        }
    }

    fn update(&mut self, done: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / secs;
        let mut line = format!("{}: {}, {:.2} MB/s", self.name, human(done), rate / 1e6);
        if let Some(total) = self.total {
            let left = total.saturating_sub(done) as f64 / rate.max(1.0);
            line += &format!(
                ", {:.1}%, {} left",
                done as f64 * 100.0 / total as f64,
                clock(left)
            );
        }
        eprint!("\r{line}   ");
        self.shown = true;
    }

    fn done(&mut self) {
        if self.shown {
            eprint!("\r{}\r", " ".repeat(self.name.len() + 70));
            self.shown = false;
        }
    }
}

fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
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

/// Counts what passes through a writer.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An error that names the file it is about.
struct Failure {
    file: String,
    err: io::Error,
}

fn fail(file: impl AsRef<Path>, err: io::Error) -> Failure {
    Failure {
        file: file.as_ref().display().to_string(),
        err,
    }
}

/// An opened input: a file (with its metadata) or stdin.
enum Input {
    File(File, fs::Metadata),
    Stdin,
}

impl Input {
    fn open(name: &str) -> io::Result<Input> {
        if name == "-" {
            return Ok(Input::Stdin);
        }
        let file = File::open(name)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        Ok(Input::File(file, meta))
    }

    fn len(&self) -> Option<u64> {
        match self {
            Input::File(_, m) if m.is_file() => Some(m.len()),
            _ => None,
        }
    }

    fn reader(&mut self) -> Box<dyn Read + '_> {
        match self {
            Input::File(f, _) => Box::new(f),
            Input::Stdin => Box::new(io::stdin().lock()),
        }
    }
}

/// True when `a` and `b` are the same file (same device and inode).
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// An output file being written: a temporary file beside the target, renamed over it only
/// when everything succeeded, removed otherwise (also when dropped unfinished).
struct Output {
    target: PathBuf,
    temp: Option<tempfile::NamedTempFile>,
}

impl Output {
    /// Checks `target` against the inputs and `-f`, then creates the temporary file.
    fn create(target: &Path, inputs: &[fs::Metadata], force: bool) -> io::Result<Output> {
        match fs::metadata(target) {
            Ok(meta) => {
                if inputs.iter().any(|i| same_file(i, &meta)) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the output is one of the inputs",
                    ));
                }
                if !force {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "already exists (use -f to overwrite)",
                    ));
                }
                if meta.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "is a directory",
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".nccat-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        Ok(Output {
            target: target.to_path_buf(),
            temp: Some(temp),
        })
    }

    fn file(&mut self) -> io::Result<&File> {
        self.temp
            .as_ref()
            .map(tempfile::NamedTempFile::as_file)
            .ok_or_else(|| io::Error::other("output already committed"))
    }

    /// Syncs the file, gives it `mode_from`'s permissions and renames it onto the target.
    fn commit(mut self, mode_from: Option<&fs::Metadata>, force: bool) -> io::Result<()> {
        let temp = self
            .temp
            .take()
            .ok_or_else(|| io::Error::other("output already committed"))?;
        temp.as_file().sync_all()?;
        if let Some(meta) = mode_from {
            fs::set_permissions(temp.path(), meta.permissions())?;
        }
        if force {
            temp.persist(&self.target).map_err(|e| e.error)?;
        } else {
            // Refuse if the target appeared meanwhile.
            temp.persist_noclobber(&self.target).map_err(|e| e.error)?;
        }
        Ok(())
    }
}

/// What one file's work produced, for `-v`.
struct Stats {
    bytes_in: u64,
    bytes_out: u64,
    secs: f64,
}

/// The output path for `input` in `mode` when writing files beside the inputs.
fn output_name(input: &str, mode: Mode) -> io::Result<PathBuf> {
    match mode {
        Mode::Compress => {
            if input.ends_with(".nc") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "already has the .nc suffix (use -c or -o to compress it again)",
                ));
            }
            Ok(PathBuf::from(format!("{input}.nc")))
        }
        _ => match input.strip_suffix(".nc") {
            Some(stem) if !stem.is_empty() && !stem.ends_with('/') => Ok(PathBuf::from(stem)),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unknown suffix, not .nc (use -c or -o to name the output)",
            )),
        },
    }
}

fn compress(input: &mut Input, name: &str, opts: &Options, out: &mut dyn Write) -> io::Result<u64> {
    let mut progress = Progress::new(name, input.len(), opts.quiet);
    // A file's length lets the writer avoid ending in a short block.
    let config = match input.len() {
        Some(len) => opts.config.clone().size_hint(len),
        None => opts.config.clone(),
    };
    let source = BufReader::with_capacity(1 << 20, input.reader());
    let mut writer = NcWriter::with_config(out, &config)?;
    let mut counting = Counting {
        inner: source,
        count: 0,
        progress: &mut progress,
    };
    let n = io::copy(&mut counting, &mut writer)?;
    writer.finish()?;
    progress.done();
    Ok(n)
}

fn decompress(
    input: &mut Input,
    name: &str,
    opts: &Options,
    out: &mut dyn Write,
) -> io::Result<u64> {
    if opts.offset.is_some() || opts.length.is_some() {
        return decompress_slice(input, opts, out);
    }
    let mut progress = Progress::new(name, input.len(), opts.quiet);
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 16, input.reader()),
        count: 0,
        progress: &mut progress,
    };
    let mut reader = NcReader::with_config(counting, &opts.config)?;
    let n = io::copy(&mut reader, out)?;
    drop(reader);
    progress.done();
    Ok(n)
}

/// `--offset/--length`: seek with the trailer index (memory-mapped file), or skip on stdin.
fn decompress_slice(input: &mut Input, opts: &Options, out: &mut dyn Write) -> io::Result<u64> {
    let offset = opts.offset.unwrap_or(0);
    let length = opts.length.unwrap_or(u64::MAX);
    match input {
        Input::Stdin => {
            let mut reader = NcReader::with_config(io::stdin().lock(), &opts.config)?;
            io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
            io::copy(&mut (&mut reader).take(length), out)
        }
        Input::File(file, _) => {
            let map = map_file(file)?;
            let mut reader = NcReader::with_config(io::Cursor::new(&map[..]), &opts.config)?;
            reader.seek(SeekFrom::Start(offset))?;
            io::copy(&mut reader.take(length), out)
        }
    }
}

#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is only read; a concurrent writer could change the bytes, which the
    // per-block CRC32 check turns into an InvalidData error rather than wrong output.
    unsafe { memmap2::Mmap::map(file) }
}

fn list(name: &str, out: &mut dyn Write) -> io::Result<()> {
    let mut file = BufReader::new(File::open(name)?);
    // Reading the index checks every entry against its block header, and the END block.
    let index = StreamIndex::read_from(&mut file)?;
    let h = &index.header;
    let model = if h.model_fingerprint == [0; 32] {
        "none".to_string()
    } else {
        let name = String::from_utf8_lossy(&h.model_name);
        format!(
            "{} sha256:{}",
            name.trim_end_matches('\0'),
            hex(&h.model_fingerprint)
        )
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
    if h.flags & container::FLAG_PRIMED != 0 {
        writeln!(
            out,
            "  primed: blocks start from the embedded primer's state"
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
        "  {:>8} {:>14} {:>10} {:>14} {:>10} {:>7}  kind",
        "block", "offset", "payload", "raw offset", "raw len", "bpb"
    )?;
    for (i, b) in index.blocks.iter().enumerate() {
        // Plain: coded without the neural expert; light: by the light coder.
        let kind = match b.kind {
            BlockKind::Stored => "stored",
            BlockKind::Light => "light",
            _ if b.flags & container::FLAG_NO_NEURAL != 0 => "plain",
            _ => "coded",
        };
        // x86: the bytes went through the x86 filter first.
        let filter = if b.flags & container::FLAG_X86 != 0 {
            ", x86"
        } else {
            ""
        };
        // The stream's dictionary, and the blocks that start from its state.
        let dictionary = if b.flags & container::FLAG_DICT != 0 {
            ", dictionary"
        } else if b.flags & container::FLAG_FROM_DICT != 0 {
            ", from the dictionary"
        } else {
            ""
        };
        writeln!(
            out,
            "  {:>8} {:>14} {:>10} {:>14} {:>10} {:>7.3}  {kind}{filter}{dictionary}",
            i,
            b.offset,
            b.payload_len,
            b.raw_offset,
            b.raw_len,
            f64::from(b.payload_len) * 8.0 / f64::from(b.raw_len)
        )?;
    }
    Ok(())
}

/// Runs one mode over one input into `out`; returns (bytes in, bytes out).
fn process(
    input: &mut Input,
    name: &str,
    opts: &Options,
    out: &mut dyn Write,
) -> io::Result<(u64, u64)> {
    let mut counted = CountingWriter {
        inner: out,
        count: 0,
    };
    let read = match opts.mode {
        Mode::Compress => compress(input, name, opts, &mut counted)?,
        Mode::Decompress => decompress(input, name, opts, &mut counted)?,
        Mode::Test => decompress(input, name, opts, &mut io::sink())?,
        Mode::List => {
            list(name, &mut counted)?;
            0
        }
    };
    counted.flush()?;
    let (bytes_in, bytes_out) = match opts.mode {
        Mode::Compress => (read, counted.count),
        _ => (input.len().unwrap_or(0), read),
    };
    Ok((bytes_in, bytes_out))
}

fn report(name: &str, target: &str, stats: &Stats, mode: Mode) {
    let (raw, packed) = match mode {
        Mode::Compress => (stats.bytes_in, stats.bytes_out),
        _ => (stats.bytes_out, stats.bytes_in),
    };
    let ratio = if raw == 0 {
        0.0
    } else {
        packed as f64 * 100.0 / raw as f64
    };
    let bpb = if raw == 0 {
        0.0
    } else {
        packed as f64 * 8.0 / raw as f64
    };
    eprintln!(
        "{name}: {} -> {} bytes ({ratio:.2}%, {bpb:.3} bits/byte), {:.2} s, {:.3} MB/s{}",
        stats.bytes_in,
        stats.bytes_out,
        stats.secs,
        raw as f64 / stats.secs.max(1e-9) / 1e6,
        if target.is_empty() {
            String::new()
        } else {
            format!(" -> {target}")
        }
    );
}

/// Prints `text` (help, version) and exits: 0 once written, or 1 where stdout failed (a
/// reader that went away, as with `nccat -V | head -1`, ends it quietly, as `cat` does).
fn print_and_exit(text: &str) -> ! {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => std::process::exit(0),
        Err(e) if is_broken_pipe(&e) => std::process::exit(1),
        Err(e) => {
            eprintln!("nccat: stdout: {e}");
            std::process::exit(1)
        }
    }
}

/// Whether a standard descriptor (`io::stdin()`, `io::stdout()`) was closed when the
/// process started. Rust's runtime reopens a closed standard descriptor on `/dev/null`,
/// read-write, so reads see an empty input and writes "succeed" with the output lost; a
/// shell's `</dev/null` or `>/dev/null` opens it read-only or write-only.
#[cfg(unix)]
fn closed_at_start(std: impl std::os::fd::AsFd) -> bool {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std.as_fd();
    // SAFETY: F_GETFL only reads the flags of a descriptor the handle keeps open.
    #[allow(unsafe_code)]
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return true;
    }
    if flags & libc::O_ACCMODE != libc::O_RDWR {
        return false;
    }
    let on = |m: fs::Metadata| (m.dev(), m.ino(), m.rdev());
    let this = fd
        .try_clone_to_owned()
        .and_then(|fd| File::from(fd).metadata());
    match (this, fs::metadata("/dev/null")) {
        (Ok(this), Ok(null)) => on(this) == on(null),
        _ => false,
    }
}

#[cfg(not(unix))]
fn closed_at_start<T>(_: T) -> bool {
    false
}

/// Whether an error means the reader of our stdout went away.
fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

fn run(opts: &Options) -> Result<(), ()> {
    let to_stdout = opts.output.is_none() && (opts.stdout || opts.inputs.iter().any(|i| i == "-"));
    if opts.mode == Mode::Compress && to_stdout && io::stdout().is_terminal() {
        eprintln!("nccat: compressed data not written to a terminal (use -o, -c with a redirect, or name a FILE)");
        return Err(());
    }
    // A standard descriptor closed at the start reads as empty input and swallows output
    // (`closed_at_start`); say so rather than exit 0 with the output lost.
    let beside = |name: &str| {
        opts.output.is_none()
            && !opts.stdout
            && name != "-"
            && matches!(opts.mode, Mode::Compress | Mode::Decompress)
    };
    let uses_stdout = opts.mode != Mode::Test && opts.inputs.iter().any(|name| !beside(name));
    if uses_stdout && closed_at_start(io::stdout()) {
        eprintln!("nccat: stdout: closed (nothing would be written)");
        return Err(());
    }
    if opts.inputs.iter().any(|name| name == "-") && closed_at_start(io::stdin()) {
        eprintln!("nccat: stdin: closed (nothing to read)");
        return Err(());
    }
    let mut ok = true;
    // Open and check every input before any output is touched.
    let mut inputs: Vec<(String, Input)> = Vec::new();
    for name in &opts.inputs {
        match Input::open(name) {
            Ok(i) => inputs.push((name.clone(), i)),
            Err(e) => {
                eprintln!("nccat: {name}: {e}");
                ok = false;
            }
        }
    }
    let metas: Vec<fs::Metadata> = inputs
        .iter()
        .filter_map(|(_, i)| match i {
            Input::File(_, m) => Some(m.clone()),
            Input::Stdin => None,
        })
        .collect();

    // One output for everything: -o OUT.
    if let Some(path) = &opts.output {
        if !ok {
            return Err(());
        }
        let result = (|| -> Result<Vec<(String, Stats)>, Failure> {
            let mut output = Output::create(path, &metas, opts.force).map_err(|e| fail(path, e))?;
            let mut stats = Vec::new();
            {
                let file = output.file().map_err(|e| fail(path, e))?;
                let mut out = BufWriter::with_capacity(1 << 20, file);
                for (name, input) in &mut inputs {
                    let start = Instant::now();
                    let (bytes_in, bytes_out) =
                        process(input, name, opts, &mut out).map_err(|e| fail(&*name, e))?;
                    stats.push((
                        name.clone(),
                        Stats {
                            bytes_in,
                            bytes_out,
                            secs: start.elapsed().as_secs_f64(),
                        },
                    ));
                }
                out.flush().map_err(|e| fail(path, e))?;
            }
            output.commit(None, opts.force).map_err(|e| fail(path, e))?;
            Ok(stats)
        })();
        return match result {
            Ok(stats) => {
                if opts.verbose {
                    for (name, s) in &stats {
                        report(name, &path.display().to_string(), s, opts.mode);
                    }
                }
                Ok(())
            }
            Err(f) => {
                eprintln!("nccat: {}: {}", f.file, f.err);
                Err(())
            }
        };
    }

    let stdout = io::stdout();
    let mut stdout = BufWriter::with_capacity(1 << 20, stdout.lock());
    for (name, input) in &mut inputs {
        let start = Instant::now();
        let beside = beside(name);
        let result: Result<(Stats, String), Failure> = if beside {
            (|| {
                let target = output_name(name, opts.mode).map_err(|e| fail(&*name, e))?;
                let mut output =
                    Output::create(&target, &metas, opts.force).map_err(|e| fail(&target, e))?;
                let (bytes_in, bytes_out) = {
                    let file = output.file().map_err(|e| fail(&target, e))?;
                    let mut out = BufWriter::with_capacity(1 << 20, file);
                    let r = process(input, name, opts, &mut out).map_err(|e| fail(&*name, e))?;
                    out.flush().map_err(|e| fail(&target, e))?;
                    r
                };
                let meta = match input {
                    Input::File(_, m) => Some(m.clone()),
                    Input::Stdin => None,
                };
                output
                    .commit(meta.as_ref(), opts.force)
                    .map_err(|e| fail(&target, e))?;
                if opts.remove {
                    fs::remove_file(&*name).map_err(|e| fail(&*name, e))?;
                }
                Ok((
                    Stats {
                        bytes_in,
                        bytes_out,
                        secs: start.elapsed().as_secs_f64(),
                    },
                    target.display().to_string(),
                ))
            })()
        } else {
            process(input, name, opts, &mut stdout)
                .map(|(bytes_in, bytes_out)| {
                    (
                        Stats {
                            bytes_in,
                            bytes_out,
                            secs: start.elapsed().as_secs_f64(),
                        },
                        String::new(),
                    )
                })
                .map_err(|e| fail(&*name, e))
        };
        match result {
            Ok((stats, target)) => {
                if opts.verbose && opts.mode != Mode::List {
                    report(name, &target, &stats, opts.mode);
                }
            }
            Err(f) if is_broken_pipe(&f.err) => {
                // The reader went away: stop quietly, but do not claim success while
                // output was lost (this input, and any left).
                return Err(());
            }
            Err(f) => {
                eprintln!("nccat: {}: {}", f.file, f.err);
                ok = false;
            }
        }
    }
    if let Err(e) = stdout.flush() {
        if !is_broken_pipe(&e) {
            eprintln!("nccat: stdout: {e}");
        }
        return Err(());
    }
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

fn load_model(opts: &mut Options) -> Result<(), ()> {
    if let Some(path) = &opts.model {
        match NeuralModel::from_file(path) {
            Ok(m) => opts.config = opts.config.clone().model(Arc::new(m)),
            Err(e) => {
                eprintln!("nccat: {path}: {e}");
                return Err(());
            }
        }
    }
    Ok(())
}

/// The command line's entry point, shared with `examples/nccat.rs`.
/// Where primed states are kept: `NC_CACHE_DIR` (empty: nowhere), else the platform's
/// cache directory.
fn cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = std::env::var_os("NC_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let base = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))
    };
    base.map(|b| b.join("nc-codec"))
}

pub fn main() -> ExitCode {
    match parse_args(std::env::args_os().skip(1).collect()) {
        Ok(mut opts) => {
            if opts.cache {
                nc_codec::mixer::set_primed_cache_dir(cache_dir());
            }
            match load_model(&mut opts).and_then(|()| run(&opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(()) => ExitCode::FAILURE,
            }
        }
        Err(Usage(msg)) => {
            eprintln!("nccat: {msg}\nTry 'nccat --help'.");
            ExitCode::from(2)
        }
    }
}
