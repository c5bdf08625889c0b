//! Statements prepared once per connection.
//!
//! diesel prepares a statement, runs it and closes it again, unless it is sure the statement's text
//! cannot vary: it will not keep a statement with a raw SQL fragment, an `UPDATE` or an `IN` list.
//! On the hot paths that doubled the round trips (MariaDB counted 1,302 prepares for 1,571
//! executions per second during an entry rush). Here are the two ways our statements stay
//! prepared:
//! - [`fixed_sql!`] fragments (such as [`UtcNow`], the database clock) instead of raw ones;
//! - [`Cached`], for a statement whose text is fixed although diesel cannot tell (an `UPDATE` of
//!   a fixed set of columns, a fixed raw fragment): kept by its SQL text. Never wrap a statement
//!   whose text varies (an `IN` list, a multi-row insert): every variant would be kept.

use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::sql_types::Datetime;

/// Declares a unit type that is a fixed SQL fragment of a given SQL type: unlike a raw fragment
/// (`diesel::dsl::sql`), a statement containing it stays prepared. Each fragment is its own type,
/// so a statement's type still names its text.
macro_rules! fixed_sql {
    ($(#[$doc:meta])* $vis:vis $name:ident: $sql_type:ty = $sql:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, diesel::query_builder::QueryId, diesel::expression::ValidGrouping)]
        $vis struct $name;

        impl diesel::expression::Expression for $name {
            type SqlType = $sql_type;
        }

        impl diesel::query_builder::QueryFragment<diesel::mysql::Mysql> for $name {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::mysql::Mysql>,
            ) -> diesel::result::QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }

        impl<QS> diesel::expression::SelectableExpression<QS> for $name {}
        impl<QS> diesel::expression::AppearsOnTable<QS> for $name {}
    };
}
pub(crate) use fixed_sql;

fixed_sql!(
    /// `UTC_TIMESTAMP(6)`: the database clock with microseconds, inside the statement that
    /// depends on it. (MariaDB does not take the precision as a bind parameter.)
    pub UtcNow: Datetime = "UTC_TIMESTAMP(6)"
);

/// A statement whose SQL text is the same every time, kept prepared by that text.
#[derive(Debug, Clone)]
pub struct Cached<Q>(pub Q);

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    // Keyed by text, not by type: two statements of one type may differ in their fragments.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Mysql>> QueryFragment<Mysql> for Cached<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Mysql) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}
