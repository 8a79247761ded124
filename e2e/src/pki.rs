//! A throwaway PKI for the TLS tests, made with rcgen at test time: CAs, certificates with
//! chosen names, CNs and serial numbers, and revocation lists, as PEM files in a temporary
//! directory that etcd's flags and curl/openssl/etcdctl can be pointed at.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};

/// What a certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
    /// A member's peer certificate: it serves the peer URL and dials the others with it.
    Both,
}

/// PEM files of CAs and the certificates they signed.
pub struct Pki {
    dir: tempfile::TempDir,
    cas: RefCell<HashMap<String, Issuer<'static, KeyPair>>>,
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

impl Pki {
    /// A CA `ca` with a server certificate for 127.0.0.1 and localhost (`server`) and a
    /// client certificate (`client`), and a second CA `other-ca` that signed neither.
    pub fn new() -> Pki {
        let pki = Pki::empty();
        pki.ca("ca");
        pki.ca("other-ca");
        let local = ["127.0.0.1", "localhost"];
        pki.leaf("ca", "server", "server", &local, Usage::Server, 1);
        pki.leaf("ca", "client", "client", &[], Usage::Client, 2);
        pki
    }

    /// No files yet.
    pub fn empty() -> Pki {
        Pki {
            dir: tempfile::tempdir().expect("tempdir"),
            cas: RefCell::default(),
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of file `name`.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Writes `name` by renaming a complete file over it, as rotation tools do, so a reader
    /// never sees half of it.
    fn write(&self, name: &str, pem: String) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, pem).expect("write PEM");
        std::fs::rename(&tmp, self.path(name)).expect("rename PEM");
    }

    /// A self-signed CA, written as `<name>.crt`.
    pub fn ca(&self, name: &str) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        self.write(&format!("{name}.crt"), cert.pem());
        self.cas
            .borrow_mut()
            .insert(name.to_string(), Issuer::new(params, key));
    }

    /// A certificate signed by CA `ca` with common name `cn`, valid for `names`, with
    /// serial number `serial`, written as `<name>.crt` and `<name>.key`.
    pub fn leaf(&self, ca: &str, name: &str, cn: &str, names: &[&str], usage: Usage, serial: u64) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Both => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        let key = KeyPair::generate().expect("key");
        let cas = self.cas.borrow();
        let issuer = cas.get(ca).expect("CA made first");
        let cert = params.signed_by(&key, issuer).expect("signed certificate");
        // The key first: a reader that sees the new certificate finds its key.
        self.write(&format!("{name}.key"), key.serialize_pem());
        self.write(&format!("{name}.crt"), cert.pem());
    }

    /// A revocation list of CA `ca` revoking the `serials`, written as `<name>`.
    pub fn crl(&self, ca: &str, name: &str, serials: &[u64]) {
        let cas = self.cas.borrow();
        let issuer = cas.get(ca).expect("CA made first");
        let revoked_certs = serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&s.to_be_bytes()),
                revocation_time: date_time_ymd(2024, 1, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect();
        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .expect("signed CRL");
        self.write(name, crl.pem().expect("CRL PEM"));
    }

    /// etcd's flags for serving clients with the server certificate and requiring clients
    /// to show one the CA signed.
    pub fn server_flags(&self) -> Vec<String> {
        vec![
            format!("--cert-file={}", self.path("server.crt")),
            format!("--key-file={}", self.path("server.key")),
            format!("--trusted-ca-file={}", self.path("ca.crt")),
            "--client-cert-auth".to_string(),
        ]
    }

    /// etcdctl's flags trusting `ca` and showing the client certificate `client`.
    pub fn ctl_flags_as(&self, ca: &str, client: &str) -> Vec<String> {
        vec![
            format!("--cacert={}", self.path(ca)),
            format!("--cert={}", self.path(&format!("{client}.crt"))),
            format!("--key={}", self.path(&format!("{client}.key"))),
        ]
    }

    /// etcdctl's flags trusting `ca` and showing the client certificate.
    pub fn ctl_flags(&self, ca: &str) -> Vec<String> {
        self.ctl_flags_as(ca, "client")
    }
}
