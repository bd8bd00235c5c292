//! Reads a training source (a table name or a query yielding user_id, item_id [, rating] [, ts])
//! through SPI, with the caller's privileges, streamed through a cursor in batches.

use crate::errors::{invalid_argument_hint, raise, raise_full, OrRaise};
use crate::guc;
use neumf_core::dataset::{Interactions, InteractionsBuilder};
use neumf_core::ids::{IdKind, IdMap};
use neumf_core::options::is_qualified_name;
use pgrx::pg_sys::{self, BuiltinOid, PgOid};
use pgrx::prelude::*;
use pgrx::FromDatum;
use pgrx::PgSqlErrorCode;

/// What the source looks like, checked before any row is read.
#[derive(Debug)]
pub struct SourceShape {
    /// The query to read from (a table name becomes `SELECT * FROM <table>`).
    pub query: String,
    pub user_kind: IdKind,
    pub item_kind: IdKind,
    pub has_rating: bool,
    /// How to read `ts` as float8 seconds, when the source has it.
    pub ts_expr: Option<&'static str>,
    /// Every column's name, for messages.
    pub columns: Vec<String>,
}

fn type_name(oid: &PgOid) -> String {
    let raw = oid.value();
    Spi::get_one_with_args::<String>("SELECT format_type($1, NULL)", &[raw.into()])
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("type {raw:?}"))
}

#[track_caller]
fn wrong_type(column: &str, oid: &PgOid, hint: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        format!("source column \"{column}\" has type {}", type_name(oid)),
        Some(hint),
    )
}

fn id_kind(column: &str, oid: &PgOid) -> IdKind {
    use BuiltinOid::*;
    match oid {
        PgOid::BuiltIn(INT2OID | INT4OID | INT8OID) => IdKind::BigInt,
        PgOid::BuiltIn(TEXTOID | VARCHAROID | BPCHAROID | UUIDOID | NAMEOID) => IdKind::Text,
        other => wrong_type(
            column,
            other,
            &format!("Ids must be smallint, integer, bigint, text, varchar or uuid: cast it in a query, e.g. SELECT {column}::bigint AS {column}, …"),
        ),
    }
}

/// A column the source must have and does not.
#[track_caller]
pub fn missing_column(what: &str, column: &str, has: &[String], hint: &str) -> ! {
    raise_full(
        PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
        format!("{what} has no column \"{column}\""),
        Some(format!("Its columns are: {}.", has.join(", "))),
        Some(hint),
    )
}

fn is_numeric(oid: &PgOid) -> bool {
    use BuiltinOid::*;
    matches!(oid, PgOid::BuiltIn(INT2OID | INT4OID | INT8OID | FLOAT4OID | FLOAT8OID | NUMERICOID))
}

fn is_temporal(oid: &PgOid) -> bool {
    use BuiltinOid::*;
    matches!(oid, PgOid::BuiltIn(TIMESTAMPOID | TIMESTAMPTZOID | DATEOID))
}

/// A relation name becomes `SELECT * FROM <relation>` (resolved by `to_regclass`, with the
/// caller's search_path); anything else is a query, used as it is (it may start with WITH, a
/// comment or a parenthesis). `what` names the argument in errors ("source", "test").
pub fn resolve_query(source: &str, what: &str) -> String {
    let trimmed = source.trim().trim_end_matches(';').trim();
    if trimmed.is_empty() {
        invalid_argument_hint(format!("{what} is empty"), "Pass a table name or a SELECT query.");
    }
    if !is_qualified_name(trimmed) {
        return trimmed.to_string();
    }
    let table = Spi::get_one_with_args::<String>("SELECT to_regclass($1)::text", &[trimmed.into()])
        .or_raise("resolving the table");
    match table {
        Some(t) => format!("SELECT * FROM {t}"),
        None => raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            // A quoted name is shown as written; a plain one gets the quotes.
            if trimmed.starts_with('"') {
                format!("{what} table {trimmed} does not exist")
            } else {
                format!("{what} table \"{trimmed}\" does not exist")
            },
            Some(
                "Pass an existing table or view (schema-qualified if it is not on the search_path), or a SELECT query.",
            ),
        ),
    }
}

