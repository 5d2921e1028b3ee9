//! Authentication: bearer tokens from a static token file, and who is calling.
//!
//! The file has one `token,principal,role` per line (`#` starts a comment),
//! like Kubernetes' static token file; roles are `read-only`, `read-write`
//! and `schema`. Tokens are kept only as SHA-256 digests and looked up by
//! digest, so no comparison ever touches a token's bytes. SIGHUP reloads the
//! file without dropping connections; a file that fails to load leaves the
//! previous tokens in force.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::errors::status::unauthenticated;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads only: its work runs in read-only transactions.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
    /// Reads, writes, and installs code: what `read-write` may do, plus
    /// CREATE/ALTER/DROP of procedures, functions, triggers, events and
    /// views with a definer, compound `BEGIN … END` bodies, PREPARE and
    /// EXECUTE IMMEDIATE. Meant for migrations.
    Schema,
}

/// Who is calling; carried in each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal's name from the token file; empty without authentication.
    pub name: Arc<str>,
    /// What it may do.
    pub role: Role,
}

impl Principal {
    /// The caller when authentication is off. Every caller is then this
    /// one principal, so there are no roles to keep apart: it has the
    /// schema role (it may install code, as before roles existed).
    pub fn anonymous() -> Principal {
        // One shared name: a call without authentication allocates nothing
        // for its principal (cloning bumps a reference count).
        static ANONYMOUS: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| "".into());
        Principal {
            name: ANONYMOUS.clone(),
            role: Role::Schema,
        }
    }

    /// True when authentication is off (everyone is this one caller).
    pub fn is_anonymous(&self) -> bool {
        self.name.is_empty()
    }

    /// The caller of a request (anonymous when authentication is off).
    pub fn of<T>(request: &Request<T>) -> Principal {
        request
            .extensions()
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(Principal::anonymous)
    }
}

/// Why the token file could not be loaded. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("token file {path}, line {line}: {problem}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
}

type Digests = HashMap<[u8; 32], Principal>;

/// Checks bearer tokens; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    path: PathBuf,
    tokens: Arc<RwLock<Arc<Digests>>>,
}

impl Authenticator {
    /// Loads the token file.
    pub fn load(path: &Path) -> Result<Authenticator, TokenFileError> {
        Ok(Authenticator {
            path: path.to_path_buf(),
            tokens: Arc::new(RwLock::new(Arc::new(read_token_file(path)?))),
        })
    }

    /// Puts `tokens` in force; returns how many there are.
    fn install(&self, tokens: Digests) -> Result<usize, TokenFileError> {
        let count = tokens.len();
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
        Ok(count)
    }

    /// The principals the file names, each once: read-only when all its
    /// tokens are, else with the role of one of its other tokens.
    pub fn principals(&self) -> Vec<Principal> {
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        principals_of(&tokens)
    }

    /// Reloads the file on every SIGHUP, for as long as the runtime runs.
    /// `prepare` runs with the principals of the file just read, before its
    /// tokens are put in force (e.g. to make their database accounts), so
    /// that no call of a new principal runs before it is ready.
    pub(crate) fn reload_on_sighup<F, Fut>(&self, tasks: &crate::tasks::Tasks, prepare: F)
    where
        F: Fn(Vec<Principal>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let authenticator = self.clone();
        tasks.spawn_loop(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot watch SIGHUP: the token file will not be reloaded");
                return;
            };
            while hangups.recv().await.is_some() {
                let reloaded = match read_token_file(&authenticator.path) {
                    Ok(tokens) => {
                        prepare(principals_of(&tokens)).await;
                        authenticator.install(tokens)
                    }
                    Err(e) => Err(e),
                };
                match reloaded {
                    Ok(count) => tracing::info!(tokens = count, "token file reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "token file not reloaded; the previous tokens stay in force")
                    }
                }
            }
        });
    }

    /// The principal a request's `authorization: Bearer <token>` names.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request.metadata().get("authorization").ok_or_else(|| {
            unauthenticated("missing authorization metadata: send `authorization: Bearer <token>`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| unauthenticated("authorization must be `Bearer <token>`"))?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokens
            .get(&digest)
            .cloned()
            .ok_or_else(|| unauthenticated("unknown bearer token"))
    }

    /// A tonic interceptor that authenticates every call and records its principal.
    pub fn interceptor(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + use<> {
        let authenticator = self.clone();
        move |mut request: Request<()>| {
            let principal = authenticator.authenticate(&request)?;
            request.extensions_mut().insert(principal);
            Ok(request)
        }
    }
}

/// With mutual TLS and no token file, the caller is named by its client
/// certificate's subject (read-write): its transactions are its own.
pub fn certificate_principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| unauthenticated("a client certificate is required"))?;
    let first = certs
        .first()
        .ok_or_else(|| unauthenticated("a client certificate is required"))?;
    let (_, certificate) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|_| unauthenticated("the client certificate cannot be read"))?;
    let subject = certificate.subject().to_string();
    if subject.is_empty() {
        return Err(unauthenticated("the client certificate has no subject"));
    }
    Ok(Principal {
        name: subject.into(),
        role: Role::ReadWrite,
    })
}

