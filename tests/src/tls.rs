//! Throwaway certificates for TLS test servers.
//!
//! psor has to work against TLS-only Redis with a private CA and optional client
//! certificates, and that cannot be tested with checked-in keys that expire or leak. Each
//! TLS server gets a fresh CA, a server certificate for 127.0.0.1/localhost and a client
//! certificate, all generated with rcgen at test time and written as PEM into the server's
//! temp dir.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Installs ring as the process-wide rustls crypto provider, once.
///
/// The workspace builds rustls without a default provider, and the redis crate does not
/// pick one, so every TLS connection needs this to have happened first. The harness calls
/// it before building any TLS client; tests that build their own clients may call it too.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed a provider first: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Paths of the PEM files generated for one TLS server.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate that signed both the server and the client certificate.
    pub ca_cert: PathBuf,
    /// The server certificate (SANs 127.0.0.1 and localhost).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA, for mutual TLS.
    pub client_cert: PathBuf,
    /// The client certificate's private key.
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Generates a CA, a server certificate and a client certificate into `dir`.
    ///
    /// # Panics
    /// If generation or writing fails; this is test setup.
    pub fn generate(dir: &Path) -> TlsFiles {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name = dn("psor test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-sign CA");

        let leaf = |cn: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(sans).expect("leaf params");
            params.distinguished_name = dn(cn);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &ca).expect("sign leaf");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) =
            leaf("127.0.0.1", vec!["127.0.0.1".into(), "localhost".into()], ExtendedKeyUsagePurpose::ServerAuth);
        let (client_pem, client_key_pem) =
            leaf("psor test client", vec!["psor-client".into()], ExtendedKeyUsagePurpose::ClientAuth);

        let files = TlsFiles {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        for (path, pem) in [
            (&files.ca_cert, ca.pem()),
            (&files.server_cert, server_pem),
            (&files.server_key, server_key_pem),
            (&files.client_cert, client_pem),
            (&files.client_key, client_key_pem),
        ] {
            fs::write(path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        files
    }

    /// The certificates in the form `redis::Client::build_with_tls` takes: the CA as the
    /// only root, and the client certificate for mutual TLS.
    pub fn redis_certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read(&self.client_cert),
                client_key: read(&self.client_key),
            }),
            root_cert: Some(read(&self.ca_cert)),
        }
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
