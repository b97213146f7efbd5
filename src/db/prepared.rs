//! Hand-written statements that each connection prepares once and then reuses.
//!
//! diesel never caches the prepared statement of an `UPDATE` (nor of `sql_query`): each call
//! is parsed and planned again, by PostgreSQL on its side of a round trip and by SQLite in our
//! process. The hot paths of the token endpoint (a code exchange, a refresh, a revocation)
//! run their writes through [`Prepared`] instead: one static SQL text per statement, given a
//! type of its own ([`Statement`]), which diesel's statement cache keys by that type
//! (issue 13).

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::sql_types::{BigInt, HasSqlType, Text};
use diesel::{QueryDsl, RunQueryDsl};

/// One statement: its SQL, with `?` where each bind goes (written as `$n` for PostgreSQL by
/// diesel), and the SQL type of the row it returns (for the statements that return one).
pub trait Statement: 'static {
    /// The SQL text; every `?` is a bind, in order.
    const SQL: &'static str;
    /// What a returned row is (`BigInt` for a count, say).
    type Row;
    /// Whether the connection keeps it prepared. A statement that is not kept is sent as text
    /// every time (parsed and planned again, in the same one round trip).
    const KEEP: bool = true;
    /// How many `?` [`Self::SQL`] has, counted once, at compile time.
    const PLACEHOLDERS: usize = placeholders(Self::SQL);
}

/// The `?`s in `sql`.
const fn placeholders(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'?' {
            n += 1;
        }
        i += 1;
    }
    n
}

/// A value bound to a `?`.
#[derive(Clone, Copy)]
pub enum Bind<'a> {
    /// A `BIGINT` (every timestamp and id here).
    Int(i64),
    /// A `TEXT`.
    Text(&'a str),
    /// A `BIGINT[]` (PostgreSQL; the statements of [`super::batcher`]).
    Ints(&'a [i64]),
    /// A `TEXT[]` (PostgreSQL).
    Texts(&'a [&'a str]),
}

/// A backend that [`Prepared`] binds values for.
pub trait Binds: Backend + HasSqlType<BigInt> + HasSqlType<Text> {
    /// Binds `bind` to the next `?`.
    fn push<'b>(out: &mut AstPass<'_, 'b, Self>, bind: &'b Bind<'b>) -> QueryResult<()>;
}

impl Binds for diesel::pg::Pg {
    fn push<'b>(out: &mut AstPass<'_, 'b, Self>, bind: &'b Bind<'b>) -> QueryResult<()> {
        use diesel::sql_types::Array;
        match bind {
            Bind::Int(v) => out.push_bind_param::<BigInt, i64>(v),
            Bind::Text(s) => out.push_bind_param::<Text, str>(s),
            Bind::Ints(v) => out.push_bind_param::<Array<BigInt>, [i64]>(v),
            Bind::Texts(v) => out.push_bind_param::<Array<Text>, [&str]>(v),
        }
    }
}

impl Binds for diesel::sqlite::Sqlite {
    fn push<'b>(out: &mut AstPass<'_, 'b, Self>, bind: &'b Bind<'b>) -> QueryResult<()> {
        match bind {
            Bind::Int(v) => out.push_bind_param::<BigInt, i64>(v),
            Bind::Text(s) => out.push_bind_param::<Text, str>(s),
            Bind::Ints(_) | Bind::Texts(_) => Err(diesel::result::Error::QueryBuilderError(
                "SQLite has no arrays".into(),
            )),
        }
    }
}

/// A [`Statement`] with its binds, ready to run on a PostgreSQL or SQLite connection.
pub struct Prepared<'a, S: Statement> {
    binds: &'a [Bind<'a>],
    statement: PhantomData<S>,
}

/// `S` with `binds`, in the order of its `?`s.
pub fn prepared<'a, S: Statement>(binds: &'a [Bind<'a>]) -> Prepared<'a, S> {
    Prepared {
        binds,
        statement: PhantomData,
    }
}

impl<S: Statement> QueryId for Prepared<'_, S> {
    type QueryId = S;
    // The statement type stands for the SQL text: diesel may cache the prepared statement.
    const HAS_STATIC_QUERY_ID: bool = S::KEEP;
}

impl<S: Statement> Query for Prepared<'_, S> {
    type SqlType = S::Row;
}

