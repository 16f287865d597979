//! Planner statistics of the busy tables on PostgreSQL. A pressure test starts on a fresh
//! database, and autovacuum visits it once a minute at best. Until its first ANALYZE the tables
//! have no statistics, and the planner reads the pending-message index with a bitmap scan. A
//! bitmap scan never marks the index entries of sent messages dead, so every claim visits every
//! message sent since the start: 5 ms per claim after 20,000 messages, and a sequential scan of
//! `message_events` for each report acknowledgement (measured with `auto_explain` under
//! `bench/sync_latency.py`). With statistics the planner takes the ordered index scan (0.5 ms).
//!
//! So the proxy analyses `messages` and `message_events` itself once a fifth of their rows (at
//! least 1,000) changed since the last analysis, checked every few seconds. SQLite needs none:
//! its planner uses the indexes without statistics.

use sqlx::Row;

use super::{Backend, Result, Store};

/// The tables whose plans go wrong without statistics.
const TABLES: [&str; 2] = ["messages", "message_events"];

impl Store {
    /// Analyses the busy tables that changed enough since their last analysis; returns their
    /// names. Does nothing on SQLite.
    pub async fn refresh_planner_stats(&self) -> Result<Vec<String>> {
        if self.backend() != Backend::Postgres {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT relname::text AS name FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname::text IN ($1, $2) \
               AND n_mod_since_analyze >= GREATEST(1000, n_live_tup / 5) \
             ORDER BY relname",
        )
        .bind(TABLES[0])
        .bind(TABLES[1])
        .fetch_all(&self.pool)
        .await?;
        let mut analysed = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            // The name is one of TABLES, never text from outside.
            if let Some(table) = TABLES.iter().find(|t| **t == name) {
                sqlx::query(&format!("ANALYZE {table}"))
                    .execute(&self.pool)
                    .await?;
                analysed.push(name);
            }
        }
        Ok(analysed)
    }
}
