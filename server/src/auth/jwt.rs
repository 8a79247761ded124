//! JWT auth tokens as etcd 3.4 issues and checks them (`--auth-token jwt,...`), so that a
//! client's token from one of Debian's members is accepted by ours and the other way round.
//!
//! A token is `header.claims.signature` with the claims `username` (string), `revision` (the
//! auth revision at login, a JSON number) and `exp` (Unix seconds). Checking follows Go's
//! golang-jwt v3 as etcd 3.4 calls it: the header's `alg` must be the configured method; `exp`,
//! `iat` and `nbf` are each checked only when present (a token without `exp`, as etcd 3.3
//! issued, never expires), with no leeway. Deliberately stricter than Go: a time claim that is
//! not a number, a non-string `username` or a missing `revision` refuses the token (Go skips
//! the former and panics on the latter).
//!
//! Keys are read as golang-jwt reads them: RSA private keys in PKCS#1 or PKCS#8 PEM, EC private
//! keys in SEC1 or PKCS#8 PEM, public keys as a `PUBLIC KEY` or a certificate; for HS* the whole
//! `priv-key` file is the secret. Signatures are ring's (through `jsonwebtoken`), which sets
//! these limits where Go has none:
//! - ES512 (P-521) cannot be served: ring has no P-521 signatures;
//! - RSA keys must be 2048 to 8192 bits (4096 to sign);
//! - an EC key must be on the method's curve (Go accepts any curve and then fails each
//!   signature).
//!
//! Also unlike etcd 3.4, a public key that does not belong to the private key is refused:
//! etcd means to (`auth: public and private keys don't match`), but compares with `&&` where
//! `||` was meant, so it catches almost no mismatch and then ignores the public key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use rustls_pki_types::PrivateKeyDer;
use serde::Serialize;
use serde_json::{Map, Value};
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

use super::token_flag::{JwtOptions, SignMethod};

