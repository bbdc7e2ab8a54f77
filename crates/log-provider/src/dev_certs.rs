//! `log-provider dev-certs`: a CA and a server certificate it signs, for running the stand-in
//! over HTTPS where no cert-manager or Helm makes one (compose). The CA is kept from run to run
//! (a restart does not rotate what the clients trust) and the server certificate is kept while
//! it is valid for every requested name and not close to expiry; otherwise a new one is signed
//! by the same CA. Files are written only when their content changes, each through a rename
//! (the server's certificate watcher sees one complete file), the key before the certificate.
//!
//! Layout: `CA_DIR/ca.key` (0400) and `CA_DIR/ca.pem`; `DIR/tls.key` (0400), `DIR/tls.crt` and
//! `DIR/ca.pem`; `TRUST_DIR/ca.pem` when asked for (certificates 0444). Separate folders let a
//! deployment mount the CA's key nowhere but here and the server's key only in the server. No
//! line printed holds key material.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use platform::config::ConfigError;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// The CA's lifetime; a CA with less than one server certificate's lifetime left is replaced.
const CA_DAYS: u64 = 3650;
/// The CA's name (kept fixed: a kept CA is re-created from its key and this name to sign).
const CA_NAME: &str = "abn-stack dev CA (log-provider dev-certs)";
const DAY: Duration = Duration::from_secs(86_400);

/// Makes a dev CA and a server certificate it signs, or keeps the ones already there.
#[derive(Parser, Debug, Clone)]
#[command(name = "log-provider dev-certs", version)]
pub struct DevCertsArgs {
    /// Folder of the server's files: tls.crt, tls.key (0400) and ca.pem.
    #[arg(long, env = "DEV_CERTS_DIR")]
    pub dir: PathBuf,

    /// Folder of the CA's key (ca.key, 0400) and certificate (ca.pem); default: --dir.
    #[arg(long, env = "DEV_CERTS_CA_DIR")]
    pub ca_dir: Option<PathBuf>,

    /// Also write ca.pem, alone, to this folder (for the clients, which need no key).
    #[arg(long, env = "DEV_CERTS_TRUST_DIR")]
    pub trust_dir: Option<PathBuf>,

    /// A DNS name the server certificate is for (repeatable).
    #[arg(long = "name", value_parser = parse_dns_name)]
    pub names: Vec<String>,

    /// An IP address the server certificate is for (repeatable).
    #[arg(long = "ip")]
    pub ips: Vec<IpAddr>,

    /// The server certificate's lifetime in days; it is renewed when less than a third is left.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(3..=825))]
    pub valid_days: u64,
}

impl DevCertsArgs {
    fn ca_dir(&self) -> &Path {
        self.ca_dir.as_deref().unwrap_or(&self.dir)
    }

    /// What clap cannot say: at least one name, and folders that exist.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.names.is_empty() && self.ips.is_empty() {
            return Err(ConfigError::new(
                "--name",
                "at least one --name or --ip is required",
            ));
        }
        let folders = [
            ("--dir", Some(self.dir.as_path())),
            ("--ca-dir", self.ca_dir.as_deref()),
            ("--trust-dir", self.trust_dir.as_deref()),
        ];
        for (flag, folder) in folders {
            if let Some(folder) = folder.filter(|f| !f.is_dir()) {
                return Err(ConfigError::new(
                    flag,
                    format!("{} is not a folder", folder.display()),
                ));
            }
        }
        Ok(())
    }

    /// Every name and address, as the certificate's subject alternative names.
    fn subject_names(&self) -> Vec<String> {
        let mut all = self.names.clone();
        all.extend(self.ips.iter().map(IpAddr::to_string));
        all
    }
}

fn parse_dns_name(value: &str) -> Result<String, String> {
    if value.parse::<IpAddr>().is_ok() {
        return Err("an IP address: use --ip".to_string());
    }
    match ServerName::try_from(value) {
        Ok(ServerName::DnsName(_)) => Ok(value.to_ascii_lowercase()),
        _ => Err("not a valid DNS name".to_string()),
    }
}

