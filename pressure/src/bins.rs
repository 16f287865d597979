//! Finding `mailproxy` and `client-sim`: `--bin-dir`, else beside this program, else on `PATH`.
//! Launched through `cargo run` (`CARGO` set) with either missing, it builds them with the same
//! cargo and profile first, and says so.

use std::path::{Path, PathBuf};

use crate::input::InputError;

/// The two programs a run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The mail proxy.
    pub mailproxy: PathBuf,
    /// Simulated clients, sink and setup.
    pub client_sim: PathBuf,
}

const NAMES: [&str; 2] = ["mailproxy", "client-sim"];

/// Locates both programs, building them when run through cargo.
pub fn locate(bin_dir: Option<&Path>, quiet: bool) -> Result<Binaries, InputError> {
    let own_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(b) = find(bin_dir, own_dir.as_deref()) {
        return Ok(b);
    }
    if bin_dir.is_none()
        && let (Ok(cargo), Some(dir)) = (std::env::var("CARGO"), own_dir.as_deref())
    {
        build(&cargo, dir, quiet)?;
        if let Some(b) = find(None, Some(dir)) {
            return Ok(b);
        }
    }
    Err(InputError::Flag {
        flag: "--bin-dir",
        reason: format!(
            "cannot find `mailproxy` and `client-sim` ({}); build them with `cargo build --release -p mailproxy -p client-sim`, \
             or run `cargo run --release -p pressure -- run`, or pass --bin-dir",
            bin_dir.map_or_else(
                || "looked beside this program and on PATH".to_string(),
                |d| format!("looked in {}", d.display())
            )
        ),
    })
}

fn find(bin_dir: Option<&Path>, own_dir: Option<&Path>) -> Option<Binaries> {
    let in_dir = |d: &Path| -> Option<Binaries> {
        let p = |n: &str| Some(d.join(n)).filter(|p| p.is_file());
        Some(Binaries {
            mailproxy: p(NAMES[0])?,
            client_sim: p(NAMES[1])?,
        })
    };
    if let Some(d) = bin_dir {
        return in_dir(d);
    }
    if let Some(b) = own_dir.and_then(in_dir) {
        return Some(b);
    }
    let path = std::env::var_os("PATH")?;
    let on_path = |n: &str| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    };
    Some(Binaries {
        mailproxy: on_path(NAMES[0])?,
        client_sim: on_path(NAMES[1])?,
    })
}

/// `$CARGO build [--release|--profile P] -p mailproxy -p client-sim`, into the target directory
/// this program lives in.
fn build(cargo: &str, own_dir: &Path, quiet: bool) -> Result<(), InputError> {
    let profile = own_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let target_dir = own_dir.parent().map(Path::to_path_buf);
    if !quiet {
        eprintln!(
            "mailproxy and client-sim are not built yet: building them now ({profile} profile)..."
        );
    }
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "mailproxy", "-p", "client-sim"]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(t) = target_dir {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    if quiet {
        cmd.arg("--quiet");
    }
    let status = cmd.status().map_err(|e| InputError::Flag {
        flag: "--bin-dir",
        reason: format!("cannot run {cargo} to build mailproxy and client-sim: {e}"),
    })?;
    if !status.success() {
        return Err(InputError::Flag {
            flag: "--bin-dir",
            reason: format!(
                "building mailproxy and client-sim failed ({status}); see cargo's output above"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_both_in_a_directory_or_none() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(find(Some(dir.path()), None), None);
        for n in NAMES {
            std::fs::write(dir.path().join(n), b"").expect("write");
        }
        let b = find(Some(dir.path()), None).expect("found");
        assert_eq!(b.mailproxy, dir.path().join("mailproxy"));
        assert!(locate(Some(&dir.path().join("nope")), true).is_err());
    }
}
