/*
 * The results database, STORE/results.db: one row per run, with its faults,
 * anomalies and metrics, so runs can be queried across campaigns and
 * seeds. Histories stay in the run directories; the database points at
 * them.
 *
 * Schema (PRAGMA user_version is the schema version; rep_db_open migrates
 * an older database in one transaction and refuses a newer one):
 *
 *   runs(id INTEGER PRIMARY KEY, run_id TEXT, campaign TEXT, seed INTEGER,
 *        system TEXT, nodes INTEGER, network TEXT, started TEXT (UTC ISO
 *        8601), duration_s REAL, verdict TEXT, expected TEXT,
 *        exit_code INTEGER, repro TEXT, store_path TEXT UNIQUE NOT NULL)
 *   faults(run INTEGER REFERENCES runs(id) ON DELETE CASCADE, fault_id
 *        INTEGER, kind TEXT, targets TEXT (JSON array), start_s REAL,
 *        stop_s REAL, detail TEXT (JSON))
 *   anomalies(run INTEGER REFERENCES runs(id) ON DELETE CASCADE,
 *        checker TEXT, kind TEXT, detail TEXT (JSON), ops TEXT (JSON
 *        array of the operations involved: history line numbers))
 *   metrics(run INTEGER REFERENCES runs(id) ON DELETE CASCADE, name TEXT,
 *        value REAL, unit TEXT)
 *
 * Where the values come from: runs from results.json, with campaign.json
 * filling campaign, seed, system, nodes and expected when results.json
 * lacks them; duration_s is results.json's elapsed_s (the whole run, wall
 * clock); store_path is the run directory's realpath. A value found in
 * neither file is NULL. faults pair the start and stop lines of
 * nemesis.jsonl by id; times are seconds since the run began, on the
 * history's clock, and stop_s is NULL for a fault whose stop was never
 * recorded. targets and detail come from the start line. anomalies has
 * one row per entry of results.json's anomalies; ops lists, sorted and
 * without repeats, the invoke_line and complete_line of the op, prefix
 * and concurrent operations of each linearizability finding, and is []
 * for checkers that name no operations. metrics has one row per number
 * in results.json's metrics, named by its path ("ok",
 * "per_fault[0].ok_per_s"), with unit "ops", "ops/s", "s" or "".
 *
 * The database runs in WAL mode with a busy timeout, and each import is
 * one IMMEDIATE transaction, so several runs finishing at once neither
 * corrupt it nor lose a row.
 */
#ifndef REP_STORE_H
#define REP_STORE_H

#include <sqlite3.h>
#include <stddef.h>

#define REP_SCHEMA_VERSION 1

/*
 * Opens (creating if needed) and migrates the database at path, with
 * foreign keys on and a 30 s busy timeout. Returns 0 with the connection
 * in *out, owned by the caller (rep_db_close). Returns FL_EINPUT when the
 * schema is newer than REP_SCHEMA_VERSION (the file is left unchanged),
 * or another negative error, each with the reason in err.
 */
int rep_db_open(sqlite3 **out, const char *path, char *err, size_t err_size);

void rep_db_close(sqlite3 *db);

/*
 * Adds the run stored in run_dir (its results.json, campaign.json and
 * nemesis.jsonl) to the database, replacing an earlier import of the same
 * directory (matched by its absolute path). Returns 0, FL_EINPUT when the
 * directory is not a finished run or one of its files is malformed (the
 * reason, naming the file, in err), or another negative error. On any
 * error the database is left as it was.
 */
int rep_db_import(sqlite3 *db, const char *run_dir, char *err, size_t err_size);

/*
 * Removes the runs whose directory no longer contains a results.json (moved
 * or deleted since their import), with their faults, anomalies and
 * metrics. Sets *removed. Returns 0 or a negative error with the reason
 * in err.
 */
int rep_db_forget_missing(sqlite3 *db, size_t *removed, char *err,
                          size_t err_size);

#endif
