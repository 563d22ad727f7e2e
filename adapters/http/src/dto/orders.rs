//! Bodies of the order endpoints (`seed/orders.md`).

use super::{optional, rfc3339, subject, SubjectView};
use crate::error::ApiError;
use acmeport_domain::service::CreateOrder;
use acmeport_domain::{
    AccountId, ChallengeKind, Email, Identifiers, KeySpec, Order, PrivateKeyPem, ProviderName,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How domain control is proven.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ChallengeType {
    /// DNS-01: a TXT record written through a DNS provider. Needed for wildcards.
    #[serde(alias = "dns-01")]
    Dns,
    /// HTTP-01: served by acmeport's challenge listener.
    #[serde(alias = "http-01")]
    Http,
}

impl From<ChallengeType> for ChallengeKind {
    fn from(t: ChallengeType) -> Self {
        match t {
            ChallengeType::Dns => Self::Dns01,
            ChallengeType::Http => Self::Http01,
        }
    }
}

/// `POST /api/order`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrderRequest {
    /// The names of the certificate: the common name first, then the other SANs.
    #[schema(example = json!(["example.com", "www.example.com"]))]
    pub domains: Vec<String>,
    /// The ACME account id (from `POST /api/acme`).
    #[schema(example = 3)]
    pub account: i64,
    /// `dns` (default) or `http`.
    #[serde(rename = "type")]
    pub challenge: Option<ChallengeType>,
    /// A DNS provider instance from configuration. Default from configuration.
    #[schema(example = "route53")]
    pub provider: Option<String>,
    /// Contact e-mail of the CSR subject.
    pub email: Option<String>,
    /// CSR subject organization (O); default from the account, then configuration.
    pub organization: Option<String>,
    /// CSR subject organizational unit (OU).
    pub organizational_unit: Option<String>,
    /// CSR subject country (C), two letters.
    pub country: Option<String>,
    /// CSR subject state (ST).
    pub state: Option<String>,
    /// CSR subject locality (L).
    pub location: Option<String>,
    /// A CSR, PEM, whose names equal `domains`. Built by the service when absent.
    pub csr: Option<String>,
    /// A private key, PEM, to build the CSR with. Generated when absent.
    pub key: Option<String>,
    /// The type of generated key: `rsa2048` (default), `rsa3072`, `rsa4096`,
    /// `ecdsa-p256`, `ecdsa-p384`.
    pub key_type: Option<String>,
    /// When the same order exists, order a new certificate for it.
    pub reissue: Option<bool>,
    /// Renew the certificate automatically (default true).
    pub auto_renew: Option<bool>,
}

impl std::fmt::Debug for CreateOrderRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateOrderRequest")
            .field("domains", &self.domains)
            .field("account", &self.account)
            .field("challenge", &self.challenge)
            .field("provider", &self.provider)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("reissue", &self.reissue)
            .field("auto_renew", &self.auto_renew)
            .finish_non_exhaustive()
    }
}

impl CreateOrderRequest {
    /// Parses the fields.
    ///
    /// # Errors
    ///
    /// A 400 naming the field that is refused.
    pub(crate) fn try_into_domain(self) -> Result<CreateOrder, ApiError> {
        let identifiers = Identifiers::parse(&self.domains)
            .map_err(|e| ApiError::bad_request(format!("domains: {e}")))?;
        let provider = optional("provider", self.provider.as_deref(), ProviderName::parse)?;
        let email = optional("email", self.email.as_deref(), Email::parse)?;
        let key_spec = optional("key_type", self.key_type.as_deref(), str::parse::<KeySpec>)?;
        let subject = subject(
            self.organization.as_deref(),
            self.organizational_unit.as_deref(),
            self.country.as_deref(),
            self.state.as_deref(),
            self.location.as_deref(),
        )?;
        let csr = match self.csr {
            Some(pem) if pem.trim().is_empty() => {
                return Err(ApiError::bad_request(
                    "csr: must be a PEM certificate request",
                ))
            }
            other => other,
        };
        let key = match self.key {
            Some(pem) if pem.trim().is_empty() => {
                return Err(ApiError::bad_request("key: must be a PEM private key"))
            }
            other => other.map(PrivateKeyPem::new),
        };
        Ok(CreateOrder {
            account: AccountId::new(self.account),
            identifiers,
            challenge: self.challenge.map(Into::into).unwrap_or_default(),
            provider,
            email,
            subject,
            key_spec,
            csr,
            key,
            reissue: self.reissue.unwrap_or(false),
            auto_renew: self.auto_renew.unwrap_or(true),
        })
    }
}