/// Why the JWT provider could not be set up or could not sign. `Display` is etcd 3.4's error
/// where it has one (golang-jwt's texts for keys it cannot use).
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// A key file could not be read. etcd logs "problem loading JWT options" with
    /// `open PATH: REASON` ([`JwtError::reason`]) and fails with this.
    #[error("auth: invalid auth options")]
    ReadKey { path: String, reason: String },
    /// No key the method can use (HS* without `priv-key`, or no key file at all).
    #[error("auth: missing key data")]
    MissingKey,
    #[error("auth: public and private keys don't match")]
    KeyMismatch,
    /// No PEM block where a key was expected.
    #[error("Invalid Key: Key must be PEM encoded PKCS1 or PKCS8 private key")]
    NotPem,
    #[error("Key is not a valid RSA private key")]
    NotRsaPrivate,
    #[error("Key is not a valid RSA public key")]
    NotRsaPublic,
    #[error("Key is not a valid ECDSA private key")]
    NotEcPrivate,
    #[error("Key is not a valid ECDSA public key")]
    NotEcPublic,
    /// `EdDSA` and `none`: etcd 3.4 resolves them and then refuses them with this text.
    #[error("unsupported signing method: {go_type}")]
    UnsupportedByEtcd { go_type: &'static str },
    /// A method etcd 3.4 serves and this build cannot (ES512; see the module doc).
    #[error("sign-method {0} is not supported: P-521 signatures are not available")]
    UnsupportedHere(&'static str),
    /// `assign` with only a public key.
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    #[error("failed to sign a JWT token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

impl JwtError {
    /// The error line etcd logs before failing, where it logs one: only for a key file it
    /// cannot read (it returns the other errors without a line of their own).
    pub fn reason(&self) -> Option<String> {
        match self {
            JwtError::ReadKey { path, reason } => Some(format!(
                "problem loading JWT options: open {path}: {reason}"
            )),
            _ => None,
        }
    }
}

/// Issues and checks tokens with one method and key pair (or only a public key: verify-only).
pub struct JwtTokens {
    method: SignMethod,
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtTokens")
            .field("method", &self.method)
            .field("verify_only", &self.is_verify_only())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The claims etcd 3.4 signs, in the order Go writes a map's keys (sorted), so our tokens
/// read the same as etcd's.
#[derive(Serialize)]
struct Claims<'a> {
    exp: i64,
    revision: u64,
    username: &'a str,
}

/// How a method's keys are read and its signatures made.
enum Family {
    Rsa,
    Ec {
        signing: &'static ring_sig::EcdsaSigningAlgorithm,
        /// The curve's OID, DER content bytes (as in a key's parameters).
        curve: &'static [u8],
    },
    Hmac,
}

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

fn family(method: SignMethod) -> Result<(Algorithm, Family), JwtError> {
    use SignMethod as M;
    let ec = |alg, signing, curve| Ok((alg, Family::Ec { signing, curve }));
    match method {
        M::Rs256 => Ok((Algorithm::RS256, Family::Rsa)),
        M::Rs384 => Ok((Algorithm::RS384, Family::Rsa)),
        M::Rs512 => Ok((Algorithm::RS512, Family::Rsa)),
        M::Ps256 => Ok((Algorithm::PS256, Family::Rsa)),
        M::Ps384 => Ok((Algorithm::PS384, Family::Rsa)),
        M::Ps512 => Ok((Algorithm::PS512, Family::Rsa)),
        M::Es256 => ec(
            Algorithm::ES256,
            &ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            OID_P256,
        ),
        M::Es384 => ec(
            Algorithm::ES384,
            &ring_sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            OID_P384,
        ),
        M::Es512 => Err(JwtError::UnsupportedHere("ES512")),
        M::Hs256 => Ok((Algorithm::HS256, Family::Hmac)),
        M::Hs384 => Ok((Algorithm::HS384, Family::Hmac)),
        M::Hs512 => Ok((Algorithm::HS512, Family::Hmac)),
        M::EdDsa => Err(JwtError::UnsupportedByEtcd {
            go_type: "*jwt.SigningMethodEd25519",
        }),
        M::None => Err(JwtError::UnsupportedByEtcd {
            go_type: "*jwt.signingMethodNone",
        }),
    }
}

impl JwtTokens {
    /// Reads the key files of `opts` and checks they suit the method. Without a private key
    /// (RSA and EC methods only) the tokens are verify-only.
    pub fn new(opts: &JwtOptions) -> Result<Self, JwtError> {
        // etcd reads both files before looking at the method.
        let public = opts.public_key.as_deref().map(read_key).transpose()?;
        let private = opts.private_key.as_deref().map(read_key).transpose()?;
        let (algorithm, family) = family(opts.sign_method)?;
        let (signing, verifying) = match family {
            Family::Hmac => {
                // etcd uses the file's bytes as they are and ignores `pub-key`.
                let secret = private
                    .filter(|s| !s.is_empty())
                    .ok_or(JwtError::MissingKey)?;
                (
                    Some(EncodingKey::from_secret(&secret)),
                    DecodingKey::from_secret(&secret),
                )
            }
            Family::Rsa => {
                let signing = private.as_deref().map(rsa_private).transpose()?;
                let public = public.as_deref().map(rsa_public).transpose()?;
                pair(signing, public, DecodingKey::from_rsa_der)?
            }
            Family::Ec { signing, curve } => {
                let signing = private
                    .as_deref()
                    .map(|pem| ec_private(pem, signing, curve))
                    .transpose()?;
                let public = public
                    .as_deref()
                    .map(|pem| ec_public(pem, curve))
                    .transpose()?;
                pair(signing, public, DecodingKey::from_ec_der)?
            }
        };
        let mut validation = Validation::new(algorithm);
        // The time claims are checked in `info_at` with Go's rules: each only when present,
        // no leeway; and etcd sets no audience.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(JwtTokens {
            method: opts.sign_method,
            signing,
            verifying,
            validation,
            ttl: opts.ttl,
        })
    }

    pub fn sign_method(&self) -> SignMethod {
        self.method
    }

    /// Only a public key was given: tokens are checked, never issued.
    pub fn is_verify_only(&self) -> bool {
        self.signing.is_none()
    }

    /// A token for `username` at auth revision `revision`, valid for the configured ttl.
    pub fn assign(&self, username: &str, revision: u64) -> Result<String, JwtError> {
        let expires = SystemTime::now() + self.ttl;
        self.sign(&Claims {
            exp: unix_seconds(expires),
            revision,
            username,
        })
    }

    fn sign(&self, claims: &impl Serialize) -> Result<String, JwtError> {
        let key = self.signing.as_ref().ok_or(JwtError::VerifyOnly)?;
        let header = Header::new(self.validation.algorithms[0]);
        Ok(jsonwebtoken::encode(&header, claims, key)?)
    }

    /// The user name and auth revision of a token this member accepts now; `None` for one
    /// that is malformed, signed with another key or method, expired or not yet valid.
    pub fn info(&self, token: &str) -> Option<(String, u64)> {
        self.info_at(token, unix_seconds(SystemTime::now()))
    }

    fn info_at(&self, token: &str, now: i64) -> Option<(String, u64)> {
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.verifying, &self.validation)
                .ok()?
                .claims;
        // Go reads JSON numbers as float64 and truncates them to whole seconds.
        let time = |name: &str| match claims.get(name) {
            None => Some(None),
            Some(v) => v.as_f64().map(|t| Some(t as i64)),
        };
        let expired = time("exp")?.is_some_and(|exp| now > exp);
        let issued_later = time("iat")?.is_some_and(|iat| now < iat);
        let not_yet = time("nbf")?.is_some_and(|nbf| now < nbf);
        if expired || issued_later || not_yet {
            return None;
        }
        let username = claims.get("username")?.as_str()?.to_string();
        Some((username, revision(claims.get("revision")?)?))
    }
}

