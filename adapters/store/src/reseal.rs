//! Re-sealing: rewriting every sealed column in the current format under the writing
//! master key. The re-sealing migration uses it for values bound to their column only;
//! `acmeport keys rotate` for everything not sealed with the newest key.
//!
//! The pass walks each table by id in batches and rewrites one row at a time with a
//! compare-and-swap `UPDATE ... WHERE id = ? AND <column> = <old value>`, so it may be
//! interrupted at any point and run again, and a value written meanwhile (already current)
//! is never overwritten with an older one.

use crate::cipher::KeyCipher;
use crate::{accounts, certificates, orders, Store, StoreError};
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query};
use sea_orm::{ConnectionTrait, DbErr};

/// Rows read per query.
const BATCH: u64 = 500;

/// One sealed column: its table, its column, and the name its values are bound to.
struct SealedColumn {
    table: &'static str,
    column: &'static str,
    bound_to: &'static str,
}

/// Every column that holds a sealed secret. A new one must be listed here, or neither
/// the migration nor `keys rotate` re-seals it.
const SEALED_COLUMNS: [SealedColumn; 4] = [
    SealedColumn {
        table: "accounts",
        column: "credentials",
        bound_to: accounts::CREDENTIALS,
    },
    SealedColumn {
        table: "orders",
        column: "upload_key",
        bound_to: orders::UPLOAD_KEY,
    },
    SealedColumn {
        table: "orders",
        column: "cert_key",
        bound_to: orders::CERT_KEY,
    },
    SealedColumn {
        table: "certificates",
        column: "private_key",
        bound_to: certificates::PRIVATE_KEY,
    },
];

/// Which stored values a pass rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reseal {
    /// Only values bound to their column alone (the old format).
    ColumnBoundOnly,
    /// Everything not in the current format under the writing key.
    NotCurrent,
}

/// What a re-sealing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResealReport {
    /// Values rewritten.
    pub resealed: u64,
    /// Values left as they were: already current (or, for the migration, already bound
    /// to their row).
    pub unchanged: u64,
    /// Values no configured key opens, as `table.column row <id>`; left untouched.
    pub unreadable: Vec<String>,
}

/// Re-seals the sealed columns on `conn` (a connection or a transaction).
pub(crate) async fn reseal<C: ConnectionTrait>(
    conn: &C,
    cipher: &KeyCipher,
    which: Reseal,
) -> Result<ResealReport, DbErr> {
    let mut report = ResealReport::default();
    for sealed in &SEALED_COLUMNS {
        let (table, column) = (Alias::new(sealed.table), Alias::new(sealed.column));
        let mut after = 0_i64;
        loop {
            let select = Query::select()
                .column(Alias::new("id"))
                .column(column.clone())
                .from(table.clone())
                .and_where(Expr::col(Alias::new("id")).gt(after))
                .and_where(Expr::col(column.clone()).is_not_null())
                .order_by(Alias::new("id"), sea_orm::sea_query::Order::Asc)
                .limit(BATCH)
                .to_owned();
            let rows = conn.query_all(&select).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let id: i64 = row.try_get("", "id")?;
                let stored: Vec<u8> = row.try_get("", sealed.column)?;
                after = id;
                let wanted = match which {
                    Reseal::ColumnBoundOnly => KeyCipher::is_column_bound_only(&stored),
                    Reseal::NotCurrent => !cipher.is_current(&stored),
                };
                if !wanted {
                    report.unchanged += 1;
                    continue;
                }
                let Ok(fresh) = cipher.reseal(sealed.bound_to, id, &stored) else {
                    tracing::warn!(
                        table = sealed.table,
                        column = sealed.column,
                        row = id,
                        "no configured master key opens this value; left as it is"
                    );
                    report
                        .unreadable
                        .push(format!("{} row {id}", sealed.bound_to));
                    continue;
                };
                let update = Query::update()
                    .table(table.clone())
                    .value(column.clone(), fresh)
                    .and_where(Expr::col(Alias::new("id")).eq(id))
                    .and_where(Expr::col(column.clone()).eq(stored))
                    .to_owned();
                let written = conn.execute(&update).await?;
                // No row matched: a writer replaced the value meanwhile, in the current
                // format already.
                if written.rows_affected() == 1 {
                    report.resealed += 1;
                } else {
                    report.unchanged += 1;
                }
            }
        }
    }
    Ok(report)
}

impl Store {
    /// Re-seals every stored secret that is not in the current format under the writing
    /// (first) master key, so that the other keys may be removed afterwards. Safe to
    /// interrupt and to run again; values no configured key opens are left untouched and
    /// listed in the report.
    ///
    /// Instances still running with the old key list keep writing with the old first
    /// key: stop them (or give them the new key first) before removing the old keys.
    ///
    /// # Errors
    ///
    /// [`StoreError::Reseal`] when the database fails.
    pub async fn reseal_all(&self) -> Result<ResealReport, StoreError> {
        reseal(&self.db, &self.cipher, Reseal::NotCurrent)
            .await
            .map_err(StoreError::Reseal)
    }
}
