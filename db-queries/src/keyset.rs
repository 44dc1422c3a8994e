//! Keyset pagination whose first page has no lower bound.
//!
//! A cursor that starts at a sentinel key (`id > '00000000-…'`) hides every
//! row whose key equals the sentinel: that is how a nil id once made a
//! request invisible to every reader. A [`KeysetPage`] is instead one of two
//! statements: the first page, with no cursor predicate at all, or a later
//! page, `key > after`. Both select the same columns in the same order, so
//! callers see one query type; the EXPLAIN catalogue lists both forms.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// The first page of a keyset walk, or a page after a key.
#[derive(Clone, Debug)]
pub enum KeysetPage<F, A> {
    /// The first page: no lower bound.
    First(F),
    /// A later page: keys above the previous page's last key.
    After(A),
}

impl<F, A> KeysetPage<F, A> {
    /// `first()` when there is no cursor yet, `later(key)` after `key`.
    pub fn new<K>(after: Option<K>, first: impl FnOnce() -> F, later: impl FnOnce(K) -> A) -> Self {
        match after {
            None => KeysetPage::First(first()),
            Some(key) => KeysetPage::After(later(key)),
        }
    }
}

impl<F, A> QueryId for KeysetPage<F, A> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<F, A> Query for KeysetPage<F, A>
where
    F: Query,
    A: Query<SqlType = F::SqlType>,
{
    type SqlType = F::SqlType;
}

impl<F, A> QueryFragment<Pg> for KeysetPage<F, A>
where
    F: QueryFragment<Pg>,
    A: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match self {
            KeysetPage::First(first) => first.walk_ast(pass),
            KeysetPage::After(after) => after.walk_ast(pass),
        }
    }
}
