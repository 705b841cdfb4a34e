//! Seeking over the uncompressed bytes through the trailer index.

mod common;

use std::io::{self, ErrorKind, Read, Seek, SeekFrom};

use common::*;
use nc_codec::container::StreamIndex;
use nc_codec::NcReader;

const BLOCK: u32 = 1024;

#[test]
fn seek_to_random_offsets() {
    let data = text(40 * BLOCK as usize + 123, 31);
    let packed = compress(&data, &small_config(BLOCK));
    let mut reader = NcReader::new(io::Cursor::new(&packed[..]));
    assert_eq!(reader.uncompressed_len().unwrap(), data.len() as u64);
    let mut rng = Rng(77);
    for _ in 0..200 {
        let start = rng.below(data.len() as u64 + 10);
        let len = rng.below(3 * BLOCK as u64) as usize;
        assert_eq!(reader.seek(SeekFrom::Start(start)).unwrap(), start);
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            let n = reader.read(&mut buf[got..]).unwrap();
            if n == 0 {
                break;
            }
            got += n;
        }
        let s = (start as usize).min(data.len());
        let e = (s + len).min(data.len());
        assert_eq!(&buf[..got], &data[s..e], "slice {start}+{len}");
    }
}

#[test]
fn seek_relative_and_from_end() {
    let data = text(10 * BLOCK as usize + 5, 32);
    let packed = compress(&data, &small_config(BLOCK));
    let mut reader = NcReader::new(io::Cursor::new(&packed[..]));
    let mut buf = [0u8; 10];
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(reader.seek(SeekFrom::Current(100)).unwrap(), 110);
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &data[110..120]);
    let end = data.len() as u64;
    assert_eq!(reader.seek(SeekFrom::End(-10)).unwrap(), end - 10);
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &data[data.len() - 10..]);
    assert_eq!(reader.read(&mut buf).unwrap(), 0);
    // Past the end reads nothing; before the start is an error.
    reader.seek(SeekFrom::End(50)).unwrap();
    assert_eq!(reader.read(&mut buf).unwrap(), 0);
    let err = reader
        .seek(SeekFrom::Current(-(end as i64) - 100))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // And back to the start for a full, fully verified read.
    reader.seek(SeekFrom::Start(0)).unwrap();
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!(all, data);
    assert!(reader.is_finished());
}

#[test]
fn seek_mid_read_and_sequential_read_after_seek_verify_the_trailer() {
    let data = text(12 * BLOCK as usize, 33);
    let packed = compress(&data, &small_config(BLOCK));
    let mut reader = NcReader::new(io::Cursor::new(&packed[..]));
    let mut first = vec![0u8; 1500];
    reader.read_exact(&mut first).unwrap();
    reader.seek(SeekFrom::Start(5000)).unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, &data[5000..]);
    assert!(reader.is_finished());
}

/// A reader reset onto another stream seeks there from that stream's dictionary (block 0),
/// never from the one it decoded before: both streams' blocks start from their own.
#[test]
fn a_reset_reader_seeks_from_the_new_streams_dictionary() {
    let (a, b) = (text(6 * BLOCK as usize, 36), text(6 * BLOCK as usize, 40));
    let (pa, pb) = (
        compress(&a, &small_config(BLOCK)),
        compress(&b, &small_config(BLOCK)),
    );
    let mut reader = NcReader::new(io::Cursor::new(&pa[..]));
    let mut buf = vec![0u8; 100];
    reader.seek(SeekFrom::Start(3 * BLOCK as u64)).unwrap();
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(buf, &a[3 * BLOCK as usize..][..100]);
    reader.reset(io::Cursor::new(&pb[..]));
    reader.seek(SeekFrom::Start(4 * BLOCK as u64 + 7)).unwrap();
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(buf, &b[4 * BLOCK as usize + 7..][..100]);
}

#[test]
fn seek_on_a_stream_without_index_fails_cleanly() {
    let data = text(5 * BLOCK as usize, 34);
    let packed = compress(&data, &small_config(BLOCK));
    let cut = &packed[..packed.len() - 3];
    let mut reader = NcReader::new(io::Cursor::new(cut));
    let err = reader.seek(SeekFrom::Start(10)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn index_matches_the_stream() {
    let data = text(7 * BLOCK as usize + 1, 35);
    let packed = compress(&data, &small_config(BLOCK));
    let index = StreamIndex::read_from(&mut io::Cursor::new(&packed[..])).unwrap();
    assert_eq!(index.blocks.len(), 8);
    assert_eq!(index.total_len, data.len() as u64);
    assert_eq!(index.content_crc, crc32fast::hash(&data));
    assert_eq!(index.stream_len, packed.len() as u64);
    assert_eq!(index.block_at(0), Some(0));
    assert_eq!(index.block_at(BLOCK as u64), Some(1));
    assert_eq!(index.block_at(data.len() as u64 - 1), Some(7));
    assert_eq!(index.block_at(data.len() as u64), None);
}
