//! Unit tests: key generation and upload formats, CSR round trips and tampering, chain
//! inspection. These are pure computations, so no peer is involved.

use super::RcgenCsrFactory;
use acmeport_domain::ports::{CertificateInspector, CsrError, CsrFactory};
use acmeport_domain::{
    CountryCode, CsrSubject, Email, Identifiers, KeySpec, PrivateKeyPem, SubjectField,
};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PublicKeyData, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
};
use sha2::{Digest, Sha256};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::der_parser::ber::BerObjectContent;
use x509_parser::prelude::FromDer;

fn factory() -> RcgenCsrFactory {
    RcgenCsrFactory::new()
}

fn ids(names: &[&str]) -> Identifiers {
    Identifiers::parse(names).expect("test names are valid")
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn pem_der(text: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(text.as_bytes())
        .expect("valid PEM")
        .1
        .contents
}

/// Rewrites a PKCS#8 RSA key as PKCS#1 (`RSA PRIVATE KEY`), the form `openssl genrsa
/// -traditional` writes: the PKCS#8 wrapper's private key octet string is exactly the
/// PKCS#1 structure.
fn pkcs8_to_pkcs1_pem(pkcs8_pem: &str) -> String {
    let der = pem_der(pkcs8_pem);
    let (_, outer) = x509_parser::der_parser::parse_der(&der).expect("PKCS#8 DER");
    let items = outer.as_sequence().expect("PKCS#8 is a sequence");
    let BerObjectContent::OctetString(inner) = &items[2].content else {
        panic!("the third PKCS#8 element must be the private key octet string");
    };
    pem("RSA PRIVATE KEY", inner)
}

/// Rewrites a PKCS#8 EC key as SEC1 (`EC PRIVATE KEY`), as `openssl ecparam -genkey`
/// writes it.
fn pkcs8_to_sec1_pem(pkcs8_pem: &str) -> String {
    let der = pem_der(pkcs8_pem);
    let (_, outer) = x509_parser::der_parser::parse_der(&der).expect("PKCS#8 DER");
    let items = outer.as_sequence().expect("PKCS#8 is a sequence");
    let BerObjectContent::OctetString(inner) = &items[2].content else {
        panic!("the third PKCS#8 element must be the private key octet string");
    };
    pem("EC PRIVATE KEY", inner)
}

fn rsa_bits(key: &KeyPair) -> usize {
    let spki = key.subject_public_key_info();
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).expect("SPKI parses");
    match info.parsed().expect("public key parses") {
        x509_parser::public_key::PublicKey::RSA(rsa) => rsa.key_size(),
        other => panic!("expected an RSA key, got {other:?}"),
    }
}

#[tokio::test]
async fn generates_every_key_type_as_pkcs8() {
    for spec in KeySpec::ALL {
        let key = factory()
            .generate_key(spec)
            .await
            .unwrap_or_else(|e| panic!("{spec} key generation failed: {e}"));
        assert!(
            key.expose().starts_with("-----BEGIN PRIVATE KEY-----"),
            "{spec} key must be PKCS#8 PEM"
        );
        factory()
            .check_key(&key)
            .unwrap_or_else(|e| panic!("the generated {spec} key must pass check_key: {e}"));
        let pair = KeyPair::from_pem(key.expose()).expect("rcgen reads its own key");
        match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let expected = match spec {
                    KeySpec::Rsa2048 => 2048,
                    KeySpec::Rsa3072 => 3072,
                    _ => 4096,
                };
                assert_eq!(pair.algorithm(), &PKCS_RSA_SHA256, "{spec}");
                assert_eq!(rsa_bits(&pair), expected, "{spec} key size");
            }
            KeySpec::EcdsaP256 => assert_eq!(pair.algorithm(), &PKCS_ECDSA_P256_SHA256),
            KeySpec::EcdsaP384 => assert_eq!(pair.algorithm(), &PKCS_ECDSA_P384_SHA384),
            other => panic!("untested key type {other}"),
        }
    }
}

