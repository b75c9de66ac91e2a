//! PgBouncer 1.24 from Debian 13's package, run in the chroot of [`crate::debian_chroot`].
//! Debian 12's own PgBouncer (1.18) predates `max_prepared_statements`, without which sqlx's
//! prepared statements fail in transaction mode. The chroot shares this machine's
//! network, so PgBouncer listens on 127.0.0.1 like the other servers here. Needs root.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::{free_port, wait_until_up};

/// A PgBouncer on a free port of 127.0.0.1, killed on drop.
pub struct PgBouncer {
    pub port: u16,
    work: tempfile::TempDir,
    server: Child,
}

/// The uid and gid of `user` in the chroot's /etc/passwd.
fn ids_in(root: &Path, user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd"))?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&user))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .with_context(|| format!("no {user} user in the chroot"))
}

impl PgBouncer {
    /// Starts PgBouncer with `config` (a pgbouncer.ini) and, on top of it, the `[databases]`
    /// lines given, a listener on 127.0.0.1 and `userlist` as its auth_file.
    pub fn start(
        cache: &Path,
        config: &Path,
        databases: &str,
        userlist: &str,
    ) -> anyhow::Result<Self> {
        let root = crate::debian_chroot::trixie_tools(cache)?;
        let (work, inside) = crate::debian_chroot::work_dir(&root, "local-pgbouncer-")?;
        std::fs::copy(config, work.path().join("base.ini"))
            .with_context(|| format!("copy {}", config.display()))?;
        std::fs::write(work.path().join("userlist.txt"), userlist)?;
        let port = free_port()?;
        // Later values win: the tested file first, then what only a test may change.
        let ini = format!(
            "%include {base}\n\n[databases]\n{databases}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_file = {userlist}\nlogfile =\npidfile =\n",
            base = inside.join("base.ini").display(),
            userlist = inside.join("userlist.txt").display(),
        );
        std::fs::write(work.path().join("pgbouncer.ini"), ini)?;
        let (uid, gid) = ids_in(&root, "postgres")?;
        for entry in std::fs::read_dir(work.path())? {
            std::os::unix::fs::chown(entry?.path(), Some(uid), Some(gid))?;
        }
        std::os::unix::fs::chown(work.path(), Some(uid), Some(gid))?;
        let log = std::fs::File::create(work.path().join("pgbouncer.log"))?;
        let server = Command::new("chroot")
            .arg("--userspec=postgres:postgres")
            .arg(&root)
            .arg("/usr/sbin/pgbouncer")
            .arg(inside.join("pgbouncer.ini"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("start pgbouncer in its chroot (needs root)")?;
        let mut bouncer = Self { port, work, server };
        let up = wait_until_up(
            &mut bouncer.server,
            Duration::from_secs(15),
            "PgBouncer to listen",
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        up.with_context(|| format!("PgBouncer's log:\n{}", bouncer.log()))?;
        Ok(bouncer)
    }

    /// What PgBouncer has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
