//! The GraphQL API: schema roots, types, scalars and the error edge. Resolvers translate and
//! delegate to the domain; they hold no business rules.

pub mod context;
pub mod error;
pub mod error_codes;
pub mod mutation;
pub mod operation_span;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;

use async_graphql::{SDLExportOptions, Schema, SchemaBuilder};

use crate::domain::Services;
use mutation::Mutation;
use query::Query;
use subscription::Subscription;

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Depth and complexity ceilings: generous for the real operations and for the introspection
/// query GraphiQL and Apollo tooling send (13 levels deep), fatal for abusive ones.
const MAX_DEPTH: usize = 16;
const MAX_COMPLEXITY: usize = 500;

/// The schema without data: for SDL export and tests.
pub fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .extension(error_codes::ErrorCodes)
        .extension(operation_span::OperationSpan)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

pub fn schema(services: Services) -> AppSchema {
    builder().data(services).finish()
}

/// The SDL of the served schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}
