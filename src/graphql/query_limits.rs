//! `QueryLimits`, an async-graphql extension: the cost of a document is decided before any of it
//! is validated or run, in time and memory proportional to its size.
//!
//! Why before validation: a few hundred bytes of fragments that each spread the next one twice
//! expand to 2^n fields, and both async-graphql's own checks (recursion depth, directives,
//! complexity) and its validation walk that expansion. Here the document is parsed once (the
//! parse is kept for the rest of the request) and each fragment's cost is computed once and
//! memoised, so the expansion is measured without being walked: fields, aliases and depth per
//! operation, against [`QueryLimits`]. A refusal is `ErrorCode::GraphqlValidationFailed`; a document that
//! does not parse is `ErrorCode::GraphqlParseFailed`.
//!
//! On the way out it bounds the error list (`MAX_ERRORS`) and the length of each message, so a
//! response never grows with what the client sent.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Request, Response, ServerError, ServerResult};

use super::error::{ErrorCode, coded};
use crate::config::QueryLimits;

/// Set by the HTTP transport on GET requests (see `transport::graphql_http`).
pub const READ_ONLY: &str = "encoreReadOnly";

/// Longest error message sent; longer ones (which may quote input) are cut.
const MAX_MESSAGE_CHARS: usize = 300;

pub struct Limits {
    pub limits: Arc<QueryLimits>,
    /// False in production: `__schema` and `__type` are refused with a code (async-graphql's
    /// own switch answers them with a silent null).
    pub introspection: bool,
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Limits {
            limits: Arc::clone(&self.limits),
            introspection: self.introspection,
        })
    }
}

#[async_trait::async_trait]
impl Extension for Limits {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let read_only = request.extensions.remove(READ_ONLY).is_some();
        // Before anything recursive sees the document.
        super::document_guard::check(&request.query, &self.limits)?;
        let operation_name = request.operation_name.clone();
        let document = request
            .parsed_query()
            .map_err(|e| coded(e, ErrorCode::GraphqlParseFailed))?;
        if read_only && selects_mutation(document, operation_name.as_deref()) {
            return Err(coded(
                ServerError::new("mutations are accepted only over POST", None),
                ErrorCode::MethodNotAllowed,
            ));
        }
        check(document, &self.limits).map_err(|message| {
            coded(
                ServerError::new(message, None),
                ErrorCode::GraphqlValidationFailed,
            )
        })?;
        if !self.introspection && introspects(document) {
            return Err(coded(
                ServerError::new("introspection is disabled on this server", None),
                ErrorCode::GraphqlValidationFailed,
            ));
        }
        next.run(ctx, request).await
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        bound_errors(&mut response.errors, self.limits.max_errors as usize);
        response
    }
}

/// What an operation or fragment costs once every spread is expanded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cost {
    fields: u64,
    aliases: u64,
    depth: u64,
}

impl Cost {
    fn add(self, other: Cost) -> Cost {
        Cost {
            fields: self.fields.saturating_add(other.fields),
            aliases: self.aliases.saturating_add(other.aliases),
            depth: self.depth.max(other.depth),
        }
    }
}

/// Checks every operation of `document` against `limits`; the reason when one is over.
fn check(document: &ExecutableDocument, limits: &QueryLimits) -> Result<(), String> {
    let mut costs = FragmentCosts {
        document,
        memo: HashMap::new(),
        visiting: Vec::new(),
    };
    for (_, operation) in document.operations.iter() {
        let cost = costs.of(&operation.node.selection_set)?;
        if cost.fields > u64::from(limits.max_fields) {
            return Err(format!(
                "the operation selects more than {} fields once its fragments are expanded",
                limits.max_fields
            ));
        }
        if cost.aliases > u64::from(limits.max_aliases) {
            return Err(format!(
                "the operation has more than {} aliases once its fragments are expanded",
                limits.max_aliases
            ));
        }
        if cost.depth > u64::from(limits.max_depth) {
            return Err(format!(
                "the operation nests fields deeper than {}",
                limits.max_depth
            ));
        }
    }
    Ok(())
}

struct FragmentCosts<'d> {
    document: &'d ExecutableDocument,
    /// The cost of each fragment already measured.
    memo: HashMap<&'d Name, Cost>,
    /// Fragments being measured, to stop at a cycle (which validation would refuse anyway).
    visiting: Vec<&'d Name>,
}

impl<'d> FragmentCosts<'d> {
    fn of(&mut self, set: &'d Positioned<SelectionSet>) -> Result<Cost, String> {
        let mut total = Cost::default();
        for selection in &set.node.items {
            let cost = match &selection.node {
                Selection::Field(field) => {
                    let inner = self.of(&field.node.selection_set)?;
                    Cost {
                        fields: inner.fields.saturating_add(1),
                        aliases: inner
                            .aliases
                            .saturating_add(u64::from(field.node.alias.is_some())),
                        depth: inner.depth + 1,
                    }
                }
                Selection::InlineFragment(fragment) => self.of(&fragment.node.selection_set)?,
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node)?
                }
            };
            total = total.add(cost);
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'d Name) -> Result<Cost, String> {
        if let Some(cost) = self.memo.get(name) {
            return Ok(*cost);
        }
        if self.visiting.contains(&name) {
            return Err(format!("fragment {name} spreads itself"));
        }
        // An unknown fragment costs nothing here; validation names it.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Cost::default());
        };
        self.visiting.push(name);
        let cost = self.of(&fragment.node.selection_set);
        self.visiting.pop();
        let cost = cost?;
        self.memo.insert(name, cost);
        Ok(cost)
    }
}

