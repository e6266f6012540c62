//! [`SqliteStore`]: the state store in one SQLite file.
//!
//! One connection behind a mutex: SQLite serialises writers anyway, and one connection keeps
//! the prepared statement cache warm and transactions simple. Every public operation is one
//! transaction; batches (`record_intents`, `record_outcomes`, `stage_writes`) are one
//! transaction for the whole slice, so a page of writes costs one commit, not one per mailbox.

mod anchors;
mod audit;
mod joins;
mod journal;
mod plans;
mod queue;
mod schema;
mod stage;

pub use schema::SCHEMA_VERSION;

use crate::error::{Result, StateError};
use crate::model::{
    AuditQuery, AuditRecord, Cycle, CycleId, FailureRecord, FailureState, HeldPlan, Join,
    JournalEntry, JournalId, LastWritten, MailboxState, Outcome, PlanId, PurgeReport, RetryPolicy,
    StagedWrite, WriteIntent,
};
use crate::store::StateStore;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use writeback_core::Anchors;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: in WAL mode a commit is durable as soon as it is in the WAL file,
    /// which survives the process dying at any point (kill -9, OOM, panic=abort); only a
    /// power loss or OS crash can lose the last commits, never corrupt the file. No fsync per
    /// commit, which is what makes journaling every write affordable.
    #[default]
    Normal,
    /// `synchronous=FULL`: also survives power loss, at the price of an fsync per commit.
    Full,
}