/// The metadata key under which a fleet peer names the principal of a call
/// it forwards, when callers are named by their client certificates.
pub const VOUCHED_PRINCIPAL: &str = "x-sqlgate-principal-bin";

/// With mutual TLS and no token file, a call forwarded by a peer of the
/// fleet arrives with the peer's certificate, not the client's: the peer
/// names the client's principal in [`VOUCHED_PRINCIPAL`]. That is believed
/// only from a caller whose certificate has this gateway's own subject
/// (`own_subject`: peers present the gateway certificate they serve with),
/// which a client cannot have without the CA's cooperation.
pub fn vouched_principal<T>(
    request: &Request<T>,
    caller: &Principal,
    own_subject: &str,
) -> Option<Principal> {
    if *caller.name != *own_subject {
        return None;
    }
    let vouched = request
        .metadata()
        .get_bin(VOUCHED_PRINCIPAL)?
        .to_bytes()
        .ok()?;
    let name = std::str::from_utf8(&vouched).ok()?;
    (!name.is_empty()).then(|| Principal {
        name: name.into(),
        role: Role::ReadWrite,
    })
}

/// The subject of the first certificate of a PEM file, as
/// [`certificate_principal`] names callers.
pub fn pem_subject(pem: &[u8]) -> Result<String, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| e.to_string())?;
    let certificate = pem.parse_x509().map_err(|e| e.to_string())?;
    Ok(certificate.subject().to_string())
}

/// The principals `tokens` name, each once: read-only when all its tokens
/// are, else with the role of one of its other tokens.
fn principals_of(tokens: &Digests) -> Vec<Principal> {
    let mut principals: Vec<Principal> = Vec::new();
    for principal in tokens.values() {
        match principals.iter_mut().find(|p| p.name == principal.name) {
            None => principals.push(principal.clone()),
            Some(known) if known.role == Role::ReadOnly => known.role = principal.role,
            Some(_) => {}
        }
    }
    principals.sort_by(|a, b| a.name.cmp(&b.name));
    principals
}

fn read_token_file(path: &Path) -> Result<Digests, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tokens(&text).map_err(|(line, problem)| TokenFileError::Line {
        path: path.to_path_buf(),
        line,
        problem,
    })
}

/// Parses the file's text; errors name the line and the problem only.
fn parse_tokens(text: &str) -> Result<Digests, (usize, &'static str)> {
    let mut tokens = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [token, name, role] = fields[..] else {
            return Err((index + 1, "expected token,principal,role"));
        };
        if token.len() < 16 {
            return Err((index + 1, "the token is shorter than 16 characters"));
        }
        if name.is_empty() {
            return Err((index + 1, "the principal is empty"));
        }
        let role = match role {
            "read-only" => Role::ReadOnly,
            "read-write" => Role::ReadWrite,
            "schema" => Role::Schema,
            _ => {
                return Err((
                    index + 1,
                    "the role must be read-only, read-write or schema",
                ));
            }
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let principal = Principal {
            name: name.into(),
            role,
        };
        if tokens.insert(digest, principal).is_some() {
            return Err((index + 1, "the same token appears twice"));
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(authorization: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    fn authenticator(text: &str) -> Authenticator {
        Authenticator {
            path: PathBuf::new(),
            tokens: Arc::new(RwLock::new(Arc::new(parse_tokens(text).unwrap()))),
        }
    }

    #[test]
    fn tokens_name_their_principals() {
        let auth = authenticator(
            "# comment\n\nreader-token-0123456789,alice,read-only\nwriter-token-0123456789 , bob , read-write # trailing\n",
        );
        let alice = auth
            .authenticate(&request_with(Some("Bearer reader-token-0123456789")))
            .unwrap();
        assert_eq!(&*alice.name, "alice");
        assert_eq!(alice.role, Role::ReadOnly);
        let bob = auth
            .authenticate(&request_with(Some("Bearer writer-token-0123456789")))
            .unwrap();
        assert_eq!(bob.role, Role::ReadWrite);
    }

    #[test]
    fn missing_or_wrong_tokens_are_unauthenticated() {
        let auth = authenticator("reader-token-0123456789,alice,read-only\n");
        for header in [
            None,
            Some("Bearer nope-nope-nope-nope"),
            Some("Basic abc"),
            Some("Bearer "),
        ] {
            let status = auth.authenticate(&request_with(header)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header:?}");
            assert!(!status.message().contains("reader-token"));
        }
    }

    #[test]
    fn bad_lines_are_reported_by_number() {
        assert_eq!(parse_tokens("a,b").unwrap_err().0, 1);
        assert_eq!(parse_tokens("# x\nshort,alice,read-only").unwrap_err().0, 2);
        assert_eq!(
            parse_tokens("long-enough-token-123,alice,admin")
                .unwrap_err()
                .1,
            "the role must be read-only, read-write or schema"
        );
        let schema = parse_tokens("migrations-token-0123456789,migrate,schema").unwrap();
        assert_eq!(schema.values().next().map(|p| p.role), Some(Role::Schema));
        assert!(
            parse_tokens("long-enough-token-123,a,read-only\nlong-enough-token-123,b,read-only")
                .is_err()
        );
    }
}
