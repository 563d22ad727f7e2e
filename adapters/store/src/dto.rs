//! Serde counterparts of the domain values kept in JSON columns.
//!
//! Domain types are deliberately not `Serialize`; this module owns the stored JSON
//! shapes. Renaming a field here changes the on-disk format: add a migration instead.

use crate::error::Corrupt;
use crate::{from_micros, unix_micros};
use acmeport_domain::{
    CountryCode, Csr, CsrSubject, Identifiers, NameserverStatus, Progress, ProviderName, Published,
    RenewalPlan, RenewalReason, SubjectField, TxtRecord,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `progress` column: waits, retries and renewal bookkeeping (times in Unix
/// microseconds).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ProgressDto {
    failures: u32,
    failing_since: Option<i64>,
    waiting_since: Option<i64>,
    polls: u32,
    nameservers: Vec<NameserverDto>,
    attempt_started: Option<i64>,
    renewal: bool,
    replaces: Option<String>,
    plan: Option<PlanDto>,
    renewal_failures: u32,
    renewal_error: Option<String>,
    validation_retries: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NameserverDto {
    record: String,
    server: String,
    serves: bool,
    asked_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PlanDto {
    at: i64,
    reason: String,
    window: Option<(i64, i64)>,
}

pub(crate) fn progress_json(p: &Progress) -> String {
    let plan = p.plan.as_ref().map(|plan| PlanDto {
        at: unix_micros(plan.at),
        reason: plan.reason.as_str().to_owned(),
        window: plan.window.map(|(a, b)| (unix_micros(a), unix_micros(b))),
    });
    to_json(&ProgressDto {
        failures: p.failures,
        failing_since: p.failing_since.map(unix_micros),
        waiting_since: p.waiting_since.map(unix_micros),
        polls: p.polls,
        nameservers: p
            .nameservers
            .iter()
            .map(|n| NameserverDto {
                record: n.record.clone(),
                server: n.server.clone(),
                serves: n.serves,
                asked_at: unix_micros(n.asked_at),
            })
            .collect(),
        attempt_started: p.attempt_started.map(unix_micros),
        renewal: p.renewal,
        replaces: p.replaces.clone(),
        plan,
        renewal_failures: p.renewal_failures,
        renewal_error: p.renewal_error.clone(),
        validation_retries: p.validation_retries,
    })
}

pub(crate) fn progress_from_json(json: &str) -> Result<Progress, Corrupt> {
    let dto: ProgressDto = parse(json, "orders.progress")?;
    let time = |us: i64| from_micros(us).map_err(|e| Corrupt::new("orders.progress", e));
    let plan = dto
        .plan
        .map(|p| -> Result<RenewalPlan, Corrupt> {
            Ok(RenewalPlan {
                at: time(p.at)?,
                reason: RenewalReason::from_name(&p.reason)
                    .ok_or_else(|| Corrupt::new("orders.progress", &p.reason))?,
                window: p
                    .window
                    .map(|(a, b)| Ok::<_, Corrupt>((time(a)?, time(b)?)))
                    .transpose()?,
            })
        })
        .transpose()?;
    Ok(Progress {
        failures: dto.failures,
        failing_since: dto.failing_since.map(time).transpose()?,
        waiting_since: dto.waiting_since.map(time).transpose()?,
        polls: dto.polls,
        nameservers: dto
            .nameservers
            .into_iter()
            .map(|n| {
                Ok(NameserverStatus {
                    asked_at: time(n.asked_at)?,
                    record: n.record,
                    server: n.server,
                    serves: n.serves,
                })
            })
            .collect::<Result<_, Corrupt>>()?,
        attempt_started: dto.attempt_started.map(time).transpose()?,
        renewal: dto.renewal,
        replaces: dto.replaces,
        plan,
        renewal_failures: dto.renewal_failures,
        renewal_error: dto.renewal_error,
        validation_retries: dto.validation_retries,
    })
}

/// The identifiers column: the names in order, as JSON, and the digest used to index it.
pub(crate) fn identifiers_json(identifiers: &Identifiers) -> (String, String) {
    let names: Vec<&str> = identifiers.as_slice().iter().map(|n| n.as_str()).collect();
    let json = to_json(&names);
    let digest = Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (json, digest)
}

pub(crate) fn identifiers_from_json(json: &str) -> Result<Identifiers, Corrupt> {
    let names: Vec<String> = parse(json, "identifiers")?;
    Identifiers::parse(&names).map_err(|e| Corrupt::new("identifiers", e))
}

/// A list of strings (certificate SAN names).
pub(crate) fn strings_json(items: &[String]) -> String {
    to_json(items)
}

pub(crate) fn strings_from_json(json: &str, column: &'static str) -> Result<Vec<String>, Corrupt> {
    parse(json, column)
}

/// The CSR subject parts, each optional.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SubjectDto {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ou: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    st: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<String>,
}

pub(crate) fn subject_json(subject: &CsrSubject) -> String {
    let text = |f: &Option<SubjectField>| f.as_ref().map(|v| v.as_str().to_owned());
    let dto = SubjectDto {
        o: text(&subject.organization),
        ou: text(&subject.organizational_unit),
        c: subject.country.map(|c| c.as_str().to_owned()),
        st: text(&subject.state),
        l: text(&subject.locality),
    };
    to_json(&dto)
}

pub(crate) fn subject_from_json(json: &str) -> Result<CsrSubject, Corrupt> {
    let dto: SubjectDto = parse(json, "subject")?;
    let field = |v: Option<String>| {
        v.map(|s| SubjectField::parse(&s).map_err(|e| Corrupt::new("subject", e)))
            .transpose()
    };
    Ok(CsrSubject {
        organization: field(dto.o)?,
        organizational_unit: field(dto.ou)?,
        country: dto
            .c
            .map(|c| CountryCode::parse(&c).map_err(|e| Corrupt::new("subject", e)))
            .transpose()?,
        state: field(dto.st)?,
        locality: field(dto.l)?,
    })
}

/// Challenge material recorded on an order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum PublishedDto {
    Dns {
        provider: String,
        name: String,
        value: String,
    },
    Http {
        token: String,
    },
}

pub(crate) fn published_json(items: &[Published]) -> String {
    let dtos: Vec<PublishedDto> = items
        .iter()
        .map(|p| match p {
            Published::Dns { provider, record } => PublishedDto::Dns {
                provider: provider.as_str().to_owned(),
                name: record.name.clone(),
                value: record.value.clone(),
            },
            Published::Http { token } => PublishedDto::Http {
                token: token.clone(),
            },
        })
        .collect();
    to_json(&dtos)
}

pub(crate) fn published_from_json(json: &str) -> Result<Vec<Published>, Corrupt> {
    let dtos: Vec<PublishedDto> = parse(json, "published")?;
    dtos.into_iter()
        .map(|dto| match dto {
            PublishedDto::Dns {
                provider,
                name,
                value,
            } => Ok(Published::Dns {
                provider: ProviderName::parse(&provider)
                    .map_err(|e| Corrupt::new("published", e))?,
                record: TxtRecord { name, value },
            }),
            PublishedDto::Http { token } => Ok(Published::Http { token }),
        })
        .collect()
}

/// The order's CSR from its stored PEM: the DER is the armor's base64 body, read back
/// without parsing the request (it was built or checked when the order's key was ready).
pub(crate) fn csr_from_pem(pem: String) -> Result<Csr, Corrupt> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|line| !line.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END "))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| Corrupt::new("orders.csr", e))?;
    if der.is_empty() {
        return Err(Corrupt::new("orders.csr", "no PEM body"));
    }
    Ok(Csr { pem, der })
}