/// etcd reads the revision as Go's float64 and converts it to uint64 (exact below 2^53,
/// which auth revisions do not reach); a whole number is taken exactly here.
fn revision(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        (f >= 0.0).then_some(f as u64)
    })
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    }
}

fn read_key(path: &std::path::Path) -> Result<Vec<u8>, JwtError> {
    std::fs::read(path).map_err(|e| JwtError::ReadKey {
        path: path.display().to_string(),
        reason: crate::config::error::go_io_reason(&e),
    })
}

/// The signing key and the verifying key from a private key (its public half, in the form
/// `decoding` takes) and a public key, as etcd chooses: the private key when there is one.
fn pair(
    private: Option<(EncodingKey, Vec<u8>)>,
    public: Option<Vec<u8>>,
    decoding: fn(&[u8]) -> DecodingKey,
) -> Result<(Option<EncodingKey>, DecodingKey), JwtError> {
    match (private, public) {
        (None, None) => Err(JwtError::MissingKey),
        (None, Some(public)) => Ok((None, decoding(&public))),
        (Some((_, derived)), Some(public)) if derived != public => Err(JwtError::KeyMismatch),
        (Some((signing, derived)), _) => Ok((Some(signing), decoding(&derived))),
    }
}

/// An RSA private key (PKCS#1 or PKCS#8 PEM): the signing key and the PKCS#1 public key.
fn rsa_private(pem: &[u8]) -> Result<(EncodingKey, Vec<u8>), JwtError> {
    let pkcs1 = match PrivateKeyDer::from_pem_slice(pem).map_err(|_| JwtError::NotPem)? {
        PrivateKeyDer::Pkcs1(der) => der.secret_pkcs1_der().to_vec(),
        PrivateKeyDer::Pkcs8(der) => der::pkcs8_key(der.secret_pkcs8_der())
            .filter(|(alg, _)| *alg == der::RSA_ENCRYPTION)
            .ok_or(JwtError::NotRsaPrivate)?
            .1
            .to_vec(),
        _ => return Err(JwtError::NotRsaPrivate),
    };
    let pair = RsaKeyPair::from_der(&pkcs1).map_err(|_| JwtError::NotRsaPrivate)?;
    let public = pair.public().as_ref().to_vec();
    Ok((EncodingKey::from_rsa_der(&pkcs1), public))
}

/// An EC private key (SEC1 or PKCS#8 PEM) on `curve`: the signing key and the public point.
fn ec_private(
    pem: &[u8],
    alg: &'static ring_sig::EcdsaSigningAlgorithm,
    curve: &[u8],
) -> Result<(EncodingKey, Vec<u8>), JwtError> {
    let pkcs8 = match PrivateKeyDer::from_pem_slice(pem).map_err(|_| JwtError::NotPem)? {
        PrivateKeyDer::Sec1(der) => der::sec1_to_pkcs8(der.secret_sec1_der(), curve),
        PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der().to_vec(),
        _ => return Err(JwtError::NotEcPrivate),
    };
    let pair = EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &SystemRandom::new())
        .map_err(|_| JwtError::NotEcPrivate)?;
    let public = pair.public_key().as_ref().to_vec();
    Ok((EncodingKey::from_ec_der(&pkcs8), public))
}

