//! Certificate signing requests: building ours, and reading (and verifying) uploaded ones.

use acmeport_domain::ports::{Csr, CsrError};
use acmeport_domain::{CsrSubject, DomainName, Email, Identifiers};
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, SanType};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

/// PKCS#9 `emailAddress`, the subject attribute the original service put the order's e-mail
/// address in.
const OID_EMAIL_ADDRESS: [u64; 7] = [1, 2, 840, 113_549, 1, 9, 1];

/// Builds and signs a CSR: CN is the first identifier, the SANs are all identifiers in the
/// order given, and the subject carries the given O, OU, C, ST, L and e-mail address.
pub(crate) fn build(
    key: &KeyPair,
    identifiers: &Identifiers,
    subject: &CsrSubject,
    email: Option<&Email>,
) -> Result<Csr, CsrError> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = identifiers
        .as_slice()
        .iter()
        .map(|name| {
            Ia5String::try_from(name.as_str())
                .map(SanType::DnsName)
                .map_err(|e| CsrError::Internal(Box::new(e)))
        })
        .collect::<Result<_, _>>()?;
    // rcgen's default subject is "CN=rcgen self signed cert": start from an empty one.
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, identifiers.common_name().as_str());
    if let Some(o) = &subject.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if let Some(ou) = &subject.organizational_unit {
        dn.push(DnType::OrganizationalUnitName, ou.as_str());
    }
    if let Some(country) = &subject.country {
        // RFC 5280 requires countryName to be a PrintableString; two letters always are.
        let value = PrintableString::try_from(country.as_str())
            .map_err(|e| CsrError::Internal(Box::new(e)))?;
        dn.push(DnType::CountryName, DnValue::PrintableString(value));
    }
    if let Some(state) = &subject.state {
        dn.push(DnType::StateOrProvinceName, state.as_str());
    }
    if let Some(locality) = &subject.locality {
        dn.push(DnType::LocalityName, locality.as_str());
    }
    if let Some(email) = email {
        let value =
            Ia5String::try_from(email.as_str()).map_err(|e| CsrError::Internal(Box::new(e)))?;
        dn.push(
            DnType::CustomDnType(OID_EMAIL_ADDRESS.to_vec()),
            DnValue::Ia5String(value),
        );
    }
    params.distinguished_name = dn;
    let request = params
        .serialize_request(key)
        .map_err(|e| CsrError::Internal(Box::new(e)))?;
    let pem = request.pem().map_err(|e| CsrError::Internal(Box::new(e)))?;
    Ok(Csr {
        pem,
        der: request.der().to_vec(),
    })
}

/// Reads an uploaded CSR: its PEM, its structure and its signature, then its DNS names
/// (the subject alternative names in their order, or the common name when there are none).
pub(crate) fn parse(pem: &str) -> Result<(Vec<DomainName>, Csr), CsrError> {
    let block = Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .ok_or_else(|| invalid("no PEM block (-----BEGIN CERTIFICATE REQUEST-----) found"))?
        .map_err(|e| invalid(format!("malformed PEM: {e}")))?;
    if !matches!(
        block.label.as_str(),
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
    ) {
        return Err(invalid(format!(
            "expected a CERTIFICATE REQUEST block, found `{}`",
            block.label
        )));
    }
    let (rest, request) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| invalid(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid("trailing data after the request"));
    }
    // The key rules first: the crypto backend does not verify signatures of keys it
    // refuses (1024-bit RSA), which would hide the real reason.
    crate::key::check_public_key(&request.certification_request_info.subject_pki)
        .map_err(|reason| invalid(format!("the request's key is refused: {reason}")))?;
    request
        .verify_signature()
        .map_err(|e| invalid(format!("the signature does not verify: {e}")))?;

    let mut names = Vec::new();
    for extension in request.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = extension {
            for general in &san.general_names {
                match general {
                    GeneralName::DNSName(dns) => names.push(domain(dns)?),
                    GeneralName::IPAddress(_) => {
                        return Err(invalid("IP address identifiers are not supported"))
                    }
                    // Other kinds (e-mail, URI) are not ACME identifiers; the CA rejects
                    // them, so say so now.
                    other => {
                        return Err(invalid(format!(
                            "unsupported subject alternative name {other}"
                        )))
                    }
                }
            }
        }
    }
    if names.is_empty() {
        for cn in request
            .certification_request_info
            .subject
            .iter_common_name()
        {
            let cn = cn
                .as_str()
                .map_err(|_| invalid("the common name is not a string"))?;
            names.push(domain(cn)?);
        }
    }
    if names.is_empty() {
        return Err(invalid("the request names no domain"));
    }
    let der = block.contents;
    Ok((
        names,
        Csr {
            pem: pem.trim().to_owned() + "\n",
            der,
        },
    ))
}

fn domain(name: &str) -> Result<DomainName, CsrError> {
    DomainName::parse(name).map_err(|e| invalid(format!("`{name}` is not a domain name: {e}")))
}

fn invalid(reason: impl Into<String>) -> CsrError {
    CsrError::InvalidCsr(reason.into())
}

/// The DER `SubjectPublicKeyInfo` of the first certificate request in `pem`, if any.
pub(crate) fn public_key(pem: &str) -> Option<Vec<u8>> {
    let block = Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|b| {
            matches!(
                b.label.as_str(),
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
            )
        })?;
    let (_, request) = X509CertificationRequest::from_der(&block.contents).ok()?;
    Some(request.certification_request_info.subject_pki.raw.to_vec())
}
