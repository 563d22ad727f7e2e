//! Orders and their state machine.
//!
//! An order shows one of four API statuses (`pending`, `valid`, `invalid`, `revoked`)
//! and, while pending, the internal [`OrderStep`] it has finished last. Every step is
//! committed before the next begins, so a process that dies resumes from the last
//! finished step. Transitions are methods that check the current state and answer
//! [`TransitionError`] when a step is taken out of turn.

use super::{
    AccountId, CertificateId, ChallengeKind, CsrSubject, DomainEvent, Email, Identifiers, KeySpec,
    OrderId, PendingEvents, PrivateKeyPem, Progress, ProviderName, Published, RenewalPlan, UserId,
};
use std::fmt;
use time::OffsetDateTime;

/// The status the API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Work goes on in the background.
    Pending,
    /// A certificate is stored (`resolved_cert_id` names it).
    Valid,
    /// The order failed; `error` says why.
    Invalid,
    /// The order's current certificate was revoked.
    Revoked,
}

impl OrderStatus {
    /// The API name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the API name (for storage adapters).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Valid, Self::Invalid, Self::Revoked]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last step an order has finished, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderStep {
    /// Stored, nothing done yet.
    Created,
    /// The certificate key and CSR exist and are stored with the order.
    KeyReady,
    /// The ACME order is placed; its URL is stored.
    Placed,
    /// Every challenge's TXT record or HTTP token is published.
    ChallengesPublished,
    /// Every authoritative nameserver serves the TXT records (DNS-01), or nothing to wait
    /// for (HTTP-01).
    PropagationConfirmed,
    /// The challenges were answered and the ACME order is ready to finalize.
    ChallengesAnswered,
    /// The CSR was sent and the certificate issued.
    Finalized,
    /// The certificate is downloaded and stored.
    CertificateStored,
}

impl OrderStep {
    /// Every step, in order.
    pub const ALL: [Self; 8] = [
        Self::Created,
        Self::KeyReady,
        Self::Placed,
        Self::ChallengesPublished,
        Self::PropagationConfirmed,
        Self::ChallengesAnswered,
        Self::Finalized,
        Self::CertificateStored,
    ];

    /// A stable name for storage and display.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::KeyReady => "key_ready",
            Self::Placed => "placed",
            Self::ChallengesPublished => "challenges_published",
            Self::PropagationConfirmed => "propagation_confirmed",
            Self::ChallengesAnswered => "challenges_answered",
            Self::Finalized => "finalized",
            Self::CertificateStored => "certificate_stored",
        }
    }

    /// Parses [`Self::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for OrderStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user asked for. Fixed when the order is created.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderSpec {
    /// The names of the certificate, in the order given.
    pub identifiers: Identifiers,
    /// How the names are validated (DNS-01 or HTTP-01).
    pub challenge: ChallengeKind,
    /// The DNS provider instance (DNS-01 only).
    pub provider: Option<ProviderName>,
    /// The e-mail address put in the CSR's subject, if any.
    pub email: Option<Email>,
    /// The subject fields the order names itself (account and configuration fill the rest
    /// when the CSR is built).
    pub subject: CsrSubject,
    /// The key type generated for each attempt (unless a key or CSR was uploaded).
    pub key_spec: KeySpec,
    /// A CSR the user uploaded, PEM.
    pub csr: Option<String>,
    /// A private key the user uploaded, PEM.
    pub key: Option<PrivateKeyPem>,
    /// Renew the certificate automatically (the one setting that may change after
    /// creation, through `OrderRepo::set_auto_renew`).
    pub auto_renew: bool,
}

/// The order's CSR, built (or parsed from an upload) once when its key is ready and kept
/// in both forms: PEM as stored and shown, DER as sent to the CA at finalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    /// The CSR as PEM, as stored with the order and the certificate.
    pub pem: String,
    /// The CSR as DER, as sent to the CA at finalization.
    pub der: Vec<u8>,
}

