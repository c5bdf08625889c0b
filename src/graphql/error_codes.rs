//! `ErrorCodes`, an async-graphql extension: every error a client sees carries
//! `extensions.code`, over HTTP and websockets alike.
//!
//! Errors the service raises get their code where domain errors are mapped (`error::to_graphql`).
//! This extension codes the ones async-graphql raises itself, by the stage that raises them and
//! never by their text: a document that does not parse is `GRAPHQL_PARSE_FAILED`; one that fails
//! validation (unknown fields, arguments or variables of the wrong type, depth or complexity) is
//! `GRAPHQL_VALIDATION_FAILED`, as Apollo Server codes them; an input that passed validation and
//! failed to convert while a field ran (a scalar's own check, such as a `Date` that is not a
//! day) is `BAD_USER_INPUT`. An error still uncoded at the end of a request failed before
//! execution (choosing the operation): `GRAPHQL_VALIDATION_FAILED`. Every error sent is counted by
//! code in `graphql_errors_total`, whichever transport carried it.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::error::{BAD_USER_INPUT, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, set_code};

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, GRAPHQL_PARSE_FAILED))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            fill(&mut errors, GRAPHQL_VALIDATION_FAILED);
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
        fill(&mut response.errors, BAD_USER_INPUT);
        response
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        fill(&mut response.errors, GRAPHQL_VALIDATION_FAILED);
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
                fill(&mut response.errors, BAD_USER_INPUT);
                count(&response.errors);
                response
            })
            .boxed()
    }
}

/// Gives every uncoded error the code of the stage that raised it.
fn fill(errors: &mut [ServerError], code: &str) {
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

fn with_code(error: ServerError, code: &str) -> ServerError {
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

    async fn code_of(query: &str) -> String {
        let schema = builder(&Default::default()).finish();
        let response = schema.execute(query).await;
        crate::graphql::error::code_of(&response.errors[0]).to_owned()
    }

    #[tokio::test]
    async fn async_graphql_errors_get_the_code_of_their_stage() {
        assert_eq!(code_of("{ concerts { id ").await, GRAPHQL_PARSE_FAILED);
        assert_eq!(code_of("{ nope }").await, GRAPHQL_VALIDATION_FAILED);
        // A custom scalar checks its value when the field runs: the caller's input.
        assert_eq!(
            code_of("{ seats(concertId: \"c\", date: 5) { number } }").await,
            BAD_USER_INPUT
        );
        // A built-in type is checked by validation.
        assert_eq!(
            code_of("{ seats(concertId: \"c\", date: \"2026-12-01\", x: 1) { number } }").await,
            GRAPHQL_VALIDATION_FAILED
        );
        assert_eq!(
            code_of("query { ...Nope }").await,
            GRAPHQL_VALIDATION_FAILED
        );
    }
}
