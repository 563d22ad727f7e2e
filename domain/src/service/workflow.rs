//! The order workflow: claim a pending order and take it through every step, committing
//! each step before the next begins so that a restarted worker resumes where it stopped.

use super::{Acmeport, WorkError};
use crate::models::{
    AcmeAccount, ChallengeKind, NewCertificate, Order, OrderId, OrderStatus, OrderStep,
    ProviderName, Published, TxtRecord, WorkerId,
};
use crate::ports::{AcmeError, CsrError, DnsError, PropagationError, RepoError};
use futures::future::{self, Either};
use std::time::Duration;
use tracing::Instrument;

/// Why one step did not finish.
#[derive(Debug)]
enum StepError {
    /// The order cannot succeed; it ends `invalid` with this reason.
    Fatal(String),
    /// Worth another try (network, storage); fatal once retries are used up.
    Transient(String),
    /// Stop working the order without touching it (lease lost, storage down).
    Stop(WorkError),
}

impl From<AcmeError> for StepError {
    fn from(e: AcmeError) -> Self {
        match e {
            AcmeError::Transport(_) => Self::Transient(error_chain(&e)),
            other => Self::Fatal(other.to_string()),
        }
    }
}

impl From<CsrError> for StepError {
    fn from(e: CsrError) -> Self {
        Self::Fatal(error_chain(&e))
    }
}

impl From<DnsError> for StepError {
    fn from(e: DnsError) -> Self {
        match e {
            DnsError::Transport(_) => Self::Transient(error_chain(&e)),
            other => Self::Fatal(other.to_string()),
        }
    }
}

impl From<RepoError> for StepError {
    fn from(e: RepoError) -> Self {
        Self::Stop(e.into())
    }
}

impl From<crate::models::TransitionError> for StepError {
    fn from(e: crate::models::TransitionError) -> Self {
        Self::Stop(e.into())
    }
}

