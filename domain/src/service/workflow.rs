//! The order workflow: claim a due order, run its steps while they finish at once, and
//! give the worker back as soon as the order has to wait.
//!
//! Every step is committed before the next begins, so a restarted worker resumes where
//! the last one stopped. A wait (DNS propagation, the CA's validation or issuance, a
//! backoff after a failure, a renewal months away) is not a sleeping worker but the
//! order's `due_at`: the order is saved with the time it wants to be looked at again,
//! the lease is released, and any worker of any instance claims it then. A single
//! instance therefore carries any number of orders in flight.
//!
//! Failures are classified once, here ([`StepError`]): transient ones are retried with
//! [`crate::models::Backoff`] until the retry budget is spent; fatal ones end the order
//! `invalid`, or, for a renewal, keep it `valid` with its certificate and schedule the
//! next try.

use super::{Acmeport, WorkError};
use crate::models::{
    AccountStatus, AcmeAccount, Certificate, CertificateStatus, ChallengeKind, DomainEvent,
    NameserverStatus, NewCertificate, Order, OrderId, OrderStatus, OrderStep, ProviderName,
    Published, RenewalPlan, RenewalReason, TxtRecord, WorkerId,
};
use crate::ports::{AcmeError, AcmeProgress, CsrError, DnsError, PropagationError, RepoError};
use futures::future::{self, Either};
use std::time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;

/// Why one step did not finish.
#[derive(Debug)]
enum StepError {
    /// The order cannot succeed; it ends `invalid` with this reason.
    Fatal(String),
    /// Worth another try (network, storage, a server's 5xx or rate limit, a step past its
    /// deadline), after `retry_after` at the earliest when the server said so.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Stop working the order without touching it (lease lost, storage down).
    Stop(WorkError),
}

impl StepError {
    fn transient(reason: String) -> Self {
        Self::Transient {
            reason,
            retry_after: None,
        }
    }
}

