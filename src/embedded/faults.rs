//! Fault injection, for the tests only: killing the private server as a
//! crash would, and starting it again on the same data and socket.
//!
//! Compiled for the crate's own unit tests and with feature `test-support`,
//! which the integration tests turn on through the crate's dev-dependency on
//! itself; the gateway and the benchmark are built without it.
use super::{
    EmbeddedDatabase, EmbeddedError,
    supervisor::{RESTART_MARKER, signal},
};

impl EmbeddedDatabase {
    /// Kills the server with SIGKILL (fault tests) and waits until it is
    /// gone; [`Self::restart`] brings it back on the same data and socket.
    pub fn kill(&mut self) {
        let Some((mut watchdog, stdin)) = self.watchdog.take() else {
            return;
        };
        let marker = self.options.data_dir.join(RESTART_MARKER);
        let _ = std::fs::write(&marker, b"");
        signal(self.pid, "KILL");
        drop(stdin);
        let _ = watchdog.wait();
        let _ = std::fs::remove_file(marker);
        tracing::info!(pid = self.pid, "killed the private database server");
    }

    /// Starts the server again (killing it first if it runs) on the same
    /// data directory and socket, and waits until it accepts connections.
    pub fn restart(&mut self) -> Result<(), EmbeddedError> {
        self.kill();
        self.launch()
    }

    /// Like [`Self::restart`], with `extra_args` added to the server's
    /// options from now on (e.g. `--read-only` for an old primary that
    /// comes back after a failover).
    pub fn restart_with(&mut self, extra_args: &[&str]) -> Result<(), EmbeddedError> {
        self.kill();
        self.command
            .extend(extra_args.iter().map(|arg| arg.to_string()));
        self.launch()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::embedded::{
        EmbeddedDatabase, EmbeddedError,
        datadir::check_not_in_use,
        supervisor::{running, server_answers},
        temp_options,
    };

    #[test]
    fn starts_restarts_and_stops_cleanly() {
        let options = temp_options("stop");
        let mut database = EmbeddedDatabase::start(&options).expect("server starts");
        let socket = database.socket_path().to_path_buf();
        assert!(server_answers(&socket));
        assert!(
            options.data_dir.join("sqlgate").is_dir(),
            "database sqlgate exists"
        );
        let url = database.url("sqlgate");
        assert!(
            url.starts_with("mysql://root@localhost/sqlgate?socket=/"),
            "{url}"
        );
        // A second server on the same data directory is refused.
        let data_dir = options.data_dir.canonicalize().unwrap();
        let refused = check_not_in_use(&data_dir, Duration::ZERO);
        assert!(matches!(refused, Err(EmbeddedError::InUse(pid, _)) if pid == database.pid()));

        let first = database.pid();
        database.kill();
        assert!(!running(first), "killed server is gone");
        assert!(options.data_dir.exists() && socket.parent().unwrap().exists());
        database.restart().expect("server restarts");
        assert_ne!(database.pid(), first);
        assert!(server_answers(&socket), "same socket after restart");

        let pid = database.pid();
        database.stop().unwrap();
        assert!(!running(pid), "server process still alive after stop");
        assert!(!options.data_dir.exists(), "temporary data dir removed");
        assert!(!socket.parent().unwrap().exists(), "socket dir removed");
    }

    #[test]
    fn dropping_a_killed_server_removes_its_directories() {
        let options = temp_options("killed");
        let mut database = EmbeddedDatabase::start(&options).expect("server starts");
        let socket_dir = database.socket_path().parent().unwrap().to_path_buf();
        database.kill();
        drop(database);
        assert!(!options.data_dir.exists() && !socket_dir.exists());
    }
}
