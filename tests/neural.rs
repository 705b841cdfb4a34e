//! The neural expert: matches the training script's reference, round-trips, names its model,
//! and decodes identically whichever tract kernels run.

mod common;

use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use nc_codec::experts::{NeuralExpert, NeuralModel, Predictor};
use nc_codec::{Config, NcReader, PredictorKind, Profile};

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("onnx-models")
}

/// The small model shipped for fast tests.
fn test_model() -> Arc<NeuralModel> {
    Arc::new(NeuralModel::from_file(models_dir().join("nc-test32.onnx")).unwrap())
}

fn neural_config(block: u32) -> Config {
    Config::new()
        .predictor(PredictorKind::Neural)
        .model(test_model())
        .block_size(block)
        .lanes(4)
        .threads(2)
}

/// `(text, logits per position)` written by `onnx-models/export.py`.
fn reference() -> (Vec<u8>, Vec<Vec<f64>>) {
    let text = b"The quick brown fox jumps.\n".to_vec();
    let rows = std::fs::read_to_string(models_dir().join("nc-test32.onnx.ref.txt")).unwrap();
    let logits: Vec<Vec<f64>> = rows
        .lines()
        .map(|l| l.split(' ').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(logits.len(), text.len());
    (text, logits)
}

/// The trained model alone (format version 3: no online correction of its output layer)
/// gives the logits the export script computed.
#[test]
fn matches_the_training_scripts_reference() {
    let (text, logits) = reference();
    let mut expert = NeuralExpert::for_version(3, test_model(), 1, 256).unwrap();
    expert.reset_lane(0, 1 << 20);
    let mut out = [[0u32; 256]];
    for (t, &byte) in text.iter().enumerate() {
        expert.predict(&[0], &mut out).unwrap();
        let total: f64 = out[0].iter().map(|&w| f64::from(w)).sum();
        let max = logits[t].iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = logits[t].iter().map(|l| (l - max).exp()).sum();
        for s in 0..256 {
            let want = (logits[t][s] - max).exp() / z;
            let got = f64::from(out[0][s]) / total;
            assert!(
                (want - got).abs() < 2e-3,
                "position {t}, byte {s}: {got} vs {want}"
            );
        }
        expert.update(&[0], &[byte]);
    }
}

/// Bits the expert of format `version` spends on `data`, coded as one block.
fn cost_in_bits(version: u16, data: &[u8]) -> f64 {
    let mut expert = NeuralExpert::for_version(version, test_model(), 1, 256).unwrap();
    expert.reset_lane(0, data.len());
    let mut out = [[0u32; 256]];
    let mut bits = 0.0;
    for &byte in data {
        expert.predict(&[0], &mut out).unwrap();
        let total: f64 = out[0].iter().map(|&w| f64::from(w)).sum();
        bits -= (f64::from(out[0][usize::from(byte)].max(1)) / total).log2();
        expert.update(&[0], &[byte]);
    }
    bits
}

/// From version 4 the expert corrects its output layer as the block is coded: words the
/// model never saw in training become cheap once the block has used them, and a reset
/// forgets them.
#[test]
fn the_output_layer_learns_the_block() {
    let names = ["Zorqvax", "Quellibrin", "Mxyptlk", "Vandrozel"];
    let mut data = Vec::new();
    let mut rng = 7u32;
    while data.len() < 6000 {
        rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.extend_from_slice(names[(rng >> 16) as usize % names.len()].as_bytes());
        data.extend_from_slice(b" said so. ");
    }
    let fixed = cost_in_bits(3, &data);
    let adapting = cost_in_bits(4, &data);
    assert!(
        adapting < fixed * 0.8,
        "adapting {adapting:.0} bits, fixed {fixed:.0}"
    );
    // Version 11 keeps columns only for the bytes that have occurred: it learns nearly as
    // much as version 10's full layer (here 1.9% more bits: on this text of a few dozen
    // distinct bytes the full layer also learns to push the others down; on the bench corpus the
    // two differ by 0.001%).
    let full = cost_in_bits(10, &data);
    let seen = cost_in_bits(11, &data);
    assert!(
        (seen - full).abs() < full * 0.03 && seen < fixed * 0.8,
        "seen columns {seen:.0} bits, full {full:.0}, fixed {fixed:.0}"
    );
    // A reset lane starts again from the trained model.
    let mut used = NeuralExpert::new(test_model(), 1, 256).unwrap();
    used.reset_lane(0, 1 << 16);
    for &b in &data[..2000] {
        let mut out = [[0u32; 256]];
        used.predict(&[0], &mut out).unwrap();
        used.update(&[0], &[b]);
    }
    used.reset_lane(0, 1 << 16);
    let mut fresh = NeuralExpert::new(test_model(), 1, 256).unwrap();
    fresh.reset_lane(0, 1 << 16);
    for &b in &data[..300] {
        let (mut a, mut f) = ([[0u32; 256]], [[0u32; 256]]);
        used.predict(&[0], &mut a).unwrap();
        fresh.predict(&[0], &mut f).unwrap();
        assert_eq!(a, f);
        used.update(&[0], &[b]);
        fresh.update(&[0], &[b]);
    }
}

#[test]
fn neural_streams_round_trip_and_do_not_depend_on_lanes() {
    let data = text(6 * 1024 + 77, 50);
    let packed = compress(&data, &neural_config(1024));
    let mut out = Vec::new();
    NcReader::with_config(&packed[..], &neural_config(1024))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
    for (lanes, threads) in [(1, 1), (3, 2), (7, 1)] {
        let config = neural_config(1024).lanes(lanes).threads(threads);
        assert_eq!(
            compress(&data, &config),
            packed,
            "lanes {lanes} threads {threads}"
        );
    }
}

#[test]
fn max_profile_mixes_the_neural_expert_and_does_not_depend_on_lanes() {
    let data = text(5 * 1024 + 31, 52);
    let max = |lanes, threads| {
        neural_config(1024)
            .predictor(PredictorKind::Mix(Profile::Max))
            .lanes(lanes)
            .threads(threads)
    };
    let packed = compress(&data, &max(4, 2));
    let mut out = Vec::new();
    NcReader::with_config(&packed[..], &max(2, 1))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
    for (lanes, threads) in [(1, 1), (5, 2)] {
        assert_eq!(compress(&data, &max(lanes, threads)), packed);
    }
    // The model is part of the stream's identity here too.
    assert_eq!(
        decompress(&packed).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn a_reader_without_the_model_says_which_it_needs() {
    let data = text(3000, 51);
    let packed = compress(&data, &neural_config(1024));
    let err = decompress(&packed).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("test32"), "{err}");
}

#[test]
fn the_embedded_default_model_loads_and_round_trips() {
    let model = NeuralModel::default_model().unwrap();
    assert!(model.hidden() >= 32);
    let data = text(2000, 52);
    let config = Config::new()
        .predictor(PredictorKind::Neural)
        .block_size(1024);
    let packed = compress(&data, &config);
    assert_eq!(decompress(&packed).unwrap(), data);
}

#[test]
fn corrupt_model_files_are_invalid_data() {
    let mut bytes = std::fs::read(models_dir().join("nc-test32.onnx")).unwrap();
    for cut in [0, 10, bytes.len() / 2] {
        let err = NeuralModel::from_bytes(&bytes[..cut]).unwrap_err();
        assert_eq!(std::io::Error::from(err).kind(), ErrorKind::InvalidData);
    }
    bytes.truncate(bytes.len() - 1);
    assert!(NeuralModel::from_bytes(&bytes).is_err());
}

/// Encodes here, then decodes in a child process whose tract is limited to other kernels
/// (`TRACT_CPU_ISA` switches instruction sets off: on an AVX2 machine the second and third
/// sets move tract from its `fma_mmm_f32_*` kernels to its generic one), and compares.
/// Where AVX2 is off for tract it is off for nc's own kernels too (`NC_NO_AVX2`: the integer
/// matmul and the element-wise arithmetic), so an AVX2 machine also checks them against
/// their scalar and SSE2 builds; where only AVX-512 is off, so is nc's (`NC_NO_AVX512`).
#[test]
fn decodes_identically_with_other_tract_kernels() {
    if let Some(path) = std::env::var_os("NC_CROSS_KERNEL_STREAM") {
        // Child: decode the stream and print its CRC32.
        let packed = std::fs::read(path).unwrap();
        let mut out = Vec::new();
        NcReader::with_config(&packed[..], &neural_config(1024))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        println!("NC_CRC={:08x}", crc32fast::hash(&out));
        return;
    }
    let data = text(5000, 53);
    let packed = compress(&data, &neural_config(1024));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.nc");
    std::fs::write(&path, &packed).unwrap();
    let want = format!("NC_CRC={:08x}", crc32fast::hash(&data));
    for isa in [
        "-avx512f,-avx512vnni",
        "-avx512f,-avx512vnni,-avxvnni,-avx2,-fma",
        "-avx512f,-avx512vnni,-avxvnni,-avx2,-fma,-f16c,-avx",
    ] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "decodes_identically_with_other_tract_kernels",
                "--nocapture",
            ])
            .env("NC_CROSS_KERNEL_STREAM", &path)
            .env("TRACT_CPU_ISA", isa);
        if isa.contains("-avx2") {
            child.env("NC_NO_AVX2", "1");
        } else {
            // nc's own AVX2 kernels (the integer matmul, the element-wise arithmetic)
            // against the AVX-512 ones this process ran where the CPU has them.
            child.env("NC_NO_AVX512", "1");
        }
        let output = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child with {isa} failed: {stdout}");
        assert!(
            stdout.contains(&want),
            "child with {isa} decoded differently: {stdout}"
        );
    }
}
