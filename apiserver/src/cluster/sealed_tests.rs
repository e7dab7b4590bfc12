//! Sealing and opening gossip packets, and sealed sockets talking over loopback.

use std::time::Duration;

use chitchat::transport::{Socket, Transport, UdpTransport};
use chitchat::{ChitchatEnvelope, ChitchatMessage, ProtocolVersion};

use super::*;
use crate::cluster::keyring::{KeyringOp, SharedKeyring};

fn key(text_byte: u8) -> GossipKey {
    use base64::Engine;
    GossipKey::parse(&base64::engine::general_purpose::STANDARD.encode([text_byte; 32])).unwrap()
}

#[test]
fn a_sealed_packet_opens_with_its_key_only() {
    let packet = seal(&key(1), [7; NONCE_LEN], b"gossip");
    assert_eq!(packet.len(), b"gossip".len() + OVERHEAD);
    assert!(!packet.windows(6).any(|w| w == b"gossip"), "not encrypted");
    assert_eq!(open(&[key(1)], &packet).unwrap(), b"gossip");
    assert_eq!(open(&[key(2)], &packet), Err(OpenError::Decrypt));
    assert_eq!(open(&[], &packet), Err(OpenError::Decrypt));
}

#[test]
fn a_tampered_packet_is_rejected() {
    let packet = seal(&key(1), [7; NONCE_LEN], b"gossip");
    for i in 0..packet.len() {
        let mut tampered = packet.clone();
        tampered[i] ^= 0x01;
        assert_eq!(
            open(&[key(1)], &tampered),
            Err(OpenError::Decrypt),
            "byte {i}"
        );
    }
    assert_eq!(
        open(&[key(1)], &packet[..packet.len() - 1]),
        Err(OpenError::Decrypt)
    );
    assert_eq!(open(&[key(1)], &packet[..3]), Err(OpenError::Decrypt));
    assert_eq!(open(&[key(1)], b""), Err(OpenError::Decrypt));
}

#[test]
fn a_plaintext_chitchat_packet_is_told_apart() {
    let plaintext = [PLAINTEXT_MAGIC[0], PLAINTEXT_MAGIC[1], 0, 3];
    assert_eq!(open(&[key(1)], &plaintext), Err(OpenError::Plaintext));
}

#[test]
fn every_installed_key_opens_during_a_rotation() {
    let old = seal(&key(1), [1; NONCE_LEN], b"old");
    let new = seal(&key(2), [2; NONCE_LEN], b"new");
    // Installed, not yet primary: both open.
    let ring = [key(1), key(2)];
    assert_eq!(open(&ring, &old).unwrap(), b"old");
    assert_eq!(open(&ring, &new).unwrap(), b"new");
    // The old key removed: its packets no longer open.
    assert_eq!(open(&[key(2)], &old), Err(OpenError::Decrypt));
    assert_eq!(open(&[key(2)], &new).unwrap(), b"new");
}

fn envelope() -> ChitchatEnvelope {
    ChitchatEnvelope {
        version: ProtocolVersion::V0,
        message: ChitchatMessage::BadCluster,
    }
}

fn keyring(k: u8) -> SharedKeyring {
    SharedKeyring::open(None, Some(&key(k))).unwrap().unwrap()
}

async fn socket(transport: &dyn Transport) -> Box<dyn Socket> {
    transport.open(([127, 0, 0, 1], 0).into()).await.unwrap()
}

fn dropped(reason: &'static str) -> u64 {
    dropped_packets()
        .get_or_create(&DropLabels { reason })
        .get()
}

