//! The run's input: the PressureTest file (or the default), the command-line overrides, and the
//! checks made before anything starts (ports free, external SMTP reachable, database URL shape).
//! Every failure is an [`InputError`] whose message says what to fix.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use pressure_crds::validate::LoadError;
use pressure_crds::{PressureTestSpec, TimeoutsSpec};

use crate::cli::RunArgs;

/// Measured seconds of the default run.
pub const DEFAULT_DURATION: i32 = 60;
/// Warm-up seconds of the default run.
pub const DEFAULT_WARMUP: i32 = 5;
/// Drain deadline of the default run, seconds.
pub const DEFAULT_DRAIN: i32 = 60;

/// Input that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}; check the path and its permissions")]
    Unreadable {
        /// The path given.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The file is not a valid PressureTest.
    #[error("{path}: {reason}")]
    Invalid {
        /// The path given.
        path: String,
        /// Parse or validation error with the field path.
        reason: String,
    },
    /// A flag has a bad value.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// The report of an earlier run (`--baseline FILE`), read before anything starts.
pub fn load_baseline(path: &std::path::Path) -> Result<pressure_crds::report::Report, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::Flag {
        flag: "--baseline",
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    serde_json::from_str(&text).map_err(|e| InputError::Flag {
        flag: "--baseline",
        reason: format!(
            "{} is not a report.json of an earlier run ({e}); pass the report.json a run wrote",
            path.display()
        ),
    })
}

/// Reads the file (or takes the default) and applies the command-line overrides.
pub fn load_spec(args: &RunArgs) -> Result<(PressureTestSpec, String), InputError> {
    let (mut spec, source) = match &args.file {
        Some(path) => (read_file(path)?, path.display().to_string()),
        None => (
            default_spec(),
            "built-in default (the seed's four tenants)".into(),
        ),
    };
    if let Some(d) = args.duration {
        spec.duration_seconds = positive("--duration", d, 1, 86_400)?;
    }
    if let Some(w) = args.warmup {
        spec.warmup_seconds = positive("--warmup", w, 0, 3600)?;
    }
    if let Some(s) = args.seed {
        spec.seed = i32::try_from(s).map_err(|_| InputError::Flag {
            flag: "--seed",
            reason: format!("must be at most {}, got {s}", i32::MAX),
        })?;
    }
    Ok((spec, source))
}

fn positive(flag: &'static str, v: u32, min: u32, max: u32) -> Result<i32, InputError> {
    if v < min || v > max {
        return Err(InputError::Flag {
            flag,
            reason: format!("must be between {min} and {max} seconds, got {v}"),
        });
    }
    Ok(v as i32)
}

/// What a local run does differently from the operator for this spec, one sentence each.
pub fn local_notes(spec: &PressureTestSpec, external_smtp: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if spec.sink.kind.is_catcher() && !external_smtp {
        notes.push(
            "spec.sink.kind is a mail catcher (Mailpit): this local run uses the verifying sink; pass --smtp host:port to deliver to a Mailpit you run".into(),
        );
    }
    let replicas = if spec.proxy.hpa.enabled {
        spec.proxy.hpa.min_replicas
    } else {
        spec.proxy.replicas
    };
    if replicas > 1 {
        notes.push(format!(
            "the spec asks for {replicas} proxy replicas: a local run starts one proxy"
        ));
    }
    if spec.abort {
        notes.push("spec.abort ends a PressureTest running in a cluster: a local run ignores it (Ctrl-C stops it, with the same Aborted verdict)".into());
    }
    if spec.ttl_seconds_after_finished.is_some() {
        notes.push("spec.ttlSecondsAfterFinished deletes a PressureTest in a cluster: a local run keeps its report files".into());
    }
    if spec.placement_set() {
        notes.push(
            "the spec sets placement (node selector, tolerations, affinity, pull secrets, pod metadata): a local run has no pods and ignores it".into(),
        );
    }
    if spec
        .baseline
        .as_ref()
        .is_some_and(|b| b.report.is_some() || b.pressure_test.is_some())
    {
        notes.push("spec.baseline names a report in a cluster: a local run compares only with --baseline FILE (with the spec's tolerances)".into());
    }
    notes
}

/// The seed's four tenants, scaled to a short run on a laptop.
pub fn default_spec() -> PressureTestSpec {
    let mut spec = PressureTestSpec::seed_default();
    spec.duration_seconds = DEFAULT_DURATION;
    spec.warmup_seconds = DEFAULT_WARMUP;
    spec.timeouts = TimeoutsSpec {
        drain_seconds: DEFAULT_DRAIN,
        ..TimeoutsSpec::default()
    };
    spec
}

fn read_file(path: &Path) -> Result<PressureTestSpec, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| InputError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    match pressure_crds::validate::load_yaml(&text) {
        Ok(pt) => Ok(pt.spec),
        Err(LoadError::Invalid(errors)) => {
            let lines: Vec<String> = errors.0.iter().map(|e| format!("  {e}")).collect();
            Err(invalid(format!(
                "invalid PressureTest; fix these fields:\n{}",
                lines.join("\n")
            )))
        }
        Err(e @ LoadError::Parse(_)) => Err(invalid(format!(
            "{e} (a PressureTest needs apiVersion, kind, metadata and spec.tenants; see deploy/examples/)"
        ))),
    }
}

