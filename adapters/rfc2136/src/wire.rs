//! One signed DNS exchange over TCP, and the translation of the server's answer into
//! [`DnsError`]s that say what went wrong.
//!
//! hickory-net's clients can sign with a `TSigner`, but they verify the answer inside the
//! transport: a server that refuses the key answers NOTAUTH with an unsigned TSIG record
//! (BADKEY/BADSIG, RFC 8945 §5.3), and that verification failure surfaces as an opaque MAC
//! error instead of the server's reason. Doing the exchange here keeps the rcode and the
//! TSIG error readable. TCP avoids UDP retransmission logic; every RFC 2136 server takes
//! updates over TCP.

use crate::settings::SettingsError;
use acmeport_domain::ports::DnsError;
use acmeport_domain::Secret;
use base64::Engine;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, TSigner};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Allowed clock difference with the server, seconds (BIND's and RFC 8945's usual 300).
const FUDGE: u16 = 300;

/// Sends messages to one server, signing them with one key.
pub(crate) struct Exchanger {
    server: SocketAddr,
    signer: TSigner,
    timeout: Duration,
}

impl Exchanger {
    pub(crate) fn new(
        server: SocketAddr,
        key_name: &str,
        secret: &Secret,
        timeout: Duration,
    ) -> Result<Self, SettingsError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.expose().trim())
            .map_err(|_| SettingsError::Secret)?;
        if key.is_empty() {
            return Err(SettingsError::Secret);
        }
        let name = Name::from_ascii(key_name.trim())
            .map_err(|_| SettingsError::KeyName(key_name.to_owned()))?;
        let signer = TSigner::new(key, TsigAlgorithm::HmacSha256, name, FUDGE)
            .map_err(|_| SettingsError::KeyName(key_name.to_owned()))?;
        Ok(Self {
            server,
            signer,
            timeout,
        })
    }

    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    pub(crate) fn key_name(&self) -> String {
        self.signer.signer_name().to_ascii()
    }

    /// Sends a signed UPDATE; anything but NOERROR is a refusal.
    pub(crate) async fn update(&self, message: Message) -> Result<Message, DnsError> {
        self.exchange(message, true, &[ResponseCode::NoError]).await
    }

    /// Sends an unsigned query; NXDOMAIN is an answer like NOERROR (its authority
    /// section still carries the zone's SOA).
    pub(crate) async fn query(&self, message: Message) -> Result<Message, DnsError> {
        const ANSWERS: &[ResponseCode] = &[ResponseCode::NoError, ResponseCode::NXDomain];
        self.exchange(message, false, ANSWERS).await
    }

    /// Sends `message` (signed when `sign`) and returns the answer, which is checked: a
    /// key the server does not know or whose secret differs becomes
    /// [`DnsError::Unauthorized`], an rcode outside `accepted` or another TSIG error
    /// [`DnsError::Rejected`], and a
    /// signed request's answer must carry a valid signature.
    async fn exchange(
        &self,
        mut message: Message,
        sign: bool,
        accepted: &[ResponseCode],
    ) -> Result<Message, DnsError> {
        let verifier = if sign {
            message
                .finalize(&self.signer, unix_now())
                .map_err(|e| DnsError::Transport(Box::new(e)))?
        } else {
            None
        };
        let request = message
            .to_vec()
            .map_err(|e| DnsError::Transport(Box::new(e)))?;
        let answer = tokio::time::timeout(self.timeout, self.send(&request))
            .await
            .map_err(|_| {
                DnsError::Transport(
                    format!("no answer from {} within {:?}", self.server, self.timeout).into(),
                )
            })?
            .map_err(|e| DnsError::Transport(Box::new(e)))?;
        let response = Message::from_vec(&answer).map_err(|e| DnsError::Transport(Box::new(e)))?;
        if response.id != message.id {
            return Err(DnsError::Transport(
                format!("{} answered with a foreign message id", self.server).into(),
            ));
        }
        let tsig_error = response.signature().and_then(|tsig| tsig.data.error);
        if matches!(tsig_error, Some(TsigError::BadKey | TsigError::BadSig)) {
            return Err(DnsError::Unauthorized(
                self.refusal(response.response_code, tsig_error),
            ));
        }
        if !accepted.contains(&response.response_code) || tsig_error.is_some() {
            return Err(DnsError::Rejected(
                self.refusal(response.response_code, tsig_error),
            ));
        }
        if let Some(mut verifier) = verifier {
            // A success that is not signed by our key could be forged: do not trust it.
            verifier.verify(&answer).map_err(|e| {
                DnsError::Transport(
                    format!(
                        "the answer of {} failed TSIG verification: {e}",
                        self.server
                    )
                    .into(),
                )
            })?;
        }
        Ok(response)
    }

    async fn send(&self, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let length = u16::try_from(request.len())
            .map_err(|_| std::io::Error::other("DNS message longer than 65535 bytes"))?;
        let mut stream = TcpStream::connect(self.server).await?;
        let mut framed = Vec::with_capacity(request.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(request);
        stream.write_all(&framed).await?;
        let length = stream.read_u16().await?;
        let mut answer = vec![0; usize::from(length)];
        stream.read_exact(&mut answer).await?;
        Ok(answer)
    }

    fn refusal(&self, rcode: ResponseCode, tsig: Option<TsigError>) -> String {
        let mut text = format!("{} answered {}", self.server, rcode_mnemonic(rcode));
        if let Some(tsig) = tsig {
            let key = self.key_name();
            let why = match tsig {
                TsigError::BadSig => {
                    format!("TSIG BADSIG: the server knows key {key} but the secret does not match")
                }
                TsigError::BadKey => {
                    format!("TSIG BADKEY: the server does not know key {key} with hmac-sha256")
                }
                TsigError::BadTime => {
                    "TSIG BADTIME: the clocks of this host and the server differ too much"
                        .to_owned()
                }
                TsigError::BadTrunc => "TSIG BADTRUNC".to_owned(),
                TsigError::Unknown(code) => format!("TSIG error {code}"),
            };
            text.push_str(&format!(" ({why})"));
        } else {
            let hint = match rcode {
                ResponseCode::Refused => Some("the key may not update this zone or name"),
                ResponseCode::NotAuth => Some("the server is not authoritative for the zone"),
                ResponseCode::NotZone => Some("the name is not in the zone"),
                _ => None,
            };
            if let Some(hint) = hint {
                text.push_str(&format!(" ({hint})"));
            }
        }
        text
    }
}

