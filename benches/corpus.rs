//! Corpus benchmark: nc beside zstd -19, xz -9e and brotli -11 (and lpaq1 -9 when given),
//! measured in the same run.
//!
//! ```text
//! cargo bench --bench corpus -- [DIR] [--predictor fast|default|max|ctx|neural]
//!     [--experts orders,text,sparse,long,short,retrieval,neural] [--model FILE.onnx] [--block N] [--lanes N]
//!     [--threads N] [--order N] [--no-primer] [--only nc] [--min-size N] [--concat BYTES]
//!     [--lpaq1 PATH] [--ablation [--no-neural]] [--summary PLOT.svg] [--no-cache]
//! ```
//!
//! `--lpaq1 PATH` adds Matt Mahoney's lpaq1 (the reference of issue 4's per-file targets) as
//! a peer: PATH is a binary built from `lpaq1.cpp` (2007, GPL; not part of this crate), run
//! as `PATH 9 IN OUT` and `PATH d OUT BACK` on temporary files, so its times include a
//! process start and file I/O.
//!
//! For every file in DIR (default `../shared/corpus/bench`, or `$NC_BENCH_DIR`) each codec
//! compresses and decompresses the file in memory; the round trip is checked, and the table
//! gives compressed bytes, bits per byte and compress/decompress MB/s (10^6 bytes per
//! second of uncompressed data), then totals over all files.
//!
//! `--summary PLOT.svg` runs the `fast`, `default` and `max` profiles instead of one
//! configuration, prints a Markdown table of totals (bytes, bits per byte, MB/s both ways,
//! peak memory: the process's resident peak above its size before each codec ran, reset
//! with Linux's `clear_refs`; lpaq1's from GNU time) and writes a plot of bits per byte
//! against compression speed.
//!
//! As `nccat` does, nc keeps its primed states (`nc_codec::set_primed_cache_dir`) in a
//! directory, a fresh temporary one, so each profile primes once, on its first file, and
//! reads the state back for the others (`--no-cache`: none; a process then keeps only the
//! two states it used last, so with three profiles in turn each file's compression primes
//! again).
//!
//! `--concat BYTES` codes one input instead: DIR's files in name order, concatenated and cut
//! at BYTES (a speed test on a long stream). `--ablation` codes every file with a series of
//! expert sets of the mixing predictor, each adding experts to the one before (plus the
//! neural expert alone and with the copy experts; `--no-neural` leaves the sets with the
//! neural expert out), and prints bytes per file and set.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use nc_codec::experts::NeuralModel;
use nc_codec::{Config, NcReader, NcWriter, PredictorKind, Profile};
use std::sync::Arc;

struct Result {
    bytes: usize,
    compress_s: f64,
    decompress_s: f64,
    /// Peak memory above the process's resident set before the codec ran, in bytes (0
    /// where it cannot be read: not Linux).
    peak: u64,
}

type Codec = (&'static str, Box<dyn Fn(&[u8]) -> Result>);

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

fn check(name: &str, original: &[u8], decoded: &[u8]) {
    assert!(
        original == decoded,
        "{name}: round trip failed ({} bytes in, {} out)",
        original.len(),
        decoded.len()
    );
}

/// Times one compress and one decompress of `data`, checks the round trip.
fn measure(
    name: &str,
    data: &[u8],
    compress: impl FnOnce(&[u8]) -> Vec<u8>,
    decompress: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result {
    let base = reset_peak();
    let (packed, compress_s) = timed(|| compress(data));
    let (unpacked, decompress_s) = timed(|| decompress(&packed));
    let peak = peak_rss().saturating_sub(base);
    check(name, data, &unpacked);
    Result {
        bytes: packed.len(),
        compress_s,
        decompress_s,
        peak,
    }
}

/// A field of `/proc/self/status` in bytes (Linux; 0 elsewhere).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb << 10)
}

/// Resets the process's peak resident set to the current one (Linux: `clear_refs` 5) and
/// returns the current one.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_bytes("VmRSS:")
}

fn peak_rss() -> u64 {
    status_bytes("VmHWM:")
}

/// Reads a whole decoder into a vector sized for the original.
fn read_all(mut r: impl Read, len: usize, what: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    r.read_to_end(&mut out).expect(what);
    out
}