#[tokio::test]
async fn default_key_is_rsa_2048() {
    let key = factory()
        .generate_key(KeySpec::default())
        .await
        .expect("default key");
    let pair = KeyPair::from_pem(key.expose()).expect("readable");
    assert_eq!(
        rsa_bits(&pair),
        2048,
        "the seed promises an RSA 2048 key by default"
    );
}

#[tokio::test]
async fn accepts_pkcs1_rsa_upload_and_builds_a_csr_with_it() {
    let pkcs8 = factory().generate_key(KeySpec::Rsa2048).await.expect("key");
    let pkcs1 = PrivateKeyPem::new(pkcs8_to_pkcs1_pem(pkcs8.expose()));
    assert!(pkcs1
        .expose()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    factory()
        .check_key(&pkcs1)
        .expect("a PKCS#1 RSA key must be accepted");
    let csr = factory()
        .build_csr(
            &pkcs1,
            &ids(&["a.example.com"]),
            &CsrSubject::default(),
            None,
        )
        .expect("a CSR can be built with a PKCS#1 key");
    let (names, _) = factory().parse_csr(&csr.pem).expect("own CSR parses");
    assert_eq!(names[0].as_str(), "a.example.com");

    // The CSR carries the public half of the uploaded key.
    let (_, request) = X509CertificationRequest::from_der(&csr.der).expect("CSR DER");
    let pair = KeyPair::from_pem(pkcs8.expose()).expect("readable");
    assert_eq!(
        request
            .certification_request_info
            .subject_pki
            .subject_public_key
            .data
            .as_ref(),
        pair.public_key_raw(),
        "the CSR must hold the uploaded key's public key"
    );
}

#[tokio::test]
async fn accepts_sec1_ec_upload() {
    let pkcs8 = factory()
        .generate_key(KeySpec::EcdsaP256)
        .await
        .expect("key");
    let sec1 = PrivateKeyPem::new(pkcs8_to_sec1_pem(pkcs8.expose()));
    factory()
        .check_key(&sec1)
        .expect("a SEC1 EC key must be accepted");
    factory()
        .build_csr(
            &sec1,
            &ids(&["a.example.com"]),
            &CsrSubject::default(),
            None,
        )
        .expect("a CSR can be built with a SEC1 key");
}

#[test]
fn rejects_what_is_not_a_usable_key() {
    let ca = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["a.example.com".to_owned()])
        .expect("params")
        .self_signed(&ca)
        .expect("cert");
    let ed25519 = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519");
    let cases = [
        ("empty text", String::new()),
        ("plain text", "not a key".to_owned()),
        ("a certificate", cert.pem()),
        (
            "broken base64",
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_owned(),
        ),
        ("garbage DER", pem("PRIVATE KEY", b"definitely not a key")),
        (
            "an encrypted key",
            pem("ENCRYPTED PRIVATE KEY", b"\x30\x03\x02\x01\x00"),
        ),
        ("an Ed25519 key", ed25519.serialize_pem()),
    ];
    for (what, text) in cases {
        match factory().check_key(&PrivateKeyPem::new(text)) {
            Err(CsrError::InvalidKey(reason)) => {
                assert!(!reason.is_empty(), "{what}: the reason must say something");
            }
            other => panic!("{what} must be InvalidKey, got {other:?}"),
        }
    }
}

#[test]
fn invalid_key_reason_never_contains_key_material() {
    let key = KeyPair::generate().expect("key");
    let mut text = key.serialize_pem();
    // Break the DER while keeping the PEM well-formed.
    let body_start = text.find('\n').expect("header line") + 1;
    text.replace_range(body_start..body_start + 4, "AAAA");
    let err = factory()
        .check_key(&PrivateKeyPem::new(text.clone()))
        .expect_err("a corrupted key must be refused");
    let shown = format!("{err} {err:?}");
    let body_line = text.lines().nth(1).expect("body");
    assert!(
        !shown.contains(&body_line[..20]),
        "error must not echo the key: {shown}"
    );
}