/// The RFC mnemonic of an rcode (`NOTAUTH`), which operators know from `dig` and logs.
fn rcode_mnemonic(rcode: ResponseCode) -> String {
    let name = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        other => return format!("rcode {}", u16::from(other)),
    };
    name.to_owned()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchanger() -> Exchanger {
        Exchanger::new(
            "127.0.0.1:53".parse().expect("address"),
            "acmeport",
            &Secret::new("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="),
            Duration::from_secs(1),
        )
        .expect("valid settings")
    }

    #[test]
    fn refusals_name_the_rcode_and_the_tsig_cause() {
        let text = exchanger().refusal(ResponseCode::NotAuth, Some(TsigError::BadSig));
        assert!(
            text.contains("NOTAUTH") && text.contains("BADSIG"),
            "{text}"
        );
        let text = exchanger().refusal(ResponseCode::NotAuth, Some(TsigError::BadKey));
        assert!(
            text.contains("BADKEY") && text.contains("acmeport."),
            "{text}"
        );
        let text = exchanger().refusal(ResponseCode::Refused, None);
        assert!(text.contains("REFUSED"), "{text}");
    }

    #[test]
    fn secrets_must_be_base64() {
        let err = Exchanger::new(
            "127.0.0.1:53".parse().expect("address"),
            "acmeport",
            &Secret::new("not base64!"),
            Duration::from_secs(1),
        )
        .err()
        .expect("rejected");
        assert!(matches!(err, SettingsError::Secret));
        assert!(
            !err.to_string().contains("not base64!"),
            "the secret leaked: {err}"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("c2VjcmV0");
        let printed = format!("{secret:?}");
        assert!(
            printed.contains("***") && !printed.contains("c2VjcmV0"),
            "{printed}"
        );
    }
}
