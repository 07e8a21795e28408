//! refinery's history table, `refinery_schema_history`, read and written the way
//! refinery does (version, name, RFC 3339 `applied_on`, checksum as decimal text), so
//! refinery and deckhand can take turns on one database.

use crate::session::{DbError, Session};
use crate::Error;

pub const TABLE: &str = "refinery_schema_history";

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i32,
    pub name: String,
    pub applied_on: String,
    /// `None` when the stored text is not a number (written by another tool).
    pub checksum: Option<u64>,
}

/// Creates the table if missing. Call it while holding the migration lock: concurrent
/// `CREATE TABLE IF NOT EXISTS` can still collide in PostgreSQL's catalog.
pub(crate) async fn ensure(client: &Session) -> Result<(), Error> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE}(
                version int4 PRIMARY KEY,
                name VARCHAR(255),
                applied_on VARCHAR(255),
                checksum VARCHAR(255))"
        ))
        .await
        .map_err(|e| Error::db(&format!("creating {TABLE}"), &e))
}

/// The `version` column types whose values read as whole numbers: refinery creates
/// `int4`, or `int8` with its `int8-versions` feature.
const VERSION_TYPES: [&str; 3] = ["smallint", "integer", "bigint"];

/// Every applied migration, by version; empty when the table does not exist yet.
///
/// Reads `version` as `int8`, so tables created with `int4` and with `int8` both work;
/// a version beyond what a file name can hold, or a column of another type, is refused
/// with a message that names it and the fix. Other columns are read as text, whatever
/// type another tool gave them.
pub(crate) async fn read(client: &Session) -> Result<Vec<Applied>, Error> {
    let row = client
        .query_one(
            &format!(
                "SELECT t.oid IS NOT NULL, \
                        (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a \
                         WHERE a.attrelid = t.oid AND a.attname = 'version' AND NOT a.attisdropped) \
                 FROM (SELECT to_regclass('{TABLE}') AS oid) t"
            ),
            &[],
        )
        .await
        .map_err(|e| Error::db(&format!("looking for {TABLE}"), &e))?;
    let unreadable =
        |e: tokio_postgres::Error| Error::db(&format!("looking for {TABLE}"), &DbError::from(e));
    let exists: bool = row.try_get(0).map_err(unreadable)?;
    let version_type: Option<String> = row.try_get(1).map_err(unreadable)?;
    if !exists {
        return Ok(Vec::new());
    }
    match version_type.as_deref() {
        Some(t) if VERSION_TYPES.contains(&t) => {}
        found => {
            return Err(Error::Config(format!(
                "{TABLE}.version is {}; migrate reads whole-number versions (refinery creates \
                 int4, or int8 with its int8-versions feature): convert it with ALTER TABLE \
                 {TABLE} ALTER COLUMN version TYPE int8 USING version::int8, or point migrate \
                 at the database whose history this is",
                found.map_or_else(|| "missing".to_owned(), |t| format!("of type {t}"))
            )))
        }
    }
    let rows = client
        .query(
            &format!(
                "SELECT version::int8, coalesce(name::text, ''), coalesce(applied_on::text, ''), \
                        coalesce(checksum::text, '') \
                 FROM {TABLE} WHERE version IS NOT NULL ORDER BY version"
            ),
            &[],
        )
        .await
        .map_err(|e| Error::db(&format!("reading {TABLE}"), &e))?;
    rows.iter().map(applied).collect()
}

fn applied(row: &tokio_postgres::Row) -> Result<Applied, Error> {
    let unreadable =
        |e: tokio_postgres::Error| Error::db(&format!("reading {TABLE}"), &DbError::from(e));
    let version: i64 = row.try_get(0).map_err(unreadable)?;
    let version = i32::try_from(version).map_err(|_| {
        Error::Config(format!(
            "{TABLE} holds version {version}, beyond the largest version a migration file \
             can have ({}); remove that row if it is not a migration of this database",
            i32::MAX
        ))
    })?;
    let checksum: String = row.try_get(3).map_err(unreadable)?;
    Ok(Applied {
        version,
        name: row.try_get(1).map_err(unreadable)?,
        applied_on: row.try_get(2).map_err(unreadable)?,
        checksum: checksum.parse().ok(),
    })
}

/// SQL that records a migration as applied, with the database's clock in refinery's
/// format. Written out (not a prepared statement) so it can share a round trip with
/// `COMMIT`: applying 1,000 migrations is mostly round trips and commits.
pub fn insert_sql(version: i32, name: &str, checksum: u64) -> String {
    format!(
        "INSERT INTO {TABLE} (version, name, applied_on, checksum) VALUES \
         ({version}, '{}', to_char(clock_timestamp() AT TIME ZONE 'UTC', \
         'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '{checksum}')",
        name.replace('\'', "''")
    )
}

/// SQL that forgets a reverted migration.
pub fn delete_sql(version: i32) -> String {
    format!("DELETE FROM {TABLE} WHERE version = {version}")
}

/// SQL that records a repaired migration's current name and checksum, leaving
/// `applied_on` as it was (the migration was applied then; only its file changed), and
/// returns the version when the row exists.
pub fn repair_sql(version: i32, name: &str, checksum: u64) -> String {
    format!(
        "UPDATE {TABLE} SET name = '{}', checksum = '{checksum}' WHERE version = {version} \
         RETURNING version::int8",
        name.replace('\'', "''")
    )
}