impl From<AcmeError> for StepError {
    fn from(e: AcmeError) -> Self {
        if e.is_transient() || matches!(e, AcmeError::Timeout(_)) {
            // A CA that is down, slow or rate-limiting: retry within the budget, never
            // before its Retry-After.
            Self::Transient {
                retry_after: e.retry_after(),
                reason: error_chain(&e),
            }
        } else {
            Self::Fatal(e.to_string())
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
            DnsError::Transport(_) => Self::transient(error_chain(&e)),
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

/// What a finished step leaves the order with.
enum Next {
    /// The step is committed; the next one can run at once.
    Continue,
    /// The order is committed with a later `due_at`; the worker lets it go.
    Wait,
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

/// What a claim of an order ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOutcome {
    /// The order is `valid`, `invalid` or `revoked`; `due_at` says when it is looked at
    /// again (its renewal), if ever.
    Settled(OrderStatus),
    /// The order waits and is due again at this time.
    Waiting(OffsetDateTime),
}

impl Acmeport {
    /// Claims one due order (new, waiting no longer, whose worker died, or due for
    /// renewal) and works it until it is settled or has to wait. Returns the id of the
    /// order worked, `None` when nothing was due. The lease is renewed while the order is
    /// worked; if it is lost, work stops at once and the order is left to its new owner.
    ///
    /// # Errors
    ///
    /// [`WorkError::LeaseLost`], storage failures (the order stays due and is resumed
    /// later).
    pub async fn work_one(&self, worker: &WorkerId) -> Result<Option<OrderId>, WorkError> {
        Ok(self.work_one_outcome(worker).await?.map(|(id, _)| id))
    }

    /// [`Self::work_one`], also saying how the order was left.
    ///
    /// # Errors
    ///
    /// As [`Self::work_one`].
    pub async fn work_one_outcome(
        &self,
        worker: &WorkerId,
    ) -> Result<Option<(OrderId, WorkOutcome)>, WorkError> {
        let now = self.now();
        let Some(order) = self
            .ports
            .orders
            .claim(worker, now, now + self.settings.lease)
            .await?
        else {
            return Ok(None);
        };
        let id = order.id();
        let span = tracing::info_span!("order", order.id = %id, worker = %worker);
        let work = Box::pin(self.process(order, worker).instrument(span));
        let renew = Box::pin(self.keep_lease(id, worker));
        let result = match future::select(work, renew).await {
            Either::Left((result, _)) => result,
            Either::Right((lost, _)) => Err(lost),
        };
        if !matches!(result, Err(WorkError::LeaseLost)) {
            if let Err(e) = self.ports.orders.release(id, worker).await {
                tracing::warn!(order.id = %id, error = %e, "could not release the lease; it will expire");
            }
        }
        result.map(|outcome| Some((id, outcome)))
    }

    /// The earliest time any order is due (a worker with nothing to do sleeps until then).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn next_due(&self) -> Result<Option<OffsetDateTime>, RepoError> {
        self.ports.orders.next_due().await
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

    /// Works a claimed order until it is settled or has to wait.
    async fn process(&self, mut order: Order, worker: &WorkerId) -> Result<WorkOutcome, WorkError> {
        if order.status() != OrderStatus::Pending {
            return self.settled_order_due(order, worker).await;
        }
        tracing::info!(step = %order.step(), attempt = order.state().attempt, renewal = order.renewing(), "working order");
        let Some(account) = self.ports.accounts.get(order.account_id()).await? else {
            self.fail(
                &mut order,
                worker,
                "the order's ACME account no longer exists".into(),
                None,
            )
            .await?;
            return Ok(self.outcome(&order));
        };
        while order.status() == OrderStatus::Pending {
            let from = order.step();
            let deadline = self.settings.step_deadline;
            let step = Box::pin(self.step(&mut order, &account, worker));
            let timer = Box::pin(self.ports.clock.sleep(deadline));
            let result = match future::select(step, timer).await {
                Either::Left((result, _)) => result,
                Either::Right(((), _)) => Err(StepError::transient(format!(
                    "the step after {from} took longer than its deadline of {}s",
                    deadline.as_secs()
                ))),
            };
            match result {
                Ok(Next::Continue) => {
                    tracing::info!(from = %from, to = %order.step(), status = %order.status(), "step finished");
                }
                Ok(Next::Wait) => return Ok(self.outcome(&order)),
                Err(StepError::Stop(e)) => return Err(e),
                Err(StepError::Transient {
                    reason,
                    retry_after,
                }) => {
                    let now = self.now();
                    let since = order.state().progress.failing_since.unwrap_or(now);
                    let budget = self.settings.retry_budget;
                    if now - since >= budget {
                        let tries = order.state().progress.failures + 1;
                        tracing::warn!(step = %from, reason = %reason, tries, "retry budget spent; order failed");
                        let reason = format!(
                            "{reason} (gave up after {tries} tries in {}s)",
                            (now - since).whole_seconds()
                        );
                        self.fail(&mut order, worker, reason, retry_after).await?;
                    } else {
                        let n = order.state().progress.failures + 1;
                        let pause = self.settings.retry_backoff.delay(
                            n,
                            self.ports.clock.random(),
                            retry_after,
                        );
                        tracing::warn!(step = %from, retry = n, pause_ms = pause.as_millis() as u64, reason = %reason, "step failed, retrying later");
                        order.retry_at(now, now + pause, &reason)?;
                        self.save(&mut order, worker).await?;
                        return Ok(self.outcome(&order));
                    }
                }
                Err(StepError::Fatal(reason)) => {
                    tracing::warn!(step = %from, reason = %reason, "order failed");
                    self.fail(&mut order, worker, reason, None).await?;
                }
            }
        }
        Ok(self.outcome(&order))
    }

    fn outcome(&self, order: &Order) -> WorkOutcome {
        match (order.status(), order.due_at()) {
            (OrderStatus::Pending, Some(at)) => WorkOutcome::Waiting(at),
            (status, _) => WorkOutcome::Settled(status),
        }
    }

    /// Stores the order (fenced by the worker's lease and the order's version).
    async fn save(&self, order: &mut Order, worker: &WorkerId) -> Result<(), RepoError> {
        let now = self.now();
        order.touched(now);
        self.ports
            .orders
            .save(order, Some(worker.clone()), now + self.settings.lease)
            .await?;
        order.committed();
        Ok(())
    }

    /// Removes published challenge material, then ends the order: `invalid` with the
    /// reason, or, for a renewal, back to `valid` with its certificate and the next try
    /// scheduled (after `retry_after` at the earliest when the CA said so).
    async fn fail(
        &self,
        order: &mut Order,
        worker: &WorkerId,
        reason: String,
        retry_after: Option<Duration>,
    ) -> Result<(), WorkError> {
        self.cleanup(order).await;
        if order.renewing() {
            order.renewal_failed(reason.clone())?;
            let failures = order.state().progress.renewal_failures;
            let pause = self.settings.renewal.backoff.delay(
                failures,
                self.ports.clock.random(),
                retry_after,
            );
            let next = self.now() + pause;
            let plan = order.renewal_plan().cloned();
            let expires = self
                .current_certificate(order)
                .await?
                .map(|c| c.info.not_after);
            let due = expires.filter(|end| next < *end).map(|_| next);
            tracing::warn!(reason = %reason, failures, next = ?due, "renewal failed; the current certificate stays");
            order.schedule_renewal(due, plan)?;
            crate::metrics::renewal_failed();
            order.record_event(DomainEvent::certificate_renewal_failed(
                order.user_id(),
                order.id(),
                order.resolved_cert_id(),
                failures,
                reason,
                domain_names(order),
            ));
        } else {
            order.failed(reason)?;
            self.keep_due_for_cleanup(order);
        }
        self.save(order, worker).await?;
        Ok(())
    }

    /// A settled order that still holds challenge material (a cleanup failed) stays due,
    /// a valid one before its renewal: the next claim tries the cleanup again.
    fn keep_due_for_cleanup(&self, order: &mut Order) {
        let due = (!order.state().published.is_empty()).then(|| {
            let n = order.state().progress.failures + 1;
            let pause = self
                .settings
                .retry_backoff
                .delay(n, self.ports.clock.random(), None);
            self.now() + pause
        });
        order.sweep_at(due);
    }

    /// Removes every recorded DNS record and HTTP token of the order, and forgets those
    /// removed. What cannot be removed stays recorded and is tried again later.
    async fn cleanup(&self, order: &mut Order) {
        let items = order.state().published.clone();
        let mut removed = Vec::new();
        for item in &items {
            let result = match item {
                Published::Dns { provider, record } => match self.ports.dns.get(provider) {
                    Some(dns) => dns.cleanup(record).await.map_err(|e| error_chain(&e)),
                    None => Err(format!("DNS provider `{provider}` is no longer configured")),
                },
                Published::Http { token } => self
                    .ports
                    .tokens
                    .remove(token)
                    .await
                    .map_err(|e| error_chain(&e)),
            };
            match result {
                Ok(()) => removed.push(item.clone()),
                Err(reason) => {
                    tracing::warn!(item = ?item, reason = %reason, "cleanup failed; it is tried again later");
                }
            }
        }
        order.cleaned_up(&removed);
    }

    /// A claimed order that is not pending: its leftover challenge material is removed,
    /// and a valid one is checked for renewal.
    async fn settled_order_due(
        &self,
        mut order: Order,
        worker: &WorkerId,
    ) -> Result<WorkOutcome, WorkError> {
        if !order.state().published.is_empty() {
            let before = order.state().published.len();
            self.cleanup(&mut order).await;
            let removed = before - order.state().published.len();
            tracing::info!(
                removed,
                left = order.state().published.len(),
                "swept leftover challenge material"
            );
        }
        if order.status() == OrderStatus::Valid {
            if self.renewal_check(&mut order, worker).await? {
                // The renewal starts now, through the same workflow.
                return Box::pin(self.process(order, worker)).await;
            }
        } else {
            self.keep_due_for_cleanup(&mut order);
            self.save(&mut order, worker).await?;
        }
        Ok(self.outcome(&order))
    }

    /// The order's current certificate.
    async fn current_certificate(&self, order: &Order) -> Result<Option<Certificate>, RepoError> {
        match order.resolved_cert_id() {
            Some(id) => self.ports.certificates.get(id).await,
            None => Ok(None),
        }
    }

    /// Decides whether a valid order's certificate is renewed now. When it is, the order
    /// is pending again (saved) and `true` is returned; otherwise the next look is
    /// scheduled and saved.
    async fn renewal_check(&self, order: &mut Order, worker: &WorkerId) -> Result<bool, WorkError> {
        let now = self.now();
        let certificate = self.current_certificate(order).await?;
        let account = self.ports.accounts.get(order.account_id()).await?;
        let refusal = match (&certificate, &account) {
            _ if !self.settings.renewal.enabled => Some("renewal is turned off"),
            _ if !order.spec().auto_renew => Some("the order does not renew on its own"),
            (None, _) => Some("the order has no current certificate"),
            (Some(c), _) if c.status == CertificateStatus::Revoked => {
                Some("the certificate is revoked")
            }
            (Some(c), _) if c.info.not_after <= now => Some("the certificate has expired"),
            (_, None) => Some("the order's ACME account no longer exists"),
            (_, Some(a)) if a.status == AccountStatus::Deactivated => {
                Some("the order's ACME account is deactivated")
            }
            _ => None,
        };
        let (Some(certificate), Some(account), None) = (certificate, account, refusal) else {
            tracing::info!(
                reason = refusal.unwrap_or("nothing to renew"),
                "not renewing"
            );
            order.schedule_renewal(None, None)?;
            self.keep_due_for_cleanup(order);
            self.save(order, worker).await?;
            return Ok(false);
        };
        let previous = order.renewal_plan().cloned();
        let mut plan = self.lifetime_plan(&certificate, previous.as_ref());
        let mut next_look = None;
        let mut replaces = None;
        if self.settings.renewal.ari {
            match self
                .ports
                .acme
                .renewal_info(&account.credentials, &certificate.info.leaf_pem)
                .await
            {
                Ok(Some(info)) => {
                    let window = (info.window_start, info.window_end);
                    let at = match &previous {
                        // The time picked inside the same window stands.
                        Some(p) if p.window == Some(window) => p.at,
                        _ => {
                            let span = (window.1 - window.0).max(time::Duration::ZERO);
                            window.0 + span * self.ports.clock.random()
                        }
                    };
                    plan = RenewalPlan {
                        at,
                        reason: RenewalReason::AriWindow,
                        window: Some(window),
                    };
                    replaces = Some(info.cert_id);
                    let again = info
                        .retry_after
                        .unwrap_or(self.settings.renewal.ari_poll)
                        .max(Duration::from_secs(1));
                    next_look = Some(now + again);
                    tracing::info!(window.start = %window.0, window.end = %window.1, at = %at, "renewal window from the CA");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "renewal information unavailable; using the lifetime rule");
                    next_look = Some(now + self.settings.renewal.ari_poll);
                }
            }
        }
        // After failures, the backoff's time stands (it was the due time just reached).
        let failures = order.state().progress.renewal_failures;
        if plan.at <= now || (failures > 0 && order.due_at().is_some_and(|d| d <= now)) {
            tracing::info!(
                reason = plan.reason.as_str(),
                failures,
                "renewing the certificate"
            );
            order.schedule_renewal(None, Some(plan))?;
            order.begin_renewal(now, replaces)?;
            self.save(order, worker).await?;
            return Ok(true);
        }
        let due = next_look.map_or(plan.at, |look| look.min(plan.at));
        tracing::debug!(at = %plan.at, reason = plan.reason.as_str(), next_look = %due, "renewal scheduled");
        order.schedule_renewal(Some(due), Some(plan))?;
        self.keep_due_for_cleanup(order);
        self.save(order, worker).await?;
        Ok(false)
    }

    /// The lifetime rule: renew when `fraction_left` of the lifetime is left, spread back
    /// by up to `spread` of the lifetime so that certificates issued together are not
    /// renewed together. A plan made before for the same certificate stands.
    fn lifetime_plan(
        &self,
        certificate: &Certificate,
        previous: Option<&RenewalPlan>,
    ) -> RenewalPlan {
        let info = &certificate.info;
        let lifetime = info.not_after - info.not_before;
        let settings = &self.settings.renewal;
        let at = info.not_after - lifetime * settings.fraction_left.clamp(0.0, 1.0);
        let earliest = at - lifetime * settings.spread.clamp(0.0, 1.0);
        if let Some(p) = previous {
            if p.reason == RenewalReason::Lifetime && p.at >= earliest && p.at <= at {
                return p.clone();
            }
        }
        RenewalPlan {
            at: at - (at - earliest) * self.ports.clock.random(),
            reason: RenewalReason::Lifetime,
            window: None,
        }
    }

    /// The renewal plan of a freshly stored certificate.
    fn schedule_new_certificate(
        &self,
        order: &mut Order,
        certificate: &Certificate,
    ) -> Result<(), StepError> {
        if !self.settings.renewal.enabled || !order.spec().auto_renew {
            return Ok(());
        }
        let plan = self.lifetime_plan(certificate, None);
        let due = if self.settings.renewal.ari {
            (self.now() + self.settings.renewal.ari_poll).min(plan.at)
        } else {
            plan.at
        };
        order.schedule_renewal(Some(due), Some(plan))?;
        Ok(())
    }

    /// Performs the step after the order's current one and commits it.
    async fn step(
        &self,
        order: &mut Order,
        account: &AcmeAccount,
        worker: &WorkerId,
    ) -> Result<Next, StepError> {
        let credentials = &account.credentials;
        match order.step() {
            OrderStep::Created => {
                // The CSR is built (or an upload parsed) once, here, and kept with the
                // order in both forms; finalization sends its DER as it is.
                let (key, csr) = match &order.spec().csr {
                    Some(upload) => (None, self.ports.csr.parse_csr(upload)?.1),
                    None => {
                        let key = match &order.spec().key {
                            Some(key) => key.clone(),
                            None => self.ports.csr.generate_key(order.spec().key_spec).await?,
                        };
                        let subject = order
                            .spec()
                            .subject
                            .clone()
                            .or(&account.subject)
                            .or(&self.settings.default_subject);
                        let csr = self.ports.csr.build_csr(
                            &key,
                            &order.spec().identifiers,
                            &subject,
                            order.spec().email.clone(),
                        )?;
                        (Some(key), csr)
                    }
                };
                order.key_ready(key, csr)?;
            }
            OrderStep::KeyReady => {
                let replaces = order.state().progress.replaces.clone();
                let url = self
                    .ports
                    .acme
                    .place_order(credentials, &order.spec().identifiers, replaces)
                    .await?;
                tracing::info!(acme.order = %url, "ACME order placed");
                order.placed(url)?;
            }
            OrderStep::Placed => self.publish(order, credentials, worker).await?,
            OrderStep::ChallengesPublished => {
                if order.spec().challenge == ChallengeKind::Dns01
                    && self.settings.propagation.enabled
                    && !self.propagated(order).await?
                {
                    self.save(order, worker).await?;
                    return Ok(Next::Wait);
                }
                order.propagation_confirmed()?;
            }
            OrderStep::PropagationConfirmed => {
                let url = acme_url(order)?;
                match self
                    .ports
                    .acme
                    .answer(credentials, &url, order.spec().challenge)
                    .await
                {
                    Err(AcmeError::ValidationFailed(reason))
                        if order.state().progress.validation_retries
                            < self.settings.validation_retries =>
                    {
                        self.retry_validation(order, &reason).await?;
                        self.save(order, worker).await?;
                        return Ok(Next::Wait);
                    }
                    Err(e) => return Err(e.into()),
                    Ok(AcmeProgress::Done) => {
                        tracing::info!("challenges validated");
                        order.answered()?;
                        self.cleanup(order).await;
                    }
                    Ok(AcmeProgress::NotYet { retry_after }) => {
                        self.poll_later(order, retry_after, "the CA to validate the challenges")?;
                        self.save(order, worker).await?;
                        return Ok(Next::Wait);
                    }
                }
            }
            OrderStep::ChallengesAnswered => {
                // Material left over from a crash right after validation.
                if !order.state().published.is_empty() {
                    self.cleanup(order).await;
                }
                let url = acme_url(order)?;
                let csr = order
                    .state()
                    .csr
                    .clone()
                    .ok_or_else(|| StepError::Fatal("the order lost its CSR".into()))?;
                match self
                    .ports
                    .acme
                    .finalize(credentials, &url, &csr.der)
                    .await?
                {
                    AcmeProgress::Done => {
                        tracing::info!("certificate issued");
                        order.finalized()?;
                    }
                    AcmeProgress::NotYet { retry_after } => {
                        self.poll_later(order, retry_after, "the CA to issue the certificate")?;
                        self.save(order, worker).await?;
                        return Ok(Next::Wait);
                    }
                }
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
                        order_id: order.id(),
                        user_id: order.user_id(),
                        account_id: order.account_id(),
                        info,
                        key: order.state().cert_key.clone(),
                        csr: order
                            .state()
                            .csr
                            .as_ref()
                            .map(|c| c.pem.clone())
                            .unwrap_or_default(),
                        created_at: self.now(),
                    })
                    .await?;
                let renewed = order.renewing();
                let replaced = order.resolved_cert_id();
                let started = order
                    .state()
                    .progress
                    .attempt_started
                    .unwrap_or(order.created_at());
                order.completed(certificate.id)?;
                crate::metrics::issuance_finished((self.now() - started).unsigned_abs());
                if renewed {
                    crate::metrics::renewal_done();
                    order.record_event(DomainEvent::certificate_renewed(
                        order.user_id(),
                        order.id(),
                        certificate.id,
                        replaced,
                        domain_names(order),
                    ));
                }
                self.schedule_new_certificate(order, &certificate)?;
                self.keep_due_for_cleanup(order);
                tracing::info!(certificate.id = %certificate.id, not_after = %certificate.info.not_after, renewed, "certificate stored");
            }
            OrderStep::CertificateStored => return Ok(Next::Continue),
        }
        self.save(order, worker).await?;
        Ok(Next::Continue)
    }

