//! `nccat` as a user runs it: files beside their inputs, outputs never clobbered or left
//! half-written, concatenated streams, exit statuses.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::text;

/// `nccat` in `dir`, with no primed states kept on disk (the cache has a test of its own).
fn nccat(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nccat"))
        .env("NC_CACHE_DIR", "")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn nccat_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nccat"))
        .env("NC_CACHE_DIR", "")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// Quick settings: the fast profile without the primer, small blocks.
const QUICK: &[&str] = &["-1", "--no-primer", "-b", "16K", "-T", "2"];

fn args<'a>(first: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    first.iter().chain(rest).copied().collect()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// No temporary file is left behind in `dir`.
fn no_temporaries(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".nccat-"), "left behind: {name}");
    }
}

#[test]
fn files_are_written_beside_their_inputs_and_streams_concatenate() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (text(40_000, 1), text(25_000, 2));
    fs::write(dir.path().join("a"), &a).unwrap();
    fs::write(dir.path().join("b"), &b).unwrap();

    let out = nccat(dir.path(), &args(&["-z"], &[QUICK, &["a", "b"]].concat()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("a")).unwrap(),
        a,
        "the input is kept"
    );
    let (a_nc, b_nc) = (
        fs::read(dir.path().join("a.nc")).unwrap(),
        fs::read(dir.path().join("b.nc")).unwrap(),
    );
    let ab = [&a[..], &b[..]].concat();

    let out = nccat(dir.path(), &["-d", "-c", "a.nc", "b.nc"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, ab);

    let out = nccat_stdin(dir.path(), &["-d"], &[&a_nc[..], &b_nc[..]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, ab);

    // -d FILE.nc writes FILE, and refuses to replace it without -f.
    fs::remove_file(dir.path().join("a")).unwrap();
    let out = nccat(dir.path(), &["-d", "a.nc"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::read(dir.path().join("a")).unwrap(), a);
    let out = nccat(dir.path(), &["-d", "a.nc"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    no_temporaries(dir.path());
}

#[test]
fn an_existing_output_is_never_touched_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let a = text(30_000, 3);
    fs::write(dir.path().join("a"), &a).unwrap();
    let first = nccat(dir.path(), &args(&["-z"], &[QUICK, &["a"]].concat()));
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    fs::write(dir.path().join("a.nc"), b"precious").unwrap();

    let again = nccat(dir.path(), &args(&["-z"], &[QUICK, &["a"]].concat()));
    assert_eq!(code(&again), 1);
    assert!(
        stderr(&again).contains("a.nc"),
        "names the file: {}",
        stderr(&again)
    );
    assert_eq!(fs::read(dir.path().join("a.nc")).unwrap(), b"precious");

    let forced = nccat(dir.path(), &args(&["-z", "-f"], &[QUICK, &["a"]].concat()));
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    let out = nccat(dir.path(), &["-d", "-c", "a.nc"]);
    assert_eq!(out.stdout, a);
    no_temporaries(dir.path());
}

#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = text(10_000, 4);
    fs::write(dir.path().join("a.txt"), &a).unwrap();
    for extra in [&[][..], &["-f"][..]] {
        let out = nccat(
            dir.path(),
            &args(&["-z", "-o", "a.txt"], &[QUICK, extra, &["a.txt"]].concat()),
        );
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("one of the inputs"),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read(dir.path().join("a.txt")).unwrap(), a);
    }
    no_temporaries(dir.path());
}

#[test]
fn a_failed_run_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let a = text(50_000, 5);
    fs::write(dir.path().join("a"), &a).unwrap();
    assert_eq!(
        code(&nccat(
            dir.path(),
            &args(&["-z"], &[QUICK, &["a"]].concat())
        )),
        0
    );
    let mut packed = fs::read(dir.path().join("a.nc")).unwrap();
    let n = packed.len();
    packed[n / 2] ^= 0x40;
    fs::write(dir.path().join("bad.nc"), &packed).unwrap();

    let out = nccat(dir.path(), &["-d", "bad.nc"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).starts_with("nccat: bad.nc: "),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("bad").exists(),
        "partial output left behind"
    );

    // A missing input leaves an existing -o target as it was.
    fs::write(dir.path().join("keep.txt"), b"keep me").unwrap();
    let out = nccat(dir.path(), &["-d", "-f", "-o", "keep.txt", "missing.nc"]);
    assert_eq!(code(&out), 1);
    assert_eq!(fs::read(dir.path().join("keep.txt")).unwrap(), b"keep me");
    let out = nccat(dir.path(), &["-d", "-f", "-o", "keep.txt", "bad.nc"]);
    assert_eq!(code(&out), 1);
    assert_eq!(fs::read(dir.path().join("keep.txt")).unwrap(), b"keep me");
    no_temporaries(dir.path());

    // --rm removes an input only after its output is complete.
    let out = nccat(dir.path(), &["-d", "--rm", "bad.nc"]);
    assert_eq!(code(&out), 1);
    assert!(dir.path().join("bad.nc").exists());
    let out = nccat(dir.path(), &["-d", "-f", "--rm", "a.nc"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!dir.path().join("a.nc").exists());
    assert_eq!(fs::read(dir.path().join("a")).unwrap(), a);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), b"x").unwrap();
    for bad in [
        &["-z", "-d", "a"][..],
        &["-zd", "a"],
        &["-L", "0", "a"],
        &["-z", "a", "-o"],
        &["-z", "-o", "-c", "a"],
        &["-P", "fastest", "a"],
        &["--bogus"],
        &["-c", "-o", "x", "a"],
    ] {
        let out = nccat(dir.path(), bad);
        assert_eq!(code(&out), 2, "{bad:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 2, "{bad:?}: {}", stderr(&out));
    }
    assert!(!dir.path().join("-c").exists());
    let out = nccat(
        dir.path(),
        &args(&["-z", "-c", "-T", "0"], &[QUICK, &["a"]].concat()),
    );
    assert_eq!(code(&out), 0, "-T 0 is all cores: {}", stderr(&out));
    let out = nccat(dir.path(), &["-V"]);
    assert_eq!(code(&out), 0);
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.contains("sha256:") && version.contains("format v"),
        "{version}"
    );
}

