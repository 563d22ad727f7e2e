//! [`CertificateRepo`] on the `certificates` table; private keys are sealed.

use crate::dto::{strings_from_json, strings_json};
use crate::entity::certificates;
use crate::error::{backend, translate, Corrupt};
use crate::{db_time, page_of, Store};
use acmeport_domain::ports::{CertificateRepo, RepoError};
use acmeport_domain::{
    AccountId, Certificate, CertificateId, CertificateInfo, CertificateStatus, DomainEvent,
    Listing, NewCertificate, OrderId, Page, PrivateKeyPem, RevocationReason, UserId,
};
use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use time::OffsetDateTime;

/// The column certificate keys are sealed for (with the row id).
pub(crate) const PRIVATE_KEY: &str = "certificates.private_key";

fn status_from_name(name: &str) -> Result<CertificateStatus, Corrupt> {
    match name {
        "valid" => Ok(CertificateStatus::Valid),
        "revoked" => Ok(CertificateStatus::Revoked),
        other => Err(Corrupt::new("certificates.status", other)),
    }
}

impl Store {
    fn certificate_to_domain(&self, m: certificates::Model) -> Result<Certificate, RepoError> {
        let key = m
            .private_key
            .map(|sealed| {
                self.cipher
                    .open_str(PRIVATE_KEY, m.id, &sealed)
                    .map(|pem| PrivateKeyPem::new(pem.as_str()))
            })
            .transpose()?;
        Ok(Certificate {
            id: CertificateId::new(m.id),
            order_id: OrderId::new(m.order_id),
            user_id: UserId::new(m.user_id),
            account_id: AccountId::new(m.account_id),
            status: status_from_name(&m.status)?,
            info: CertificateInfo {
                leaf_pem: m.leaf_pem,
                chain_pem: m.chain_pem,
                fingerprint: m.fingerprint,
                serial: m.serial,
                issuer: m.issuer,
                not_before: m.not_before,
                not_after: m.not_after,
                names: strings_from_json(&m.names, "certificates.names")?,
            },
            key,
            csr: m.csr,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
            revocation_reason: m
                .revocation_reason
                .as_deref()
                .map(|r| {
                    RevocationReason::from_name(r)
                        .ok_or_else(|| Corrupt::new("certificates.revocation_reason", r))
                })
                .transpose()?,
            // The renewal plan is its order's; the service fills it in.
            renewal: None,
            renewal_error: None,
        })
    }

    async fn certificate_by_fingerprint(
        &self,
        order: OrderId,
        fingerprint: &str,
    ) -> Result<Option<Certificate>, RepoError> {
        certificates::Entity::find()
            .filter(certificates::Column::OrderId.eq(order.get()))
            .filter(certificates::Column::Fingerprint.eq(fingerprint))
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(|m| self.certificate_to_domain(m))
            .transpose()
    }
}

