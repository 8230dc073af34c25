//! TLS on the API listener (`[tls]`, `docs/tls.md`): the certificate from
//! PEM files (watched and reloaded while serving) or made at start from a
//! fresh CA, HTTP/2 and HTTP/1.1 by ALPN, and the handshake of each accepted
//! connection, bounded in time, before `server` hands it to hyper.
//!
//! ```text
//! accept ─▶ first byte 0x16? no: a plain-HTTP client, told so in plain HTTP, closed
//!        ─▶ handshake (within [limits] header_read_timeout) ─▶ ALPN h2 | http/1.1 ─▶ hyper
//! ```
//!
//! The certificate sits behind a resolver that reads an [`ArcSwap`]: a
//! reload swaps it for new handshakes, and connections already open keep
//! theirs. A pair that does not load is logged and the old one kept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{info, warn};

use crate::config::{Tls, TlsCertificate};
use crate::listener::connection::RateLimitedLog;

/// How often the certificate files are looked at for a change.
const FILE_POLL: Duration = Duration::from_secs(2);
/// The largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why TLS cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {cause}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        cause: String,
    },
    /// The certificate or key is not usable by rustls.
    #[error("the TLS certificate is unusable: {0}")]
    Unusable(String),
    /// A certificate could not be made.
    #[error("cannot make a certificate: {0}")]
    Generate(String),
}

/// A CA and a leaf signed by it, as PEM: what `[tls] self_signed` makes at
/// start and `sluice cert` writes.
pub struct Generated {
    /// The CA certificate: what clients trust.
    pub ca_pem: String,
    /// The leaf certificate, for the names asked.
    pub cert_pem: String,
    /// The leaf's private key (PKCS #8).
    pub key_pem: String,
}

impl fmt::Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generated").finish_non_exhaustive()
    }
}

/// Makes a CA (valid 10 years) and a leaf for `names` (DNS names or IP
/// addresses; valid a year, under the 825 days some platforms accept).
///
/// # Errors
/// [`TlsError::Generate`] for a name that is neither.
pub fn generate(names: &[String]) -> Result<Generated, TlsError> {
    let error = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let (year, month, day) = today();
    let ca_key = KeyPair::generate().map_err(error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "sluice test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(year, month, day);
    ca_params.not_after = rcgen::date_time_ymd(year + 10, month, day.min(28));
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(error)?;
    let leaf_key = KeyPair::generate().map_err(error)?;
    let mut leaf_params = CertificateParams::new(names.to_vec()).map_err(error)?;
    if let Some(first) = names.first() {
        leaf_params.distinguished_name.push(DnType::CommonName, first.as_str());
    }
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.not_before = rcgen::date_time_ymd(year, month, day);
    leaf_params.not_after = rcgen::date_time_ymd(year + 1, month, day.min(28));
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(error)?;
    Ok(Generated { ca_pem: ca.pem(), cert_pem: leaf.pem(), key_pem: leaf_key.serialize_pem() })
}

/// Today's UTC date, as (year, month, day).
fn today() -> (i32, u8, u8) {
    let text = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let part = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse().ok());
    match (part(0..4), part(5..7), part(8..10)) {
        (Some(year), Some(month), Some(day)) => {
            (year, u8::try_from(month).unwrap_or(1), u8::try_from(day).unwrap_or(1))
        }
        _ => (2026, 1, 1),
    }
}

/// Writes `generated` into `folder` as `ca.pem`, `cert.pem` and `key.pem`
/// (the key readable by its owner only).
///
/// # Errors
/// The file that could not be written, and why.
pub fn write(generated: &Generated, folder: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let file_error = |path: &Path, e: std::io::Error| TlsError::File {
        path: path.display().to_string(),
        cause: e.to_string(),
    };
    std::fs::create_dir_all(folder).map_err(|e| file_error(folder, e))?;
    let mut written = Vec::new();
    for (name, text) in [
        ("ca.pem", &generated.ca_pem),
        ("cert.pem", &generated.cert_pem),
        ("key.pem", &generated.key_pem),
    ] {
        let path = folder.join(name);
        std::fs::write(&path, text).map_err(|e| file_error(&path, e))?;
        #[cfg(unix)]
        if name == "key.pem" {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| file_error(&path, e))?;
        }
        written.push(path);
    }
    Ok(written)
}

/// The certificate new handshakes get; swapped by a reload.
#[derive(Debug)]
struct CurrentCertificate(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The API listener's TLS: its acceptor, and the certificate behind it.
#[derive(Clone)]
pub(crate) struct TlsListener {
    acceptor: TlsAcceptor,
    current: Arc<CurrentCertificate>,
    files: Option<(PathBuf, PathBuf)>,
    provider: Arc<CryptoProvider>,
    /// A client that speaks plain HTTP to the TLS port is a misconfiguration
    /// worth a warning, but not one per connection.
    plain_clients: Arc<Mutex<RateLimitedLog>>,
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener").field("files", &self.files).finish_non_exhaustive()
    }
}

/// How a connection's handshake failed.
#[derive(Debug)]
pub(crate) enum HandshakeFailure {
    /// The client spoke plain HTTP (or anything but TLS) to the TLS port.
    NotTls,
    /// It did not finish within the time allowed.
    Timeout,
    /// rustls refused it (a certificate the client distrusts, no common protocol, ...).
    Refused(std::io::Error),
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotTls => {
                f.write_str("the client did not speak TLS (plain HTTP to the TLS port?)")
            }
            Self::Timeout => {
                f.write_str("the handshake did not finish within [limits] header_read_timeout")
            }
            Self::Refused(error) => write!(f, "refused: {error}"),
        }
    }
}