#[cfg(test)]
impl Csr {
    /// A stand-in for tests that never send it.
    pub(crate) fn test_value() -> Self {
        Self {
            pem: "csr".to_owned(),
            der: b"csr".to_vec(),
        }
    }
}

/// The progress of an order, as stored. Build it only from storage; change it only
/// through the transition methods of [`Order`].
#[derive(Debug, Clone, PartialEq)]
pub struct OrderState {
    /// The status the API shows.
    pub status: OrderStatus,
    /// The last step finished (of the current attempt).
    pub step: OrderStep,
    /// The ACME order URL of the current attempt.
    pub acme_url: Option<String>,
    /// Challenge material recorded for publication and not yet cleaned up.
    pub published: Vec<Published>,
    /// The key of the current attempt (generated or uploaded), kept until the certificate
    /// is stored with it.
    pub cert_key: Option<PrivateKeyPem>,
    /// The CSR of the current attempt, PEM.
    pub csr: Option<Csr>,
    /// Why the order failed.
    pub error: Option<String>,
    /// What a pending order is waiting for, for example nameservers still missing a record.
    pub detail: Option<String>,
    /// 1 for the first issuance, incremented by each reissue or renewal.
    pub attempt: u32,
    /// Incremented by every stored write; a write based on an older version is refused,
    /// so no write is lost to a concurrent one.
    pub version: u64,
    /// When a worker should look at the order next: pending work (now, or a wake-up after
    /// a wait or a backoff) or the renewal of a valid order. `None`: nothing to do.
    pub due_at: Option<OffsetDateTime>,
    /// Waits, retries and renewal bookkeeping.
    pub progress: Progress,
}

impl OrderState {
    /// The state of a newly created order.
    #[must_use]
    pub fn new() -> Self {
        Self {
            status: OrderStatus::Pending,
            step: OrderStep::Created,
            acme_url: None,
            published: Vec::new(),
            cert_key: None,
            csr: None,
            error: None,
            detail: None,
            attempt: 1,
            version: 0,
            due_at: None,
            progress: Progress::default(),
        }
    }
}

impl Default for OrderState {
    fn default() -> Self {
        Self::new()
    }
}

/// A step was taken out of turn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order {order} cannot {action} while {status} at step {step}")]
pub struct TransitionError {
    /// The order.
    pub order: OrderId,
    /// What was attempted, as words (`record its ACME order`).
    pub action: &'static str,
    /// The order's status at the time.
    pub status: OrderStatus,
    /// The order's step at the time.
    pub step: OrderStep,
}

/// An order for one certificate (and its reissues).
///
/// Its fields are private: the state changes only through the transition methods, which
/// check that each step is taken in turn, and is read through accessors. Repositories
/// rebuild a stored order with [`Order::restore`].
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Assigned by the repository.
    id: OrderId,
    /// The user who owns the order.
    user_id: UserId,
    /// The ACME account it is placed through.
    account_id: AccountId,
    /// What the user asked for.
    spec: OrderSpec,
    /// The newest certificate stored for this order.
    resolved_cert_id: Option<CertificateId>,
    /// When it was created.
    created_at: OffsetDateTime,
    /// When it was last stored.
    updated_at: OffsetDateTime,
    state: OrderState,
    /// Raised by transitions, stored with the next save in the same transaction.
    events: PendingEvents,
}

/// An order to be stored; the repository assigns the id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    /// The user who owns the order.
    pub user_id: UserId,
    /// The ACME account it is placed through.
    pub account_id: AccountId,
    /// What the user asked for.
    pub spec: OrderSpec,
    /// When it is created.
    pub created_at: OffsetDateTime,
}

