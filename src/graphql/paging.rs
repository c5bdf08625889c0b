//! Relay-style connections (`edges { cursor node }`, `pageInfo`) from the domain's pages.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};

use crate::domain::paging::Page;

/// A connection of `page`'s items converted with `node`; `after_given` says a previous page
/// exists.
pub fn connection<T, N: OutputType>(
    page: Page<T>,
    after_given: bool,
    node: impl Fn(T) -> N,
) -> Connection<String, N> {
    let mut connection = Connection::new(after_given, page.has_next);
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|(cursor, item)| Edge::new(cursor.encode(), node(item))),
    );
    connection
}