/// Resolves `source` to a query and checks its columns and their types.
pub fn describe(source: &str) -> SourceShape {
    let query = resolve_query(source, "source");

    let columns: Vec<(String, PgOid)> = Spi::connect(|client| {
        let t = client.select(&format!("SELECT * FROM ({query}) AS neumf_source LIMIT 0"), None, &[])?;
        (1..=t.columns()?)
            .map(|i| Ok((t.column_name(i)?, t.column_type_oid(i)?)))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .or_raise("describing the source");

    let find = |name: &str| columns.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    let require = |name: &str| {
        find(name).unwrap_or_else(|| {
            missing_column(
                "source",
                name,
                &names,
                "Alias yours in a query, e.g. SELECT customer AS user_id, product AS item_id FROM …",
            )
        })
    };
    let user_kind = id_kind("user_id", &require("user_id"));
    let item_kind = id_kind("item_id", &require("item_id"));
    let rating = find("rating");
    if let Some(t) = &rating {
        if !is_numeric(t) {
            wrong_type("rating", t, "rating must be numeric; cast or alias another column as rating.");
        }
    }
    // ts orders each user's interactions: the latest is the validation holdout.
    let ts_expr = find("ts").map(|t| {
        if is_numeric(&t) {
            "ts::float8"
        } else if is_temporal(&t) {
            "extract(epoch FROM ts)::float8"
        } else {
            wrong_type("ts", &t, "ts must be a number (e.g. unix seconds), timestamp or date.")
        }
    });
    SourceShape { query, user_kind, item_kind, has_rating: rating.is_some(), ts_expr, columns: names }
}

fn id_cast(kind: IdKind) -> &'static str {
    match kind {
        IdKind::BigInt => "int8",
        IdKind::Text => "text",
    }
}

/// Streams the source into deduplicated interactions. Rows with a NULL id are counted and
/// skipped; with `min_rating`, rows rated below it (or unrated) are not interactions.
/// `rows_read` sees the running count after each fetched batch (for progress).
pub fn read(shape: &SourceShape, min_rating: Option<f64>, rows_read: &mut dyn FnMut(u64)) -> Interactions {
    if min_rating.is_some() && !shape.has_rating {
        missing_column(
            "source",
            "rating",
            &shape.columns,
            "min_rating filters on a rating column: alias one as rating, or leave min_rating out.",
        );
    }
    let rating = if shape.has_rating && min_rating.is_some() { "rating::float8" } else { "NULL::float8" };
    let sql = format!(
        "SELECT user_id::{}, item_id::{}, {rating}, {} FROM ({}) AS neumf_source",
        id_cast(shape.user_kind),
        id_cast(shape.item_kind),
        shape.ts_expr.unwrap_or("NULL::float8"),
        shape.query
    );
    let mut b = InteractionsBuilder::new(IdMap::new(shape.user_kind), IdMap::new(shape.item_kind));
    let batch_rows = guc::FETCH_ROWS.get() as _;
    Spi::connect(|client| -> Result<(), pgrx::spi::Error> {
        let mut cursor = client.try_open_cursor(&sql, &[])?;
        loop {
            pg_sys::check_for_interrupts!();
            let _batch = cursor.fetch(batch_rows)?;
            // SAFETY: SPI_tuptable is the batch just fetched (pgrx's wrapper is dropped above; we
            // read the raw table to avoid a per-row allocation) and is freed below.
            let table = unsafe { pg_sys::SPI_tuptable };
            if table.is_null() || unsafe { (*table).numvals } == 0 {
                break;
            }
            rows_read(b.rows_read);
            let (rows, desc) = unsafe { ((*table).numvals as usize, (*table).tupdesc) };
            for j in 0..rows {
                let tuple = unsafe { *(*table).vals.add(j) };
                // SAFETY: columns 1..4 exist with the types the SELECT above casts to.
                let column = |n: i32| {
                    let mut is_null = false;
                    let d = unsafe { pg_sys::SPI_getbinval(tuple, desc, n, &mut is_null) };
                    (d, is_null)
                };
                b.rows_read += 1;
                if let Some(min) = min_rating {
                    let (d, null) = column(3);
                    if null || unsafe { f64::from_datum(d, false) }.unwrap_or(f64::NAN) < min {
                        b.skipped.below_min_rating += 1;
                        continue;
                    }
                }
                // Check both ids for NULL before interning either, so skipped rows add no ids.
                let ((ud, user_null), (id, item_null)) = (column(1), column(2));
                if user_null {
                    b.skipped.null_user += 1;
                    continue;
                }
                if item_null {
                    b.skipped.null_item += 1;
                    continue;
                }
                let user = match shape.user_kind {
                    IdKind::BigInt => b.users.intern_int(unsafe { i64::from_datum(ud, false) }.unwrap_or_default()),
                    IdKind::Text => b.users.intern_text(unsafe { <&str>::from_datum(ud, false) }.unwrap_or_default()),
                };
                let item = match shape.item_kind {
                    IdKind::BigInt => b.items.intern_int(unsafe { i64::from_datum(id, false) }.unwrap_or_default()),
                    IdKind::Text => b.items.intern_text(unsafe { <&str>::from_datum(id, false) }.unwrap_or_default()),
                };
                let (td, ts_null) = column(4);
                let ts = if ts_null { f64::NAN } else { unsafe { f64::from_datum(td, false) }.unwrap_or(f64::NAN) };
                b.push_at(user, item, ts);
            }
            // Without this every batch would stay allocated until SPI disconnects.
            unsafe { pg_sys::SPI_freetuptable(table) };
        }
        Ok(())
    })
    .or_raise("reading the source");
    b.finish()
}