/// An error and its sources, joined, for the order's `error` field.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Acmeport {
    /// Claims one pending order (a new one, or one whose worker died) and works it until
    /// it is `valid` or `invalid`. Returns the id of the order worked, `None` when there
    /// was nothing to do. The lease is renewed while the order is worked; if it is lost,
    /// work stops at once and the order is left to its new owner.
    ///
    /// # Errors
    ///
    /// [`WorkError::LeaseLost`], storage failures (the order stays pending and is resumed
    /// later).
    pub async fn work_one(&self, worker: &WorkerId) -> Result<Option<OrderId>, WorkError> {
        let now = self.now();
        let Some(order) = self
            .ports
            .orders
            .claim(worker, now, now + self.settings.lease)
            .await?
        else {
            return Ok(None);
        };
        let id = order.id;
        let span = tracing::info_span!("order", order.id = %id, worker = %worker);
        let work = Box::pin(self.process(order, worker).instrument(span));
        let renew = Box::pin(self.keep_lease(id, worker));
        let result = match future::select(work, renew).await {
            Either::Left((result, _)) => result.map(|_| ()),
            Either::Right((lost, _)) => Err(lost),
        };
        if !matches!(result, Err(WorkError::LeaseLost)) {
            if let Err(e) = self.ports.orders.release(id, worker).await {
                tracing::warn!(order.id = %id, error = %e, "could not release the lease; it will expire");
            }
        }
        result.map(|()| Some(id))
    }

    /// Renews the lease every third of its length; returns only when it is lost.
    async fn keep_lease(&self, id: OrderId, worker: &WorkerId) -> WorkError {
        let period = self.settings.lease / 3;
        loop {
            self.ports.clock.sleep(period).await;
            let until = self.now() + self.settings.lease;
            if let Err(e) = self.ports.orders.renew(id, worker, until).await {
                tracing::warn!(order.id = %id, error = %e, "lease renewal failed; stopping work on the order");
                return e.into();
            }
        }
    }

    /// Takes a claimed order through its remaining steps.
    async fn process(&self, mut order: Order, worker: &WorkerId) -> Result<Order, WorkError> {
        tracing::info!(step = %order.step(), attempt = order.state().attempt, "working order");
        let Some(account) = self.ports.accounts.get(order.account_id).await? else {
            self.fail(
                &mut order,
                worker,
                "the order's ACME account no longer exists".into(),
            )
            .await?;
            return Ok(order);
        };
        while order.status() == OrderStatus::Pending {
            let mut retries = 0;
            loop {
                let from = order.step();
                match self.step(&mut order, &account, worker).await {
                    Ok(()) => {
                        tracing::info!(from = %from, to = %order.step(), status = %order.status(), "step finished");
                        break;
                    }
                    Err(StepError::Stop(e)) => return Err(e),
                    Err(StepError::Transient(reason)) if retries < self.settings.step_retries => {
                        retries += 1;
                        let pause = self.settings.retry_backoff * 2u32.saturating_pow(retries - 1);
                        tracing::warn!(step = %from, retry = retries, reason = %reason, "step failed, retrying");
                        self.ports.clock.sleep(pause).await;
                    }
                    Err(StepError::Transient(reason) | StepError::Fatal(reason)) => {
                        tracing::warn!(step = %from, reason = %reason, "order failed");
                        self.fail(&mut order, worker, reason).await?;
                        break;
                    }
                }
            }
        }
        Ok(order)
    }

    async fn save(&self, order: &mut Order, worker: &WorkerId) -> Result<(), RepoError> {
        let now = self.now();
        order.updated_at = now;
        self.ports
            .orders
            .save(order, Some(worker.clone()), now + self.settings.lease)
            .await
    }

    /// Removes published challenge material (best effort, retried), then ends the order
    /// `invalid` with the reason.
    async fn fail(
        &self,
        order: &mut Order,
        worker: &WorkerId,
        reason: String,
    ) -> Result<(), WorkError> {
        self.cleanup(order).await;
        order.failed(reason)?;
        self.save(order, worker).await?;
        Ok(())
    }

    /// Removes every recorded DNS record and HTTP token of the order, and forgets those
    /// removed. What cannot be removed after retries stays recorded and is logged.
    async fn cleanup(&self, order: &mut Order) {
        let items = order.state().published.clone();
        let mut removed = Vec::new();
        for item in &items {
            let mut attempt = 0;
            loop {
                // The reason, and whether another try may help.
                let result = match item {
                    Published::Dns { provider, record } => match self.ports.dns.get(provider) {
                        Some(dns) => dns.cleanup(record).await.map_err(|e| {
                            let transient = matches!(e, DnsError::Transport(_));
                            (error_chain(&e), transient)
                        }),
                        None => Err((
                            format!("DNS provider `{provider}` is no longer configured"),
                            false,
                        )),
                    },
                    Published::Http { token } => self
                        .ports
                        .tokens
                        .remove(token)
                        .await
                        .map_err(|e| (error_chain(&e), true)),
                };
                match result {
                    Ok(()) => {
                        removed.push(item.clone());
                        break;
                    }
                    Err((reason, true)) if attempt < self.settings.step_retries => {
                        attempt += 1;
                        tracing::warn!(item = ?item, reason = %reason, "cleanup failed, retrying");
                        self.ports
                            .clock
                            .sleep(self.settings.retry_backoff * attempt)
                            .await;
                    }
                    Err((reason, _)) => {
                        tracing::error!(item = ?item, reason = %reason, "cleanup failed; remove it by hand");
                        break;
                    }
                }
            }
        }
        order.cleaned_up(&removed);
    }

    /// Performs the step after the order's current one and commits it.
    async fn step(
        &self,
        order: &mut Order,
        account: &AcmeAccount,
        worker: &WorkerId,
    ) -> Result<(), StepError> {
        let credentials = &account.credentials;
        match order.step() {
            OrderStep::Created => {
                let (key, csr_pem) = match &order.spec.csr {
                    Some(csr) => (None, csr.clone()),
                    None => {
                        let key = match &order.spec.key {
                            Some(key) => key.clone(),
                            None => self.ports.csr.generate_key(order.spec.key_spec).await?,
                        };
                        let subject = order
                            .spec
                            .subject
                            .clone()
                            .or(&account.subject)
                            .or(&self.settings.default_subject);
                        let csr = self.ports.csr.build_csr(
                            &key,
                            &order.spec.identifiers,
                            &subject,
                            order.spec.email.clone(),
                        )?;
                        (Some(key), csr.pem)
                    }
                };
                order.key_ready(key, csr_pem)?;
            }
            OrderStep::KeyReady => {
                let url = self
                    .ports
                    .acme
                    .place_order(credentials, &order.spec.identifiers)
                    .await?;
                tracing::info!(acme.order = %url, "ACME order placed");
                order.placed(url)?;
            }
            OrderStep::Placed => {
                let url = acme_url(order)?;
                let kind = order.spec.challenge;
                let challenges = self.ports.acme.challenges(credentials, &url, kind).await?;
                let mut material = Vec::with_capacity(challenges.len());
                for challenge in &challenges {
                    let item = match kind {
                        ChallengeKind::Dns01 => {
                            let provider = order.spec.provider.clone().ok_or_else(|| {
                                StepError::Fatal("DNS-01 order without a provider".into())
                            })?;
                            let base = challenge.identifier.trim_start_matches("*.");
                            Published::Dns {
                                record: TxtRecord {
                                    name: self.record_name(&provider, base).await?,
                                    value: challenge.dns_value.clone(),
                                },
                                provider,
                            }
                        }
                        ChallengeKind::Http01 => Published::Http {
                            token: challenge.token.clone(),
                        },
                    };
                    material.push((item, challenge));
                }
                // Record first, publish second: a crash in between still cleans up.
                order.publishing(material.iter().map(|(item, _)| item.clone()).collect())?;
                self.save(order, worker).await?;
                for (item, challenge) in &material {
                    match item {
                        Published::Dns { provider, record } => {
                            let dns = self.ports.dns.get(provider).ok_or_else(|| {
                                StepError::Fatal(format!(
                                    "DNS provider `{provider}` is not configured"
                                ))
                            })?;
                            dns.present(record).await?;
                            tracing::info!(record = %record.name, provider = %provider, "TXT record published");
                        }
                        Published::Http { token } => {
                            self.ports
                                .tokens
                                .put(token, &challenge.key_authorization)
                                .await
                                .map_err(|e| StepError::Transient(error_chain(&e)))?;
                            tracing::info!(identifier = %challenge.identifier, "HTTP-01 token published");
                        }
                    }
                }
                order.published()?;
            }
            OrderStep::ChallengesPublished => {
                if order.spec.challenge == ChallengeKind::Dns01 && self.settings.propagation.enabled
                {
                    self.await_propagation(order, worker).await?;
                }
                order.propagation_confirmed()?;
            }
            OrderStep::PropagationConfirmed => {
                let url = acme_url(order)?;
                self.ports
                    .acme
                    .answer(credentials, &url, order.spec.challenge)
                    .await?;
                tracing::info!("challenges validated");
                order.answered()?;
                self.cleanup(order).await;
            }
            OrderStep::ChallengesAnswered => {
                // Material left over from a crash right after validation.
                if !order.state().published.is_empty() {
                    self.cleanup(order).await;
                }
                let url = acme_url(order)?;
                let csr_pem = order
                    .state()
                    .csr
                    .clone()
                    .ok_or_else(|| StepError::Fatal("the order lost its CSR".into()))?;
                let (_, csr) = self.ports.csr.parse_csr(&csr_pem)?;
                self.ports
                    .acme
                    .finalize(credentials, &url, &csr.der)
                    .await?;
                tracing::info!("order finalized");
                order.finalized()?;
            }
            OrderStep::Finalized => {
                let url = acme_url(order)?;
                let chain = self.ports.acme.certificate(credentials, &url).await?;
                let info = self.ports.inspector.inspect(&chain)?;
                super::check_issued(order, &info, self.ports.inspector.as_ref())
                    .map_err(StepError::Fatal)?;
                let certificate = self
                    .ports
                    .certificates
                    .insert(NewCertificate {
                        order_id: order.id,
                        user_id: order.user_id,
                        account_id: order.account_id,
                        info,
                        key: order.state().cert_key.clone(),
                        csr: order.state().csr.clone().unwrap_or_default(),
                        created_at: self.now(),
                    })
                    .await?;
                tracing::info!(certificate.id = %certificate.id, not_after = %certificate.info.not_after, "certificate stored");
                order.completed(certificate.id)?;
            }
            OrderStep::CertificateStored => return Ok(()),
        }
        self.save(order, worker).await?;
        Ok(())
    }

    /// Waits until every authoritative nameserver serves every TXT record of the order,
    /// noting on the order which are still missing.
    async fn await_propagation(
        &self,
        order: &mut Order,
        worker: &WorkerId,
    ) -> Result<(), StepError> {
        let records: Vec<TxtRecord> = order
            .state()
            .published
            .iter()
            .filter_map(|p| match p {
                Published::Dns { record, provider }
                    if self.ports.dns.checks_propagation(provider) =>
                {
                    Some(record.clone())
                }
                Published::Dns { .. } | Published::Http { .. } => None,
            })
            .collect();
        let settings = &self.settings.propagation;
        let deadline = self.now() + settings.timeout;
        loop {
            let mut missing = Vec::new();
            for record in &records {
                match self.ports.propagation.missing(record).await {
                    Ok(servers) => missing.extend(
                        servers
                            .into_iter()
                            .map(|ns| format!("{ns} for {}", record.name)),
                    ),
                    Err(e @ PropagationError::NoNameservers(_)) => {
                        return Err(StepError::Fatal(e.to_string()))
                    }
                    Err(e) => missing.push(format!("{} ({})", record.name, error_chain(&e))),
                }
            }
            if missing.is_empty() {
                tracing::info!(
                    records = records.len(),
                    "TXT records visible on every authoritative nameserver"
                );
                return Ok(());
            }
            missing.dedup();
            if self.now() >= deadline {
                return Err(StepError::Fatal(format!(
                    "DNS propagation timed out after {}s; still missing: {}",
                    settings.timeout.as_secs(),
                    missing.join(", ")
                )));
            }
            let detail = format!("waiting for DNS propagation: {}", missing.join(", "));
            tracing::info!(missing = %missing.join(", "), "waiting for DNS propagation");
            order.waiting(detail)?;
            self.save(order, worker).await?;
            self.ports
                .clock
                .sleep(settings.interval.max(Duration::from_millis(10)))
                .await;
        }
    }
}

impl Acmeport {
    /// Where the TXT record for `base` goes: `_acme-challenge.<base>`, or the target of its
    /// CNAME (delegated validation). Without the propagation check (a provider whose DNS
    /// cannot be queried) the name is used as it is.
    async fn record_name(&self, provider: &ProviderName, base: &str) -> Result<String, StepError> {
        let name = format!("_acme-challenge.{base}");
        if !self.settings.propagation.enabled || !self.ports.dns.checks_propagation(provider) {
            return Ok(name);
        }
        match self.ports.propagation.delegated_name(&name).await {
            Ok(target) => {
                if target != name {
                    tracing::info!(from = %name, to = %target, "challenge name is delegated by CNAME");
                }
                Ok(target)
            }
            Err(e @ PropagationError::NoNameservers(_)) => Err(StepError::Fatal(e.to_string())),
            Err(e) => Err(StepError::Transient(error_chain(&e))),
        }
    }
}

fn acme_url(order: &Order) -> Result<String, StepError> {
    order
        .acme_url()
        .map(ToOwned::to_owned)
        .ok_or_else(|| StepError::Fatal("the order lost its ACME order URL".into()))
}