impl<S: Statement, Conn> RunQueryDsl<Conn> for Prepared<'_, S> {}

impl<S: Statement> QueryDsl for Prepared<'_, S> {}

impl<DB: Binds, S: Statement> QueryFragment<DB> for Prepared<'_, S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if S::PLACEHOLDERS != self.binds.len() {
            return Err(diesel::result::Error::QueryBuilderError(
                format!(
                    "{} binds given for a statement with {} placeholders",
                    self.binds.len(),
                    S::PLACEHOLDERS
                )
                .into(),
            ));
        }
        let mut parts = S::SQL.split('?');
        if !S::KEEP {
            out.unsafe_to_cache_prepared();
        }
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        for (bind, part) in self.binds.iter().zip(parts) {
            DB::push(&mut out, bind)?;
            out.push_sql(part);
        }
        Ok(())
    }
}

/// Runs `S` with `binds` on either backend; the number of rows it changed.
pub fn execute<S: Statement>(
    conn: &mut super::AnyConnection,
    binds: &[Bind<'_>],
) -> QueryResult<usize> {
    match conn {
        super::AnyConnection::Postgresql(c) => prepared::<S>(binds).execute(c),
        super::AnyConnection::Sqlite(c) => prepared::<S>(binds).execute(c),
    }
}

/// Runs `S` with `binds` on either backend and reads the one row it returns, if any.
pub fn optional<'a, S, T>(
    conn: &mut super::AnyConnection,
    binds: &'a [Bind<'a>],
) -> QueryResult<Option<T>>
where
    S: Statement,
    Prepared<'a, S>: diesel::query_dsl::LoadQuery<'a, diesel::PgConnection, T>
        + diesel::query_dsl::LoadQuery<'a, diesel::SqliteConnection, T>,
{
    use diesel::OptionalExtension;
    match conn {
        super::AnyConnection::Postgresql(c) => prepared::<S>(binds).get_result(c).optional(),
        super::AnyConnection::Sqlite(c) => prepared::<S>(binds).get_result(c).optional(),
    }
}

/// Rows per statement of [`batch`]: 3 binds each stays well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
const BATCH_ROWS: usize = 5_000;

/// Runs `sql` once per chunk of `rows`, with `{values}` in it replaced by a `VALUES` list of
/// the chunk (each row's integers bound, in order; its columns are `column1`, `column2`, ... on
/// both backends): the last-used times of tens of thousands of clients are a few statements,
/// not one each (issue 13). `sql` is a constant of ours; only values are bound.
pub fn batch<const N: usize>(
    conn: &mut super::AnyConnection,
    sql: &'static str,
    rows: &[[i64; N]],
) -> QueryResult<()> {
    use diesel::query_builder::BoxedSqlQuery;
    use std::fmt::Write;
    let pg = matches!(conn, super::AnyConnection::Postgresql(_));
    for chunk in rows.chunks(BATCH_ROWS) {
        let mut n = 0;
        let mut values = String::with_capacity(chunk.len() * N * 16 + 8);
        values.push_str("(VALUES ");
        for i in 0..chunk.len() {
            values.push_str(if i == 0 { "(" } else { ", (" });
            for j in 0..N {
                if j > 0 {
                    values.push_str(", ");
                }
                n += 1;
                if pg {
                    // Typed, so that PostgreSQL knows the VALUES list's column types.
                    let _ = write!(values, "${n}::bigint");
                } else {
                    values.push('?');
                }
            }
            values.push(')');
        }
        values.push(')');
        let text = sql.replace("{values}", &values);
        let flat = chunk.iter().flatten().copied();
        match conn {
            super::AnyConnection::Postgresql(c) => {
                let mut q: BoxedSqlQuery<'_, diesel::pg::Pg, _> =
                    diesel::sql_query(text).into_boxed();
                for v in flat {
                    q = q.bind::<BigInt, _>(v);
                }
                q.execute(c)?;
            }
            super::AnyConnection::Sqlite(c) => {
                let mut q: BoxedSqlQuery<'_, diesel::sqlite::Sqlite, _> =
                    diesel::sql_query(text).into_boxed();
                for v in flat {
                    q = q.bind::<BigInt, _>(v);
                }
                q.execute(c)?;
            }
        }
    }
    Ok(())
}
