//! The run's child processes: each in its own process group (so a Ctrl-C at the terminal reaches
//! only `pressure`, which then reads the final figures before stopping them), output to a log file
//! in the run's temp dir, killed on drop whatever the exit path (error, panic, signal).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

/// One started process.
#[derive(Debug)]
pub struct Proc {
    /// Short name for messages (`proxy`, `sink`, `client standard-1`).
    pub name: String,
    /// Its log file.
    pub log: PathBuf,
    child: Child,
}

/// Every process of the run; dropping it kills them all.
#[derive(Debug, Default)]
pub struct Children {
    procs: Vec<Proc>,
}

impl Children {
    /// Starts `program args` with `env`, logging to `<log_dir>/<file>.log`.
    pub fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<u32> {
        let log = log_dir.join(format!("{}.log", name.replace(' ', "-")));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let err = out.try_clone().context("cannot duplicate the log file")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {} ({name})", program.display()))?;
        let pid = child.id().unwrap_or(0);
        self.procs.push(Proc {
            name: name.into(),
            log,
            child,
        });
        Ok(pid)
    }

    /// The first process that has exited, with its status and the tail of its log.
    pub fn exited(&mut self) -> Option<String> {
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Some(format!(
                    "{} exited unexpectedly ({status}); last lines of {}:\n{}",
                    p.name,
                    p.log.display(),
                    tail(&p.log, 12)
                ));
            }
        }
        None
    }

    /// Kills every process and waits for each (at most a few seconds in all).
    pub async fn stop_all(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.start_kill();
        }
        for p in &mut self.procs {
            let _ = tokio::time::timeout(Duration::from_secs(3), p.child.wait()).await;
        }
        self.procs.clear();
    }
}

/// The last `n` lines of a log file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Peak resident memory (`VmHWM`) of a process, bytes; `None` off Linux or once it is gone.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

/// `VmHWM:   12345 kB` from a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU seconds of a process from `/proc/<pid>/stat` (100 ticks per second).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm_in_bytes() {
        let text = "Name:\tmailproxy\nVmPeak:\t  999 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_vm_hwm(text), Some(2048 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        let me = std::process::id();
        assert!(peak_rss_bytes(me).is_some_and(|b| b > 0));
        assert!(cpu_seconds(me).is_some());
    }
}
