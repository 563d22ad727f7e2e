//! Asking a test DNS server directly: the TXT values it serves for a name.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;

/// The TXT values on `name` at the server `addr`, asked directly (no recursion, no
/// cache), sorted. No record is an empty list; a failed query panics naming the server.
pub async fn txt_at(addr: SocketAddr, name: &str) -> Vec<String> {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        addr.ip(),
        true,
        vec![udp, tcp],
    )]);
    let mut options = ResolverOpts::default();
    options.cache_size = 0;
    options.recursion_desired = false;
    let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .expect("a resolver for the test DNS server");
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let mut values: Vec<String> = match resolver.lookup(fqdn, RecordType::TXT).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect(),
        Err(e) if e.is_no_records_found() => Vec::new(),
        Err(e) => panic!("TXT query for {name} at {addr} failed: {e}"),
    };
    values.sort();
    values
}