/// Fails when `port` (non-zero) cannot be bound on 127.0.0.1.
pub fn check_port(flag: &'static str, port: u16) -> Result<(), InputError> {
    if port == 0 {
        return Ok(());
    }
    TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|e| InputError::Flag {
            flag,
            reason: format!(
                "port {port} on 127.0.0.1 is not available ({e}); stop what uses it, pick another port, or use 0 for any free port"
            ),
        })
}

/// Resolves `host:port` and checks that something accepts connections there.
pub fn check_smtp(addr: &str) -> Result<SocketAddr, InputError> {
    let flag = "--smtp";
    let resolved = addr
        .to_socket_addrs()
        .map_err(|e| InputError::Flag {
            flag,
            reason: format!("{addr:?} is not a host:port address ({e}); e.g. 127.0.0.1:1025"),
        })?
        .next()
        .ok_or_else(|| InputError::Flag {
            flag,
            reason: format!("{addr:?} resolves to no address"),
        })?;
    TcpStream::connect_timeout(&resolved, Duration::from_secs(3)).map_err(|e| InputError::Flag {
        flag,
        reason: format!(
            "nothing accepts SMTP connections at {resolved} ({e}); start the server (e.g. `mailhog`) or fix the address"
        ),
    })?;
    Ok(resolved)
}

/// Checks the shape of a PostgreSQL URL.
pub fn check_database_url(url: &str) -> Result<(), InputError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    Err(InputError::Flag {
        flag: "--database-url",
        reason: "must be a postgres:// or postgresql:// URL (user:password@host:port/database)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_seed_scaled_down() {
        let s = default_spec();
        assert_eq!(s.tenants.len(), 4);
        assert_eq!(s.duration_seconds, DEFAULT_DURATION);
        assert!(pressure_crds::validate(&s).is_ok());
    }

    #[test]
    fn notes_what_a_local_run_changes() {
        let mut s = default_spec();
        assert!(local_notes(&s, false).is_empty());
        s.sink.kind = pressure_crds::SinkKind::MailHog;
        s.proxy.hpa.min_replicas = 2;
        let notes = local_notes(&s, false);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(local_notes(&s, true).len(), 1);
        s.proxy.placement = Some(pressure_crds::PlacementSpec {
            priority_class_name: Some("batch".into()),
            ..Default::default()
        });
        assert_eq!(local_notes(&s, true).len(), 2);
    }

    #[test]
    fn taken_port_and_bad_urls_are_refused() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let e = check_port("--proxy-port", port).expect_err("taken");
        assert!(e.to_string().contains("not available"), "{e}");
        assert!(check_database_url("mysql://x").is_err());
        assert!(check_database_url("postgresql://u:p@127.0.0.1/db").is_ok());
        assert!(check_smtp("no-port-here").is_err());
    }
}