impl HandshakeFailure {
    /// The metric label.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::NotTls => "not_tls",
            Self::Timeout => "timeout",
            Self::Refused(_) => "refused",
        }
    }
}

impl TlsListener {
    /// Loads or makes the certificate of `tls`; a self-signed CA is written
    /// to its `ca_out`.
    ///
    /// # Errors
    /// [`TlsError`] when the files do not load or the CA cannot be written.
    pub(crate) fn start(tls: &Tls) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (key, files) = match &tls.certificate {
            TlsCertificate::Files { cert, key } => {
                (load_pair(cert, key, &provider)?, Some((cert.clone(), key.clone())))
            }
            TlsCertificate::SelfSigned { names, ca_out } => {
                let generated = generate(names)?;
                if let Some(path) = ca_out {
                    std::fs::write(path, &generated.ca_pem).map_err(|e| TlsError::File {
                        path: path.display().to_string(),
                        cause: e.to_string(),
                    })?;
                    info!(ca = %path.display(), "wrote the self-signed CA: trust it in clients");
                }
                let chain =
                    parse_chain(generated.cert_pem.as_bytes(), "the generated certificate")?;
                let key = parse_key(generated.key_pem.as_bytes(), "the generated key")?;
                (certified(chain, key, &provider)?, None)
            }
        };
        let current = Arc::new(CurrentCertificate(ArcSwap::from_pointee(key)));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Unusable(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = tls.alpn.iter().map(|a| a.id().as_bytes().to_vec()).collect();
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
            files,
            provider,
            plain_clients: Arc::new(Mutex::new(RateLimitedLog::new(Duration::from_secs(10)))),
        })
    }

    /// Makes the handshake on `tcp`, within `timeout`; `wrap` turns the
    /// plain socket into the connection's I/O first.
    pub(crate) async fn accept<IO>(
        &self,
        tcp: TcpStream,
        wrap: impl FnOnce(TcpStream) -> IO,
        timeout: Duration,
    ) -> Result<TlsStream<IO>, HandshakeFailure>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let handshake = async {
            let mut first = [0u8; 1];
            // A TLS connection starts with a handshake record (type 22).
            match tcp.peek(&mut first).await {
                Ok(1) if first[0] == 0x16 => {}
                _ => {
                    let count = self.plain_clients.lock().ok().and_then(|mut log| log.hit());
                    if let Some(count) = count {
                        warn!(
                            count,
                            "a client spoke plain HTTP (or not TLS) to the TLS listener: it must use https://"
                        );
                    }
                    tell_plain_client(tcp).await;
                    return Err(HandshakeFailure::NotTls);
                }
            }
            self.acceptor.accept(wrap(tcp)).await.map_err(HandshakeFailure::Refused)
        };
        tokio::time::timeout(timeout, handshake).await.unwrap_or(Err(HandshakeFailure::Timeout))
    }

    /// Watches the certificate files, if any, and swaps in a changed pair
    /// that loads; runs until the process ends.
    pub(crate) fn watch_files(&self) {
        let Some((cert, key)) = self.files.clone() else { return };
        let listener = self.clone();
        tokio::spawn(async move {
            let mut seen = (contents(&cert), contents(&key));
            let mut every = tokio::time::interval(FILE_POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let now = (contents(&cert), contents(&key));
                if now == seen {
                    continue;
                }
                seen = now;
                match load_pair(&cert, &key, &listener.provider) {
                    Ok(pair) => {
                        listener.current.0.store(Arc::new(pair));
                        info!(cert = %cert.display(), "TLS certificate reloaded: new connections get it");
                    }
                    Err(error) => {
                        warn!(%error, "TLS certificate not reloaded: keeping the one in use");
                    }
                }
            }
        });
    }
}

/// Answers a client that spoke plain HTTP to the TLS port in plain HTTP, so
/// its user sees why, and closes.
async fn tell_plain_client(mut tcp: TcpStream) {
    const BODY: &str = "this sluice listener speaks TLS: use https://\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let answer = async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        // Read what it sent, so that closing does not reset the connection
        // (unread bytes make the kernel send RST, and the answer is lost).
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            let read = tcp.read(&mut sink).await?;
            if read == 0 {
                break;
            }
            left = left.saturating_sub(read);
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// A file's bytes, to notice any change (a rename over it, a Kubernetes
/// Secret's symlink swap, an in-place write), whatever the filesystem's
/// clock; `None` while it cannot be read.
fn contents(path: &Path) -> Option<Vec<u8>> {
    read_pem(path).ok()
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file_error = |cause: String| TlsError::File { path: path.display().to_string(), cause };
    let length = std::fs::metadata(path).map_err(|e| file_error(e.to_string()))?.len();
    if length > MAX_PEM_BYTES {
        return Err(file_error(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    std::fs::read(path).map_err(|e| file_error(e.to_string()))
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = parse_chain(&read_pem(cert)?, &cert.display().to_string())?;
    let key_der = parse_key(&read_pem(key)?, &key.display().to_string())?;
    certified(chain, key_der, provider)
}

fn parse_chain(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let chain =
        chain.map_err(|e| TlsError::File { path: origin.to_string(), cause: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::File {
            path: origin.to_string(),
            cause: "no CERTIFICATE block in it".to_string(),
        });
    }
    Ok(chain)
}

fn parse_key(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::File {
        path: origin.to_string(),
        cause: format!("no private key: {e}"),
    })
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Unusable(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| TlsError::Unusable(format!("the key is not the certificate's: {e}")))?;
    Ok(certified)
}