/// The first PEM block of a public-key file as a SubjectPublicKeyInfo, read from a
/// `PUBLIC KEY` block or a certificate; `None` if it is neither.
fn with_public_key<T>(pem: &[u8], read: impl FnOnce(&SubjectPublicKeyInfo) -> T) -> Option<T> {
    match pem::from_buf(&mut &pem[..]).ok()?? {
        (SectionKind::PublicKey, der) => Some(read(&SubjectPublicKeyInfo::from_der(&der).ok()?.1)),
        (SectionKind::Certificate, der) => {
            Some(read(X509Certificate::from_der(&der).ok()?.1.public_key()))
        }
        _ => None,
    }
}

/// An RSA public key: its PKCS#1 DER, as ring verifies with.
fn rsa_public(pem: &[u8]) -> Result<Vec<u8>, JwtError> {
    with_public_key(pem, |spki| {
        (spki.algorithm.algorithm.to_id_string() == OID_RSA_ENCRYPTION)
            .then(|| spki.subject_public_key.data.to_vec())
    })
    .flatten()
    .ok_or(JwtError::NotRsaPublic)
}

/// An EC public key on `curve`: its point, as ring verifies with.
fn ec_public(pem: &[u8], curve: &[u8]) -> Result<Vec<u8>, JwtError> {
    with_public_key(pem, |spki| {
        let on_curve = spki.algorithm.algorithm.as_bytes() == OID_EC_PUBLIC_KEY
            && spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .is_some_and(|oid| oid.as_bytes() == curve);
        on_curve.then(|| spki.subject_public_key.data.to_vec())
    })
    .flatten()
    .ok_or(JwtError::NotEcPublic)
}

/// The little DER that ring's key formats need beyond what rustls-pki-types parses: the key
/// inside a PKCS#8 envelope (ring signs RSA with PKCS#1), and a SEC1 EC key put in one (ring
/// reads EC keys only as PKCS#8).
mod der {
    /// rsaEncryption's OID, DER content bytes.
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