/// The subcommand's entry point: `args` starts with `dev-certs`. Bad arguments: one line, exit
/// 2; a file that cannot be read or written: one line, exit 1.
pub fn main<I, A>(args: I) -> ExitCode
where
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let args: DevCertsArgs = platform::config::parse_from_or_exit(args);
    if let Err(err) = args.validate() {
        err.exit();
    }
    match run(&args, SystemTime::now()) {
        Ok(outcome) => {
            for line in outcome.lines() {
                println!("dev-certs: {line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("dev-certs: {err}");
            ExitCode::FAILURE
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// None: the CA was kept; Some(why) a new one was made.
    pub new_ca: Option<String>,
    /// None: the server certificate was kept; Some(why) a new one was signed.
    pub new_cert: Option<String>,
    pub names: Vec<String>,
    pub valid_days: u64,
}

impl Outcome {
    fn lines(&self) -> Vec<String> {
        let ca = match &self.new_ca {
            None => "kept the CA".to_string(),
            Some(why) => format!("made a new CA ({why})"),
        };
        let cert = match &self.new_cert {
            None => "kept the server certificate".to_string(),
            Some(why) => format!(
                "signed a new server certificate, valid {} days ({why})",
                self.valid_days
            ),
        };
        vec![ca, format!("{cert} for {}", self.names.join(", "))]
    }
}

/// Keeps or makes the CA, then keeps or signs the server certificate, as of `now`.
pub fn run(args: &DevCertsArgs, now: SystemTime) -> Result<Outcome, String> {
    let ca_dir = args.ca_dir();
    let (ca_key, ca_pem, new_ca) = match kept_ca(ca_dir, now, args.valid_days)? {
        Ok((key, pem)) => (key, pem, None),
        Err(why) => {
            let key = KeyPair::generate().map_err(|e| format!("cannot make a CA key: {e}"))?;
            let pem = ca_params(now, CA_DAYS)
                .self_signed(&key)
                .map_err(|e| format!("cannot make the CA: {e}"))?
                .pem();
            write_if_changed(&ca_dir.join("ca.key"), &key.serialize_pem(), 0o400)?;
            write_if_changed(&ca_dir.join("ca.pem"), &pem, 0o444)?;
            (key, pem, Some(why))
        }
    };
    let names = args.subject_names();
    let renew_before = DAY * (args.valid_days / 3) as u32;
    let cert_file = args.dir.join("tls.crt");
    let key_file = args.dir.join("tls.key");
    let new_cert =
        match server_cert_problem(&cert_file, &key_file, &ca_pem, &names, now, renew_before) {
            None => None,
            Some(why) => {
                // Only the key pair and name of the issuer are used in signing.
                let issuer = ca_params(now, CA_DAYS)
                    .self_signed(&ca_key)
                    .map_err(|e| format!("cannot load the CA: {e}"))?;
                let (cert, key) = sign_server_cert(&issuer, &ca_key, &names, now, args.valid_days)?;
                // The key first: the server reloads when the certificate changes.
                write_if_changed(&key_file, &key.serialize_pem(), 0o400)?;
                write_if_changed(&cert_file, &cert.pem(), 0o444)?;
                Some(why)
            }
        };
    write_if_changed(&args.dir.join("ca.pem"), &ca_pem, 0o444)?;
    if let Some(trust) = &args.trust_dir {
        write_if_changed(&trust.join("ca.pem"), &ca_pem, 0o444)?;
    }
    // What was written must verify: a CA key that does not match its certificate shows here.
    if let Some(problem) =
        server_cert_problem(&cert_file, &key_file, &ca_pem, &names, now, Duration::ZERO)
    {
        return Err(format!(
            "the server certificate just written does not verify: {problem}"
        ));
    }
    Ok(Outcome {
        new_ca,
        new_cert,
        names,
        valid_days: args.valid_days,
    })
}

/// A kept CA (its key and certificate), or why a new one is needed.
type KeptCa = Result<(KeyPair, String), String>;

/// The CA in `dir`, when both files are there, parse, match and it has more than one server
/// certificate's lifetime left: Ok(Ok(..)); Ok(Err(why)) when a new one is needed.
fn kept_ca(dir: &Path, now: SystemTime, valid_days: u64) -> Result<KeptCa, String> {
    let key_file = dir.join("ca.key");
    let cert_file = dir.join("ca.pem");
    let (Some(key_pem), Some(cert_pem)) = (read_optional(&key_file)?, read_optional(&cert_file)?)
    else {
        return Ok(Err("none in the folder".to_string()));
    };
    let Ok(key) = KeyPair::from_pem(&key_pem) else {
        return Ok(Err("ca.key is not a PEM private key".to_string()));
    };
    let Ok(cert) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return Ok(Err("ca.pem is not a PEM certificate".to_string()));
    };
    let Some(fields) = der::tbs_fields(&cert) else {
        return Ok(Err("ca.pem is not an X.509 certificate".to_string()));
    };
    if fields.spki != key.public_key_der().as_slice() {
        return Ok(Err("ca.key does not match ca.pem".to_string()));
    }
    match fields.not_after {
        Some(end) if end > now + DAY * valid_days as u32 => Ok(Ok((key, cert_pem))),
        _ => Ok(Err(
            "the old one expires within a server certificate's lifetime".to_string(),
        )),
    }
}

/// Why the server certificate in `cert_file` cannot be kept, or None: it and its key are
/// readable, it chains to `ca_pem` and is valid for every name now and `renew_before` later.
fn server_cert_problem(
    cert_file: &Path,
    key_file: &Path,
    ca_pem: &str,
    names: &[String],
    now: SystemTime,
    renew_before: Duration,
) -> Option<String> {
    let cert_pem = match fs::read_to_string(cert_file) {
        Ok(pem) => pem,
        Err(_) => return Some("none in the folder".to_string()),
    };
    if crate::tls::server_config(&cert_pem, key_file).is_err() {
        return Some("tls.crt and tls.key are not a matching pair".to_string());
    }
    let Ok(leaf) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return Some("tls.crt is not a PEM certificate".to_string());
    };
    let verifier = match verifier(ca_pem) {
        Ok(v) => v,
        Err(e) => return Some(e),
    };
    for name in names {
        let Ok(server_name) = ServerName::try_from(name.as_str()) else {
            return Some(format!("{name} is not a server name"));
        };
        for (at, what) in [(now, "now"), (now + renew_before, "soon")] {
            let at = UnixTime::since_unix_epoch(
                at.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default(),
            );
            if let Err(err) = verifier.verify_server_cert(&leaf, &[], &server_name, &[], at) {
                return Some(match what {
                    "now" => format!("not valid for {name}: {err}"),
                    _ => "close to expiry".to_string(),
                });
            }
        }
    }
    None
}

fn verifier(ca_pem: &str) -> Result<Arc<rustls::client::WebPkiServerVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|_| "ca.pem is not PEM".to_string())?;
        roots.add(cert).map_err(|e| format!("ca.pem: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("ca.pem: {e}"))
}

fn ca_params(now: SystemTime, days: u64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = (now - DAY).into();
    params.not_after = (now + DAY * days as u32).into();
    params
}

fn sign_server_cert(
    issuer: &Certificate,
    issuer_key: &KeyPair,
    names: &[String],
    now: SystemTime,
    days: u64,
) -> Result<(Certificate, KeyPair), String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| format!("{n}: {e}")),
        })
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // An hour back: a clock a little behind still accepts it.
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + DAY * days as u32).into();
    let key = KeyPair::generate().map_err(|e| format!("cannot make a server key: {e}"))?;
    let cert = params
        .signed_by(&key, issuer, issuer_key)
        .map_err(|e| format!("cannot sign the server certificate: {e}"))?;
    Ok((cert, key))
}

fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    }
}

/// Writes `content` to `path` with `mode` through a temporary file and a rename, unless the
/// file already holds exactly that (then not even its time changes).
fn write_if_changed(path: &Path, content: &str, mode: u32) -> Result<(), String> {
    if fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        let current = fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
        if current.is_ok_and(|m| m == mode) {
            return Ok(());
        }
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(content.as_bytes())?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    written.map_err(|err| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {err}", path.display())
    })
}

/// Just enough DER to read a certificate's validity end and public key (rcgen reads no
/// certificates without the x509-parser feature, which is not in the tree).
mod der {
    use std::time::{Duration, SystemTime};

    pub struct TbsFields<'a> {
        pub not_after: Option<SystemTime>,
        /// The whole SubjectPublicKeyInfo element, as rcgen's `public_key_der` gives it.
        pub spki: &'a [u8],
    }

    /// One element: (tag, the whole element, its content, what follows).
    type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

    fn element(input: &[u8]) -> Option<Element<'_>> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |n, b| (n << 8) | usize::from(*b));
            (len, &rest[count..])
        };
        if rest.len() < len {
            return None;
        }
        let header = input.len() - rest.len();
        Some((tag, &input[..header + len], &rest[..len], &rest[len..]))
    }

    pub fn tbs_fields(cert: &[u8]) -> Option<TbsFields<'_>> {
        let (0x30, _, cert, _) = element(cert)? else {
            return None;
        };
        let (0x30, _, tbs, _) = element(cert)? else {
            return None;
        };
        let mut rest = tbs;
        let (tag, _, _, after) = element(rest)?;
        if tag == 0xa0 {
            rest = after; // the version
        }
        let (_, _, _, rest) = element(rest)?; // serial number
        let (_, _, _, rest) = element(rest)?; // signature algorithm
        let (_, _, _, rest) = element(rest)?; // issuer
        let (0x30, _, validity, rest) = element(rest)? else {
            return None;
        };
        let (_, _, _, rest) = element(rest)?; // subject
        let (0x30, spki, _, _) = element(rest)? else {
            return None;
        };
        let (_, _, _, after_start) = element(validity)?;
        let (tag, _, end, _) = element(after_start)?;
        Some(TbsFields {
            not_after: time(tag, end),
            spki,
        })
    }

    /// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ).
    fn time(tag: u8, text: &[u8]) -> Option<SystemTime> {
        let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
        let (year, rest) = match (tag, text.len()) {
            (0x17, 12) => {
                let yy: i32 = text[..2].parse().ok()?;
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
            }
            (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
            _ => return None,
        };
        let field = |i: usize| rest.get(i..i + 2)?.parse::<u8>().ok();
        let month = time::Month::try_from(field(0)?).ok()?;
        let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
        let at = date
            .with_hms(field(4)?, field(6)?, field(8)?)
            .ok()?
            .assume_utc();
        let secs = u64::try_from(at.unix_timestamp()).ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn both_time_forms() {
            let utc = time(0x17, b"360101000000Z").unwrap();
            let general = time(0x18, b"20360101000000Z").unwrap();
            assert_eq!(utc, general);
            assert_eq!(
                general
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
                2_082_758_400
            );
            assert!(time(0x17, b"3601010000Z").is_none());
            assert!(time(0x18, b"20361301000000Z").is_none());
        }

        #[test]
        fn truncated_input_is_refused() {
            assert!(tbs_fields(&[]).is_none());
            assert!(tbs_fields(&[0x30, 0x82, 0xff]).is_none());
            assert!(tbs_fields(&[0x30, 0x03, 0x30, 0x01]).is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path) -> DevCertsArgs {
        DevCertsArgs {
            dir: dir.to_path_buf(),
            ca_dir: None,
            trust_dir: None,
            names: vec!["log-provider".into(), "localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            valid_days: 90,
        }
    }

    #[test]
    fn the_ca_read_back_matches_what_rcgen_wrote() {
        let now = SystemTime::now();
        let key = KeyPair::generate().unwrap();
        let cert = ca_params(now, 10).self_signed(&key).unwrap();
        let fields = der::tbs_fields(cert.der()).unwrap();
        assert_eq!(fields.spki, key.public_key_der().as_slice());
        let end = fields.not_after.unwrap();
        let expected = now + DAY * 10;
        let off = end.max(expected).duration_since(end.min(expected)).unwrap();
        assert!(off < Duration::from_secs(2), "{off:?}");
    }

    #[test]
    fn names_and_folders_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        assert!(a.validate().is_ok());
        a.trust_dir = Some(dir.path().join("missing"));
        assert_eq!(a.validate().unwrap_err().variable, "--trust-dir");
        a.trust_dir = None;
        a.names.clear();
        a.ips.clear();
        assert_eq!(a.validate().unwrap_err().variable, "--name");
        assert!(parse_dns_name("127.0.0.1").unwrap_err().contains("--ip"));
        assert!(parse_dns_name("bad name").is_err());
        assert_eq!(parse_dns_name("Log-Provider").unwrap(), "log-provider");
    }

    #[test]
    fn a_mismatched_ca_key_makes_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        run(&args(dir.path()), now).unwrap();
        let other = KeyPair::generate().unwrap();
        fs::remove_file(dir.path().join("ca.key")).unwrap();
        fs::write(dir.path().join("ca.key"), other.serialize_pem()).unwrap();
        let outcome = run(&args(dir.path()), now).unwrap();
        assert_eq!(
            outcome.new_ca.as_deref(),
            Some("ca.key does not match ca.pem")
        );
        assert!(
            outcome.new_cert.is_some(),
            "the old leaf is not signed by the new CA"
        );
    }

    #[test]
    fn a_ca_close_to_its_end_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        run(&args(dir.path()), now).unwrap();
        let later = now + DAY * (CA_DAYS as u32 - 30);
        let outcome = run(&args(dir.path()), later).unwrap();
        assert!(outcome.new_ca.unwrap().contains("expires"));
        assert!(outcome.new_cert.is_some());
    }
}