    /// Records the challenge material, then publishes it: a crash in between still
    /// cleans up.
    async fn publish(
        &self,
        order: &mut Order,
        credentials: &crate::models::AccountCredentials,
        worker: &WorkerId,
    ) -> Result<(), StepError> {
        let url = acme_url(order)?;
        let kind = order.spec().challenge;
        let challenges = self.ports.acme.challenges(credentials, &url, kind).await?;
        Self::check_authorizations(order, &challenges).map_err(StepError::Fatal)?;
        let mut material = Vec::with_capacity(challenges.len());
        for challenge in &challenges {
            let item = match kind {
                ChallengeKind::Dns01 => {
                    let provider = order.spec().provider.clone().ok_or_else(|| {
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
        order.publishing(material.iter().map(|(item, _)| item.clone()).collect())?;
        self.save(order, worker).await?;
        for (item, challenge) in &material {
            match item {
                Published::Dns { provider, record } => {
                    let dns = self.ports.dns.get(provider).ok_or_else(|| {
                        StepError::Fatal(format!("DNS provider `{provider}` is not configured"))
                    })?;
                    dns.present(record).await?;
                    tracing::info!(record = %record.name, provider = %provider, "TXT record published");
                }
                Published::Http { token } => {
                    self.ports
                        .tokens
                        .put(token, &challenge.key_authorization)
                        .await
                        .map_err(|e| StepError::transient(error_chain(&e)))?;
                    tracing::info!(identifier = %challenge.identifier, "HTTP-01 token published");
                }
            }
        }
        order.published()?;
        Ok(())
    }

    /// The CA's validation failed and the attempt may try again: the challenge material
    /// is removed and the order goes back to placing a fresh ACME order, after a pause.
    async fn retry_validation(&self, order: &mut Order, reason: &str) -> Result<(), StepError> {
        self.cleanup(order).await;
        let n = order.state().progress.validation_retries + 1;
        let pause = self
            .settings
            .retry_backoff
            .delay(n, self.ports.clock.random(), None);
        tracing::warn!(reason = %reason, retry = n, pause_ms = pause.as_millis() as u64, "the CA's validation failed; placing a fresh ACME order");
        order.retry_validation(self.now() + pause, reason)?;
        Ok(())
    }

    /// Notes a wait for the CA and when to ask again; fails the order once the CA took
    /// longer than `ca_timeout`.
    fn poll_later(
        &self,
        order: &mut Order,
        retry_after: Option<Duration>,
        what: &str,
    ) -> Result<(), StepError> {
        let now = self.now();
        let since = order.state().progress.waiting_since.unwrap_or(now);
        if now - since >= self.settings.ca_timeout {
            return Err(StepError::Fatal(format!(
                "timed out after {}s waiting for {what}",
                self.settings.ca_timeout.as_secs()
            )));
        }
        let n = order.state().progress.polls + 1;
        let pause = self
            .settings
            .poll_backoff
            .delay(n, self.ports.clock.random(), retry_after);
        order.wait_until(now, now + pause, format!("waiting for {what}"))?;
        Ok(())
    }

    /// Checks once whether every authoritative nameserver serves every TXT record of the
    /// order. When not, notes which are missing and when to check again (and fails the
    /// order once the propagation timeout is over).
    async fn propagated(&self, order: &mut Order) -> Result<bool, StepError> {
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
        let mut missing = Vec::new();
        let mut statuses = Vec::new();
        for record in &records {
            match self.ports.propagation.check(record).await {
                Ok(answers) => {
                    for answer in answers {
                        if !answer.serves {
                            missing.push(format!("{} for {}", answer.server, record.name));
                        }
                        statuses.push(NameserverStatus {
                            record: record.name.clone(),
                            server: answer.server,
                            serves: answer.serves,
                            asked_at: answer.asked_at,
                        });
                    }
                }
                Err(e @ PropagationError::NoNameservers(_)) => {
                    return Err(StepError::Fatal(e.to_string()))
                }
                Err(e) => missing.push(format!("{} ({})", record.name, error_chain(&e))),
            }
        }
        order.nameservers_answered(statuses)?;
        if missing.is_empty() {
            tracing::info!(
                records = records.len(),
                "TXT records visible on every authoritative nameserver"
            );
            let waited = order
                .state()
                .progress
                .waiting_since
                .map_or(Duration::ZERO, |since| (self.now() - since).unsigned_abs());
            crate::metrics::propagation_waited(waited);
            return Ok(true);
        }
        missing.dedup();
        let now = self.now();
        let since = order.state().progress.waiting_since.unwrap_or(now);
        if now - since >= settings.timeout {
            return Err(StepError::Fatal(format!(
                "DNS propagation timed out after {}s; still missing: {}",
                settings.timeout.as_secs(),
                missing.join(", ")
            )));
        }
        let n = order.state().progress.polls + 1;
        let pause = self
            .settings
            .poll_backoff
            .delay(n, self.ports.clock.random(), None)
            .min(settings.interval.max(Duration::from_millis(10)));
        tracing::info!(missing = %missing.join(", "), "waiting for DNS propagation");
        order.wait_until(
            now,
            now + pause,
            format!("waiting for DNS propagation: {}", missing.join(", ")),
        )?;
        Ok(false)
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
                self.check_record_zone(provider, &target)
                    .map_err(StepError::Fatal)?;
                if target != name {
                    tracing::info!(from = %name, to = %target, "challenge name is delegated by CNAME");
                }
                Ok(target)
            }
            Err(e @ PropagationError::NoNameservers(_)) => Err(StepError::Fatal(e.to_string())),
            Err(e) => Err(StepError::transient(error_chain(&e))),
        }
    }
}

fn domain_names(order: &Order) -> Vec<String> {
    order
        .spec()
        .identifiers
        .as_slice()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn acme_url(order: &Order) -> Result<String, StepError> {
    order
        .acme_url()
        .map(ToOwned::to_owned)
        .ok_or_else(|| StepError::Fatal("the order lost its ACME order URL".into()))
}
