//! The operator commands' terminal side: `hearth migrate-data`, `hearth
//! backup` and `hearth restore`. The work is in `hearth-store` (`copy`,
//! `backup`); this module only chooses paths from the configuration, shows
//! progress (a bar on a terminal, plain lines otherwise, always on stderr)
//! and prints the summary (stdout).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use hearth_store::backup::{self, BackupInfo};
use hearth_store::copy::{self, CopyOptions, CopyProgress, CopySummary};

use crate::config::Config;

/// Shows a run's progress on stderr: a redrawn bar when stderr is a
/// terminal, otherwise a line per table and at most one a second.
struct Reporter {
    tty: bool,
    total: u64,
    /// Rows of finished tables, plus the current table's.
    finished: u64,
    current: u64,
    last: Instant,
    started: Instant,
}

impl Reporter {
    fn new() -> Self {
        Reporter {
            tty: std::io::stderr().is_terminal(),
            total: 0,
            finished: 0,
            current: 0,
            last: Instant::now() - Duration::from_secs(10),
            started: Instant::now(),
        }
    }

    fn on(&mut self, p: CopyProgress<'_>) {
        let mut err = std::io::stderr().lock();
        match p {
            CopyProgress::Start {
                resumed,
                total_rows,
            } => {
                self.total = total_rows;
                let what = if resumed {
                    "continuing an interrupted migration"
                } else {
                    "migrating"
                };
                let _ = writeln!(err, "{what}: {total_rows} rows in the source");
            }
            CopyProgress::Table { table, done, total } => {
                self.current = done;
                let whole = done >= total;
                if self.tty {
                    let all = self.finished + done;
                    let frac = if self.total == 0 {
                        1.0
                    } else {
                        all as f64 / self.total as f64
                    };
                    let width = 30;
                    let filled = ((frac * width as f64) as usize).min(width);
                    let rate = all as f64 / self.started.elapsed().as_secs_f64().max(0.001);
                    let _ = write!(
                        err,
                        "\r[{}{}] {:>5.1}% {all}/{} rows, {rate:.0}/s  {table}: {done}/{total}\x1b[K",
                        "#".repeat(filled),
                        " ".repeat(width - filled),
                        frac * 100.0,
                        self.total
                    );
                    if whole {
                        let _ = writeln!(err);
                    }
                } else if whole || self.last.elapsed() >= Duration::from_secs(1) {
                    self.last = Instant::now();
                    let _ = writeln!(err, "{table}: {done}/{total} rows");
                }
                if whole {
                    self.finished += done;
                    self.current = 0;
                }
            }
            CopyProgress::Verifying { table } => {
                tracing::debug!(table, "verifying");
                if self.tty {
                    let _ = write!(err, "\rverifying {table}\x1b[K");
                }
            }
        }
    }
}

fn print_summary(s: &CopySummary) {
    let secs = s.elapsed.as_secs_f64();
    println!("{:<22} {:>12}  checksum (source = target)", "table", "rows");
    for t in &s.tables {
        println!("{:<22} {:>12}  {}", t.table, t.rows, t.checksum);
    }
    let copy = s.copy_elapsed.as_secs_f64();
    println!(
        "verified: {} tables, {} rows, identical on both sides; {} rows copied by this run in {copy:.1} s ({:.0} rows/s), verified in {:.1} s{}{}",
        s.tables.len(),
        s.total_rows(),
        s.copied_rows,
        s.copied_rows as f64 / copy.max(0.001),
        secs - copy,
        if s.resumed {
            ", continuing an interrupted run"
        } else {
            ""
        },
        if s.sequences_fixed > 0 {
            format!(", {} sequences set", s.sequences_fixed)
        } else {
            String::new()
        }
    );
}

/// `hearth migrate-data --from <sqlite> --to <postgres url>`.
pub async fn migrate_data(from: &Path, to: &str, opts: &CopyOptions) -> Result<(), String> {
    let mut reporter = Reporter::new();
    let mut on = |p: CopyProgress<'_>| reporter.on(p);
    let summary = copy::migrate_data(from, to, opts, &mut on)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        rows = summary.total_rows(),
        copied = summary.copied_rows,
        secs = summary.elapsed.as_secs_f64(),
        "data migration verified"
    );
    print_summary(&summary);
    println!(
        "next: point database_url (DATABASE_URL) at the target and start the nodes; keep {} as it is until you are satisfied",
        copy::sqlite_file(from).display()
    );
    Ok(())
}

fn describe(info: &BackupInfo) -> String {
    format!(
        "{} ({} bytes, schema version {}, {} users, {} messages)",
        info.path.display(),
        info.bytes,
        info.schema_version,
        info.users,
        info.messages
    )
}

fn refuse_postgres(cfg: &Config, what: &str) -> Result<(), String> {
    if cfg.uses_postgres() {
        return Err(format!(
            "the database is Postgres: {what} it with scripts/pg-backup.sh (pg_dump/pg_restore; see docs/operations.md)"
        ));
    }
    Ok(())
}

/// `hearth backup --to <file>`: the data directory's SQLite database, while
/// the server may be running.
pub async fn backup(cfg: &Config, to: &Path) -> Result<(), String> {
    refuse_postgres(cfg, "back up")?;
    let db = cfg.data_dir.join("hearth.db");
    let started = Instant::now();
    let info = backup::backup_sqlite(&db, to)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(path = %info.path.display(), bytes = info.bytes, "backup written");
    println!(
        "backed up {} to {} in {:.1} s",
        db.display(),
        describe(&info),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `hearth restore --from <file> [--force]` into the data directory.
pub async fn restore(cfg: &Config, from: &Path, force: bool) -> Result<(), String> {
    refuse_postgres(cfg, "restore")?;
    let (info, moved) = backup::restore_sqlite(from, &cfg.data_dir, force)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(from = %from.display(), "restored");
    println!("restored {} as {}", from.display(), describe(&info));
    for m in moved {
        println!("the previous data was moved aside to {}", m.display());
    }
    Ok(())
}