#[async_trait]
impl CertificateRepo for Store {
    async fn insert(&self, certificate: NewCertificate) -> Result<Certificate, RepoError> {
        let info = &certificate.info;
        // A resumed order stores the same certificate again: hand back the first row.
        if let Some(existing) = self
            .certificate_by_fingerprint(certificate.order_id, &info.fingerprint)
            .await?
        {
            return Ok(existing);
        }
        // The key is sealed for the row id, known once the row exists: insert without it
        // and fill it in within one transaction.
        let txn = self.db.begin().await.map_err(backend)?;
        let inserted = certificates::ActiveModel {
            order_id: Set(certificate.order_id.get()),
            user_id: Set(certificate.user_id.get()),
            account_id: Set(certificate.account_id.get()),
            status: Set(CertificateStatus::Valid.as_str().to_owned()),
            leaf_pem: Set(info.leaf_pem.clone()),
            chain_pem: Set(info.chain_pem.clone()),
            fingerprint: Set(info.fingerprint.clone()),
            serial: Set(info.serial.clone()),
            not_before: Set(db_time(info.not_before)),
            not_after: Set(db_time(info.not_after)),
            names: Set(strings_json(&info.names)),
            private_key: Set(None),
            csr: Set(certificate.csr.clone()),
            created_at: Set(db_time(certificate.created_at)),
            revoked_at: Set(None),
            issuer: Set(info.issuer.clone()),
            revocation_reason: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(translate("certificate"));
        let mut row = match inserted {
            Ok(row) => row,
            // Another writer stored it between our lookup and our insert.
            Err(RepoError::Duplicate(_)) => {
                txn.rollback().await.map_err(backend)?;
                return self
                    .certificate_by_fingerprint(certificate.order_id, &info.fingerprint)
                    .await?
                    .ok_or(RepoError::NotFound("certificate"));
            }
            Err(e) => return Err(e),
        };
        if let Some(key) = &certificate.key {
            let sealed = self.cipher.seal_str(PRIVATE_KEY, row.id, key.expose())?;
            certificates::Entity::update_many()
                .col_expr(
                    certificates::Column::PrivateKey,
                    Expr::value(sealed.clone()),
                )
                .filter(certificates::Column::Id.eq(row.id))
                .exec(&txn)
                .await
                .map_err(backend)?;
            row.private_key = Some(sealed);
        }
        txn.commit().await.map_err(backend)?;
        self.certificate_to_domain(row)
    }

    async fn get(&self, id: CertificateId) -> Result<Option<Certificate>, RepoError> {
        certificates::Entity::find_by_id(id.get())
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(|m| self.certificate_to_domain(m))
            .transpose()
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<Certificate>, RepoError> {
        let query =
            certificates::Entity::find().filter(certificates::Column::UserId.eq(user.get()));
        page_of(&self.db, query, certificates::Column::Id, page, |m| {
            self.certificate_to_domain(m)
        })
        .await
    }

    async fn valid_for_account(&self, account: AccountId) -> Result<Vec<Certificate>, RepoError> {
        certificates::Entity::find()
            .filter(certificates::Column::AccountId.eq(account.get()))
            .filter(certificates::Column::Status.eq(CertificateStatus::Valid.as_str()))
            .order_by_asc(certificates::Column::Id)
            .all(&self.db)
            .await
            .map_err(backend)?
            .into_iter()
            .map(|m| self.certificate_to_domain(m))
            .collect()
    }

    async fn mark_revoked(
        &self,
        id: CertificateId,
        at: OffsetDateTime,
        reason: RevocationReason,
        event: DomainEvent,
    ) -> Result<(), RepoError> {
        let txn = self.db.begin().await.map_err(backend)?;
        let result = certificates::Entity::update_many()
            .set(certificates::ActiveModel {
                status: Set(CertificateStatus::Revoked.as_str().to_owned()),
                revoked_at: Set(Some(db_time(at))),
                revocation_reason: Set(Some(reason.as_str().to_owned())),
                ..Default::default()
            })
            .filter(certificates::Column::Id.eq(id.get()))
            .exec(&txn)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            txn.rollback().await.map_err(backend)?;
            return Err(RepoError::NotFound("certificate"));
        }
        crate::lifecycle::store_events(&txn, &[event], at).await?;
        txn.commit().await.map_err(backend)
    }

    async fn valid_expiring(
        &self,
        now: OffsetDateTime,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Certificate>, RepoError> {
        certificates::Entity::find()
            .filter(certificates::Column::Status.eq(CertificateStatus::Valid.as_str()))
            .filter(certificates::Column::NotAfter.gt(db_time(now)))
            .filter(certificates::Column::NotAfter.lte(db_time(before)))
            .order_by_asc(certificates::Column::NotAfter)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(backend)?
            .into_iter()
            .map(|m| self.certificate_to_domain(m))
            .collect()
    }

    async fn delete(&self, id: CertificateId) -> Result<(), RepoError> {
        let result = certificates::Entity::delete_by_id(id.get())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound("certificate"));
        }
        Ok(())
    }
}