#[tokio::test]
async fn sealed_sockets_exchange_envelopes_and_drop_what_they_cannot_open() {
    let shared = keyring(1);
    let mut a = socket(&SealedTransport::new(shared.clone())).await;
    let mut b = socket(&SealedTransport::new(keyring(1))).await;
    let mut stranger = socket(&SealedTransport::new(keyring(9))).await;
    let mut plain = socket(&UdpTransport).await;
    let b_addr = b.local_addr().unwrap();

    a.send(b_addr, envelope()).await.unwrap();
    let got = b.recv().await.unwrap();
    assert_eq!(got.from_addr, a.local_addr().unwrap());
    assert_eq!(got.envelope, envelope());

    // A wrong key and plaintext are dropped and counted; what follows still arrives.
    let (decrypt, plaintext) = (dropped("decrypt"), dropped("plaintext"));
    stranger.send(b_addr, envelope()).await.unwrap();
    plain.send(b_addr, envelope()).await.unwrap();
    a.send(b_addr, envelope()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.from_addr, a.local_addr().unwrap());
    assert!(dropped("decrypt") > decrypt);
    assert!(dropped("plaintext") > plaintext);
    // A plaintext socket cannot read a sealed packet either.
    a.send(plain.local_addr().unwrap(), envelope())
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), plain.recv())
            .await
            .is_err()
    );

    // A rotated sender still reaches a receiver that installed the new key.
    shared.apply(&KeyringOp::Install(key(2))).unwrap();
    shared.apply(&KeyringOp::Use(key(2))).unwrap();
    a.send(b_addr, envelope()).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), b.recv())
            .await
            .is_err(),
        "b has not installed the new key"
    );
    let mut b2 = socket(&SealedTransport::new({
        let k = keyring(1);
        k.apply(&KeyringOp::Install(key(2))).unwrap();
        k
    }))
    .await;
    a.send(b2.local_addr().unwrap(), envelope()).await.unwrap();
    assert_eq!(b2.recv().await.unwrap().envelope, envelope());
}

#[tokio::test]
async fn a_cancelled_recv_keeps_the_packet_for_the_next_one() {
    let mut a = socket(&SealedTransport::new(keyring(1))).await;
    let mut b = socket(&SealedTransport::new(keyring(1))).await;
    let b_addr = b.local_addr().unwrap();
    for _ in 0..20 {
        a.send(b_addr, envelope()).await.unwrap();
    }
    let mut received = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "{received} of 20 received"
        );
        // Cancelled often, as chitchat's loop does on every gossip tick.
        if let Ok(got) = tokio::time::timeout(Duration::from_micros(50), b.recv()).await {
            assert_eq!(got.unwrap().from_addr, a.local_addr().unwrap());
            received += 1;
        }
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn gossip(name: &str, port: u16, seed: u16, keys: SharedKeyring) -> crate::cluster::Gossip {
    use crate::cluster::{GossipConfig, Identity};
    let addr = ([127, 0, 0, 1], port).into();
    let identity = Identity {
        name: name.into(),
        raft_id: u64::from(port),
        http_addr: format!("127.0.0.1:{port}"),
        region: "global".into(),
        datacenter: "dc1".into(),
        bootstrap_expect: 3,
    };
    let config = GossipConfig {
        bind: addr,
        advertise: addr,
        seeds: vec![format!("127.0.0.1:{seed}")],
        interval: Duration::from_millis(20),
        failure_timeout: Duration::from_millis(400),
        encryption: Default::default(),
    };
    crate::cluster::Gossip::start(&identity, &config, &SealedTransport::new(keys))
        .await
        .unwrap()
}

async fn names(g: &crate::cluster::Gossip) -> Vec<String> {
    let mut names: Vec<String> = g.members().await.into_iter().map(|m| m.name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn servers_with_the_key_gossip_and_one_without_it_stays_out() {
    let ports: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let a = gossip("a", ports[0], ports[0], keyring(1)).await;
    let b = gossip("b", ports[1], ports[0], keyring(1)).await;
    let stranger = gossip("x", ports[2], ports[0], keyring(2)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while names(&a).await != ["a", "b"] || names(&b).await != ["a", "b"] {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            names(&a).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Many gossip rounds later, the stranger is still unknown, and knows no one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(names(&a).await, ["a", "b"]);
    assert_eq!(names(&stranger).await, ["x"]);
    for g in [a, b, stranger] {
        g.shutdown().await;
    }
}
