//! The PEM files of `--cert-file`/`--key-file`, `--trusted-ca-file` and
//! `--client-crl-file` (and their `--peer-*` twins): `tls::keys::load_key_pair`,
//! `load_roots`, `load_crls`, and `ClientVerifier::new`, where the CA and CRL are parsed by
//! webpki, all reading one file as each option would.
//!
//! The input is either the file's bytes (first byte even) or, so that the fuzzer mutates DER
//! rather than base64, a list of DER blobs each framed as `[label][length u16 BE][bytes]`
//! and written as PEM sections with the label's name (first byte odd).
//!
//! Invariant: every call answers a value or an error, never a panic.

use std::sync::Arc;

use etcd_server::tls::keys::{load_crls, load_key_pair, load_roots};
use etcd_server::tls::verify::ClientVerifier;
use etcd_server::tls::TlsInfo;

/// The section names the loaders look for (and one they skip).
pub const LABELS: [&str; 6] = [
    "CERTIFICATE",
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "X509 CRL",
    "PUBLIC KEY",
];

/// PEM sections of `blobs` as (label index, DER): the inverse of the framed input.
pub fn pem(blobs: &[(usize, Vec<u8>)]) -> Vec<u8> {
    use base64::Engine;
    let mut out = String::new();
    for (label, der) in blobs {
        let label = LABELS[label % LABELS.len()];
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        out += &format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out += std::str::from_utf8(line).expect("base64 is ASCII");
            out.push('\n');
        }
        out += &format!("-----END {label}-----\n");
    }
    out.into_bytes()
}

/// The framed input for `blobs`: what `check` turns back into `pem(blobs)`.
pub fn framed(blobs: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![1u8];
    for (label, der) in blobs {
        out.push(*label as u8);
        out.extend_from_slice(&(der.len() as u16).to_be_bytes());
        out.extend_from_slice(der);
    }
    out
}

fn unframe(mut data: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut blobs = Vec::new();
    while let [label, hi, lo, rest @ ..] = data {
        let len = (u16::from_be_bytes([*hi, *lo]) as usize).min(rest.len());
        blobs.push((*label as usize, rest[..len].to_vec()));
        data = &rest[len..];
    }
    blobs
}

pub fn check(data: &[u8]) {
    let file = match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => pem(&unframe(rest)),
        Some((_, rest)) => rest.to_vec(),
        None => return,
    };
    let dir = crate::scratch::dir();
    let path = dir.path().join("tls.pem");
    std::fs::write(&path, &file).expect("PEM file written");
    let _ = load_key_pair(&path, &path);
    let _ = load_roots(&path);
    let _ = load_crls(&path);
    let info = TlsInfo {
        trusted_ca_file: path.display().to_string(),
        crl_file: path.display().to_string(),
        client_cert_auth: true,
        ..TlsInfo::default()
    };
    let _ = ClientVerifier::new(&info, Arc::new(rustls::crypto::ring::default_provider()));
}
