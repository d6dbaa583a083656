//! `manual` publisher: publishes nothing; tells the operator exactly what to put where,
//! and the propagation check decides when it is there.

use async_trait::async_trait;

use super::{PublishError, Publisher};
use crate::model::{Challenge, ChallengeKind};

#[derive(Debug)]
pub struct ManualPublisher {
    name: String,
}

impl ManualPublisher {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
        }
    }
}

/// The instruction for one token, e.g. `TXT record _dnsauth.www.example.com = "abc"`.
pub fn instruction(c: &Challenge) -> String {
    match c.kind {
        ChallengeKind::DnsTxt => format!("TXT record {}. with the value \"{}\"", c.name, c.value),
        ChallengeKind::DnsCname => format!("CNAME record {}. pointing to {}.", c.name, c.value),
        ChallengeKind::Http | ChallengeKind::Https => format!(
            "a file served at {} whose body is exactly {:?}",
            c.location(),
            c.value
        ),
    }
}

#[async_trait]
impl Publisher for ManualPublisher {
    fn name(&self) -> &str {
        &self.name
    }

    fn can_publish(&self, _challenge: &Challenge) -> bool {
        true
    }

    fn is_manual(&self) -> bool {
        true
    }

    async fn present(&self, c: &Challenge) -> Result<(), PublishError> {
        tracing::warn!(
            publisher = %self.name,
            token = %c.location(),
            kind = %c.kind,
            value = %c.value,
            "manual DCV: publish {}; dcvd checks for it and continues once every server has it",
            instruction(c)
        );
        Ok(())
    }

    async fn cleanup(&self, c: &Challenge) -> Result<(), PublishError> {
        tracing::warn!(
            publisher = %self.name,
            token = %c.location(),
            "manual DCV finished: the {} may be removed now",
            instruction(c)
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_name_record_and_value() {
        let c = Challenge {
            kind: ChallengeKind::DnsTxt,
            name: "_dnsauth.www.example.com".into(),
            path: None,
            value: "tok".into(),
        };
        assert_eq!(
            instruction(&c),
            "TXT record _dnsauth.www.example.com. with the value \"tok\""
        );
        let h = Challenge {
            kind: ChallengeKind::Http,
            name: "www.example.com".into(),
            path: Some("/.well-known/pki-validation/fileauth.txt".into()),
            value: "tok".into(),
        };
        assert!(
            instruction(&h)
                .contains("http://www.example.com/.well-known/pki-validation/fileauth.txt")
        );
    }
}