fn nc_codec(config: Config) -> impl Fn(&[u8]) -> Result {
    move |data| {
        measure(
            "nc",
            data,
            |d| {
                // As nccat does for a file: the length is known.
                let config = config.clone().size_hint(d.len() as u64);
                let mut w = NcWriter::with_config(Vec::new(), &config).expect("config");
                w.write_all(d).expect("write");
                w.finish().expect("finish")
            },
            |p| {
                let r = NcReader::with_config(p, &config).expect("config");
                read_all(r, data.len(), "decode")
            },
        )
    }
}

fn zstd_codec(data: &[u8]) -> Result {
    measure(
        "zstd",
        data,
        |d| zstd::bulk::compress(d, 19).expect("zstd"),
        |p| zstd::bulk::decompress(p, data.len()).expect("unzstd"),
    )
}

fn xz_codec(data: &[u8]) -> Result {
    measure(
        "xz",
        data,
        |d| {
            // 0x8000_0000 is LZMA_PRESET_EXTREME: preset 9e, as `xz -9e`.
            let stream =
                xz2::stream::Stream::new_easy_encoder(9 | 0x8000_0000, xz2::stream::Check::Crc64)
                    .expect("xz");
            let mut w = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
            w.write_all(d).expect("xz write");
            w.finish().expect("xz finish")
        },
        |p| read_all(xz2::read::XzDecoder::new(p), data.len(), "unxz"),
    )
}

fn brotli_codec(data: &[u8]) -> Result {
    measure(
        "brotli",
        data,
        |d| {
            let mut w = brotli::CompressorWriter::new(Vec::new(), 1 << 16, 11, 22);
            w.write_all(d).expect("brotli write");
            w.into_inner()
        },
        |p| {
            read_all(
                brotli::Decompressor::new(p, 1 << 16),
                data.len(),
                "unbrotli",
            )
        },
    )
}

/// lpaq1 as an external program: `PATH 9 IN OUT` compresses, `PATH d IN OUT` decompresses.
fn lpaq1_codec(path: PathBuf) -> impl Fn(&[u8]) -> Result {
    move |data| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let (raw, packed, back) = (
            dir.path().join("in"),
            dir.path().join("in.lpq"),
            dir.path().join("back"),
        );
        // A child's peak memory comes from GNU time, where it is installed.
        let gnu_time = std::path::Path::new("/usr/bin/time").exists();
        let peak = std::cell::Cell::new(0u64);
        let run = |mode: &str, from: &PathBuf, to: &PathBuf| {
            let mut command = if gnu_time {
                let mut c = std::process::Command::new("/usr/bin/time");
                c.args(["-f", "%M"]).arg(&path);
                c
            } else {
                std::process::Command::new(&path)
            };
            let out = command
                .args([mode.as_ref(), from.as_os_str(), to.as_os_str()])
                .stdout(std::process::Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(out.status.success(), "lpaq1 {mode} failed");
            let kb = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .and_then(|l| l.trim().parse::<u64>().ok())
                .unwrap_or(0);
            peak.set(peak.get().max(kb << 10));
            std::fs::read(to).expect("lpaq1 output")
        };
        std::fs::write(&raw, data).expect("temporary file");
        let mut r = measure(
            "lpaq1",
            data,
            |_| run("9", &raw, &packed),
            |_| run("d", &packed, &back),
        );
        r.peak = peak.get();
        r
    }
}

/// Options beyond the codec configuration.
#[derive(Default)]
struct Opts {
    concat: Option<usize>,
    lpaq1: Option<PathBuf>,
    /// `--summary PLOT.svg`: the profiles beside the peers, as a table and a plot.
    summary: Option<PathBuf>,
    ablation: bool,
    no_neural: bool,
    /// `--no-cache`: no directory of primed states, so a process primes whenever its
    /// in-memory states were dropped.
    no_cache: bool,
}

/// `orders,text,sparse,long,short,retrieval,neural` -> an expert mask.
fn parse_experts(list: &str) -> u32 {
    use nc_codec::mixer::*;
    list.split(',')
        .map(|name| match name {
            "orders" => EXPERT_ORDERS,
            "text" => EXPERT_TEXT,
            "long" => EXPERT_LONG_COPY,
            "short" => EXPERT_SHORT_COPY,
            "retrieval" => EXPERT_RETRIEVAL,
            "sparse" => EXPERT_SPARSE,
            "neural" => EXPERT_NEURAL_INPUT,
            other => panic!(
                "unknown expert {other} (orders, text, sparse, long, short, retrieval, neural)"
            ),
        })
        .fold(0, |a, b| a | b)
}

