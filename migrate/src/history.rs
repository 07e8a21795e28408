//! refinery's history table, `refinery_schema_history`, read and written the way
//! refinery does (version, name, RFC 3339 `applied_on`, checksum as decimal text), so
//! refinery and deckhand can take turns on one database.

use tokio_postgres::GenericClient;

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
pub async fn ensure(client: &impl GenericClient) -> Result<(), Error> {
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

/// Every applied migration, by version; empty when the table does not exist yet.
pub async fn read(client: &impl GenericClient) -> Result<Vec<Applied>, Error> {
    let exists: bool = client
        .query_one(&format!("SELECT to_regclass('{TABLE}') IS NOT NULL"), &[])
        .await
        .map_err(|e| Error::db(&format!("looking for {TABLE}"), &e))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT version, coalesce(name, ''), coalesce(applied_on, ''), coalesce(checksum, '') \
                 FROM {TABLE} ORDER BY version"
            ),
            &[],
        )
        .await
        .map_err(|e| Error::db(&format!("reading {TABLE}"), &e))?;
    Ok(rows
        .iter()
        .map(|r| Applied {
            version: r.get(0),
            name: r.get(1),
            applied_on: r.get(2),
            checksum: r.get::<_, String>(3).parse().ok(),
        })
        .collect())
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