fn parse<T: for<'de> Deserialize<'de>>(json: &str, column: &'static str) -> Result<T, Corrupt> {
    serde_json::from_str(json).map_err(|e| Corrupt::new(column, e))
}

/// Serializes a DTO. The DTOs hold only strings, lists and string fields, for which
/// serde_json cannot fail, so this is an invariant rather than an error path.
fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    #[allow(clippy::expect_used)]
    serde_json::to_string(value).expect("DTOs of plain strings always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_csr_reads_back_with_its_der() {
        let pem =
            "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\nAAEC\n-----END CERTIFICATE REQUEST-----\n";
        let csr = csr_from_pem(pem.to_owned()).expect("readable");
        assert_eq!(csr.der, [0x30, 0x82, 0x01, 0x00, 0x01, 0x02]);
        assert_eq!(csr.pem, pem);
        assert!(csr_from_pem("not a PEM".to_owned()).is_err());
        assert!(csr_from_pem(
            "-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----\n"
                .to_owned()
        )
        .is_err());
    }

    #[test]
    fn subject_round_trips_and_skips_missing_parts() {
        let subject = CsrSubject {
            organization: Some(SubjectField::parse("Acme").unwrap()),
            country: Some(CountryCode::parse("de").unwrap()),
            ..CsrSubject::default()
        };
        let json = subject_json(&subject);
        assert_eq!(json, r#"{"o":"Acme","c":"DE"}"#);
        assert_eq!(subject_from_json(&json).unwrap(), subject);
    }

    #[test]
    fn published_material_round_trips() {
        let items = vec![
            Published::Dns {
                provider: ProviderName::parse("bind").unwrap(),
                record: TxtRecord {
                    name: "_acme-challenge.a.example".into(),
                    value: "v1".into(),
                },
            },
            Published::Http {
                token: "tok".into(),
            },
        ];
        let json = published_json(&items);
        assert_eq!(published_from_json(&json).unwrap(), items);
    }

    #[test]
    fn identifiers_keep_their_order_and_digest_differs_by_order() {
        let ab = Identifiers::parse(&["a.example", "b.example"]).unwrap();
        let ba = Identifiers::parse(&["b.example", "a.example"]).unwrap();
        let (json_ab, digest_ab) = identifiers_json(&ab);
        let (_, digest_ba) = identifiers_json(&ba);
        assert_eq!(json_ab, r#"["a.example","b.example"]"#);
        assert_ne!(
            digest_ab, digest_ba,
            "the list is ordered: the first name is the CN"
        );
        assert_eq!(identifiers_from_json(&json_ab).unwrap(), ab);
    }

    #[test]
    fn corrupt_json_is_reported_with_its_column() {
        let err = published_from_json("{").unwrap_err();
        assert!(err.to_string().contains("published"), "{err}");
    }
}
