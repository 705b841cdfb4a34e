//! Streams over 4 GiB: the format's 64-bit sizes, checked on a virtual stream that is never
//! written out (4097 copies of one coded 1 MiB block, generated on the fly at any offset).

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use nc_codec::container::{
    BlockHeader, BlockKind, Header, IndexEntry, StreamIndex, Tail, BLOCK_HEADER_LEN, TAIL_LEN,
};
use nc_codec::{Config, NcReader, NcWriter};

const BLOCK: u32 = 1 << 20;
const BLOCKS: u64 = 4097; // 4 GiB + 1 MiB of uncompressed data

/// A `.nc` stream of `BLOCKS` identical blocks of a repeating pattern, served by offset.
#[derive(Clone)]
struct VirtualStream {
    header: Vec<u8>,
    payload: Vec<u8>,
    kind: BlockKind,
    crc: u32,
    trailer: Vec<u8>,
    pos: u64,
}

impl VirtualStream {
    fn new() -> Self {
        let block: Vec<u8> = (0..BLOCK).map(|i| (i % 251) as u8).collect();
        let config = Config::new().block_size(BLOCK).lanes(1);
        let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
        w.write_all(&block).unwrap();
        let one = w.finish().unwrap();
        let index = StreamIndex::read_from(&mut Cursor::new(&one[..])).unwrap();
        let b = index.blocks[0];
        let start = b.offset as usize + BLOCK_HEADER_LEN;
        let payload = one[start..start + b.payload_len as usize].to_vec();
        // The block is coded or, being one repeated stretch, light: keep what the writer chose.
        let kind = match one[b.offset as usize] {
            0 => BlockKind::Coded,
            3 => BlockKind::Light,
            k => panic!("block kind {k}"),
        };

        let entry = IndexEntry {
            payload_len: payload.len() as u32,
            raw_len: BLOCK,
        };
        let mut trailer = BlockHeader {
            kind: BlockKind::End,
            flags: 0,
            raw_len: 0,
            payload_len: (BLOCKS as usize * 8 + TAIL_LEN) as u32,
            crc: 0,
        }
        .to_bytes(BLOCKS)
        .to_vec();
        let mut entries_crc = crc32fast::Hasher::new();
        let mut content_crc = crc32fast::Hasher::new();
        let mut block_crc = crc32fast::Hasher::new();
        block_crc.update(&block);
        for _ in 0..BLOCKS {
            trailer.extend_from_slice(&entry.to_bytes());
            entries_crc.update(&entry.to_bytes());
            content_crc.combine(&block_crc);
        }
        let tail = Tail {
            block_count: BLOCKS,
            content_crc: content_crc.finalize(),
            legacy_total_len: None,
        };
        trailer.extend_from_slice(&tail.to_bytes(entries_crc));
        VirtualStream {
            header: one[..Header::read_from(&mut &one[..]).unwrap().size()].to_vec(),
            crc: crc32fast::hash(&block),
            payload,
            kind,
            trailer,
            pos: 0,
        }
    }

    fn frame_len(&self) -> u64 {
        (BLOCK_HEADER_LEN + self.payload.len()) as u64
    }

    fn len(&self) -> u64 {
        self.header.len() as u64 + BLOCKS * self.frame_len() + self.trailer.len() as u64
    }

    fn byte_at(&self, at: u64) -> u8 {
        if at < self.header.len() as u64 {
            return self.header[at as usize];
        }
        let at = at - self.header.len() as u64;
        let block = at / self.frame_len();
        if block >= BLOCKS {
            return self.trailer[(at - BLOCKS * self.frame_len()) as usize];
        }
        let within = (at % self.frame_len()) as usize;
        if within < BLOCK_HEADER_LEN {
            let header = BlockHeader {
                kind: self.kind,
                flags: 0,
                raw_len: BLOCK,
                payload_len: self.payload.len() as u32,
                crc: self.crc,
            };
            header.to_bytes(block)[within]
        } else {
            self.payload[within - BLOCK_HEADER_LEN]
        }
    }
}

impl Read for VirtualStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len().saturating_sub(self.pos)) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.byte_at(self.pos + i as u64);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for VirtualStream {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(n) => n,
            SeekFrom::End(d) => self.len().checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

#[test]
fn index_and_seek_beyond_4_gib() {
    let stream = VirtualStream::new();
    let mut source = stream.clone();
    let index = StreamIndex::read_from(&mut source).unwrap();
    let total = BLOCKS * u64::from(BLOCK);
    assert!(total > u64::from(u32::MAX));
    assert_eq!(index.total_len, total);
    assert_eq!(index.blocks.len() as u64, BLOCKS);
    assert_eq!(index.stream_len, stream.len());
    let last = index.blocks[BLOCKS as usize - 1];
    assert_eq!(last.raw_offset, total - u64::from(BLOCK));
    assert_eq!(index.block_at(total - 1), Some(BLOCKS as usize - 1));
    assert_eq!(index.block_at((4 << 30) + 7), Some(4096));

    let mut reader = NcReader::with_config(stream, &Config::new().lanes(1)).unwrap();
    assert_eq!(reader.uncompressed_len().unwrap(), total);
    for target in [(4u64 << 30) + 12_345, total - 10, 3 << 30] {
        reader.seek(SeekFrom::Start(target)).unwrap();
        let mut buf = [0u8; 10];
        reader.read_exact(&mut buf).unwrap();
        let expected: Vec<u8> = (target..target + 10)
            .map(|o| ((o % u64::from(BLOCK)) % 251) as u8)
            .collect();
        assert_eq!(&buf[..], &expected[..], "at {target}");
    }
    // Reading on from the last block verifies the END block and the trailer.
    reader.seek(SeekFrom::End(-5)).unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 5);
    assert!(reader.is_finished());
}
