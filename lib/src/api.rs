//! What the REST API (feature `http`) needs from the engine besides the service: the
//! readiness probe of `GET /readyz`.

use acmeport_http::{NotReady, Readiness};
use acmeport_store::Store;
use async_trait::async_trait;
use std::time::Duration;

/// `GET /readyz`: the database answers within a few seconds.
pub(crate) struct StoreReadiness {
    store: Store,
}

impl StoreReadiness {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Readiness for StoreReadiness {
    async fn check(&self) -> Result<(), NotReady> {
        match tokio::time::timeout(Duration::from_secs(3), self.store.connection().ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(NotReady::new(
                "the database does not answer",
                Some(Box::new(e)),
            )),
            Err(_) => Err(NotReady::new(
                "the database did not answer within 3 s",
                None,
            )),
        }
    }
}