#[test]
fn a_closed_stdout_is_not_success() {
    let dir = tempfile::tempdir().unwrap();
    let a = text(600_000, 6);
    fs::write(dir.path().join("a"), &a).unwrap();
    assert_eq!(
        code(&nccat(
            dir.path(),
            &args(&["-z"], &[QUICK, &["a"]].concat())
        )),
        0
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_nccat"))
        .current_dir(dir.path())
        .args(["-d", "-c", "a.nc", "a.nc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // stdout is closed here, as `| head -c 10` closes it.
    let status = child.wait().unwrap();
    assert_eq!(&head, &a[..10]);
    assert!(!status.success(), "exit 0 although output was lost");
}

/// A descriptor closed before the start (`>&-`, `<&-`), which Rust's runtime reopens on
/// `/dev/null`: an error, while `>/dev/null` and `</dev/null` stay a success.
#[cfg(unix)]
#[test]
fn stdio_closed_at_start_is_not_success() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), b"some bytes").unwrap();
    // `nccat -zc --no-primer -P fast INPUT REDIRECTS`, run by a shell.
    let run = |input_and_redirects: &str| {
        Command::new("sh")
            .current_dir(dir.path())
            .arg("-c")
            .arg(format!(
                "exec \"$0\" -zc --no-primer -P fast {input_and_redirects}"
            ))
            .arg(env!("CARGO_BIN_EXE_nccat"))
            .output()
            .unwrap()
    };
    // A closed descriptor fails naming it; `/dev/null` in its place is fine. For stdin,
    // a closed one is not an empty input.
    for (closed, open, name) in [
        ("a >&-", "a >/dev/null", "stdout"),
        ("- >/dev/null <&-", "- >/dev/null </dev/null", "stdin"),
    ] {
        let out = run(closed);
        assert_eq!(code(&out), 1, "{closed}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(name),
            "{out:?}"
        );
        assert_eq!(code(&run(open)), 0, "{open}");
    }
}

