//! Real peers for the end-to-end tests, each started per test on free loopback ports.

pub mod bind;
pub mod moto;
pub mod postgres;

use std::net::{TcpListener, UdpSocket};

/// A loopback port free for both TCP and UDP right now (DNS servers need both). Another
/// process can still take it before the server binds; starters retry on that.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port on 127.0.0.1");
        let port = tcp.local_addr().expect("local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP after 50 tries");
}

/// Installs the rustls provider once: both ring and aws-lc-rs are in the graph.
pub fn init_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