/// Settings for opening a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// How long to wait for a lock held by another connection (another process, a backup)
    /// before failing with "database is locked".
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The state store in one SQLite file (WAL mode: the `-wal` and `-shm` files beside it
/// belong to it).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens or creates the store at `path` with the default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &SqliteOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: &SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open_error = |cause| StateError::Open {
            path: path.clone(),
            cause,
        };
        let mut conn = Connection::open(&path).map_err(open_error)?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(open_error)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::NoWal { path, mode });
        }
        let synchronous = match options.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        // 16 MiB of pages (SQLite's default is 2 MiB): a full pass looks up every mailbox's
        // anchors, join and failure, and with the default nearly every B-tree page read was a
        // system call. Bounded, so memory still does not grow with the tenant.
        conn.pragma_update(None, "cache_size", -16_384)
            .map_err(open_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn, &path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's `PRAGMA integrity_check`: the problems found, empty when the file is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            let problems: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
            Ok(problems.into_iter().filter(|p| p != "ok").collect())
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through the open Transaction, whose drop
        // rolled it back, so the connection is still consistent and can be used.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.lock())
    }

    /// Runs several reads in one read transaction: one snapshot of the file for all of them,
    /// and one lock of the WAL instead of one per statement.
    fn read_consistent<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` in a write transaction, committed if `f` succeeds and rolled back otherwise.
    /// IMMEDIATE takes the write lock up front, so a concurrent writer makes it wait
    /// (busy_timeout) instead of failing halfway through with SQLITE_BUSY.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl StateStore for SqliteStore {
    fn watermark(&self, name: &str) -> Result<Option<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT value FROM watermarks WHERE name = ?1")?;
            Ok(stmt.query_row([name], |row| row.get(0)).optional()?)
        })
    }

    fn set_watermarks(&self, values: &[(&str, &str)], now: i64) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO watermarks (name, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )?;
            for (name, value) in values {
                stmt.execute(params![name, value, now])?;
            }
            Ok(())
        })
    }

    fn remove_watermark(&self, name: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM watermarks WHERE name = ?1", [name])? > 0))
    }

    fn begin_cycle(&self, now: i64) -> Result<CycleId> {
        self.write(|tx| {
            tx.prepare_cached("INSERT INTO cycles (started_at) VALUES (?1)")?
                .execute([now])?;
            Ok(CycleId(tx.last_insert_rowid()))
        })
    }

    fn finish_cycle(&self, id: CycleId, now: i64, summary: &serde_json::Value) -> Result<()> {
        let summary = summary.to_string();
        self.write(|tx| {
            let finished: Option<Option<i64>> = tx
                .query_row(
                    "SELECT finished_at FROM cycles WHERE id = ?1",
                    [id.0],
                    |row| row.get(0),
                )
                .optional()?;
            match finished {
                None => Err(StateError::not_found("cycle", id)),
                Some(Some(_)) => Err(StateError::InvalidTransition {
                    what: "cycle",
                    id: id.to_string(),
                    detail: "already finished".into(),
                }),
                Some(None) => {
                    tx.execute(
                        "UPDATE cycles SET finished_at = ?2, summary = ?3 WHERE id = ?1",
                        params![id.0, now, summary],
                    )?;
                    Ok(())
                }
            }
        })
    }

    fn last_cycle(&self) -> Result<Option<Cycle>> {
        self.read(|conn| {
            let row = conn
                .query_row(
                    "SELECT id, started_at, finished_at, summary FROM cycles ORDER BY id DESC LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get::<_, Option<String>>(3)?)),
                )
                .optional()?;
            let Some((id, started_at, finished_at, summary)) = row else { return Ok(None) };
            let summary = summary
                .map(|text| serde_json::from_str(&text).map_err(|e| StateError::corrupt("cycle summary", e)))
                .transpose()?;
            Ok(Some(Cycle { id: CycleId(id), started_at, finished_at, summary }))
        })
    }

    fn join(&self, cloud_id: &str) -> Result<Option<Join>> {
        self.read(|conn| joins::by_cloud_id(conn, cloud_id))
    }

    fn join_by_guid(&self, object_guid: &[u8; 16]) -> Result<Option<Join>> {
        self.read(|conn| joins::by_guid(conn, object_guid))
    }

    fn upsert_join(&self, join: &Join) -> Result<()> {
        self.write(|tx| joins::upsert(tx, join))
    }

    fn upsert_joins(&self, joins: &[Join]) -> Result<()> {
        if joins.is_empty() {
            return Ok(());
        }
        self.write(|tx| joins.iter().try_for_each(|join| joins::upsert(tx, join)))
    }

    fn joins_by_guids(&self, object_guids: &[[u8; 16]]) -> Result<Vec<Option<Join>>> {
        self.read_consistent(|conn| {
            object_guids
                .iter()
                .map(|guid| joins::by_guid(conn, guid))
                .collect()
        })
    }

    fn mailbox_states(&self, keys: &[(&str, &str)]) -> Result<Vec<MailboxState>> {
        self.read_consistent(|conn| {
            keys.iter()
                .map(|(cloud_id, anchor_key)| {
                    let (join, synced) = joins::with_synced(conn, cloud_id)?;
                    Ok(MailboxState {
                        anchors: anchors::get(conn, anchor_key)?,
                        failure: queue::one(conn, cloud_id)?,
                        join,
                        synced,
                    })
                })
                .collect()
        })
    }

    fn remove_join(&self, cloud_id: &str) -> Result<bool> {
        self.write(|tx| joins::remove(tx, cloud_id))
    }

    fn join_count(&self) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM joins", [], |row| row.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn apply_anchor_page(
        &self,
        upserts: &[(String, Anchors)],
        removals: &[String],
        cursor: Option<(&str, &str)>,
        now: i64,
    ) -> Result<()> {
        self.write(|tx| anchors::apply_page(tx, upserts, removals, cursor, now))
    }

    fn anchors(&self, user_id: &str) -> Result<Option<Anchors>> {
        self.read(|conn| anchors::get(conn, user_id))
    }

    fn anchor_owner(&self, immutable_ids: &[String], sid: Option<&str>) -> Result<Option<String>> {
        self.read(|conn| anchors::owner(conn, immutable_ids, sid))
    }

    fn clear_anchors(&self) -> Result<u64> {
        self.write(anchors::clear)
    }

    fn anchor_count(&self) -> Result<u64> {
        self.read(anchors::count)
    }

    fn last_written(&self, cloud_id: &str) -> Result<Vec<LastWritten>> {
        self.read(|conn| joins::last_written(conn, cloud_id))
    }

    fn record_intents(&self, intents: &[WriteIntent<'_>], now: i64) -> Result<Vec<JournalId>> {
        let encoded = intents
            .iter()
            .map(journal::EncodedIntent::new)
            .collect::<Result<Vec<_>>>()?;
        self.write(|tx| journal::insert_intents(tx, &encoded, now))
    }

    fn record_outcomes(&self, outcomes: &[(JournalId, Outcome)], now: i64) -> Result<()> {
        self.write(|tx| journal::record_outcomes(tx, outcomes, now))
    }

    fn in_flight(&self) -> Result<Vec<JournalEntry>> {
        self.read(journal::in_flight)
    }

    fn journal_entry(&self, id: JournalId) -> Result<Option<JournalEntry>> {
        self.read(|conn| journal::entry(conn, id))
    }

    fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.read(|conn| audit::query(conn, query))
    }

    fn purge_before(&self, cutoff: i64) -> Result<PurgeReport> {
        self.write(|tx| {
            let mut report = audit::purge_before(tx, cutoff)?;
            report.staged_writes = stage::purge_before(tx, cutoff)?;
            Ok(report)
        })
    }

    fn record_failure(
        &self,
        cloud_id: &str,
        error: &str,
        policy: &RetryPolicy,
        now: i64,
    ) -> Result<FailureState> {
        self.write(|tx| queue::record_failure(tx, cloud_id, error, policy, now))
    }

    fn clear_failure(&self, cloud_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM failures WHERE cloud_id = ?1")?
                .execute([cloud_id])?;
            Ok(())
        })
    }

    fn synced_version(&self, cloud_id: &str) -> Result<Option<String>> {
        self.read(|conn| joins::synced_version(conn, cloud_id))
    }

    fn record_synced(&self, records: &[(&str, &str)]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(|tx| joins::record_synced(tx, records))
    }

    fn clear_failures(&self, cloud_ids: &[&str]) -> Result<()> {
        if cloud_ids.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut stmt = tx.prepare_cached("DELETE FROM failures WHERE cloud_id = ?1")?;
            for id in cloud_ids {
                stmt.execute([id])?;
            }
            Ok(())
        })
    }

    fn due_retries(&self, now: i64) -> Result<Vec<String>> {
        self.read(|conn| queue::due(conn, now))
    }

    fn failure(&self, cloud_id: &str) -> Result<Option<FailureRecord>> {
        self.read(|conn| queue::one(conn, cloud_id))
    }

    fn failures(&self) -> Result<Vec<FailureRecord>> {
        self.read(queue::all)
    }

    fn release_quarantine(&self, cloud_id: &str, now: i64) -> Result<()> {
        self.write(|tx| queue::release(tx, cloud_id, now))
    }

    fn hold_plan(
        &self,
        cycle: CycleId,
        reason: &str,
        plan: &serde_json::Value,
        now: i64,
    ) -> Result<PlanId> {
        let plan = plan.to_string();
        self.write(|tx| plans::hold(tx, cycle, reason, &plan, now))
    }

    fn held_plans(&self) -> Result<Vec<HeldPlan>> {
        self.read(plans::all)
    }

    fn held_plan(&self, id: PlanId) -> Result<Option<HeldPlan>> {
        self.read(|conn| plans::one(conn, id))
    }

    fn approve_plan(&self, id: PlanId, now: i64) -> Result<()> {
        self.write(|tx| plans::transition(tx, id, plans::Decision::Approve, now))
    }

    fn discard_plan(&self, id: PlanId, now: i64) -> Result<()> {
        self.write(|tx| plans::transition(tx, id, plans::Decision::Discard, now))
    }

    fn mark_plan_applied(&self, id: PlanId, now: i64) -> Result<()> {
        self.write(|tx| plans::transition(tx, id, plans::Decision::MarkApplied, now))
    }

    fn stage_writes(&self, cycle: CycleId, writes: &[StagedWrite]) -> Result<()> {
        let encoded = writes
            .iter()
            .map(stage::EncodedWrite::new)
            .collect::<Result<Vec<_>>>()?;
        self.write(|tx| stage::append(tx, cycle, &encoded))
    }

    fn staged_writes(
        &self,
        cycle: CycleId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<(u64, StagedWrite)>> {
        self.read(|conn| stage::page(conn, cycle, after_seq, limit))
    }

    fn staged_count(&self, cycle: CycleId) -> Result<u64> {
        self.read(|conn| stage::count_of(conn, cycle))
    }

    fn clear_staged(&self, cycle: CycleId) -> Result<u64> {
        self.write(|tx| stage::clear(tx, cycle))
    }

    fn clear_stale_stages(&self, keep: Option<CycleId>) -> Result<u64> {
        self.write(|tx| stage::clear_all_but(tx, keep))
    }
}
