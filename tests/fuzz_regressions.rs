//! Replays every committed fuzz input (`fuzz/regressions/<target>/*`: minimised crashers and
//! seeds) through the same function the fuzz target runs, under plain `cargo test`.

// Its stream builders serve tests/hostile.rs and examples/crafted.rs, not this file.
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod nc_fuzz;

use std::path::PathBuf;

type Target = (&'static str, fn(&[u8]));

#[test]
fn replay_fuzz_regressions() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let targets: [Target; 8] = [
        ("roundtrip", nc_fuzz::roundtrip),
        ("decode_raw", nc_fuzz::decode_raw),
        ("decode_behind_header", nc_fuzz::decode_behind_header),
        ("header", nc_fuzz::header),
        ("range_coder", nc_fuzz::range_coder),
        ("writer_ops", nc_fuzz::writer_ops),
        ("crafted_lengths", nc_fuzz::crafted_lengths),
        ("slice", nc_fuzz::slice),
    ];
    let mut replayed = 0;
    for (name, target) in targets {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            target(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no fuzz regressions found under {}",
        root.display()
    );
}