#[tokio::test]
async fn csr_round_trip_keeps_names_in_order_and_the_subject() {
    let key = factory()
        .generate_key(KeySpec::EcdsaP256)
        .await
        .expect("key");
    let names = ids(&["www.example.com", "*.example.com", "example.com"]);
    let subject = CsrSubject {
        organization: Some(SubjectField::parse("Acme Inc").unwrap()),
        organizational_unit: Some(SubjectField::parse("Ops").unwrap()),
        country: Some(CountryCode::parse("de").unwrap()),
        state: Some(SubjectField::parse("Berlin").unwrap()),
        locality: Some(SubjectField::parse("Kreuzberg").unwrap()),
    };
    let email = Email::parse("ops@example.com").unwrap();
    let csr = factory()
        .build_csr(&key, &names, &subject, Some(email))
        .expect("csr");
    assert!(csr.pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert_eq!(
        pem_der(&csr.pem),
        csr.der,
        "PEM and DER must be the same request"
    );

    let (parsed, again) = factory().parse_csr(&csr.pem).expect("own CSR parses");
    let parsed: Vec<&str> = parsed.iter().map(|n| n.as_str()).collect();
    assert_eq!(
        parsed,
        ["www.example.com", "*.example.com", "example.com"],
        "SANs must keep the order given"
    );
    assert_eq!(again.der, csr.der);

    let (_, request) = X509CertificationRequest::from_der(&csr.der).expect("DER");
    let dn = request.certification_request_info.subject.to_string();
    for part in [
        "CN=www.example.com",
        "O=Acme Inc",
        "OU=Ops",
        "C=DE",
        "ST=Berlin",
        "L=Kreuzberg",
        "ops@example.com",
    ] {
        assert!(dn.contains(part), "subject `{dn}` must contain `{part}`");
    }
}

#[tokio::test]
async fn tampered_csr_is_rejected() {
    let key = factory()
        .generate_key(KeySpec::EcdsaP256)
        .await
        .expect("key");
    let csr = factory()
        .build_csr(&key, &ids(&["a.example.com"]), &CsrSubject::default(), None)
        .expect("csr");
    // Swap one name for another of the same length: the structure stays valid, the
    // signature no longer matches.
    let position = csr
        .der
        .windows(b"a.example.com".len())
        .rposition(|w| w == b"a.example.com")
        .expect("the SAN is in the DER");
    let mut forged = csr.der.clone();
    forged[position] = b'b';
    match factory().parse_csr(&pem("CERTIFICATE REQUEST", &forged)) {
        Err(CsrError::InvalidCsr(reason)) => {
            assert!(
                reason.contains("signature"),
                "reason should name the signature: {reason}"
            );
        }
        other => panic!("a forged CSR must be InvalidCsr, got {other:?}"),
    }

    for (what, text) in [
        ("garbage", "nope".to_owned()),
        ("a key instead of a CSR", key.expose().to_owned()),
        (
            "truncated DER",
            pem("CERTIFICATE REQUEST", &csr.der[..csr.der.len() / 2]),
        ),
    ] {
        assert!(
            matches!(factory().parse_csr(&text), Err(CsrError::InvalidCsr(_))),
            "{what} must be InvalidCsr"
        );
    }
}

#[test]
fn inspects_a_chain() {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::CommonName, "test CA");
    ca_params.distinguished_name = ca_dn;
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, &ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        CertificateParams::new(vec!["b.example.com".to_owned(), "a.example.com".to_owned()])
            .expect("params");
    leaf_params.serial_number = Some(vec![0x01, 0xab, 0xcd].into());
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");

    let chain = format!("{}\n{}", leaf.pem(), ca_cert.pem());
    let info = factory().inspect(&chain).expect("chain reads");
    assert_eq!(info.names, ["b.example.com", "a.example.com"]);
    assert_eq!(
        info.serial, "1abcd",
        "serial is lower-case hex without leading zeros"
    );
    assert_eq!(info.fingerprint, hex::encode(Sha256::digest(leaf.der())));
    assert_eq!(info.issuer, "CN=test CA", "the issuing CA's subject");
    assert_eq!(pem_der(&info.leaf_pem), leaf.der().to_vec());
    assert_eq!(pem_der(&info.chain_pem), ca_cert.der().to_vec());
    assert!(info.not_before < info.not_after);

    let leaf_pem = PrivateKeyPem::new(leaf_key.serialize_pem());
    assert!(factory()
        .key_matches_certificate(&leaf_pem, &info.leaf_pem)
        .expect("comparable"));
    let other = PrivateKeyPem::new(ca_key.serialize_pem());
    assert!(!factory()
        .key_matches_certificate(&other, &info.leaf_pem)
        .expect("comparable"));

    for bad in ["", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n"] {
        assert!(
            matches!(factory().inspect(bad), Err(CsrError::InvalidCertificate(_))),
            "`{bad}` must be InvalidCertificate"
        );
    }
}

