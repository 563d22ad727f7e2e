//! The check of an issued certificate against its order, before it is stored: a CA (or
//! anything in between) that returns a certificate for other names or another key must
//! not have it stored and served as the order's.

use crate::models::{CertificateInfo, Order};
use crate::ports::CertificateInspector;

/// Checks that the issued leaf names exactly the order's identifiers (compared case-
/// insensitively, in any order) and carries the public key of the CSR the order was
/// finalized with. The error is the reason to fail the order with.
///
/// # Errors
///
/// A readable reason when the names or the key differ, or the key cannot be read.
pub fn check_issued(
    order: &Order,
    info: &CertificateInfo,
    inspector: &dyn CertificateInspector,
) -> Result<(), String> {
    let mut wanted: Vec<String> = order
        .spec()
        .identifiers
        .as_slice()
        .iter()
        .map(|n| n.as_str().to_ascii_lowercase())
        .collect();
    let mut issued: Vec<String> = info
        .names
        .iter()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    wanted.sort();
    wanted.dedup();
    issued.sort();
    issued.dedup();
    if wanted != issued {
        return Err(format!(
            "the issued certificate names {} but the order is for {}",
            issued.join(", "),
            wanted.join(", ")
        ));
    }
    let csr = order
        .state()
        .csr
        .as_ref()
        .map(|c| c.pem.as_str())
        .ok_or("the order has no CSR to check the issued certificate's key against")?;
    let unreadable = |what: &str, e: crate::ports::CsrError| format!("cannot read {what}: {e}");
    let issued_key = inspector
        .public_key(&info.leaf_pem)
        .map_err(|e| unreadable("the issued certificate's key", e))?;
    let requested_key = inspector
        .public_key(csr)
        .map_err(|e| unreadable("the CSR's key", e))?;
    if issued_key != requested_key {
        return Err("the issued certificate carries another public key than the CSR".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{
        AccountId, ChallengeKind, CsrSubject, Identifiers, KeySpec, NewOrder, OrderId, OrderSpec,
        OrderState, UserId,
    };
    use crate::ports::{CsrError, MockCertificateInspector};
    use time::macros::datetime;

    fn order(names: &[&str], csr: Option<&str>) -> Order {
        let at = datetime!(2026-01-01 0:00 UTC);
        let mut state = OrderState::new();
        state.csr = csr.map(|pem| crate::models::Csr {
            pem: pem.to_owned(),
            der: Vec::new(),
        });
        Order::restore(
            OrderId::new(1),
            NewOrder {
                user_id: UserId::new(1),
                account_id: AccountId::new(1),
                spec: OrderSpec {
                    identifiers: Identifiers::parse(names).unwrap(),
                    challenge: ChallengeKind::Http01,
                    provider: None,
                    email: None,
                    subject: CsrSubject::default(),
                    key_spec: KeySpec::default(),
                    csr: None,
                    key: None,
                    auto_renew: true,
                },
                created_at: at,
            },
            state,
            None,
            at,
        )
    }

    fn info(names: &[&str]) -> CertificateInfo {
        let at = datetime!(2026-01-01 0:00 UTC);
        CertificateInfo {
            leaf_pem: "leaf".into(),
            chain_pem: String::new(),
            fingerprint: "fp".into(),
            serial: "1".into(),
            issuer: "CN=test CA".into(),
            not_before: at,
            not_after: at,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    /// The leaf's key is `leaf_key`; the CSR's is "csr key".
    fn inspector(leaf_key: &'static str) -> MockCertificateInspector {
        let mut inspector = MockCertificateInspector::new();
        inspector
            .expect_public_key()
            .returning(move |pem| match pem {
                "leaf" => Ok(leaf_key.as_bytes().to_vec()),
                "csr" => Ok(b"csr key".to_vec()),
                _ => Err(CsrError::InvalidCertificate("unknown".into())),
            });
        inspector
    }

    #[test]
    fn the_same_names_in_any_order_and_case_and_the_csr_key_pass() {
        let order = order(&["a.example.com", "b.example.com"], Some("csr"));
        let issued = info(&["B.example.com", "a.example.com."]);
        assert_eq!(check_issued(&order, &issued, &inspector("csr key")), Ok(()));
    }

    #[test]
    fn other_or_missing_names_fail_naming_both_lists() {
        let order = order(&["a.example.com", "b.example.com"], Some("csr"));
        for names in [
            &["a.example.com"][..],
            &["a.example.com", "b.example.com", "evil.example.net"][..],
        ] {
            let reason = check_issued(&order, &info(names), &inspector("csr key")).unwrap_err();
            assert!(
                reason.contains("the order is for a.example.com, b.example.com"),
                "{reason}"
            );
        }
    }

    #[test]
    fn another_key_fails() {
        let order = order(&["a.example.com"], Some("csr"));
        let reason =
            check_issued(&order, &info(&["a.example.com"]), &inspector("other key")).unwrap_err();
        assert!(reason.contains("another public key"), "{reason}");
        let without_csr = self::order(&["a.example.com"], None);
        assert!(check_issued(
            &without_csr,
            &info(&["a.example.com"]),
            &inspector("csr key")
        )
        .is_err());
    }
}
