//! Certificates: look up, revoke, purge.

use super::{Acmeport, LookupError, RevokeError};
use crate::models::{
    AuditAction, Certificate, CertificateId, CertificateStatus, DomainEvent, Listing, OrderStatus,
    Page, Principal, RevocationReason, User,
};
use crate::ports::{AcmeError, RepoError};

impl Acmeport {
    /// The user's certificate with this id, with its renewal plan (the stored one, or
    /// the lifetime rule's when it is due for automatic renewal and none is stored).
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when absent or owned by another user.
    pub async fn get_certificate(
        &self,
        user: &User,
        id: CertificateId,
    ) -> Result<Certificate, LookupError> {
        let certificate = self
            .ports
            .certificates
            .get(id)
            .await?
            .filter(|c| c.user_id == user.id)
            .ok_or(LookupError::NotFound("certificate"))?;
        let mut one = [certificate];
        self.with_renewal_plans(&mut one).await?;
        let [certificate] = one;
        Ok(certificate)
    }

    /// The caller's certificate with this id, to hand out with its private key: recorded
    /// in the audit log when the key is included.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when absent or owned by another user.
    pub async fn download_certificate(
        &self,
        principal: &Principal,
        id: CertificateId,
    ) -> Result<Certificate, LookupError> {
        let certificate = self.get_certificate(&principal.user, id).await?;
        if certificate.key.is_some() {
            self.audit(
                principal,
                AuditAction::CertificateDownloaded,
                format!("certificate {id}"),
                "with private key".to_owned(),
            )
            .await;
        }
        Ok(certificate)
    }

    /// A page of the user's certificates, with their renewal plans.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_certificates(
        &self,
        user: &User,
        page: Page,
    ) -> Result<Listing<Certificate>, RepoError> {
        let mut listing = self.ports.certificates.list(user.id, page).await?;
        self.with_renewal_plans(&mut listing.items).await?;
        Ok(listing)
    }

    async fn owned_certificate(
        &self,
        user: &User,
        id: CertificateId,
    ) -> Result<Certificate, RevokeError> {
        self.get_certificate(user, id).await.map_err(|e| match e {
            LookupError::NotFound(_) => RevokeError::NotFound,
            LookupError::Repo(r) => RevokeError::Repo(r),
        })
    }

    /// Revokes the certificate at the ACME server and records it.
    ///
    /// # Errors
    ///
    /// [`RevokeError::NotFound`], [`RevokeError::AlreadyRevoked`], ACME failures.
    pub async fn revoke_certificate(
        &self,
        user: &User,
        id: CertificateId,
        reason: RevocationReason,
    ) -> Result<Certificate, RevokeError> {
        let certificate = self.owned_certificate(user, id).await?;
        if certificate.status == CertificateStatus::Revoked {
            return Err(RevokeError::AlreadyRevoked);
        }
        self.revoke_at_ca(&certificate, reason).await?;
        self.record_revocation(&certificate, reason).await?;
        tracing::info!(certificate.id = %id, reason = reason.as_str(), "certificate revoked");
        self.audit(
            &Principal::user(user.clone()),
            AuditAction::CertificateRevoked,
            format!("certificate {id}"),
            format!("reason {}", reason.as_str()),
        )
        .await;
        self.owned_certificate(user, id).await
    }

    /// Revokes the certificate for `reason` unless it is revoked already, then deletes it
    /// and its key.
    ///
    /// # Errors
    ///
    /// [`RevokeError::NotFound`], ACME failures (nothing is deleted then).
    pub async fn purge_certificate(
        &self,
        user: &User,
        id: CertificateId,
        reason: RevocationReason,
    ) -> Result<(), RevokeError> {
        let certificate = self.owned_certificate(user, id).await?;
        if certificate.status == CertificateStatus::Valid {
            self.revoke_at_ca(&certificate, reason).await?;
            self.record_revocation(&certificate, reason).await?;
        }
        self.ports.certificates.delete(id).await?;
        self.update_order(certificate.order_id, |order| order.certificate_purged(id))
            .await?;
        tracing::info!(certificate.id = %id, "certificate purged");
        self.audit(
            &Principal::user(user.clone()),
            AuditAction::CertificatePurged,
            format!("certificate {id}"),
            String::new(),
        )
        .await;
        Ok(())
    }

    async fn revoke_at_ca(
        &self,
        certificate: &Certificate,
        reason: RevocationReason,
    ) -> Result<(), RevokeError> {
        let account = self
            .ports
            .accounts
            .get(certificate.account_id)
            .await?
            .ok_or(RepoError::NotFound("account"))?;
        match self
            .ports
            .acme
            .revoke(&account.credentials, &certificate.info.leaf_pem, reason)
            .await
        {
            // The CA already agrees; record it here too.
            Ok(()) | Err(AcmeError::AlreadyRevoked) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks the certificate revoked (raising `certificate.revoked` in the same write)
    /// and, when it is its order's current one, the order.
    pub(super) async fn record_revocation(
        &self,
        certificate: &Certificate,
        reason: RevocationReason,
    ) -> Result<(), RepoError> {
        let event = DomainEvent::certificate_revoked(
            certificate.user_id,
            certificate.order_id,
            certificate.id,
            reason,
            certificate.info.names.clone(),
        );
        self.ports
            .certificates
            .mark_revoked(certificate.id, self.now(), reason, event)
            .await?;
        let order = self
            .update_order(certificate.order_id, |order| {
                order.resolved_cert_id() == Some(certificate.id)
                    && order.status() == OrderStatus::Valid
                    && order.certificate_revoked(certificate.id).is_ok()
            })
            .await?;
        // A compromised key the order would use again (uploaded key or CSR) must not be
        // renewed into a new certificate.
        if let Some(order) = order {
            let reuses_key = order.spec().key.is_some() || order.spec().csr.is_some();
            if reason == RevocationReason::KeyCompromise && reuses_key && order.spec().auto_renew {
                self.ports.orders.set_auto_renew(order.id(), false).await?;
                tracing::warn!(order.id = %order.id(), "key compromised: the order's uploaded key is not renewed again");
            }
        }
        Ok(())
    }
}
