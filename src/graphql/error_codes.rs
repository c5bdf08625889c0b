//! `ErrorCodes`, an async-graphql extension: every error a client sees carries
//! `extensions.code`, over HTTP and websockets alike.
//!
//! Errors the service raises get their code where domain errors are mapped (`error::to_graphql`).
//! This extension codes the ones async-graphql raises itself, at the stage that raises them, so
//! nothing has to guess afterwards: a document that does not parse is `GRAPHQL_PARSE_FAILED`; one
//! that fails validation or a depth/complexity limit is `GRAPHQL_VALIDATION_FAILED`; an argument
//! or variable value of the wrong shape is `BAD_USER_INPUT`. Whatever is still uncoded at the end
//! of a request or a subscription event gets the same treatment. Every error sent is counted by
//! code in `graphql_errors_total`, whichever transport carried it.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::error::{BAD_USER_INPUT, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED};

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
            fill(&mut errors);
            errors
        })
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        fill(&mut response.errors);
        count(&response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                fill(&mut response.errors);
                count(&response.errors);
                response
            })
            .boxed()
    }
}

/// Codes every uncoded error: a value of the wrong shape is the caller's input, anything else
/// async-graphql refused is the operation itself.
fn fill(errors: &mut [ServerError]) {
    for error in errors.iter_mut().filter(|e| !has_code(e)) {
        let code = if error.message.contains("Failed to parse")
            || error.message.contains("Invalid value")
        {
            BAD_USER_INPUT
        } else {
            GRAPHQL_VALIDATION_FAILED
        };
        set_code(error, code);
    }
}

fn count(errors: &[ServerError]) {
    for error in errors {
        let code = super::error::code_of(error).to_owned();
        metrics::counter!("graphql_errors_total", "code" => code).increment(1);
    }
}

fn with_code(mut error: ServerError, code: &str) -> ServerError {
    if !has_code(&error) {
        set_code(&mut error, code);
    }
    error
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some())
}

fn set_code(error: &mut ServerError, code: &str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
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
        assert_eq!(
            code_of("{ seats(concertId: \"c\", date: 5) { number } }").await,
            BAD_USER_INPUT
        );
    }
}
