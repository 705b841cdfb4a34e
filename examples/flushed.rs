//! Codes a file as a stream of messages, as a writer over a socket does: the file in
//! pieces of `SIZE` bytes, the writer flushed after each (so each is a block a peer can
//! decode at once), then prints the stream's length and the file's. The stream is decoded
//! and compared before anything is printed.
//!
//! `cargo run --release --example flushed -- FILE SIZE [PROFILE]` (`PROFILE`: `fast`,
//! `default` or `max`; `default` when left out).

use std::io::Write;
use std::process::ExitCode;

use nc_codec::{Config, NcWriter, PredictorKind, Profile};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        eprintln!("usage: flushed FILE SIZE [fast|default|max]");
        ExitCode::from(2)
    };
    let (Some(file), Some(Ok(size))) = (args.get(1), args.get(2).map(|s| s.parse::<usize>()))
    else {
        return usage();
    };
    let profile = match args.get(3).map(String::as_str) {
        None | Some("default") => Profile::Default,
        Some("fast") => Profile::Fast,
        Some("max") => Profile::Max,
        Some(_) => return usage(),
    };
    match run(file, size.max(1), profile) {
        Ok((coded, raw)) => {
            println!("{coded} {raw}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flushed: {file}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(file: &str, size: usize, profile: Profile) -> std::io::Result<(usize, usize)> {
    let data = std::fs::read(file)?;
    let config = Config::new().predictor(PredictorKind::Mix(profile));
    let mut w = NcWriter::with_config(Vec::new(), &config)?;
    for message in data.chunks(size) {
        w.write_all(message)?;
        w.flush()?;
    }
    let stream = w.finish()?;
    if nc_codec::decompress(&stream, &config)? != data {
        return Err(std::io::Error::other("the stream decoded to other bytes"));
    }
    Ok((stream.len(), data.len()))
}