/// True when the operation a request runs is a mutation.
pub fn selects_mutation(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let ty = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    };
    ty == Some(OperationType::Mutation)
}

/// True when an operation selects `__schema` or `__type` (`__typename` is not introspection).
/// Runs after [`check`], so the walk through fragments is bounded.
fn introspects(document: &ExecutableDocument) -> bool {
    fn selects(document: &ExecutableDocument, set: &SelectionSet, seen: &mut Vec<Name>) -> bool {
        set.items.iter().any(|selection| match &selection.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                name == "__schema" || name == "__type"
            }
            Selection::InlineFragment(fragment) => {
                selects(document, &fragment.node.selection_set.node, seen)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if seen.contains(name) {
                    return false;
                }
                seen.push(name.clone());
                document
                    .fragments
                    .get(name)
                    .is_some_and(|f| selects(document, &f.node.selection_set.node, seen))
            }
        })
    }
    document
        .operations
        .iter()
        .any(|(_, op)| selects(document, &op.node.selection_set.node, &mut Vec::new()))
}

/// At most `max` errors, each message at most [`MAX_MESSAGE_CHARS`]; what was cut is said in one
/// last error.
fn bound_errors(errors: &mut Vec<ServerError>, max: usize) {
    for error in errors.iter_mut() {
        if error.message.chars().count() > MAX_MESSAGE_CHARS {
            let cut: String = error.message.chars().take(MAX_MESSAGE_CHARS).collect();
            error.message = format!("{cut}…");
        }
    }
    if errors.len() > max {
        let dropped = errors.len() - max + 1;
        errors.truncate(max - 1);
        errors.push(coded(
            ServerError::new(format!("{dropped} more errors not shown"), None),
            ErrorCode::TooManyErrors,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost_of(query: &str) -> Result<(), String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        check(&document, &QueryLimits::default())
    }

    /// Fragments F0..F{n-1}, each spreading the next twice: 2^n fields once expanded.
    fn fan_out(n: usize, leaf: &str) -> String {
        let mut query = String::from("query { ...F0 }");
        for i in 0..n {
            let next = if i + 1 < n {
                format!("...F{} ...F{}", i + 1, i + 1)
            } else {
                leaf.to_owned()
            };
            query.push_str(&format!(" fragment F{i} on Query {{ {next} }}"));
        }
        query
    }

    #[test]
    fn an_exponential_fragment_fan_out_is_measured_without_being_walked() {
        let started = std::time::Instant::now();
        let refused = cost_of(&fan_out(60, "__typename"));
        assert!(refused.is_err_and(|m| m.contains("fields")));
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        assert!(
            cost_of(&fan_out(5, "__typename")).is_ok(),
            "32 fields are fine"
        );
    }

    #[test]
    fn aliases_depth_and_cycles_are_counted() {
        let aliased: String = (0..101).map(|i| format!("a{i}: __typename ")).collect();
        assert!(cost_of(&format!("{{ {aliased} }}")).is_err_and(|m| m.contains("aliases")));
        let deep = format!("{{ {}id{} }}", "a { ".repeat(17), " }".repeat(17));
        assert!(cost_of(&deep).is_err_and(|m| m.contains("deeper")));
        let cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert!(cost_of(cycle).is_err_and(|m| m.contains("spreads itself")));
    }

    #[test]
    fn introspection_is_schema_or_type_at_the_root_even_through_fragments() {
        let parse = |q: &str| async_graphql::parser::parse_query(q).expect("parses");
        assert!(introspects(&parse("{ __schema { types { name } } }")));
        assert!(introspects(&parse(
            "{ ...F } fragment F on Query { __type(name: \"Query\") { name } }"
        )));
        assert!(!introspects(&parse("{ __typename concerts { id } }")));
    }

    #[test]
    fn a_document_nested_as_deep_as_the_body_allows_is_refused_by_the_parser() {
        // 64 KiB of `{a` is 32,000 levels: the parser's own recursion limit stops it.
        let deep = format!("{}{}", "{a".repeat(32_000), "}".repeat(32_000));
        assert!(async_graphql::parser::parse_query(&deep).is_err());
        let list = format!("{{ a(x: {}1{}) }}", "[".repeat(32_000), "]".repeat(32_000));
        assert!(async_graphql::parser::parse_query(&list).is_err());
    }

    #[test]
    fn error_lists_and_messages_are_bounded() {
        let mut errors: Vec<ServerError> = (0..50)
            .map(|_| ServerError::new("x".repeat(10_000), None))
            .collect();
        bound_errors(&mut errors, 20);
        assert_eq!(errors.len(), 20);
        assert!(errors[0].message.chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert_eq!(errors[19].message, "31 more errors not shown");
    }
}
