//! Invariants of the migrated schema that every future migration must keep, checked on both
//! backends (in the spirit of crates.io's `schema_details.rs`).

use crate::helpers::TestApp;
use crate::on_both_backends;
use diesel::RunQueryDsl;

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    a: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    b: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    c: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn sqlite(app: &TestApp) -> bool {
    app.db.sqlite_path.is_some()
}

fn rows(app: &TestApp, sql: &str) -> Vec<(String, String, String)> {
    diesel::sql_query(sql)
        .load::<Row>(&mut **app.pool.get().unwrap())
        .unwrap()
        .into_iter()
        .map(|r| (r.a, r.b, r.c))
        .collect()
}

fn execute(app: &TestApp, sql: &str) {
    diesel::sql_query(sql)
        .execute(&mut **app.pool.get().unwrap())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn generation(app: &TestApp) -> i64 {
    diesel::sql_query("SELECT value AS n FROM cache_generation WHERE name = 'clients'")
        .get_result::<Count>(&mut **app.pool.get().unwrap())
        .unwrap()
        .n
}

fn columns(app: &TestApp, table: &str) -> Vec<String> {
    let sql = if sqlite(app) {
        format!("SELECT name AS a, type AS b, '' AS c FROM pragma_table_info('{table}')")
    } else {
        format!(
            "SELECT column_name::text AS a, data_type::text AS b, '' AS c \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        )
    };
    let cols: Vec<String> = rows(app, &sql).into_iter().map(|r| r.0).collect();
    assert!(!cols.is_empty(), "no table {table}");
    cols
}

// Deleting a client must take everything that hangs off it (secrets, redirect URIs, grants
// and their tokens, consents, assertion jtis, ...): a row left behind would keep a credential
// of a client that no longer exists, or block the delete.
on_both_backends!(every_foreign_key_to_clients_cascades_on_delete);
async fn every_foreign_key_to_clients_cascades_on_delete(app: TestApp) {
    let sql = if sqlite(&app) {
        "SELECT m.name AS a, p.\"from\" AS b, p.on_delete AS c \
         FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) p \
         WHERE m.type = 'table' AND p.\"table\" = 'clients'"
    } else {
        "SELECT c.conrelid::regclass::text AS a, a.attname::text AS b, \
                CASE c.confdeltype WHEN 'c' THEN 'CASCADE' ELSE c.confdeltype::text END AS c \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
         WHERE c.contype = 'f' AND c.confrelid = 'clients'::regclass"
    };
    let keys = rows(&app, sql);
    let tables: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    for expected in ["client_secrets", "redirect_uris", "grants"] {
        assert!(
            tables.contains(&expected),
            "{expected} has no foreign key to clients: {keys:?}"
        );
    }
    let not_cascading: Vec<_> = keys.iter().filter(|k| k.2 != "CASCADE").collect();
    assert!(
        not_cascading.is_empty(),
        "foreign keys to clients that do not cascade: {not_cascading:?}"
    );
}

// Every instance keeps clients in memory and drops them when the `cache_generation` counter
// moves, which triggers on the columns listed in the migrations (SQLite; on PostgreSQL any update
// of these tables moves it, migration 000017). A column the
// cache reads but the trigger misses would let another instance go on using an old value (a
// disabled client, a removed secret) until something else changes. Only the columns below are
// exempt, each for its reason; a new column is covered by the trigger or added here.
on_both_backends!(every_cached_column_moves_the_cache_generation);
async fn every_cached_column_moves_the_cache_generation(app: TestApp) {
    let exempt: &[(&str, &[&str])] = &[
        // id: the key, never updated; name_lower: only the admin search reads it;
        // created_at/updated_at: shown to admins, never decide anything (last-used times are
        // in tables of their own, which no cache reads).
        ("clients", &["id", "name_lower", "created_at", "updated_at"]),
        ("client_secrets", &["id", "created_at"]),
        ("redirect_uris", &["id"]),
    ];
    let web = app.web_app("web", &["invoices:read"]);
    app.await_client_cache();
    let mut missed = Vec::new();
    for (table, skip) in exempt {
        let cols = columns(&app, table);
        for s in *skip {
            assert!(cols.iter().any(|c| c == s), "{table}.{s} no longer exists");
        }
        let row = if *table == "clients" {
            format!("client_id = '{}'", web.client_id)
        } else {
            format!(
                "client_id = (SELECT id FROM clients WHERE client_id = '{}')",
                web.client_id
            )
        };
        let mut checked = 0;
        for col in cols.iter().filter(|c| !skip.contains(&c.as_str())) {
            let before = generation(&app);
            execute(
                &app,
                &format!("UPDATE {table} SET {col} = {col} WHERE {row}"),
            );
            if generation(&app) == before {
                missed.push(format!("{table}.{col}"));
            }
            checked += 1;
        }
        assert!(checked > 0, "no column of {table} checked");
    }
    assert!(
        missed.is_empty(),
        "columns the client cache reads whose change does not move the cache generation: {missed:?}"
    );
}
