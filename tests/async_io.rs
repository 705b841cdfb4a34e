//! The tokio adapters over a loopback TCP connection (feature `tokio`).
#![cfg(feature = "tokio")]

mod common;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use nc_codec::async_io::{AsyncNcReader, AsyncNcWriter, NcCodec};
use nc_codec::{Config, PredictorKind, Profile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use common::text;

fn config() -> Config {
    Config::new()
        .predictor(PredictorKind::Mix(Profile::Fast))
        .block_size(64 << 10)
        .threads(2)
}

async fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.unwrap(), server.unwrap().0)
}

/// A writer on one end, a reader on the other: the bytes arrive exactly, the stream the
/// writer produced is the one the blocking writer produces, and a flush mid-stream lets
/// the reader decode everything before it while the writer still holds the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_and_reader_over_tcp() {
    let data = text(700_000, 11);
    let (client, server) = connected().await;
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        let mut w = AsyncNcWriter::new(client, &config()).unwrap();
        let (first, rest) = sent.split_at(1000);
        w.write_all(first).await.unwrap();
        w.flush().await.unwrap();
        for part in rest.chunks(7919) {
            w.write_all(part).await.unwrap();
        }
        w.shutdown().await.unwrap();
    });
    let mut r = AsyncNcReader::new(server, &config()).unwrap();
    let mut first = vec![0u8; 1000];
    r.read_exact(&mut first).await.unwrap();
    assert_eq!(first, data[..1000]);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await.unwrap();
    writer.await.unwrap();
    assert_eq!([first, rest].concat(), data);
}

/// On a single-threaded runtime too, and what the async writer makes is a valid stream
/// for the blocking reader.
#[tokio::test(flavor = "current_thread")]
async fn async_writer_output_decodes_with_the_blocking_reader() {
    let data = text(300_000, 12);
    let mut w = AsyncNcWriter::new(Vec::new(), &config()).unwrap();
    w.write_all(&data).await.unwrap();
    w.shutdown().await.unwrap();
    let packed = w.into_inner();
    assert_eq!(nc_codec::decompress(&packed, &config()).unwrap(), data);

    let mut r = AsyncNcReader::new(&packed[..], &config()).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, data);

    // Damage is reported, not decoded.
    let mut bad = packed.clone();
    let n = bad.len();
    bad[n / 2] ^= 1;
    let mut r = AsyncNcReader::new(&bad[..], &config()).unwrap();
    let err = r.read_to_end(&mut Vec::new()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

/// Messages framed as one stream each, both ways over one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codec_frames_messages() {
    let (client, server) = connected().await;
    let messages: Vec<Bytes> = (0..5)
        .map(|i| Bytes::from(text(1000 + 20_000 * i, 20 + i as u64)))
        .chain([Bytes::new()])
        .collect();
    let sent = messages.clone();
    let sender = tokio::spawn(async move {
        let mut framed = Framed::new(client, NcCodec::new(config()));
        for m in sent {
            framed.send(m).await.unwrap();
        }
        // The peer echoes one message back.
        framed.next().await.unwrap().unwrap()
    });
    let mut framed = Framed::new(server, NcCodec::new(config()));
    for expected in &messages {
        let got = framed.next().await.unwrap().unwrap();
        assert_eq!(&got, expected);
    }
    framed.send(Bytes::from_static(b"echo")).await.unwrap();
    assert_eq!(sender.await.unwrap(), Bytes::from_static(b"echo"));
}
