//! `deckhand_migration_text`: the SQL of each applied migration as it was applied (or
//! last repaired), kept so that `migrate repair` can show what an edit changed. The
//! history table keeps only a checksum; this side table is deckhand's own, next to it.
//!
//! Its row is written in the same transaction as the history row (`up`, `repair`) and
//! deleted with it (`down`), so the two never disagree through deckhand. refinery
//! ignores the table; a row it leaves stale (refinery re-applying a version whose
//! history row was deleted by hand, say) is caught when `repair` reads it: the text is
//! used only when refinery's checksum of it is the one the history holds.
//!
//! The text is kept as the file's bytes (`bytea`), so any content and any database
//! encoding round-trips, and it is readable by the table's owner only (`REVOKE ALL …
//! FROM PUBLIC` when it is created): migration SQL has been run by this database
//! already, but a file holding a literal credential would be kept here too.
//! `MIGRATE_KEEP_TEXT=false` stops keeping it. Not a copy of the migrations folder:
//! nothing runs from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tokio_postgres::types::Type;

use crate::session::{DbError, Session};
use crate::Error;

pub const TABLE: &str = "deckhand_migration_text";

/// `CREATE TABLE` with the revoke, in one string so that they run in one (implicit or
/// explicit) transaction: the table never exists readable by others.
fn create_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {TABLE}(version int8 PRIMARY KEY, sql bytea NOT NULL); \
         REVOKE ALL ON {TABLE} FROM PUBLIC"
    )
}

/// What a run does with a migration's row of the side table, decided once per run
/// under the migration lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeping {
    /// Record each migration's text (`MIGRATE_KEEP_TEXT` on; the table exists, or is
    /// created by the same transaction).
    Record,
    /// Keeping is off but the table exists: delete a version's row when its history row
    /// is written, so no text older than the history stays behind.
    Forget,
    /// Keeping is off and there is no table: nothing to do.
    Absent,
}

impl Keeping {
    /// The SQL that goes with recording `version` as applied (or repaired) with `sql`.
    pub fn applied_sql(self, version: i32, sql: &str) -> Option<String> {
        match self {
            Keeping::Record => Some(upsert_sql(version, sql.as_bytes())),
            Keeping::Forget => Some(delete_sql(version)),
            Keeping::Absent => None,
        }
    }

    /// The SQL that goes with forgetting a reverted `version`.
    pub fn reverted_sql(self, version: i32) -> Option<String> {
        match self {
            Keeping::Record | Keeping::Forget => Some(delete_sql(version)),
            Keeping::Absent => None,
        }
    }
}

/// Whether the table exists. Call it under the migration lock.
pub(crate) async fn exists(client: &Session) -> Result<bool, Error> {
    let row = client
        .query_one(&format!("SELECT to_regclass('{TABLE}') IS NOT NULL"), &[])
        .await
        .map_err(|e| Error::db(&format!("looking for {TABLE}"), &e))?;
    row.try_get(0)
        .map_err(|e| Error::db(&format!("looking for {TABLE}"), &DbError::from(e)))
}

/// For `up` and `down`: creates the table when `keep` and it is missing, and says what
/// to do with the rows. Call it under the migration lock, as [`crate::history::ensure`].
pub(crate) async fn prepare(client: &Session, keep: bool) -> Result<Keeping, Error> {
    let exists = exists(client).await?;
    if keep && !exists {
        client
            .batch_execute(&create_sql())
            .await
            .map_err(|e| Error::db(&format!("creating {TABLE}"), &e))?;
    }
    Ok(keeping(keep, exists))
}

/// What to do with the rows, given the setting and whether the table exists.
pub(crate) fn keeping(keep: bool, exists: bool) -> Keeping {
    match (keep, exists) {
        (true, _) => Keeping::Record,
        (false, true) => Keeping::Forget,
        (false, false) => Keeping::Absent,
    }
}

/// For `repair`, inside its transaction: the SQL that creates the table when it must
/// record text and there is none yet (so a failed repair leaves no table behind).
pub(crate) fn create_in_transaction(keeping: Keeping, exists: bool) -> Option<String> {
    (keeping == Keeping::Record && !exists).then(create_sql)
}

/// The kept text of each of `versions` that has one; empty when there is no table.
pub(crate) async fn read(
    client: &Session,
    versions: &[i32],
) -> Result<BTreeMap<i32, Vec<u8>>, Error> {
    let doing = format!("reading {TABLE}");
    let wanted: Vec<i64> = versions.iter().map(|v| i64::from(*v)).collect();
    let rows = client
        .query(
            &format!("SELECT version, sql FROM {TABLE} WHERE version = ANY($1)"),
            &[(&wanted, Type::INT8_ARRAY)],
        )
        .await
        .map_err(|e| Error::db(&doing, &e))?;
    let mut kept = BTreeMap::new();
    for row in rows {
        let unreadable = |e| Error::db(&doing, &DbError::from(e));
        let version: i64 = row.try_get(0).map_err(unreadable)?;
        let sql: Vec<u8> = row.try_get(1).map_err(unreadable)?;
        if let Ok(version) = i32::try_from(version) {
            kept.insert(version, sql);
        }
    }
    Ok(kept)
}

/// SQL that records `sql` as the text of `version`, replacing any row left before.
/// Written out, like the history's row, so it shares the round trip of the `COMMIT`;
/// as hex, so that no content and no `standard_conforming_strings` can end the literal.
pub fn upsert_sql(version: i32, sql: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(sql.len() * 2 + 160);
    let _ = write!(
        out,
        "INSERT INTO {TABLE} (version, sql) VALUES ({version}, decode('"
    );
    for byte in sql {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out.push_str("', 'hex')) ON CONFLICT (version) DO UPDATE SET sql = EXCLUDED.sql");
    out
}

/// SQL that forgets the text of `version`.
pub fn delete_sql(version: i32) -> String {
    format!("DELETE FROM {TABLE} WHERE version = {version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_goes_in_as_hex_whatever_it_holds() {
        assert_eq!(
            upsert_sql(3, b"it's;\\\n"),
            "INSERT INTO deckhand_migration_text (version, sql) VALUES (3, \
             decode('697427733b5c0a', 'hex')) ON CONFLICT (version) DO UPDATE SET sql = \
             EXCLUDED.sql"
        );
    }

    #[test]
    fn each_setting_and_table_state_has_its_sql() {
        assert_eq!(keeping(true, false), Keeping::Record);
        assert_eq!(keeping(false, true), Keeping::Forget);
        assert_eq!(keeping(false, false), Keeping::Absent);
        assert!(Keeping::Record
            .applied_sql(1, "x")
            .unwrap()
            .starts_with("INSERT"));
        assert_eq!(
            Keeping::Forget.applied_sql(1, "x").as_deref(),
            Some("DELETE FROM deckhand_migration_text WHERE version = 1")
        );
        assert_eq!(Keeping::Absent.applied_sql(1, "x"), None);
        assert_eq!(Keeping::Absent.reverted_sql(1), None);
        assert!(Keeping::Forget.reverted_sql(1).is_some());
        assert!(create_in_transaction(Keeping::Record, false).is_some());
        assert!(create_in_transaction(Keeping::Record, true).is_none());
        assert!(create_in_transaction(Keeping::Forget, true).is_none());
    }
}
