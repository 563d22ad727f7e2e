//! The HTTPS client instant-acme talks through: our own rustls root store (webpki roots
//! plus configured private roots) and a per-request timeout.

use crate::config::{AcmeClientConfig, AcmeConfigError};
use crate::guard::{Guard, GuardedResolver};
use bytes::Bytes;
use http::Request;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A pooled hyper client; cheap to clone (clones share the pool).
#[derive(Clone)]
pub(crate) struct HttpsClient {
    inner: Client<HttpsConnector<HttpConnector<GuardedResolver>>, BodyWrapper<Bytes>>,
    timeout: Duration,
    guard: Guard,
}

/// No response headers arrived within the request timeout.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the ACME server within {0:?}")]
struct RequestTimedOut(Duration);

impl HttpsClient {
    pub(crate) fn new(config: &AcmeClientConfig) -> Result<Self, AcmeConfigError> {
        let mut roots = RootCertStore::empty();
        if config.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for (index, pem) in config.extra_roots_pem.iter().enumerate() {
            let root_error = |reason: String| AcmeConfigError::Root { index, reason };
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| root_error(e.to_string()))?;
                roots.add(cert).map_err(|e| root_error(e.to_string()))?;
                found += 1;
            }
            if found == 0 {
                return Err(root_error("no CERTIFICATE block found".into()));
            }
        }
        if roots.is_empty() {
            return Err(AcmeConfigError::NoRoots);
        }
        // An explicit provider: both ring and aws-lc-rs are in the dependency graph, and
        // the process-wide default may not be installed when a library user builds this.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(AcmeConfigError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let guard = Guard::new(&config.allowed_private_hosts);
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            guard: guard.clone(),
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.request_timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Self {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            timeout: config.request_timeout,
            guard,
        })
    }
}

impl HttpClient for HttpsClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        // Literal IP hosts skip the resolver; check them here. hyper follows no redirect,
        // so a redirect to such an address is never followed either.
        if let Some(host) = req.uri().host() {
            if let Err(refused) = self.guard.check_literal(host) {
                tracing::warn!(host = %host, "ACME request to a non-public address refused");
                return Box::pin(async move { Err(instant_acme::Error::Other(Box::new(refused))) });
            }
        }
        let response = HttpClient::request(&self.inner, req);
        let timeout = self.timeout;
        Box::pin(async move {
            tokio::time::timeout(timeout, response)
                .await
                .unwrap_or_else(|_| {
                    Err(instant_acme::Error::Other(Box::new(RequestTimedOut(
                        timeout,
                    ))))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(roots: &[&str], webpki_roots: bool) -> AcmeClientConfig {
        AcmeClientConfig {
            extra_roots_pem: roots.iter().map(|r| (*r).to_owned()).collect(),
            webpki_roots,
            ..AcmeClientConfig::default()
        }
    }

    #[test]
    fn extra_roots_must_be_pem_certificates() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).expect("root").pem();
        let two_roots = format!("{root}{root}");

        assert!(HttpsClient::new(&config(&[&root], false)).is_ok());
        assert!(HttpsClient::new(&config(&[&two_roots], true)).is_ok());
        assert!(
            HttpsClient::new(&config(&[], true)).is_ok(),
            "webpki roots alone suffice"
        );
        match HttpsClient::new(&config(&[&root, "not a certificate"], true)) {
            Err(AcmeConfigError::Root { index: 1, reason }) => {
                assert!(reason.contains("CERTIFICATE"), "{reason}");
            }
            Err(e) => panic!("expected the second root to be refused, got {e}"),
            Ok(_) => panic!("expected the second root to be refused"),
        }
        assert!(matches!(
            HttpsClient::new(&config(&[], false)),
            Err(AcmeConfigError::NoRoots)
        ));
    }
}