/// An order. Never carries a private key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderResponse {
    #[schema(example = 7)]
    pub id: i64,
    /// `pending`, `valid`, `invalid` or `revoked`.
    #[schema(example = "pending")]
    pub status: String,
    pub domains: Vec<String>,
    /// The ACME account id.
    pub account: i64,
    /// `dns` or `http`.
    #[serde(rename = "type")]
    #[schema(example = "dns")]
    pub challenge: String,
    /// The DNS provider instance (DNS-01 only).
    pub provider: Option<String>,
    pub email: Option<String>,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub location: Option<String>,
    /// The key type generated for this order.
    pub key_type: String,
    /// The CSR of the current attempt, PEM.
    pub csr: Option<String>,
    /// The ACME order URL of the current attempt.
    pub uri: Option<String>,
    /// The newest certificate of this order.
    pub resolved_cert_id: Option<i64>,
    /// Why the order failed.
    pub error: Option<String>,
    /// The last finished step of a pending order (`created`, `key_ready`, `placed`, ...).
    pub step: String,
    /// What a pending order waits for.
    pub detail: Option<String>,
    /// While a DNS-01 order waits for propagation: each authoritative nameserver's last
    /// answer for each record (empty otherwise).
    pub propagation: Vec<NameserverView>,
    /// 1 for the first issuance, incremented by each reissue.
    pub attempt: u32,
    /// Whether the certificate is renewed automatically.
    pub auto_renew: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// One nameserver's last answer for one TXT record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NameserverView {
    /// The TXT record's name.
    #[schema(example = "_acme-challenge.example.com")]
    pub record: String,
    #[schema(example = "ns1.example.com (192.0.2.53)")]
    pub server: String,
    /// True once it serves the value.
    pub serves: bool,
    /// When it was last asked, RFC 3339.
    pub asked_at: String,
}

impl From<&Order> for OrderResponse {
    fn from(o: &Order) -> Self {
        let s = SubjectView::from(&o.spec().subject);
        let state = o.state();
        Self {
            id: o.id().get(),
            status: o.status().as_str().to_owned(),
            domains: o
                .spec()
                .identifiers
                .as_slice()
                .iter()
                .map(ToString::to_string)
                .collect(),
            account: o.account_id().get(),
            challenge: o.spec().challenge.as_str().to_owned(),
            provider: o.spec().provider.as_ref().map(ToString::to_string),
            email: o.spec().email.as_ref().map(ToString::to_string),
            organization: s.organization,
            organizational_unit: s.organizational_unit,
            country: s.country,
            state: s.state,
            location: s.location,
            key_type: o.spec().key_spec.as_str().to_owned(),
            csr: state
                .csr
                .as_ref()
                .map(|c| c.pem.clone())
                .or_else(|| o.spec().csr.clone()),
            uri: o.acme_url().map(str::to_owned),
            resolved_cert_id: o.resolved_cert_id().map(|c| c.get()),
            error: o.error().map(str::to_owned),
            step: o.step().as_str().to_owned(),
            detail: state.detail.clone(),
            propagation: state
                .progress
                .nameservers
                .iter()
                .map(|n| NameserverView {
                    record: n.record.clone(),
                    server: n.server.clone(),
                    serves: n.serves,
                    asked_at: rfc3339(n.asked_at),
                })
                .collect(),
            attempt: state.attempt,
            auto_renew: o.spec().auto_renew,
            created_at: rfc3339(o.created_at()),
            updated_at: rfc3339(o.updated_at()),
        }
    }
}

/// `PATCH /api/order/<id>`: the settings that may change after creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateOrderRequest {
    /// Renew the certificate automatically.
    pub auto_renew: bool,
}
