//! The GraphQL API: schema roots, types, scalars and the error edge. Resolvers translate and
//! delegate to the domain; they hold no business rules.

pub mod context;
pub mod document_guard;
pub mod error;
pub mod error_code;
pub mod inputs;
pub mod mutation;
pub mod operation_span;
pub mod paging;
pub mod persisted_queries;
pub mod query;
pub mod query_limits;
pub mod scalars;
pub mod stage_codes;
pub mod subscription;
pub mod types;

use async_graphql::{SDLExportOptions, Schema, SchemaBuilder};

use std::sync::Arc;

use crate::config::QueryLimits;
use crate::domain::services::Services;
use mutation::Mutation;
use query::Query;
use subscription::Subscription;

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema without data or persisted queries, with the given limits: for SDL export and tests.
pub fn builder(limits: &QueryLimits) -> SchemaBuilder<Query, Mutation, Subscription> {
    builder_with(Arc::new(persisted_queries::Store::Off), limits, true)
}

/// The schema's extensions in their order: persisted queries resolve the document, then the
/// limits measure it, error codes and spans wrap the rest.
pub fn builder_with(
    persisted: Arc<persisted_queries::Store>,
    limits: &QueryLimits,
    introspection: bool,
) -> SchemaBuilder<Query, Mutation, Subscription> {
    let limits = Arc::new(limits.clone());
    Schema::build(Query, Mutation, Subscription)
        .extension(persisted_queries::PersistedQueries {
            store: persisted,
            limits: Arc::clone(&limits),
        })
        .extension(stage_codes::StageCodes)
        .extension(query_limits::Limits {
            limits: Arc::clone(&limits),
            introspection,
        })
        .extension(operation_span::OperationSpan)
        .extension(context::PerOperation)
        // Published in the schema though no field returns it: clients generate their handling
        // of `extensions.code` from it.
        .register_output_type::<error_code::ErrorCode>()
        // Checked again by async-graphql, after `query_limits` has bounded the expansion.
        .limit_depth(limits.max_depth as usize)
        .limit_complexity(limits.max_complexity as usize)
        .limit_directives(limits.max_directives as usize)
}

/// The served schema, with its persisted queries. In production, introspection is off and
/// validation errors suggest no names ("Did you mean …?" would hand out the schema that
/// introspection hides).
pub fn schema(
    services: Services,
    limits: &QueryLimits,
    persisted: Arc<persisted_queries::Store>,
    production: bool,
) -> AppSchema {
    let builder = builder_with(persisted, limits, !production).data(services);
    if production {
        builder
            .disable_introspection()
            .disable_suggestions()
            .finish()
    } else {
        builder.finish()
    }
}

/// The SDL of the served schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder(&QueryLimits::default()).finish().sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}
