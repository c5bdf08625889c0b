//! `OperationSpan`, an async-graphql extension: each GraphQL operation runs inside a `graphql`
//! tracing span naming it (`kind` query/mutation/subscription, the client's operation `name`),
//! so every log line a resolver or the domain writes says which operation it served. Over HTTP the
//! span sits inside the transport's `request` span (with its request id); over websockets, one per
//! subscription event. Its duration is recorded in `graphql_operation_duration_seconds` by kind
//! (not by name: names are chosen by clients, and a metric label must stay bounded).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Response, ServerResult, Variables};
use tracing::Instrument;

pub struct OperationSpan;

impl ExtensionFactory for OperationSpan {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest::default())
    }
}

/// One request's extension instance: what parsing learned, for the span around execution.
#[derive(Default)]
struct PerRequest {
    /// The kind of each operation in the document, by name (`None` for an anonymous one).
    kinds: Mutex<Vec<(Option<String>, OperationType)>>,
}

impl PerRequest {
    fn kind_of(&self, operation: Option<&str>) -> &'static str {
        let kinds = self
            .kinds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // With one operation in the document, the request may omit its name.
        let found = match operation {
            None if kinds.len() == 1 => kinds.first().map(|(_, kind)| *kind),
            name => kinds
                .iter()
                .find(|(n, _)| n.as_deref() == name)
                .map(|(_, kind)| *kind),
        };
        match found {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "unknown",
        }
    }
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let kinds = document
            .operations
            .iter()
            .map(|(name, op)| (name.map(|n| n.to_string()), op.node.ty))
            .collect();
        *self
            .kinds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = kinds;
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let kind = self.kind_of(operation_name);
        let span = tracing::info_span!(
            "graphql",
            kind,
            name = operation_name.unwrap_or_default(),
            errors = tracing::field::Empty,
        );
        let started = Instant::now();
        let response = next.run(ctx, operation_name).instrument(span.clone()).await;
        if !response.errors.is_empty() {
            span.record("errors", response.errors.len());
        }
        let elapsed = started.elapsed();
        tracing::debug!(parent: &span, elapsed_ms = elapsed.as_millis() as u64, "operation done");
        metrics::histogram!("graphql_operation_duration_seconds", "kind" => kind)
            .record(elapsed.as_secs_f64());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_named_by_its_kind_even_when_the_request_omits_its_name() {
        let ext = PerRequest::default();
        *ext.kinds.lock().expect("fresh") = vec![(Some("Hold".into()), OperationType::Mutation)];
        assert_eq!(ext.kind_of(None), "mutation");
        assert_eq!(ext.kind_of(Some("Hold")), "mutation");
        assert_eq!(ext.kind_of(Some("Other")), "unknown");
        *ext.kinds.lock().expect("fresh") = vec![
            (Some("A".into()), OperationType::Query),
            (Some("B".into()), OperationType::Subscription),
        ];
        assert_eq!(ext.kind_of(Some("B")), "subscription");
        assert_eq!(ext.kind_of(None), "unknown");
    }
}
