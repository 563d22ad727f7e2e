//! RFC 2136 dynamic DNS updates signed with TSIG: a [`DnsProvider`] for self-hosted DNS
//! (BIND, Knot, PowerDNS).
//!
//! `present` adds one TXT RR to the name's set and `cleanup` deletes exactly that RR
//! (RFC 2136 §2.5.1 and §2.5.4), so values written by others, such as the apex value next
//! to a wildcard value on `_acme-challenge.<name>`, are never touched. Both operations are
//! idempotent on the server side: a duplicate add and the delete of an absent RR are
//! silently ignored.

#![warn(missing_docs)]

mod settings;
mod wire;

pub use settings::{Rfc2136Settings, SettingsError};

use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::TxtRecord;
use async_trait::async_trait;
use hickory_proto::op::{update_message, Message, Query};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
use std::fmt;
use tracing::{debug, info};
use wire::Exchanger;

/// Writes DNS-01 TXT records to one primary server by RFC 2136 UPDATE with TSIG.
pub struct Rfc2136Provider {
    zone: Option<Name>,
    ttl: u32,
    exchanger: Exchanger,
}

impl fmt::Debug for Rfc2136Provider {
    // Hand-written so the TSIG key can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Provider")
            .field("server", &self.exchanger.server())
            .field("zone", &self.zone.as_ref().map(Name::to_ascii))
            .field("key_name", &self.exchanger.key_name())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Rfc2136Provider {
    /// Builds the provider; nothing is sent until the first call.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] when the zone or key name is not a domain name or the secret is not
    /// base64.
    pub fn new(settings: Rfc2136Settings) -> Result<Self, SettingsError> {
        let zone = settings
            .zone
            .as_deref()
            .map(|zone| fqdn(zone).map_err(|_| SettingsError::Zone(zone.to_owned())))
            .transpose()?;
        let exchanger = Exchanger::new(
            settings.server,
            &settings.key_name,
            &settings.secret,
            settings.timeout,
        )?;
        Ok(Self {
            zone,
            ttl: settings.ttl,
            exchanger,
        })
    }

    /// The zone to update: the configured one, or the zone whose SOA the server returns for
    /// the name (in the answer at the apex, in the authority section below it).
    async fn zone_of(&self, name: &Name) -> Result<Name, DnsError> {
        if let Some(zone) = &self.zone {
            if !zone.zone_of(name) {
                return Err(DnsError::ZoneNotFound(format!(
                    "{} (outside the configured zone {})",
                    name.to_ascii(),
                    zone.to_ascii()
                )));
            }
            return Ok(zone.clone());
        }
        let mut query = Message::query();
        query.metadata.recursion_desired = false;
        query.add_query(Query::query(name.clone(), RecordType::SOA));
        let response = self.exchanger.query(query).await?;
        let zone = response
            .answers
            .iter()
            .chain(response.authorities.iter())
            .find(|record| record.record_type() == RecordType::SOA)
            .map(|record| record.name.clone());
        match zone {
            Some(zone) if zone.zone_of(name) => {
                debug!(zone = %zone, name = %name, "discovered zone by SOA query");
                Ok(zone)
            }
            _ => Err(DnsError::ZoneNotFound(format!(
                "{} (the server {} returned no SOA for it)",
                name.to_ascii(),
                self.exchanger.server()
            ))),
        }
    }

    fn rrset(&self, name: &Name, value: &str) -> RecordSet {
        let mut record = Record::from_rdata(
            name.clone(),
            self.ttl,
            RData::TXT(TXT::new(vec![value.to_owned()])),
        );
        record.dns_class = DNSClass::IN;
        RecordSet::from(record)
    }
}

#[async_trait]
impl DnsProvider for Rfc2136Provider {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record_name(record)?;
        let zone = self.zone_of(&name).await?;
        // `append` without the "must exist" prerequisite adds the RR to the set, creating
        // the set when needed; the server ignores an RR that is already there.
        let update =
            update_message::append(self.rrset(&name, &record.value), zone.clone(), false, false);
        self.exchanger.update(update).await?;
        info!(name = %record.name, zone = %zone, server = %self.exchanger.server(), "TXT value added by RFC 2136 update");
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record_name(record)?;
        let zone = self.zone_of(&name).await?;
        // Delete-RR (class NONE) matches name, type and rdata, so other values stay, and
        // deleting an absent RR is not an error.
        let update =
            update_message::delete_by_rdata(self.rrset(&name, &record.value), zone.clone(), false);
        self.exchanger.update(update).await?;
        info!(name = %record.name, zone = %zone, server = %self.exchanger.server(), "TXT value removed by RFC 2136 update");
        Ok(())
    }
}

fn fqdn(name: &str) -> Result<Name, hickory_proto::ProtoError> {
    let mut name = Name::from_ascii(name.trim())?;
    name.set_fqdn(true);
    Ok(name)
}

fn record_name(record: &TxtRecord) -> Result<Name, DnsError> {
    fqdn(&record.absolute_name())
        .map_err(|e| DnsError::Rejected(format!("{:?} is not a DNS name: {e}", record.name)))
}
