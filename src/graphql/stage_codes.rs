//! `StageCodes`, an async-graphql extension: every error a client sees carries
//! `extensions.code`, over HTTP and websockets alike.
//!
//! Errors the service raises get their code where domain errors are mapped (`error::to_graphql`).
//! This extension codes the ones async-graphql raises itself, by the stage that raises them and
//! never by their text: a document that does not parse is `ErrorCode::GraphqlParseFailed`; one that fails
//! validation (unknown fields, arguments or variables of the wrong type, depth or complexity) is
//! `ErrorCode::GraphqlValidationFailed`, as Apollo Server codes them; an input that passed validation and
//! failed to convert while a field ran (a scalar's own check, such as a `Date` that is not a
//! day) is `ErrorCode::BadUserInput`. An error still uncoded at the end of a request failed before
//! execution (choosing the operation): `ErrorCode::GraphqlValidationFailed`. Every error of an
//! operation that ran is counted by code in `graphql_errors_total`, over HTTP or a websocket;
//! refusals before an operation runs (the per-address 429, a websocket's rate or subscription
//! refusals) are counted by their own metrics.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::error::{ErrorCode, set_code};

pub struct StageCodes;

impl ExtensionFactory for StageCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(StageCodes)
    }
}

#[async_trait::async_trait]
impl Extension for StageCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            fill(&mut errors, ErrorCode::GraphqlValidationFailed);
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        fill(&mut response.errors, ErrorCode::BadUserInput);
        response
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        fill(&mut response.errors, ErrorCode::GraphqlValidationFailed);
        count(&response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Validation has coded its errors already; what is left came from a running field.
        next.run(ctx, stream)
            .map(|mut response| {
                fill(&mut response.errors, ErrorCode::BadUserInput);
                count(&response.errors);
                response
            })
            .boxed()
    }
}

/// Gives every uncoded error the code of the stage that raised it.
fn fill(errors: &mut [ServerError], code: ErrorCode) {
    for error in errors.iter_mut().filter(|e| !has_code(e)) {
        set_code(error, code);
    }
}

fn count(errors: &[ServerError]) {
    for error in errors {
        let code = super::error::code_of(error).to_owned();
        metrics::counter!("graphql_errors_total", "code" => code).increment(1);
    }
}

fn with_code(error: ServerError, code: ErrorCode) -> ServerError {
    if has_code(&error) {
        error
    } else {
        super::error::coded(error, code)
    }
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::builder;

    async fn code_of(query: &str) -> Option<ErrorCode> {
        let schema = builder(&Default::default()).finish();
        let response = schema.execute(query).await;
        crate::graphql::error::error_code_of(&response.errors[0])
    }

    #[tokio::test]
    async fn async_graphql_errors_get_the_code_of_their_stage() {
        assert_eq!(
            code_of("{ concerts { id ").await,
            Some(ErrorCode::GraphqlParseFailed)
        );
        assert_eq!(
            code_of("{ nope }").await,
            Some(ErrorCode::GraphqlValidationFailed)
        );
        // A custom scalar checks its value when the field runs: the caller's input.
        assert_eq!(
            code_of("{ seats(concertId: \"c\", date: 5) { number } }").await,
            Some(ErrorCode::BadUserInput)
        );
        // A built-in type is checked by validation.
        assert_eq!(
            code_of("{ seats(concertId: \"c\", date: \"2026-12-01\", x: 1) { number } }").await,
            Some(ErrorCode::GraphqlValidationFailed)
        );
        assert_eq!(
            code_of("query { ...Nope }").await,
            Some(ErrorCode::GraphqlValidationFailed)
        );
    }
}
