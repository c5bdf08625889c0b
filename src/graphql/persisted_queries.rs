//! Persisted queries, an async-graphql extension, in one of three modes (`PERSISTED_QUERIES`):
//!
//! - `apq` (default): Apollo's *automatic* persisted queries. A client sends
//!   `extensions.persistedQuery.sha256Hash` alone; if this instance knows the hash the query runs,
//!   otherwise the answer is `ErrorCode::PersistedQueryNotFound` and the client sends hash and query once,
//!   which registers it (the hash must match). Hash-only GETs are what a CDN can cache. The
//!   cache is per instance and bounded (`PERSISTED_QUERY_CACHE`, least recently used out), so an
//!   instance that never saw a hash simply asks for the query again.
//! - `allowlist`: *trusted documents*. Only operations listed in the manifest file
//!   (`TRUSTED_DOCUMENTS`, Apollo's `persisted-query-manifest.json` format) run, sent by hash or
//!   in full; anything else is refused with `ErrorCode::PersistedQueryNotInList` before it is parsed.
//! - `off`: queries are only sent in full; a persisted-query extension is refused.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::{Request, ServerError, ServerResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::ErrorCode;
use crate::config::{PersistedQueryMode, QueryLimits, ServerLimits};

/// Where persisted queries are looked up.
pub enum Store {
    /// Automatic: what clients registered, least recently used out past the capacity.
    Learned(Mutex<lru::LruCache<String, Arc<str>>>),
    /// Trusted documents: a fixed list.
    Allowlist(HashMap<String, Arc<str>>),
    Off,
}

impl Store {
    /// The store the configuration asks for (reads the trusted documents in allowlist mode).
    pub fn from_config(limits: &ServerLimits) -> anyhow::Result<Self> {
        Ok(match limits.persisted_queries {
            PersistedQueryMode::Apq => Store::learned(limits.persisted_query_cache as usize),
            PersistedQueryMode::Off => Store::Off,
            PersistedQueryMode::Allowlist => {
                let path = limits.trusted_documents.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("PERSISTED_QUERIES=allowlist needs TRUSTED_DOCUMENTS")
                })?;
                let manifest = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                Store::allowlist(&manifest, &limits.query)?
            }
        })
    }

    pub fn learned(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self::Learned(Mutex::new(lru::LruCache::new(capacity)))
    }

    /// The trusted documents in an Apollo persisted-query manifest:
    /// `{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":sha256,"body":query,...}]}`.
    /// Each id must be the SHA-256 of its body, and each body within the lexical limits
    /// (`document_guard`): a trusted document that could never run stops the start.
    pub fn allowlist(manifest: &str, limits: &QueryLimits) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Manifest {
            operations: Vec<Operation>,
        }
        #[derive(Deserialize)]
        struct Operation {
            id: String,
            body: String,
        }
        let manifest: Manifest = serde_json::from_str(manifest)?;
        let mut documents = HashMap::new();
        for operation in manifest.operations {
            let hash = sha256(&operation.body);
            anyhow::ensure!(
                hash == operation.id.to_ascii_lowercase(),
                "trusted document {} is not the SHA-256 of its body ({hash})",
                operation.id
            );
            if let Err(refused) = super::document_guard::check(&operation.body, limits) {
                anyhow::bail!("trusted document {hash}: {}", refused.message);
            }
            documents.insert(hash, Arc::from(operation.body));
        }
        Ok(Self::Allowlist(documents))
    }
}

pub struct PersistedQueries {
    pub store: Arc<Store>,
    /// A document registered by hash is measured first (`document_guard`): one that could never
    /// run does not take a place in the cache.
    pub limits: Arc<QueryLimits>,
}