fn parse_args() -> (PathBuf, Config, bool, u64, Opts) {
    let mut opts = Opts::default();
    let mut dir = std::env::var_os("NC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/corpus/bench"
            ))
        });
    let mut config = Config::new();
    let mut only_nc = false;
    let mut min_size = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut num = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match arg.as_str() {
            "--bench" => {}
            "--block" => config = config.block_size(num("--block") as u32),
            "--lanes" => config = config.lanes(num("--lanes") as usize),
            "--threads" => config = config.threads(num("--threads") as usize),
            "--order" => config = config.context_order(num("--order") as u8),
            "--predictor" => {
                let name = args.next().unwrap_or_default();
                config = config.predictor(name.parse().unwrap_or_else(|e| panic!("{e}")));
            }
            "--model" => {
                let path = args.next().expect("--model needs a file");
                let model = NeuralModel::from_file(&path).expect("loading the model");
                config = config.model(Arc::new(model));
                if !config.get_predictor().uses_model() {
                    config = config.predictor(PredictorKind::Neural);
                }
            }
            "--min-size" => min_size = num("--min-size"),
            "--concat" => opts.concat = Some(num("--concat") as usize),
            "--ablation" => opts.ablation = true,
            "--no-primer" => config = config.primer(false),
            "--lpaq1" => opts.lpaq1 = Some(args.next().expect("--lpaq1 needs a path").into()),
            "--summary" => {
                opts.summary = Some(args.next().expect("--summary needs a file").into());
            }
            "--no-neural" => opts.no_neural = true,
            "--no-cache" => opts.no_cache = true,
            "--experts" => {
                let list = args.next().unwrap_or_default();
                config = config.predictor(PredictorKind::MixExperts(parse_experts(&list)));
            }
            "--only" => only_nc = args.next().as_deref() == Some("nc"),
            other if other.starts_with('-') => panic!("unknown option {other}"),
            other => dir = PathBuf::from(other),
        }
    }
    (dir, config, only_nc, min_size, opts)
}

/// The expert sets of `--ablation`, each with its label.
const ABLATION: [(&str, &str); 9] = [
    ("neural", "neural"),
    ("+copies", "neural,long,short"),
    ("orders", "orders"),
    ("+text", "orders,text"),
    ("+sparse", "orders,text,sparse"),
    ("+long", "orders,text,sparse,long"),
    ("+short", "orders,text,sparse,long,short"),
    ("+retr=default", "orders,text,sparse,long,short,retrieval"),
    (
        "+neural=max",
        "orders,text,sparse,long,short,retrieval,neural",
    ),
];

/// Codes every file with every ablation set; prints bytes per file and set.
fn ablation(files: &[(String, Vec<u8>)], config: &Config, no_neural: bool) {
    let sets: Vec<(&str, &str)> = ABLATION
        .into_iter()
        .filter(|(_, experts)| !(no_neural && experts.contains("neural")))
        .collect();
    print!("{:<14} {:>9}", "file", "size");
    for (label, _) in &sets {
        print!(" {label:>15}");
    }
    println!();
    let mut totals = vec![(0usize, 0f64, 0f64); sets.len()];
    let total_in: usize = files.iter().map(|f| f.1.len()).sum();
    for (name, data) in files {
        print!("{name:<14} {:>9}", data.len());
        for ((_, experts), t) in sets.iter().zip(totals.iter_mut()) {
            let c = config
                .clone()
                .predictor(PredictorKind::MixExperts(parse_experts(experts)));
            let r = nc_codec(c)(data);
            print!(" {:>15}", r.bytes);
            tally(t, &r);
        }
        println!();
    }
    print!("{:<14} {:>9}", "TOTAL", total_in);
    for t in &totals {
        print!(" {:>15}", t.0);
    }
    println!();
    print!("{:<14} {:>9}", "bpb", "");
    for t in &totals {
        print!(" {:>15.3}", t.0 as f64 * 8.0 / total_in.max(1) as f64);
    }
    println!();
    print!("{:<14} {:>9}", "MB/s c/d", "");
    for t in &totals {
        print!(
            " {:>15}",
            format!("{:.3}/{:.3}", mbs(total_in, t.1), mbs(total_in, t.2))
        );
    }
    println!();
}

