//! Primed states kept on disk, so a process that codes a small input starts from the
//! primed state a process before it computed, instead of coding the primer again
//! (priming costs as much as coding the primer; reading the state, a small part of that:
//! `docs/profile.md`, "Primed states read from disk"). Off unless [`set_primed_cache_dir`] names a directory; `nccat` names
//! one by default.
//!
//! A file holds one state, for one key ([`PrimedKey`]) of one build: its name and header
//! carry a fingerprint of the crate's sources, primers and features (`build.rs`), so a
//! state computed by other code is never loaded in place of priming. A file that does not
//! check out (bad magic, key, length or CRC-32, or a state that does not fit the lane) is
//! ignored and replaced; the coded output is the same with or without the cache.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use super::lane::Lane;
use super::primer::PrimedKey;
use crate::snapshot;

/// The sources, primers and features this build was made from (`build.rs`).
const FINGERPRINT: &str = env!("NC_BUILD_FINGERPRINT");

const MAGIC: &[u8; 8] = b"ncprimed";

/// A file: magic, fingerprint (32 hex digits), key (2 + 4 + 4 + 4 + 1 bytes); the state;
/// its length (8 bytes) and the CRC-32 of all before.
const HEADER_LEN: usize = 8 + 32 + 15;
const TRAILER_LEN: usize = 8 + 4;

static DIR: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Keeps primed states in `dir`, created if missing, for the processes that follow;
/// `None` (the default) keeps them in memory only. (Format version 13 primes every block's
/// state at one size; for older versions, states of blocks up to ~160 KB are kept.)
///
/// Priming (coding the embedded primer before a block, which makes small inputs code
/// smaller) costs about as much as coding 100 KB, so a process that codes one small input
/// spends most of its time on it. With a directory, the first such process stores the
/// state it primed (40-68 MB) and later ones read it back. Output is
/// identical either way; a file from another build of the crate, or damaged, is ignored
/// and replaced, and files of other builds are removed when a state is stored. Errors
/// reading or writing the directory only mean priming as without it.
///
/// A state holds nothing of the data coded (it is computed from the embedded primers
/// alone), but one that checks out is trusted as a primed state: name a directory that
/// only you can write.
pub fn set_primed_cache_dir(dir: Option<PathBuf>) {
    *DIR.write().unwrap_or_else(PoisonError::into_inner) = dir;
}

/// The directory [`set_primed_cache_dir`] named, if any.
pub(super) fn dir() -> Option<PathBuf> {
    DIR.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn key_bytes(&(version, mask, (bits, copy_bits), x86): &PrimedKey) -> [u8; 15] {
    let mut b = [0; 15];
    b[..2].copy_from_slice(&version.to_le_bytes());
    b[2..6].copy_from_slice(&mask.to_le_bytes());
    b[6..10].copy_from_slice(&bits.to_le_bytes());
    b[10..14].copy_from_slice(&copy_bits.to_le_bytes());
    b[14] = u8::from(x86);
    b
}

fn file_name(key: &PrimedKey) -> String {
    let (version, mask, (bits, copy_bits), x86) = key;
    format!(
        "primed-{FINGERPRINT}-v{version}-{mask:08x}-{bits}-{copy_bits}-{}.bin",
        u8::from(*x86)
    )
}

/// Loads the state stored for `key` in `dir` into `lane`, a lane just built for it;
/// false if there is none that checks out (`lane` must then be built again).
pub(super) fn load(dir: &Path, key: &PrimedKey, lane: &mut Lane) -> bool {
    // A state is at most what the lane's tables hold, and the history of the primer.
    let primer = lane.spec.primer.map_or(0, <[u8]>::len) as u64;
    let most = 2 * lane.spec.lane_bytes(lane.block_len) + 4 * primer;
    load_at_most(dir, key, lane, most)
}

/// [`load`], where a state longer than `max_len` is not one of this build's.
fn load_at_most(dir: &Path, key: &PrimedKey, lane: &mut Lane, max_len: u64) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(file_name(key))) else {
        return false;
    };
    let Some(len) = file
        .metadata()
        .ok()
        .and_then(|m| m.len().checked_sub((HEADER_LEN + TRAILER_LEN) as u64))
        .filter(|&len| len <= max_len)
    else {
        return false;
    };
    // Read straight into the lane: the state is tens of MB, and the lane is where it goes.
    let mut read = Hashing::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut header = [0; HEADER_LEN];
    let mut stored_len = [0; 8];
    let mut crc = [0; 4];
    let whole = read.read_exact(&mut header).is_ok()
        && header[..] == header_of(key)[..]
        && snapshot::load(lane, &mut read, len)
        && read.read_exact(&mut stored_len).is_ok()
        && u64::from_le_bytes(stored_len) == len;
    let computed = read.crc.clone().finalize();
    whole && read.inner.read_exact(&mut crc).is_ok() && u32::from_le_bytes(crc) == computed
}