    /// One TLV: its tag, its content and what follows it.
    fn next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | b as usize);
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (t, content, rest) = next(input)?;
        (t == tag).then_some((content, rest))
    }

    /// A PKCS#8 PrivateKeyInfo's algorithm OID and private key octets.
    pub fn pkcs8_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
        let (info, _) = expect(der, 0x30)?;
        let (_version, rest) = expect(info, 0x02)?;
        let (alg, rest) = expect(rest, 0x30)?;
        let (oid, _params) = expect(alg, 0x06)?;
        let (key, _) = expect(rest, 0x04)?;
        Some((oid, key))
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// A SEC1 ECPrivateKey wrapped as PKCS#8 for `curve` (ring checks the key's own curve
    /// parameter, when present, against it).
    pub fn sec1_to_pkcs8(sec1: &[u8], curve: &[u8]) -> Vec<u8> {
        let alg = [tlv(0x06, super::OID_EC_PUBLIC_KEY), tlv(0x06, curve)].concat();
        let info = [tlv(0x02, &[0]), tlv(0x30, &alg), tlv(0x04, sec1)].concat();
        tlv(0x30, &info)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;

    /// Runs openssl (as the TLS tests do) to make keys in the formats etcd's users have.
    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// Key files of each kind in one directory, named by what they hold.
    struct Keys(tempfile::TempDir);

    impl Keys {
        fn new() -> Keys {
            let keys = Keys(tempfile::tempdir().expect("temp dir"));
            let d = keys.0.path();
            // RSA as PKCS#8 and PKCS#1, a second RSA key, EC keys as SEC1 and PKCS#8.
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    "rsa",
                ],
            );
            openssl(
                d,
                &["rsa", "-in", "rsa", "-traditional", "-out", "rsa-pkcs1"],
            );
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    "rsa2",
                ],
            );
            openssl(
                d,
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    "p256",
                ],
            );
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                    "-out",
                    "p384",
                ],
            );
            for key in ["rsa", "rsa2", "p256", "p384"] {
                openssl(
                    d,
                    &["pkey", "-in", key, "-pubout", "-out", &format!("{key}.pub")],
                );
            }
            openssl(
                d,
                &[
                    "req", "-x509", "-key", "rsa", "-subj", "/CN=jwt", "-days", "1", "-out",
                    "rsa.crt",
                ],
            );
            std::fs::write(d.join("secret"), b"a shared secret\n").expect("secret");
            keys
        }

        fn path(&self, name: &str) -> Option<PathBuf> {
            Some(self.0.path().join(name))
        }

        fn tokens(&self, method: SignMethod, private: &str, public: &str) -> JwtTokens {
            self.try_tokens(method, private, public)
                .unwrap_or_else(|e| panic!("{method:?} {private} {public}: {e}"))
        }

        /// `""` leaves a key out.
        fn try_tokens(
            &self,
            method: SignMethod,
            private: &str,
            public: &str,
        ) -> Result<JwtTokens, JwtError> {
            let opt = |name: &str| {
                if name.is_empty() {
                    None
                } else {
                    self.path(name)
                }
            };
            JwtTokens::new(&JwtOptions {
                sign_method: method,
                public_key: opt(public),
                private_key: opt(private),
                ttl: Duration::from_secs(300),
                unknown_options: vec![],
            })
        }
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn unb64(text: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .expect("base64")
    }

    /// Each method's key file, and the public key that goes with it ("" for HS*).
    fn supported() -> Vec<(SignMethod, &'static str, &'static str)> {
        use SignMethod as M;
        let mut out: Vec<_> = [M::Rs256, M::Rs384, M::Rs512, M::Ps256, M::Ps384, M::Ps512]
            .into_iter()
            .map(|m| (m, "rsa", "rsa.pub"))
            .collect();
        out.push((M::Es256, "p256", "p256.pub"));
        out.push((M::Es384, "p384", "p384.pub"));
        out.extend([M::Hs256, M::Hs384, M::Hs512].map(|m| (m, "secret", "")));
        out
    }

    #[test]
    fn each_method_round_trips() {
        let keys = Keys::new();
        for (method, private, public) in supported() {
            let tokens = keys.tokens(method, private, public);
            assert!(!tokens.is_verify_only());
            let token = tokens.assign("alice", 42).expect("signed");
            assert_eq!(
                tokens.info(&token),
                Some(("alice".into(), 42)),
                "{method:?}"
            );
            // The header names the method, as Go's library checks.
            let header: Value =
                serde_json::from_slice(&unb64(token.split('.').next().unwrap())).unwrap();
            assert_eq!(header["alg"], method.name());
            if !public.is_empty() {
                let verifier = keys.tokens(method, "", public);
                assert!(verifier.is_verify_only());
                assert_eq!(
                    verifier.info(&token),
                    Some(("alice".into(), 42)),
                    "{method:?}"
                );
                assert!(matches!(
                    verifier.assign("alice", 1),
                    Err(JwtError::VerifyOnly)
                ));
            }
        }
    }

    #[test]
    fn key_formats() {
        let keys = Keys::new();
        let pkcs1 = keys.tokens(SignMethod::Rs256, "rsa-pkcs1", "rsa.crt");
        let pkcs8 = keys.tokens(SignMethod::Rs256, "rsa", "rsa.pub");
        let token = pkcs1.assign("bob", 3).unwrap();
        assert_eq!(pkcs8.info(&token), Some(("bob".into(), 3)));
        // A certificate serves as the public key.
        let by_cert = keys.tokens(SignMethod::Rs256, "", "rsa.crt");
        assert_eq!(by_cert.info(&token), Some(("bob".into(), 3)));
    }

    #[test]
    fn claims_are_etcds() {
        let keys = Keys::new();
        let tokens = keys.tokens(SignMethod::Es256, "p256", "");
        let before = unix_seconds(SystemTime::now());
        let token = tokens.assign("root", 9).unwrap();
        let claims: Map<String, Value> =
            serde_json::from_slice(&unb64(token.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(
            claims.keys().collect::<Vec<_>>(),
            ["exp", "revision", "username"]
        );
        assert_eq!(claims["username"], "root");
        assert_eq!(claims["revision"], 9);
        let exp = claims["exp"].as_i64().expect("exp is whole seconds");
        assert!(
            (before + 300..=before + 301).contains(&exp),
            "{exp} vs {before}"
        );
    }

    #[test]
    fn time_claims() {
        let keys = Keys::new();
        let tokens = keys.tokens(SignMethod::Hs256, "secret", "");
        let at = |claims: Value, now: i64| tokens.info_at(&tokens.sign(&claims).unwrap(), now);
        let who = Some(("u".to_string(), 1));
        // Valid through the second of `exp`, as Go's `now <= exp`.
        assert_eq!(
            at(json!({"username": "u", "revision": 1, "exp": 1000}), 1000),
            who
        );
        assert_eq!(
            at(json!({"username": "u", "revision": 1, "exp": 1000}), 1001),
            None
        );
        // An already expired token, checked on the real clock.
        let expired = tokens
            .sign(&json!({"username": "u", "revision": 1, "exp": unix_seconds(SystemTime::now()) - 10}))
            .unwrap();
        assert_eq!(tokens.info(&expired), None);
        // No `exp` (etcd 3.3's tokens): never expires.
        assert_eq!(at(json!({"username": "u", "revision": 1}), i64::MAX), who);
        assert_eq!(
            at(json!({"username": "u", "revision": 1, "nbf": 1000}), 999),
            None
        );
        assert_eq!(
            at(json!({"username": "u", "revision": 1, "nbf": 1000}), 1000),
            who
        );
        assert_eq!(
            at(json!({"username": "u", "revision": 1, "iat": 1000}), 999),
            None
        );
        assert_eq!(
            at(json!({"username": "u", "revision": 1, "exp": "never"}), 0),
            None
        );
        // Go's float64: fractional seconds are cut off.
        assert_eq!(
            at(
                json!({"username": "u", "revision": 1.0, "exp": 1000.9}),
                1000
            ),
            who
        );
    }

    #[test]
    fn malformed_claims() {
        let keys = Keys::new();
        let tokens = keys.tokens(SignMethod::Hs256, "secret", "");
        for claims in [
            json!({"revision": 1}),
            json!({"username": 7, "revision": 1}),
            json!({"username": "u"}),
            json!({"username": "u", "revision": -1}),
            json!({"username": "u", "revision": "1"}),
            json!(["username", "u"]),
        ] {
            assert_eq!(
                tokens.info_at(&tokens.sign(&claims).unwrap(), 0),
                None,
                "{claims}"
            );
        }
        for junk in ["", ".", "..", "a.b.c", "a.b", "ey.ey.ey", "a.b.c.d"] {
            assert_eq!(tokens.info(junk), None, "{junk}");
        }
    }

    #[test]
    fn tampered_tokens() {
        let keys = Keys::new();
        for (method, private, _) in supported() {
            let tokens = keys.tokens(method, private, "");
            let token = tokens.assign("alice", 5).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            let other_claims = b64(br#"{"exp":99999999999,"revision":5,"username":"root"}"#);
            let swapped = format!("{}.{other_claims}.{}", parts[0], parts[2]);
            assert_eq!(tokens.info(&swapped), None, "{method:?}");
            let mut sig = unb64(parts[2]);
            sig[0] ^= 1;
            let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
            assert_eq!(tokens.info(&flipped), None, "{method:?}");
        }
    }

    #[test]
    fn wrong_key_or_method() {
        let keys = Keys::new();
        let token = keys
            .tokens(SignMethod::Rs256, "rsa2", "")
            .assign("alice", 5)
            .unwrap();
        assert_eq!(keys.tokens(SignMethod::Rs256, "rsa", "").info(&token), None);
        assert_eq!(
            keys.tokens(SignMethod::Rs256, "", "rsa.pub").info(&token),
            None
        );
        // Same key, other method: Go's key function refuses the header's `alg`.
        let token = keys
            .tokens(SignMethod::Rs384, "rsa", "")
            .assign("alice", 5)
            .unwrap();
        assert_eq!(keys.tokens(SignMethod::Rs256, "rsa", "").info(&token), None);
        let token = keys
            .tokens(SignMethod::Hs256, "secret", "")
            .assign("alice", 5)
            .unwrap();
        assert_eq!(
            keys.tokens(SignMethod::Hs512, "secret", "").info(&token),
            None
        );
        // The classic confusion: HS256 keyed with the RSA public key file.
        std::fs::copy(
            keys.0.path().join("rsa.pub"),
            keys.0.path().join("pub-as-secret"),
        )
        .unwrap();
        let forged = keys
            .tokens(SignMethod::Hs256, "pub-as-secret", "")
            .assign("root", 1)
            .unwrap();
        assert_eq!(
            keys.tokens(SignMethod::Rs256, "", "rsa.pub").info(&forged),
            None
        );
    }

    #[test]
    fn none_algorithm_refused() {
        let keys = Keys::new();
        let tokens = keys.tokens(SignMethod::Rs256, "rsa", "");
        let claims = b64(br#"{"revision":1,"username":"root"}"#);
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            for sig in ["", "x"] {
                let token = format!("{}.{claims}.{sig}", b64(header.as_bytes()));
                assert_eq!(tokens.info(&token), None, "{token}");
            }
        }
        // As a sign-method, etcd refuses it at startup with Go's type name.
        let err = keys.try_tokens(SignMethod::None, "rsa", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported signing method: *jwt.signingMethodNone"
        );
    }

    #[test]
    fn key_errors() {
        let keys = Keys::new();
        let err = |m, private, public| keys.try_tokens(m, private, public).unwrap_err().to_string();
        use SignMethod as M;
        assert_eq!(err(M::Rs256, "", ""), "auth: missing key data");
        assert_eq!(err(M::Hs256, "", "secret"), "auth: missing key data");
        assert_eq!(
            err(M::Rs256, "p256", ""),
            "Key is not a valid RSA private key"
        );
        assert_eq!(
            err(M::Rs256, "", "p256.pub"),
            "Key is not a valid RSA public key"
        );
        assert_eq!(
            err(M::Es256, "rsa", ""),
            "Key is not a valid ECDSA private key"
        );
        assert_eq!(
            err(M::Es256, "", "rsa.pub"),
            "Key is not a valid ECDSA public key"
        );
        // An EC key on another curve than the method's.
        assert_eq!(
            err(M::Es256, "p384", ""),
            "Key is not a valid ECDSA private key"
        );
        assert_eq!(
            err(M::Es384, "", "p256.pub"),
            "Key is not a valid ECDSA public key"
        );
        assert_eq!(
            err(M::Rs256, "secret", ""),
            "Invalid Key: Key must be PEM encoded PKCS1 or PKCS8 private key"
        );
        assert_eq!(
            err(M::Rs256, "rsa", "rsa2.pub"),
            "auth: public and private keys don't match"
        );
        assert_eq!(
            err(M::Es256, "p256", "p384.pub"),
            "Key is not a valid ECDSA public key"
        );
        assert_eq!(
            err(M::EdDsa, "rsa", ""),
            "unsupported signing method: *jwt.SigningMethodEd25519"
        );
        assert!(err(M::Es512, "p256", "").contains("ES512"));
        let missing = keys.try_tokens(M::Rs256, "nonexistent", "").unwrap_err();
        assert_eq!(missing.to_string(), "auth: invalid auth options");
        let path = keys.0.path().join("nonexistent");
        assert_eq!(
            missing.reason(),
            Some(format!(
                "problem loading JWT options: open {}: no such file or directory",
                path.display()
            ))
        );
        assert_eq!(
            keys.try_tokens(M::Rs256, "", "").unwrap_err().reason(),
            None
        );
    }

    #[test]
    fn der_helpers() {
        // A long form length, and lengths running past the input.
        let long = der::sec1_to_pkcs8(&[7u8; 300], OID_P256);
        assert_eq!(&long[..4], &[0x30, 0x82, 0x01, 0x48]);
        assert_eq!(der::pkcs8_key(&long).map(|(_, k)| k.len()), Some(300));
        assert_eq!(der::pkcs8_key(&long[..long.len() - 1]), None);
        assert_eq!(der::pkcs8_key(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der::pkcs8_key(&[]), None);
    }

    use serde_json::json;
}
