//! Streams over real TCP connections on 127.0.0.1.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use nc_codec::{Config, NcReader, NcWriter};

const BLOCK: u32 = 1024;

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    for s in [&client, &server] {
        // A broken test fails instead of hanging.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    (client, server)
}

#[test]
fn bursts_with_flush_arrive_before_the_next_is_sent() {
    let (client, server) = pair();
    let bursts: Vec<Vec<u8>> = (0..10)
        .map(|i| text(200 + i * 731, i as u64 + 40))
        .collect();
    let (ack_tx, ack_rx) = mpsc::channel::<usize>();
    let to_send = bursts.clone();
    let writer = thread::spawn(move || {
        let config = Config::new().block_size(BLOCK).lanes(4);
        let mut w = NcWriter::with_config(client, &config).unwrap();
        for (i, burst) in to_send.iter().enumerate() {
            w.write_all(burst).unwrap();
            w.flush().unwrap();
            // The reader must be able to decode this burst with nothing more sent.
            assert_eq!(ack_rx.recv_timeout(Duration::from_secs(30)).unwrap(), i);
        }
        w.finish().unwrap();
    });
    // A reader with more lanes than the writer still decodes at every flush.
    let mut r = NcReader::with_config(server, &Config::new().lanes(16)).unwrap();
    for (i, burst) in bursts.iter().enumerate() {
        let mut got = vec![0u8; burst.len()];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, burst, "burst {i}");
        ack_tx.send(i).unwrap();
    }
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(r.is_finished());
    writer.join().unwrap();
}

#[test]
fn connection_dropped_mid_block_is_unexpected_eof() {
    let data = text(6 * BLOCK as usize + 300, 41);
    let packed = compress(&data, &small_config(BLOCK));
    for cut in [packed.len() / 3, packed.len() / 2 + 5, packed.len() - 20] {
        let (mut client, server) = pair();
        let sent = packed[..cut].to_vec();
        let writer = thread::spawn(move || {
            client.write_all(&sent).unwrap();
            // Dropping the stream closes the connection mid-stream.
        });
        let mut r = NcReader::new(server);
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut {cut}: {err}");
        assert_eq!(out, data[..out.len()], "cut {cut}: only verified bytes");
        writer.join().unwrap();
    }
}

/// One connection carries a stream, then other bytes, then a second stream: a
/// single-stream reader stops exactly at each stream's end, so the bytes between are read
/// from the socket itself and the next reader picks up the next stream.
#[test]
fn single_stream_readers_share_one_socket() {
    let (mut client, server) = pair();
    let (a, b) = (text(30_000, 31), text(12_000, 32));
    let config = small_config(BLOCK);
    let (a2, b2, config2) = (a.clone(), b.clone(), config.clone());
    let sender = thread::spawn(move || {
        let mut w = NcWriter::with_config(&mut client, &config2).unwrap();
        w.write_all(&a2).unwrap();
        w.finish().unwrap();
        client.write_all(b"HEADER LINE\n").unwrap();
        let mut w = NcWriter::with_config(&mut client, &config2).unwrap();
        w.write_all(&b2).unwrap();
        w.finish().unwrap();
        // The connection stays open: a reader that read past its stream would hang here.
        thread::sleep(Duration::from_millis(300));
    });
    let mut socket = server;
    let mut first = Vec::new();
    NcReader::with_config(&mut socket, &config)
        .unwrap()
        .single_stream(true)
        .read_to_end(&mut first)
        .unwrap();
    assert_eq!(first, a);
    let mut line = [0u8; 12];
    socket.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"HEADER LINE\n");
    let mut second = Vec::new();
    NcReader::with_config(&mut socket, &config)
        .unwrap()
        .single_stream(true)
        .read_to_end(&mut second)
        .unwrap();
    assert_eq!(second, b);
    sender.join().unwrap();
}