fn header_of(key: &PrimedKey) -> Vec<u8> {
    [&MAGIC[..], FINGERPRINT.as_bytes(), &key_bytes(key)].concat()
}

/// A reader or writer that hashes and counts what passes.
struct Hashing<T> {
    inner: T,
    crc: crc32fast::Hasher,
    count: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing {
            inner,
            crc: crc32fast::Hasher::new(),
            count: 0,
        }
    }

    fn passed(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.count += bytes.len() as u64;
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.passed(&buf[..n]);
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.passed(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Stores `lane`, just primed for `key`, in `dir`, and removes the states of other builds.
pub(super) fn store(dir: &Path, key: &PrimedKey, lane: &mut Lane) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // Written aside and renamed into place: a reader sees a whole file or none, and
    // processes storing at once each rename a whole one.
    let name = file_name(key);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let aside = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let written = std::fs::File::create(&aside).is_ok_and(|file| {
        let mut write = Hashing::new(file);
        let ok = write.write_all(&header_of(key)).is_ok() && snapshot::save(lane, &mut write);
        let len = (write.count - HEADER_LEN as u64).to_le_bytes();
        ok && write.write_all(&len).is_ok() && {
            let crc = write.crc.clone().finalize().to_le_bytes();
            write.inner.write_all(&crc).is_ok()
        }
    });
    if !written || std::fs::rename(&aside, dir.join(&name)).is_err() {
        let _ = std::fs::remove_file(&aside);
        return;
    }
    remove_other_builds(dir);
}

/// Removes the states other builds stored, and files a process that stopped while
/// writing left aside (older than [`ASIDE_STALE`]): a directory holds one build's states
/// (a few table sizes), however many builds have used it.
fn remove_other_builds(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let ours = format!("primed-{FINGERPRINT}-");
    let stale = |entry: &std::fs::DirEntry| {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ASIDE_STALE)
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let other =
            name.starts_with("primed-") && name.ends_with(".bin") && !name.starts_with(&ours);
        let aside = name.starts_with(".primed-") && name.ends_with(".tmp") && stale(&entry);
        if other || aside {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// How long a file written aside may stay before it counts as left by a process that
/// stopped: writing a state takes well under a second.
const ASIDE_STALE: std::time::Duration = std::time::Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::super::primer::{primed_state, stored_key};
    use super::super::{Mix, Profile};
    use super::*;

    /// A state as the walk sees it, for comparing two lanes field by field.
    fn snapshot_of(lane: &mut Lane) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(snapshot::save(lane, &mut out));
        out
    }

    /// `(spec, key)` of the primed state of `profile`'s lanes for a block of `len` bytes
    /// in format version `version`.
    /// (as `Mix::primed_lane` is asked for it: a growing lane's for length 0).
    fn setup(version: u16, profile: Profile, x86: bool, len: usize) -> (Mix, PrimedKey, usize) {
        // `max` runs the neural expert: the small test model will do.
        #[cfg(feature = "neural")]
        let model = matches!(profile, Profile::Max).then(|| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/onnx-models/nc-test32.onnx");
            std::sync::Arc::new(crate::experts::NeuralModel::from_file(path).unwrap())
        });
        #[cfg(not(feature = "neural"))]
        let model = None;
        let mix = Mix::for_version(version, profile.experts(), 1, model, 256, true).unwrap();
        let spec = mix.lane_spec(x86);
        let len = if spec.grows { 0 } else { len };
        let key = (spec.version, spec.mask, spec.table_bits(len), x86);
        (mix, key, len)
    }

    #[test]
    fn a_stored_state_loads_as_the_primed_one() {
        let dir = tempfile::tempdir().unwrap();
        for (version, profile, x86) in [
            (crate::format::VERSION, Profile::Default, false),
            (crate::format::VERSION, Profile::Default, true),
            (crate::format::VERSION, Profile::Fast, false),
            #[cfg(feature = "neural")]
            (crate::format::VERSION, Profile::Max, false),
            (12, Profile::Default, false),
        ] {
            let (mix, key, len) = setup(version, profile, x86, 5000);
            let spec = mix.lane_spec(x86);
            let on_disk = stored_key(spec, &key);
            let mut primed = primed_state(spec, len, &key, Some(dir.path()));
            let name = dir.path().join(file_name(&on_disk));
            assert!(name.exists(), "{version} {profile:?} {x86}: not stored");
            let mut loaded = Lane::new(spec, len);
            assert!(
                load(dir.path(), &on_disk, &mut loaded),
                "{version} {profile:?} {x86}: not loaded"
            );
            assert!(
                snapshot_of(&mut loaded) == snapshot_of(&mut primed),
                "{version} {profile:?} {x86}: loaded state differs"
            );
            // Through `primed_state` too: read, not primed and stored again.
            let written = std::fs::metadata(&name).unwrap().modified().unwrap();
            let mut again = primed_state(spec, len, &key, Some(dir.path()));
            assert!(snapshot_of(&mut again) == snapshot_of(&mut primed));
            assert_eq!(
                std::fs::metadata(&name).unwrap().modified().unwrap(),
                written
            );
            // Another key's state is not this one's.
            let other = (on_disk.0, on_disk.1 ^ 1, on_disk.2, on_disk.3);
            assert!(!load(dir.path(), &other, &mut Lane::new(spec, len)));
        }
    }

    /// `max`'s lanes start from the state `default`'s prime (the neural input takes the
    /// unigram's column, which priming leaves to the unigram): one file serves both.
    #[cfg(feature = "neural")]
    #[test]
    fn default_and_max_share_a_stored_state() {
        let dir = tempfile::tempdir().unwrap();
        let version = crate::format::VERSION;
        let (default, key, len) = setup(version, Profile::Default, false, 5000);
        let (max, max_key, _) = setup(version, Profile::Max, false, 5000);
        let (spec, max_spec) = (default.lane_spec(false), max.lane_spec(false));
        assert_ne!(key, max_key);
        assert_eq!(stored_key(spec, &key), stored_key(max_spec, &max_key));
        let mut stored = primed_state(spec, len, &key, Some(dir.path()));
        // `default`'s file loads into a `max` lane, as `max`'s own priming would leave it.
        let mut loaded = Lane::new(max_spec, len);
        assert!(load(
            dir.path(),
            &stored_key(max_spec, &max_key),
            &mut loaded
        ));
        let mut primed = primed_state(max_spec, len, &max_key, None);
        assert!(snapshot_of(&mut loaded) == snapshot_of(&mut primed));
        assert!(snapshot_of(&mut stored) == snapshot_of(&mut primed));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_or_foreign_file_is_not_loaded_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (mix, key, len) = setup(crate::format::VERSION, Profile::Fast, false, 5000);
        let spec = mix.lane_spec(false);
        let mut primed = primed_state(spec, len, &key, Some(dir.path()));
        let name = dir.path().join(file_name(&key));
        let good = std::fs::read(&name).unwrap();
        let loads = |bytes: &[u8], max| {
            std::fs::write(&name, bytes).unwrap();
            load_at_most(dir.path(), &key, &mut Lane::new(spec, len), max)
        };
        assert!(loads(&good, u64::MAX));
        // Longer than the lane could hold.
        assert!(!loads(
            &good,
            (good.len() - HEADER_LEN - TRAILER_LEN - 1) as u64
        ));
        let mut flipped = good.clone();
        for at in [
            3,
            HEADER_LEN - 1,
            good.len() / 2,
            good.len() - 9,
            good.len() - 1,
        ] {
            flipped[at] ^= 0x10;
            assert!(!loads(&flipped, u64::MAX), "byte {at} flipped");
            flipped[at] ^= 0x10;
        }
        for len in [0, 10, HEADER_LEN, good.len() / 2, good.len() - 1] {
            assert!(!loads(&good[..len], u64::MAX), "cut to {len}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(!loads(&longer, u64::MAX));
        // Another build's file under this build's name.
        let mut foreign = good.clone();
        foreign[8] ^= 1;
        assert!(!loads(&foreign, u64::MAX));
        // A damaged file is primed over and replaced, and the state is the same.
        std::fs::write(&name, &flipped[..good.len() / 3]).unwrap();
        let mut again = primed_state(spec, len, &key, Some(dir.path()));
        assert!(snapshot_of(&mut again) == snapshot_of(&mut primed));
        assert!(std::fs::read(&name).unwrap() == good);
    }

    #[test]
    fn storing_removes_other_builds_states_and_stale_asides_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir
            .path()
            .join("primed-00000000000000000000000000000000-v13-1-20-17-0.bin");
        let unrelated = dir.path().join("notes.txt");
        std::fs::write(&stale, b"old").unwrap();
        std::fs::write(&unrelated, b"mine").unwrap();
        // Left aside by a process that stopped an hour ago, and by one writing now.
        let left = dir.path().join(".primed-x.bin.1.2.tmp");
        let writing = dir.path().join(".primed-x.bin.3.4.tmp");
        std::fs::write(&left, b"half").unwrap();
        std::fs::write(&writing, b"half").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let file = std::fs::File::options().write(true).open(&left).unwrap();
        file.set_modified(hour_ago).unwrap();
        drop(file);
        let (mix, key, len) = setup(crate::format::VERSION, Profile::Fast, false, 5000);
        primed_state(mix.lane_spec(false), len, &key, Some(dir.path()));
        assert!(!stale.exists() && !left.exists());
        assert!(unrelated.exists() && writing.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }
}
