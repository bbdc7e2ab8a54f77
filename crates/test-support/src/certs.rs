//! Test certificates made with rcgen: a CA and leaves it signs (for a name, or expired).

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};

/// For tests that name the certificate types.
pub use rcgen;

/// A certificate authority: its certificate and the key that signs leaves.
pub struct Ca {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Ca {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("a self-signed CA");
        Self { cert, key }
    }

    /// A leaf for `name` (a DNS name or an IP address); `expired` puts its validity in
    /// 2020-2021.
    pub fn leaf(&self, name: &str, expired: bool) -> (Certificate, KeyPair) {
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("leaf parameters");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("a signed leaf");
        (cert, key)
    }
}

impl Default for Ca {
    fn default() -> Self {
        Self::new()
    }
}
