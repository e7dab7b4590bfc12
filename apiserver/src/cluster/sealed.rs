//! Encrypted gossip: a chitchat [`Transport`] whose every UDP packet is sealed with the
//! keyring's primary key (AES-256-GCM) and opened with any installed key. A packet no key
//! opens is dropped, counted in `caravan_gossip_packets_dropped_total{reason}` and logged
//! (at most once every [`WARN_EVERY`] per sender).
//!
//! ```text
//! packet = version (1, also the associated data) ‖ random nonce (12) ‖ ciphertext ‖ tag (16)
//! ```
//!
//! chitchat encodes and decodes its messages only inside its own UDP socket, so this one runs
//! a chitchat socket on loopback as a codec and relays its bytes:
//!
//! ```text
//! send: envelope ─▶ codec ─udp─▶ relay ─seal─▶ gossip socket ─▶ peer
//! recv: peer ─▶ gossip socket ─open─▶ relay ─udp─▶ codec ─▶ envelope (from the peer)
//! ```
//!
//! One packet at a time is in the codec, so each envelope is paired with its sender.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chitchat::ChitchatEnvelope;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpSocket};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use tokio::time::Instant;

use super::keyring::{GossipKey, SharedKeyring};

/// The packet format version.
const VERSION: u8 = 1;
/// Bytes a sealed packet adds: version, nonce and tag.
pub const OVERHEAD: usize = 1 + NONCE_LEN + 16;
/// Largest UDP payload.
const MAX_PACKET: usize = 65_507;
/// The first bytes of a plaintext chitchat packet (its magic number).
const PLAINTEXT_MAGIC: [u8; 2] = 45_139u16.to_le_bytes();
/// Longest a packet takes through the loopback codec.
const RELAY_TIMEOUT: Duration = Duration::from_secs(1);
/// Shortest time between two warnings about one sender.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Why a packet was dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `decrypt`: no installed key opens it; `plaintext`: it is not encrypted.
    pub reason: &'static str,
}

static DROPPED: LazyLock<Family<DropLabels, Counter>> = LazyLock::new(|| {
    let family = Family::default();
    for reason in ["decrypt", "plaintext"] {
        let _ = family.get_or_create(&DropLabels { reason });
    }
    family
});

/// Gossip packets dropped, by reason (registered in `metrics.rs`).
pub fn dropped_packets() -> &'static Family<DropLabels, Counter> {
    &DROPPED
}

/// Why a packet does not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// A plaintext chitchat packet: its sender runs without encryption.
    Plaintext,
    /// Too short, another version, or no installed key authenticates it.
    Decrypt,
}

impl OpenError {
    fn reason(self) -> &'static str {
        match self {
            OpenError::Plaintext => "plaintext",
            OpenError::Decrypt => "decrypt",
        }
    }
}

fn aead_key(key: &GossipKey) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.bytes()).expect("a 32-byte key"))
}

/// Seals `plain` with `key` under `nonce` (random, never reused with the key). Pure.
pub fn seal(key: &GossipKey, nonce: [u8; NONCE_LEN], plain: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(plain.len() + OVERHEAD);
    packet.push(VERSION);
    packet.extend_from_slice(&nonce);
    packet.extend_from_slice(plain);
    let mut body = packet.split_off(1 + NONCE_LEN);
    aead_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from([VERSION]),
            &mut body,
        )
        .expect("a gossip packet is far below the AES-GCM limit");
    packet.extend_from_slice(&body);
    packet
}

/// Opens `packet` with the first of `keys` that authenticates it. Pure.
pub fn open(keys: &[GossipKey], packet: &[u8]) -> Result<Vec<u8>, OpenError> {
    if packet.starts_with(&PLAINTEXT_MAGIC) {
        return Err(OpenError::Plaintext);
    }
    if packet.len() < OVERHEAD || packet[0] != VERSION {
        return Err(OpenError::Decrypt);
    }
    let nonce: [u8; NONCE_LEN] = packet[1..1 + NONCE_LEN].try_into().expect("nonce length");
    let sealed = &packet[1 + NONCE_LEN..];
    keys.iter()
        .find_map(|key| {
            let mut body = sealed.to_vec();
            let nonce = Nonce::assume_unique_for_key(nonce);
            let plain = aead_key(key)
                .open_in_place(nonce, Aad::from([VERSION]), &mut body)
                .ok()?;
            Some(plain.to_vec())
        })
        .ok_or(OpenError::Decrypt)
}

fn random_nonce() -> anyhow::Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(nonce)
}

/// A UDP transport sealing every packet with the keyring.
pub struct SealedTransport {
    keyring: SharedKeyring,
}

impl SealedTransport {
    pub fn new(keyring: SharedKeyring) -> SealedTransport {
        SealedTransport { keyring }
    }
}