/// `--help` and `--version` into a pipe whose reader has gone (`nccat -V | true`): no
/// panic, and no exit 0 for output that was lost.
#[cfg(unix)]
#[test]
fn help_into_a_closed_pipe_does_not_panic() {
    for flag in ["-h", "-V"] {
        // The pipe's reader is gone before the child starts, so its write must fail.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_nccat"))
            .arg(flag)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{flag}: {err}");
        assert_eq!(code(&out), 1, "{flag}: {err}");
    }
}

#[test]
fn verbose_and_list_report() {
    let dir = tempfile::tempdir().unwrap();
    // Two blocks of 16 KiB: the second is long enough to stay a block of its own.
    fs::write(dir.path().join("a"), text(30_000, 7)).unwrap();
    let out = nccat(dir.path(), &args(&["-z", "-v"], &[QUICK, &["a"]].concat()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("bits/byte"), "{}", stderr(&out));
    assert!(stderr(&out).contains("-> a.nc"), "{}", stderr(&out));
    let out = nccat(dir.path(), &["-l", "a.nc"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("blocks"));

    // Primed, block 0 is the stream's dictionary, which the second block starts from.
    let out = nccat(dir.path(), &["-z", "-c", "-1", "-b", "16K", "-T", "2", "a"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    fs::write(dir.path().join("p.nc"), &out.stdout).unwrap();
    let list = nccat(dir.path(), &["-l", "p.nc"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("coded, dictionary\n"), "{list}");
    assert!(list.contains("coded, from the dictionary\n"), "{list}");

    // A list of a doctored file fails: the END block header no longer checks.
    let mut packed = fs::read(dir.path().join("a.nc")).unwrap();
    let n = packed.len();
    let end_at = n - 16 - 8 * 2 - 16;
    packed[end_at + 1] ^= 1;
    fs::write(dir.path().join("d.nc"), &packed).unwrap();
    let out = nccat(dir.path(), &["-l", "d.nc"]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stdout));
}

/// A file's length is known, so it does not end in a short block: 20,000 bytes at 16 KiB
/// blocks are one block (the tail would be 3,616 bytes); from stdin, two.
#[test]
fn a_file_ends_in_no_short_block() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(20_000, 5);
    fs::write(dir.path().join("a"), &data).unwrap();
    let out = nccat(dir.path(), &args(&["-z"], &[QUICK, &["a"]].concat()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let piped = nccat_stdin(dir.path(), &args(&["-z", "-c"], QUICK), &data);
    assert_eq!(code(&piped), 0, "{}", stderr(&piped));
    fs::write(dir.path().join("b.nc"), &piped.stdout).unwrap();
    for (name, blocks, block_size) in [("a.nc", "1 blocks", "20000"), ("b.nc", "2 blocks", "16384")]
    {
        let list = nccat(dir.path(), &["-l", name]);
        let list = String::from_utf8_lossy(&list.stdout).into_owned();
        assert!(list.contains(blocks), "{list}");
        assert!(list.contains(&format!("block size {block_size}")), "{list}");
        let back = nccat(dir.path(), &["-d", "-c", name]);
        assert_eq!(back.stdout, data);
    }
}

/// The primed states `nccat` keeps in `NC_CACHE_DIR`: stored by the first run, read by the
/// next, and the output the same as with `--no-cache`; a damaged state is primed over.
#[test]
fn primed_states_on_disk_change_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::write(dir.path().join("a"), text(3000, 7)).unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nccat"))
            .env("NC_CACHE_DIR", &cache)
            .current_dir(dir.path())
            .args(args(&["-zc", "-P", "fast"], &[extra, &["a"]].concat()))
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{out:?}");
        out.stdout
    };
    let plain = run(&["--no-cache"]);
    assert!(!cache.exists(), "--no-cache wrote a state");
    assert_eq!(run(&[]), plain);
    let states: Vec<_> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(run(&[]), plain);
    // Damaged: read, refused, primed again and stored whole.
    let good = fs::read(&states[0]).unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    fs::write(&states[0], &bad).unwrap();
    assert_eq!(run(&[]), plain);
    assert!(fs::read(&states[0]).unwrap() == good);
    // Decoding reads the state too.
    fs::write(dir.path().join("a.nc"), &plain).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nccat"))
        .env("NC_CACHE_DIR", &cache)
        .current_dir(dir.path())
        .args(["-dc", "a.nc"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, text(3000, 7));
}