fn main() {
    let (dir, config, only_nc, min_size, opts) = parse_args();
    let cache = (!opts.no_cache).then(|| tempfile::tempdir().expect("a temporary directory"));
    nc_codec::set_primed_cache_dir(cache.as_ref().map(|d| d.path().to_path_buf()));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "MANIFEST.md"))
        .filter(|p| p.metadata().is_ok_and(|m| m.len() >= min_size))
        .collect();
    paths.sort();
    let mut files: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            (name, std::fs::read(p).expect("read"))
        })
        .collect();
    if let Some(limit) = opts.concat {
        let mut all: Vec<u8> = files.iter().flat_map(|f| f.1.iter().copied()).collect();
        all.truncate(limit);
        files = vec![(format!("concat:{}", all.len()), all)];
    }
    if opts.ablation {
        ablation(&files, &config, opts.no_neural);
        return;
    }

    let mut codecs: Vec<Codec> = if opts.summary.is_some() {
        [Profile::Fast, Profile::Default, Profile::Max]
            .into_iter()
            .map(|p| -> Codec {
                (
                    p.name(),
                    Box::new(nc_codec(config.clone().predictor(PredictorKind::Mix(p)))),
                )
            })
            .collect()
    } else {
        vec![("nc", Box::new(nc_codec(config.clone())))]
    };
    if !only_nc {
        codecs.push(("zstd-19", Box::new(zstd_codec)));
        codecs.push(("xz-9e", Box::new(xz_codec)));
        codecs.push(("brotli-11", Box::new(brotli_codec)));
        if let Some(path) = opts.lpaq1.clone() {
            codecs.push(("lpaq1-9", Box::new(lpaq1_codec(path))));
        }
    }
    let header = config.header().expect("config");
    println!(
        "nc config: predictor {} {}, block {} B, order {}, quantizer {} bits, lanes {}, threads {}",
        header.predictor_name(),
        String::from_utf8_lossy(&header.model_name).trim_end_matches('\0'),
        config.get_block_size(),
        config.get_context_order(),
        config.get_quant_bits(),
        config.get_lanes(),
        config.get_threads()
    );
    print!("{:<14} {:>9}", "file", "size");
    for (name, _) in &codecs {
        print!(" | {:>21}", format!("{name} bytes   bpb"));
    }
    println!(" | MB/s compress/decompress");

    let mut totals = vec![(0usize, 0f64, 0f64); codecs.len()];
    let mut peaks = vec![0u64; codecs.len()];
    let mut total_in = 0usize;
    for (name, data) in &files {
        let data = &data[..];
        total_in += data.len();
        let results: Vec<Result> = codecs.iter().map(|(_, c)| c(data)).collect();
        print!("{name:<14} {:>9}", data.len());
        for r in &results {
            print!(
                " | {:>10} {:>10.3}",
                r.bytes,
                r.bytes as f64 * 8.0 / data.len().max(1) as f64
            );
        }
        print!(" |");
        for (peak, r) in peaks.iter_mut().zip(&results) {
            *peak = (*peak).max(r.peak);
        }
        for (t, r) in totals.iter_mut().zip(&results) {
            print!(
                " {:.2}/{:.2}",
                mbs(data.len(), r.compress_s),
                mbs(data.len(), r.decompress_s)
            );
            tally(t, r);
        }
        println!();
    }
    print!("{:<14} {:>9}", "TOTAL", total_in);
    for t in &totals {
        print!(
            " | {:>10} {:>10.3}",
            t.0,
            t.0 as f64 * 8.0 / total_in.max(1) as f64
        );
    }
    print!(" |");
    for t in &totals {
        print!(" {:.2}/{:.2}", mbs(total_in, t.1), mbs(total_in, t.2));
    }
    println!();
    println!(
        "(MB/s columns in codec order: {})",
        codecs.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
    );
    if let Some(plot) = &opts.summary {
        let rows: Vec<Row> = codecs
            .iter()
            .zip(&totals)
            .zip(&peaks)
            .map(|((c, t), &peak)| Row {
                name: c.0,
                bytes: t.0,
                bpb: t.0 as f64 * 8.0 / total_in.max(1) as f64,
                compress: mbs(total_in, t.1),
                decompress: mbs(total_in, t.2),
                peak,
            })
            .collect();
        summary(&rows, total_in, files.len(), plot);
    }
}