impl Order {
    /// Rebuilds an order from storage: **for repositories only** (the `OrderRepo`
    /// implementations). Everyone else gets orders from a repository and changes them
    /// through the transition methods. `state` must be exactly what was stored, the
    /// version included; the order has no pending events.
    #[must_use]
    pub fn restore(
        id: OrderId,
        new: NewOrder,
        state: OrderState,
        resolved_cert_id: Option<CertificateId>,
        updated_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            user_id: new.user_id,
            account_id: new.account_id,
            spec: new.spec,
            resolved_cert_id,
            created_at: new.created_at,
            updated_at,
            state,
            events: PendingEvents::default(),
        }
    }

    /// The events raised since this order was read, to be stored by `OrderRepo::save` in
    /// the same transaction as the state. Each has a unique key, so saving the same order
    /// twice stores each event once.
    #[must_use]
    pub fn pending_events(&self) -> &[DomainEvent] {
        self.events.as_slice()
    }

    /// Forgets the pending events (after a save stored them).
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Raises an event to be stored with the next save (for example
    /// `certificate.renewed` or `certificate.renewal_failed` by the renewal scheduler).
    pub fn record_event(&mut self, event: DomainEvent) {
        self.events.push(event);
    }

    /// Assigned by the repository.
    #[must_use]
    pub fn id(&self) -> OrderId {
        self.id
    }

    /// The user who owns the order.
    #[must_use]
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The ACME account the order is placed through.
    #[must_use]
    pub fn account_id(&self) -> AccountId {
        self.account_id
    }

    /// What the user asked for.
    #[must_use]
    pub fn spec(&self) -> &OrderSpec {
        &self.spec
    }

    /// The newest certificate stored for this order (it stays current through a reissue
    /// or renewal until the next one is stored).
    #[must_use]
    pub fn resolved_cert_id(&self) -> Option<CertificateId> {
        self.resolved_cert_id
    }

    /// When the order was created.
    #[must_use]
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When the order was last stored.
    #[must_use]
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    /// Notes the time of the write about to be stored (`updated_at`); changes nothing
    /// else.
    pub fn touched(&mut self, at: OffsetDateTime) {
        self.updated_at = at;
    }

    /// The certificate was deleted: when it is the current one, the order has no current
    /// certificate any more. True when it was the current one.
    pub fn certificate_purged(&mut self, certificate: CertificateId) -> bool {
        let current = self.resolved_cert_id == Some(certificate);
        if current {
            self.resolved_cert_id = None;
        }
        current
    }

    fn domain_names(&self) -> Vec<String> {
        self.spec
            .identifiers
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The stored progress.
    #[must_use]
    pub fn state(&self) -> &OrderState {
        &self.state
    }

    /// The API status.
    #[must_use]
    pub fn status(&self) -> OrderStatus {
        self.state.status
    }

    /// The last finished step.
    #[must_use]
    pub fn step(&self) -> OrderStep {
        self.state.step
    }

    /// Why the order failed, if it did.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.state.error.as_deref()
    }

    /// The ACME order URL of the current attempt.
    #[must_use]
    pub fn acme_url(&self) -> Option<&str> {
        self.state.acme_url.as_deref()
    }

    /// The stored version this copy was read at (see [`OrderState::version`]).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.state.version
    }

    /// Notes that a write of this copy was stored: the next write builds on it, and the
    /// pending events went with it.
    pub fn committed(&mut self) {
        self.state.version += 1;
        self.events.clear();
    }

    /// When a worker should look at the order next; `None` when there is nothing to do.
    #[must_use]
    pub fn due_at(&self) -> Option<OffsetDateTime> {
        self.state.due_at
    }

    /// The renewal plan of a valid order.
    #[must_use]
    pub fn renewal_plan(&self) -> Option<&RenewalPlan> {
        self.state.progress.plan.as_ref()
    }

    /// True while the attempt in flight renews a certificate the order already has.
    #[must_use]
    pub fn renewing(&self) -> bool {
        self.state.progress.renewal
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError {
            order: self.id,
            action,
            status: self.state.status,
            step: self.state.step,
        }
    }

    fn advance(
        &mut self,
        action: &'static str,
        from: OrderStep,
        to: OrderStep,
    ) -> Result<(), TransitionError> {
        if self.state.status != OrderStatus::Pending || self.state.step != from {
            return Err(self.refuse(action));
        }
        self.state.step = to;
        self.state.detail = None;
        let progress = &mut self.state.progress;
        progress.failures = 0;
        progress.failing_since = None;
        progress.waiting_since = None;
        progress.polls = 0;
        progress.nameservers.clear();
        Ok(())
    }

    fn require_pending(&self, action: &'static str) -> Result<(), TransitionError> {
        if self.state.status == OrderStatus::Pending {
            Ok(())
        } else {
            Err(self.refuse(action))
        }
    }

    /// Created → KeyReady: the key (None when the user uploaded a CSR) and CSR are fixed.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `Created`.
    pub fn key_ready(
        &mut self,
        key: Option<PrivateKeyPem>,
        csr: Csr,
    ) -> Result<(), TransitionError> {
        self.advance("prepare its key", OrderStep::Created, OrderStep::KeyReady)?;
        self.state.cert_key = key;
        self.state.csr = Some(csr);
        Ok(())
    }

    /// KeyReady → Placed: the ACME order exists at `url`.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `KeyReady`.
    pub fn placed(&mut self, url: String) -> Result<(), TransitionError> {
        self.advance(
            "record its ACME order",
            OrderStep::KeyReady,
            OrderStep::Placed,
        )?;
        self.state.acme_url = Some(url);
        Ok(())
    }

    /// Records challenge material about to be published (the step stays `Placed`), so it
    /// is cleaned up even if the process dies while publishing.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `Placed`.
    pub fn publishing(&mut self, material: Vec<Published>) -> Result<(), TransitionError> {
        if self.state.status != OrderStatus::Pending || self.state.step != OrderStep::Placed {
            return Err(self.refuse("record challenge material"));
        }
        for item in material {
            if !self.state.published.contains(&item) {
                self.state.published.push(item);
            }
        }
        Ok(())
    }

    /// Placed → ChallengesPublished.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `Placed`.
    pub fn published(&mut self) -> Result<(), TransitionError> {
        self.advance(
            "finish publishing",
            OrderStep::Placed,
            OrderStep::ChallengesPublished,
        )
    }

    /// ChallengesPublished → PropagationConfirmed.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `ChallengesPublished`.
    pub fn propagation_confirmed(&mut self) -> Result<(), TransitionError> {
        self.advance(
            "confirm propagation",
            OrderStep::ChallengesPublished,
            OrderStep::PropagationConfirmed,
        )
    }

    /// PropagationConfirmed → ChallengesAnswered: the ACME order is ready.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `PropagationConfirmed`.
    pub fn answered(&mut self) -> Result<(), TransitionError> {
        self.advance(
            "record its answered challenges",
            OrderStep::PropagationConfirmed,
            OrderStep::ChallengesAnswered,
        )
    }

    /// PropagationConfirmed → KeyReady: the CA's validation failed and the attempt goes
    /// on with a fresh ACME order (same key and CSR), due at `at`. Challenge material not
    /// yet removed stays recorded for cleanup; the failure is kept as the order's detail.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `PropagationConfirmed`.
    pub fn retry_validation(
        &mut self,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<(), TransitionError> {
        self.advance(
            "place a fresh ACME order",
            OrderStep::PropagationConfirmed,
            OrderStep::KeyReady,
        )?;
        self.state.acme_url = None;
        self.state.progress.validation_retries += 1;
        self.state.due_at = Some(at);
        self.state.detail = Some(format!(
            "the CA's validation failed; trying again with a fresh ACME order: {reason}"
        ));
        Ok(())
    }

    /// ChallengesAnswered → Finalized: the certificate is issued.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `ChallengesAnswered`.
    pub fn finalized(&mut self) -> Result<(), TransitionError> {
        self.advance(
            "record its finalization",
            OrderStep::ChallengesAnswered,
            OrderStep::Finalized,
        )
    }

    /// Finalized → CertificateStored, status `valid`. The attempt's key now lives with the
    /// certificate and is dropped from the order.
    ///
    /// # Errors
    ///
    /// When the order is not pending at `Finalized`.
    pub fn completed(&mut self, certificate: CertificateId) -> Result<(), TransitionError> {
        self.advance(
            "store its certificate",
            OrderStep::Finalized,
            OrderStep::CertificateStored,
        )?;
        self.state.status = OrderStatus::Valid;
        self.state.cert_key = None;
        self.state.error = None;
        self.state.due_at = None;
        self.state.progress = Progress::default();
        self.resolved_cert_id = Some(certificate);
        let event = DomainEvent::order_valid(
            self.user_id,
            self.id,
            self.state.attempt,
            certificate,
            self.domain_names(),
        );
        self.events.push(event);
        Ok(())
    }

    /// Notes what a pending order waits for (shown by the API, cleared by the next step).
    ///
    /// # Errors
    ///
    /// When the order is not pending.
    pub fn waiting(&mut self, detail: impl Into<String>) -> Result<(), TransitionError> {
        self.require_pending("note progress")?;
        self.state.detail = Some(detail.into());
        Ok(())
    }

    /// A settled order: due at `at` to try removing its leftover challenge material again
    /// (`None`: nothing left, never due). A valid order keeps its renewal's due time when
    /// that comes first, and stays unchanged when nothing is left.
    pub fn sweep_at(&mut self, at: Option<OffsetDateTime>) {
        match self.state.status {
            OrderStatus::Pending => return,
            OrderStatus::Valid if at.is_none() => return,
            OrderStatus::Valid => {
                self.state.due_at = self.state.due_at.min(at).or(at);
            }
            OrderStatus::Invalid | OrderStatus::Revoked => self.state.due_at = at,
        }
        if at.is_some() {
            self.state.progress.failures += 1;
        }
    }

    /// Forgets challenge material that was removed.
    pub fn cleaned_up(&mut self, removed: &[Published]) {
        self.state.published.retain(|p| !removed.contains(p));
    }

    /// Pending → Invalid with the reason. The step reached is kept for diagnosis.
    ///
    /// # Errors
    ///
    /// When the order is not pending.
    pub fn failed(&mut self, reason: impl Into<String>) -> Result<(), TransitionError> {
        self.require_pending("fail")?;
        let reason = reason.into();
        self.state.status = OrderStatus::Invalid;
        self.state.error = Some(reason.clone());
        self.state.detail = None;
        self.state.cert_key = None;
        self.state.due_at = None;
        let event = DomainEvent::order_invalid(
            self.user_id,
            self.id,
            self.state.attempt,
            reason,
            self.domain_names(),
        );
        self.events.push(event);
        Ok(())
    }

    /// Starts a new attempt (a reissue): back to pending at `Created`. The certificate
    /// issued before stays valid and stays `resolved_cert_id` until the new one is stored.
    ///
    /// # Errors
    ///
    /// When the order is still pending: one attempt at a time.
    pub fn reissue(&mut self, now: OffsetDateTime) -> Result<(), TransitionError> {
        if self.state.status == OrderStatus::Pending {
            return Err(self.refuse("be reissued"));
        }
        self.restart(now, Progress::default());
        Ok(())
    }

    /// Valid → pending at `Created`, renewing the current certificate: the same names,
    /// challenge, provider, account and subject. `replaces` is the ARI identifier of the
    /// certificate being replaced, sent with the new ACME order. Until the new certificate
    /// is stored the old one stays current; a failure keeps the order `valid`.
    ///
    /// # Errors
    ///
    /// When the order is not `valid`.
    pub fn begin_renewal(
        &mut self,
        now: OffsetDateTime,
        replaces: Option<String>,
    ) -> Result<(), TransitionError> {
        if self.state.status != OrderStatus::Valid {
            return Err(self.refuse("be renewed"));
        }
        let previous = &self.state.progress;
        let progress = Progress {
            renewal: true,
            replaces,
            plan: previous.plan.clone(),
            renewal_failures: previous.renewal_failures,
            renewal_error: previous.renewal_error.clone(),
            ..Progress::default()
        };
        self.restart(now, progress);
        Ok(())
    }

    /// A new attempt from `Created`, due now; keeps the version, the attempt count and
    /// material still to clean up.
    fn restart(&mut self, now: OffsetDateTime, mut progress: Progress) {
        progress.attempt_started = Some(now);
        let attempt = self.state.attempt + 1;
        let version = self.state.version;
        let published = std::mem::take(&mut self.state.published);
        self.state = OrderState {
            attempt,
            version,
            published,
            due_at: Some(now),
            progress,
            ..OrderState::new()
        };
    }

    /// Pending: the order waits (DNS propagation, the CA's validation or issuance) and is
    /// looked at again at `at`; `detail` says what for. The wait counts from its first
    /// note.
    ///
    /// # Errors
    ///
    /// When the order is not pending.
    pub fn wait_until(
        &mut self,
        now: OffsetDateTime,
        at: OffsetDateTime,
        detail: impl Into<String>,
    ) -> Result<(), TransitionError> {
        self.require_pending("wait")?;
        let progress = &mut self.state.progress;
        progress.waiting_since.get_or_insert(now);
        progress.polls += 1;
        self.state.due_at = Some(at);
        self.state.detail = Some(detail.into());
        Ok(())
    }

    /// Pending: the nameservers' latest answers while waiting for DNS propagation.
    ///
    /// # Errors
    ///
    /// When the order is not pending.
    pub fn nameservers_answered(
        &mut self,
        answers: Vec<crate::models::NameserverStatus>,
    ) -> Result<(), TransitionError> {
        self.require_pending("note nameserver answers")?;
        self.state.progress.nameservers = answers;
        Ok(())
    }

    /// Pending: the step in flight failed in a way worth another try, at `at`. The retry
    /// budget counts from the first failure in a row.
    ///
    /// # Errors
    ///
    /// When the order is not pending.
    pub fn retry_at(
        &mut self,
        now: OffsetDateTime,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<(), TransitionError> {
        self.require_pending("be retried")?;
        let progress = &mut self.state.progress;
        progress.failures += 1;
        progress.failing_since.get_or_insert(now);
        self.state.due_at = Some(at);
        self.state.detail = Some(format!("retrying after a failure: {reason}"));
        Ok(())
    }

    /// Valid: when to look at the order next for its renewal (`None`: never), and the
    /// plan to show.
    ///
    /// # Errors
    ///
    /// When the order is not `valid`.
    pub fn schedule_renewal(
        &mut self,
        due: Option<OffsetDateTime>,
        plan: Option<RenewalPlan>,
    ) -> Result<(), TransitionError> {
        if self.state.status != OrderStatus::Valid {
            return Err(self.refuse("schedule a renewal"));
        }
        self.state.due_at = due;
        self.state.progress.plan = plan;
        Ok(())
    }

    /// A renewal failed: back to `valid` with the current certificate, the reason kept
    /// as the last renewal error. The caller schedules the next try.
    ///
    /// # Errors
    ///
    /// When no renewal is in flight.
    pub fn renewal_failed(&mut self, reason: impl Into<String>) -> Result<(), TransitionError> {
        if self.state.status != OrderStatus::Pending || !self.state.progress.renewal {
            return Err(self.refuse("fail its renewal"));
        }
        let previous = std::mem::take(&mut self.state.progress);
        self.state.status = OrderStatus::Valid;
        self.state.step = OrderStep::CertificateStored;
        self.state.acme_url = None;
        self.state.cert_key = None;
        self.state.csr = None;
        self.state.detail = None;
        self.state.due_at = None;
        self.state.progress = Progress {
            plan: previous.plan,
            renewal_failures: previous.renewal_failures + 1,
            renewal_error: Some(reason.into()),
            ..Progress::default()
        };
        Ok(())
    }

    /// Marks the order revoked when `certificate` is its current certificate.
    /// Revoking an older certificate of the order changes nothing.
    ///
    /// # Errors
    ///
    /// When `certificate` is current but the order is not `valid`.
    pub fn certificate_revoked(
        &mut self,
        certificate: CertificateId,
    ) -> Result<(), TransitionError> {
        if self.resolved_cert_id != Some(certificate) {
            return Ok(());
        }
        match self.state.status {
            OrderStatus::Valid => {
                self.state.status = OrderStatus::Revoked;
                self.state.due_at = None;
                self.state.progress.plan = None;
                Ok(())
            }
            OrderStatus::Revoked => Ok(()),
            // A renewal in flight replaces it.
            OrderStatus::Pending if self.state.progress.renewal => Ok(()),
            _ => Err(self.refuse("be revoked")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::TxtRecord;
    use time::macros::datetime;

    pub(crate) fn order() -> Order {
        let spec = OrderSpec {
            identifiers: Identifiers::parse(&["a.example.com"]).unwrap(),
            challenge: ChallengeKind::Dns01,
            provider: Some(ProviderName::parse("rfc2136").unwrap()),
            email: None,
            subject: CsrSubject::default(),
            key_spec: KeySpec::default(),
            csr: None,
            key: None,
            auto_renew: true,
        };
        let at = datetime!(2026-01-01 0:00 UTC);
        Order::restore(
            OrderId::new(1),
            NewOrder {
                user_id: UserId::new(1),
                account_id: AccountId::new(1),
                spec,
                created_at: at,
            },
            OrderState::new(),
            None,
            at,
        )
    }

    fn record() -> Published {
        Published::Dns {
            provider: ProviderName::parse("rfc2136").unwrap(),
            record: TxtRecord {
                name: "_acme-challenge.a.example.com".into(),
                value: "v".into(),
            },
        }
    }

    #[test]
    fn happy_path_walks_every_step_in_order() {
        let mut o = order();
        o.key_ready(Some(PrivateKeyPem::new("k")), Csr::test_value())
            .unwrap();
        o.placed("https://acme/order/1".into()).unwrap();
        o.publishing(vec![record()]).unwrap();
        o.published().unwrap();
        o.propagation_confirmed().unwrap();
        o.answered().unwrap();
        o.cleaned_up(&[record()]);
        o.finalized().unwrap();
        assert_eq!(o.status(), OrderStatus::Pending);
        o.completed(CertificateId::new(9)).unwrap();
        assert_eq!(o.status(), OrderStatus::Valid);
        assert_eq!(o.step(), OrderStep::CertificateStored);
        assert_eq!(o.resolved_cert_id, Some(CertificateId::new(9)));
        assert!(
            o.state().cert_key.is_none(),
            "the key moves to the certificate"
        );
        assert!(o.state().published.is_empty());
    }

    #[test]
    fn steps_out_of_turn_are_rejected() {
        let mut o = order();
        let err = o.placed("u".into()).unwrap_err();
        assert_eq!(err.step, OrderStep::Created);
        assert!(o.finalized().is_err());
        assert!(o.completed(CertificateId::new(1)).is_err());
        assert!(o.publishing(vec![record()]).is_err());
        assert_eq!(
            o.step(),
            OrderStep::Created,
            "a refused step changes nothing"
        );
    }

    #[test]
    fn failure_keeps_reason_and_step_and_ends_work() {
        let mut o = order();
        o.key_ready(None, Csr::test_value()).unwrap();
        o.failed("acme said no").unwrap();
        assert_eq!(o.status(), OrderStatus::Invalid);
        assert_eq!(o.error(), Some("acme said no"));
        assert_eq!(o.step(), OrderStep::KeyReady);
        assert!(
            o.placed("u".into()).is_err(),
            "an invalid order takes no further step"
        );
        assert!(o.failed("again").is_err());
    }

    #[test]
    fn reissue_restarts_but_keeps_the_certificate() {
        let mut o = order();
        assert!(
            o.reissue(datetime!(2026-01-02 0:00 UTC)).is_err(),
            "a pending order cannot be reissued"
        );
        o.key_ready(None, Csr::test_value()).unwrap();
        o.placed("u".into()).unwrap();
        o.published().unwrap();
        o.propagation_confirmed().unwrap();
        o.answered().unwrap();
        o.finalized().unwrap();
        o.completed(CertificateId::new(3)).unwrap();
        o.reissue(datetime!(2026-01-02 0:00 UTC)).unwrap();
        assert_eq!(o.status(), OrderStatus::Pending);
        assert_eq!(o.step(), OrderStep::Created);
        assert_eq!(o.state().attempt, 2);
        assert!(o.acme_url().is_none());
        assert_eq!(o.resolved_cert_id, Some(CertificateId::new(3)));
    }

    #[test]
    fn only_the_current_certificate_revokes_the_order() {
        let mut o = order();
        o.key_ready(None, Csr::test_value()).unwrap();
        o.placed("u".into()).unwrap();
        o.published().unwrap();
        o.propagation_confirmed().unwrap();
        o.answered().unwrap();
        o.finalized().unwrap();
        o.completed(CertificateId::new(3)).unwrap();
        o.certificate_revoked(CertificateId::new(2)).unwrap();
        assert_eq!(o.status(), OrderStatus::Valid);
        o.certificate_revoked(CertificateId::new(3)).unwrap();
        assert_eq!(o.status(), OrderStatus::Revoked);
        o.reissue(datetime!(2026-01-02 0:00 UTC)).unwrap();
        assert_eq!(o.status(), OrderStatus::Pending);
    }

    #[test]
    fn completion_and_failure_raise_their_events_once() {
        let mut o = order();
        o.key_ready(None, Csr::test_value()).unwrap();
        o.placed("u".into()).unwrap();
        o.published().unwrap();
        o.propagation_confirmed().unwrap();
        o.answered().unwrap();
        o.finalized().unwrap();
        assert!(o.pending_events().is_empty(), "steps raise no events");
        o.completed(CertificateId::new(3)).unwrap();
        let events = o.pending_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, crate::models::EventKind::OrderValid);
        assert_eq!(events[0].certificate_id, Some(CertificateId::new(3)));
        assert_eq!(events[0].domains, vec!["a.example.com".to_owned()]);
        o.clear_events();
        o.reissue(datetime!(2026-01-02 0:00 UTC)).unwrap();
        o.failed("refused").unwrap();
        let events = o.pending_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, crate::models::EventKind::OrderInvalid);
        assert_eq!(events[0].error.as_deref(), Some("refused"));
        assert_eq!(events[0].key(), "order.invalid:1:2", "keyed by attempt");
        let mut fresh = order();
        fresh.record_event(events[0].clone());
        assert_eq!(fresh, order(), "pending events are not part of equality");
    }

    #[test]
    fn step_and_status_names_round_trip() {
        for step in OrderStep::ALL {
            assert_eq!(OrderStep::from_name(step.as_str()), Some(step));
        }
        for s in ["pending", "valid", "invalid", "revoked"] {
            assert_eq!(OrderStatus::from_name(s).map(OrderStatus::as_str), Some(s));
        }
        assert_eq!(OrderStep::from_name("nope"), None);
    }
}