/// A 1024-bit RSA key and a CSR signed with it (made with `openssl genrsa 1024` and
/// `openssl req`): the crypto backend refuses to load or verify such keys, so the refusal
/// must come from the key rules and name the size.
const RSA1024_PKCS1: &str = include_str!("../tests/fixtures/rsa1024-pkcs1.pem");
const RSA1024_PKCS8: &str = include_str!("../tests/fixtures/rsa1024-pkcs8.pem");
const RSA1024_CSR: &str = include_str!("../tests/fixtures/rsa1024.csr");

#[test]
fn small_rsa_uploads_are_refused_naming_the_size() {
    for key in [RSA1024_PKCS1, RSA1024_PKCS8] {
        match factory().check_key(&PrivateKeyPem::new(key)) {
            Err(CsrError::InvalidKey(reason)) => assert!(
                reason.contains("1024 bits") && reason.contains("2048"),
                "the reason must name the size and the rule: {reason}"
            ),
            other => panic!("a 1024-bit key must be refused, got {other:?}"),
        }
    }
    match factory().parse_csr(RSA1024_CSR) {
        Err(CsrError::InvalidCsr(reason)) => {
            assert!(
                reason.contains("1024 bits") && !reason.contains("signature"),
                "the reason must be the key size, not the signature: {reason}"
            );
        }
        other => panic!("a CSR with a 1024-bit key must be refused, got {other:?}"),
    }
}

#[test]
fn csrs_on_unsupported_keys_are_refused() {
    let ed = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519");
    let csr = CertificateParams::new(vec!["www.example.com".to_owned()])
        .expect("params")
        .serialize_request(&ed)
        .expect("csr")
        .pem()
        .expect("pem");
    match factory().parse_csr(&csr) {
        Err(CsrError::InvalidCsr(reason)) => {
            assert!(reason.contains("unsupported key algorithm"), "{reason}");
        }
        other => panic!("an Ed25519 CSR must be refused, got {other:?}"),
    }
}

#[test]
fn public_keys_of_certificates_and_csrs_compare() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let params = CertificateParams::new(vec!["www.example.com".to_owned()]).expect("params");
    let csr = params
        .clone()
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let cert = params.self_signed(&key).expect("cert").pem();
    let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("other key");
    let other_cert = CertificateParams::new(vec!["www.example.com".to_owned()])
        .expect("params")
        .self_signed(&other)
        .expect("cert")
        .pem();
    let f = factory();
    let of = |pem: &str| f.public_key(pem).expect("a public key");
    assert_eq!(of(&cert), of(&csr), "the certificate carries the CSR's key");
    assert_ne!(of(&other_cert), of(&csr));
    assert!(matches!(
        f.public_key("garbage"),
        Err(CsrError::InvalidCertificate(_))
    ));
}