#[async_trait]
impl Transport for SealedTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = tokio::net::UdpSocket::bind(listen_addr)
            .await
            .with_context(|| format!("failed to bind to {listen_addr}/UDP for gossip"))?;
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let codec = UdpSocket::open(loopback).await?;
        let relay = tokio::net::UdpSocket::bind(loopback)
            .await
            .context("failed to bind the gossip relay")?;
        Ok(Box::new(SealedSocket {
            codec_addr: codec.local_addr()?,
            relay_addr: relay.local_addr()?,
            socket,
            codec,
            relay,
            keyring: self.keyring.clone(),
            buf: vec![0; MAX_PACKET].into_boxed_slice(),
            decoding: None,
            warned: HashMap::new(),
        }))
    }
}

struct SealedSocket {
    /// The gossip socket peers talk to.
    socket: tokio::net::UdpSocket,
    /// chitchat's own socket, on loopback: encodes and decodes envelopes.
    codec: UdpSocket,
    codec_addr: SocketAddr,
    /// Exchanges plaintext packets with the codec.
    relay: tokio::net::UdpSocket,
    relay_addr: SocketAddr,
    keyring: SharedKeyring,
    buf: Box<[u8]>,
    /// The packet in the codec: its sender, its sealed size and the deadline to decode it.
    decoding: Option<(SocketAddr, usize, Instant)>,
    /// When each sender was last warned about.
    warned: HashMap<SocketAddr, Instant>,
}

#[async_trait]
impl Socket for SealedSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.socket
            .local_addr()
            .context("failed to get UDP socket address")
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let outcome = self.codec.send(self.relay_addr, envelope).await?;
        let plain = loop {
            let (len, from) =
                tokio::time::timeout(RELAY_TIMEOUT, self.relay.recv_from(&mut self.buf))
                    .await
                    .context("the gossip codec sent nothing")?
                    .context("the gossip relay failed")?;
            if from == self.codec_addr {
                break self.buf[..len].to_vec();
            }
        };
        let packet = seal(self.keyring.get().primary(), random_nonce()?, &plain);
        if let Err(e) = self.socket.send_to(&packet, to).await {
            // A lost datagram, as UDP goes: chitchat gossips again.
            tracing::warn!(error = %e, to = %to, len = packet.len(), "failed to send a gossip packet");
        }
        Ok(outcome)
    }

    /// Cancellable: chitchat drops it on every gossip tick, `decoding` carries a packet
    /// already handed to the codec over to the next call.
    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            if let Some((from, len, deadline)) = self.decoding {
                match tokio::time::timeout_at(deadline, self.codec.recv()).await {
                    Ok(Ok(outcome)) if outcome.from_addr == self.relay_addr => {
                        self.decoding = None;
                        return Ok(RecvOutcome {
                            from_addr: from,
                            envelope: outcome.envelope,
                            num_bytes_received: len,
                        });
                    }
                    // Not from the relay: a local process writing to the codec; ignored.
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => return Err(e),
                    // The codec refused the payload (and logged it).
                    Err(_) => self.decoding = None,
                }
            }
            let (len, from) = match self.socket.recv_from(&mut self.buf).await {
                Ok(received) => received,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e).context("fatal UDP recv error"),
            };
            let keyring = self.keyring.get();
            match open(keyring.keys(), &self.buf[..len]) {
                // Set once sent: a cancelled `send_to` sent nothing.
                Ok(plain) => match self.relay.send_to(&plain, self.codec_addr).await {
                    Ok(_) => self.decoding = Some((from, len, Instant::now() + RELAY_TIMEOUT)),
                    // Lost, as a datagram may be: the sender gossips again.
                    Err(e) => tracing::warn!(error = %e, "failed to relay a gossip packet"),
                },
                Err(e) => self.dropped(from, e),
            }
        }
    }
}

impl SealedSocket {
    fn dropped(&mut self, from: SocketAddr, error: OpenError) {
        DROPPED
            .get_or_create(&DropLabels {
                reason: error.reason(),
            })
            .inc();
        let now = Instant::now();
        if self
            .warned
            .get(&from)
            .is_some_and(|last| now.duration_since(*last) < WARN_EVERY)
        {
            return;
        }
        if self.warned.len() >= 1024 {
            self.warned.clear();
        }
        self.warned.insert(from, now);
        match error {
            OpenError::Decrypt => tracing::warn!(
                "gossip packet from {from} failed to decrypt: wrong encryption key? (dropped; \
                 more from it are counted in caravan_gossip_packets_dropped_total)"
            ),
            OpenError::Plaintext => tracing::warn!(
                "gossip packet from {from} is not encrypted: does that server run without the \
                 encryption key? (dropped)"
            ),
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::OutOfMemory
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
#[path = "sealed_tests.rs"]
mod tests;