impl ExtensionFactory for PersistedQueries {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PersistedQueries {
            store: Arc::clone(&self.store),
            limits: Arc::clone(&self.limits),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: u32,
    sha256_hash: String,
}

#[async_trait::async_trait]
impl Extension for PersistedQueries {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let persisted = match request.extensions.remove("persistedQuery") {
            None => None,
            Some(value) => {
                let value = value
                    .into_json()
                    .map_err(|_| coded("persistedQuery is not valid", ErrorCode::BadUserInput))?;
                let persisted: PersistedQuery = serde_json::from_value(value).map_err(|_| {
                    coded(
                        "persistedQuery needs version and sha256Hash",
                        ErrorCode::BadUserInput,
                    )
                })?;
                if persisted.version != 1 {
                    return Err(coded(
                        "only persistedQuery version 1 is supported",
                        ErrorCode::BadUserInput,
                    ));
                }
                Some(persisted.sha256_hash.to_ascii_lowercase())
            }
        };
        match (self.store.as_ref(), persisted) {
            (Store::Off, None) => {}
            (Store::Off, Some(_)) => {
                return Err(coded(
                    "persisted queries are off on this server; send the query",
                    ErrorCode::PersistedQueryNotSupported,
                ));
            }
            (Store::Learned(cache), Some(hash)) => {
                let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
                if request.query.is_empty() {
                    let query = cache.get(&hash).cloned().ok_or_else(|| {
                        coded("PersistedQueryNotFound", ErrorCode::PersistedQueryNotFound)
                    })?;
                    request.query = query.to_string();
                } else if sha256(&request.query) == hash {
                    super::document_guard::check(&request.query, &self.limits)?;
                    cache.put(hash, Arc::from(request.query.as_str()));
                } else {
                    return Err(coded(
                        "provided sha does not match query",
                        ErrorCode::GraphqlValidationFailed,
                    ));
                }
            }
            (Store::Learned(_), None) => {}
            (Store::Allowlist(documents), persisted) => {
                let hash = match persisted {
                    Some(hash) if request.query.is_empty() => hash,
                    _ => sha256(&request.query),
                };
                let query = documents.get(&hash).ok_or_else(|| {
                    metrics::counter!("persisted_query_refused_total").increment(1);
                    coded(
                        "this server runs only its trusted documents, and this is not one",
                        ErrorCode::PersistedQueryNotInList,
                    )
                })?;
                request.query = query.to_string();
            }
        }
        next.run(ctx, request).await
    }
}

fn sha256(query: &str) -> String {
    format!("{:x}", Sha256::digest(query.as_bytes()))
}

fn coded(message: &str, code: ErrorCode) -> ServerError {
    super::error::coded(ServerError::new(message, None), code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::builder_with;

    const QUERY: &str = "{ __typename }";

    fn with_hash(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(
                serde_json::json!({ "version": 1, "sha256Hash": hash }),
            )
            .expect("value"),
        );
        request
    }

    async fn code(store: Store, request: Request) -> Option<ErrorCode> {
        let schema = builder_with(Arc::new(store), &Default::default(), true).finish();
        let response = schema.execute(request).await;
        response
            .errors
            .first()
            .and_then(crate::graphql::error::error_code_of)
    }

    #[tokio::test]
    async fn automatic_persisted_queries_register_then_run_by_hash() {
        let store = Arc::new(Store::learned(10));
        let schema = builder_with(Arc::clone(&store), &Default::default(), true).finish();
        let hash = sha256(QUERY);
        let unknown = schema.execute(with_hash("", &hash)).await;
        assert_eq!(
            crate::graphql::error::error_code_of(&unknown.errors[0]),
            Some(ErrorCode::PersistedQueryNotFound)
        );
        assert!(
            schema
                .execute(with_hash(QUERY, &hash))
                .await
                .errors
                .is_empty()
        );
        assert!(schema.execute(with_hash("", &hash)).await.errors.is_empty());
        assert_eq!(
            code(Store::learned(10), with_hash(QUERY, &"0".repeat(64))).await,
            Some(ErrorCode::GraphqlValidationFailed)
        );
    }

    #[tokio::test]
    async fn an_allowlist_runs_only_its_documents() {
        let hash = sha256(QUERY);
        let manifest = serde_json::json!({
            "format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [{ "id": hash, "name": "T", "type": "query", "body": QUERY }],
        })
        .to_string();
        let list = || Store::allowlist(&manifest, &QueryLimits::default()).expect("manifest");
        assert_eq!(code(list(), with_hash("", &hash)).await, None);
        assert_eq!(code(list(), Request::new(QUERY)).await, None);
        assert_eq!(
            code(list(), Request::new("{ concerts { id } }")).await,
            Some(ErrorCode::PersistedQueryNotInList)
        );
        let forged = serde_json::json!({ "operations": [{ "id": "0".repeat(64), "body": QUERY }] });
        assert!(Store::allowlist(&forged.to_string(), &QueryLimits::default()).is_err());
    }
}
