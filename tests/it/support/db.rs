//! Databases for tests: a SQLite file in a temp dir, or a fresh database on the PostgreSQL
//! server at 127.0.0.1:5432 (trust auth), dropped when the test is done. PostgreSQL being
//! down is a failure with instructions, never a skip.

use sqlx::Connection;

/// The PostgreSQL server the tests use.
const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database for one test.
pub enum TestDb {
    /// A SQLite file in a temp dir.
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL database by name.
    Postgres(String),
}

impl TestDb {
    /// A fresh SQLite file.
    pub fn sqlite() -> TestDb {
        TestDb::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    /// A fresh PostgreSQL database with a unique name.
    pub async fn postgres() -> TestDb {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "dialin_it_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut c = sqlx::PgConnection::connect(PG_ADMIN).await.unwrap_or_else(|e| {
            panic!("these tests need PostgreSQL at 127.0.0.1:5432 with trust auth (user postgres): {e}")
        });
        // Concurrent CREATE DATABASE can collide on the template; retry a few times.
        let mut tries = 0;
        while let Err(e) = sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
        {
            tries += 1;
            assert!(tries < 5, "cannot create a test database: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(200 * tries)).await;
        }
        TestDb::Postgres(name)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(dir) => format!("sqlite://{}/pins.db", dir.path().display()),
            TestDb::Postgres(name) => format!("postgres://postgres@127.0.0.1:5432/{name}"),
        }
    }
}

impl Drop for TestDb {
    /// Drops a PostgreSQL database, also when the test panicked (SQLite files go with the temp
    /// dir). Runs on its own thread and runtime: `Drop` cannot await.
    fn drop(&mut self) {
        let TestDb::Postgres(name) = self else { return };
        let name = name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut c = sqlx::PgConnection::connect(PG_ADMIN).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop a test database");
        }
    }
}