/// One codec's totals for `--summary`.
struct Row {
    name: &'static str,
    bytes: usize,
    bpb: f64,
    compress: f64,
    decompress: f64,
    peak: u64,
}

/// Prints the Markdown table and writes the ratio-versus-speed plot (SVG).
fn summary(rows: &[Row], total_in: usize, files: usize, plot: &std::path::Path) {
    println!();
    println!("{files} files, {total_in} bytes:");
    println!();
    println!("| codec | bytes | bits/byte | compress MB/s | decompress MB/s | peak memory MB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let name = match r.name {
            "fast" | "default" | "max" => format!("**nc {}**", r.name),
            other => other.to_string(),
        };
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {} |",
            r.bytes,
            r.bpb,
            r.compress,
            r.decompress,
            if r.peak == 0 {
                "-".to_string()
            } else {
                format!("{:.0}", r.peak as f64 / 1e6)
            }
        );
    }
    // Bits per byte against compression speed, speed on a log scale.
    let (w, h, left, bottom, top, right) = (640.0, 400.0, 70.0, 50.0, 30.0, 30.0);
    let lo = rows
        .iter()
        .map(|r| r.compress)
        .fold(f64::MAX, f64::min)
        .max(1e-4);
    let hi = rows
        .iter()
        .map(|r| r.compress)
        .fold(0.0, f64::max)
        .max(lo * 10.0);
    let (lx0, lx1) = (lo.log10().floor(), hi.log10().ceil());
    let b0 = rows.iter().map(|r| r.bpb).fold(f64::MAX, f64::min);
    let b1 = rows.iter().map(|r| r.bpb).fold(0.0, f64::max);
    let (y0, y1) = (
        (b0 * 10.0).floor() / 10.0 - 0.1,
        (b1 * 10.0).ceil() / 10.0 + 0.1,
    );
    let x = |v: f64| left + (v.log10() - lx0) / (lx1 - lx0) * (w - left - right);
    let y = |v: f64| top + (y1 - v) / (y1 - y0) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\">bits per byte against compression \
         speed ({files} files, {total_in} bytes)</text>\n",
        w / 2.0
    );
    for k in (lx0 as i32)..=(lx1 as i32) {
        let v = 10f64.powi(k);
        svg += &format!(
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{v}</text>\n",
            x(v),
            h - bottom,
            h - bottom + 16.0
        );
    }
    let mut b = y0;
    while b <= y1 + 1e-9 {
        svg += &format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\">{b:.1}</text>\n",
            y(b),
            w - right,
            left - 6.0,
            y(b) + 4.0
        );
        b += 0.1;
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">compress MB/s (log)</text>\n\
         <text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" \
         text-anchor=\"middle\">bits per byte</text>\n",
        (left + w - right) / 2.0,
        h - 12.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    for r in rows {
        let colour = if matches!(r.name, "fast" | "default" | "max") {
            "#c0392b"
        } else {
            "#2c3e50"
        };
        svg += &format!(
            "<circle cx=\"{0:.1}\" cy=\"{1:.1}\" r=\"5\" fill=\"{colour}\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\">{4}</text>\n",
            x(r.compress),
            y(r.bpb),
            x(r.compress) + 8.0,
            y(r.bpb) + 4.0,
            match r.name {
                "fast" | "default" | "max" => format!("nc {}", r.name),
                other => other.to_string(),
            }
        );
    }
    svg += "</svg>\n";
    std::fs::write(plot, svg).unwrap_or_else(|e| panic!("{}: {e}", plot.display()));
    println!();
    println!("plot written to {}", plot.display());
}

/// Adds one result to running totals of (bytes, compress s, decompress s).
fn tally(t: &mut (usize, f64, f64), r: &Result) {
    t.0 += r.bytes;
    t.1 += r.compress_s;
    t.2 += r.decompress_s;
}

fn mbs(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs.max(1e-9) / 1e6
}
