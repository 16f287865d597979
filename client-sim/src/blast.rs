//! An SMTP load generator that measures a sink's headroom: N connections on `TCP_NODELAY`
//! sockets send M messages in total, pipelined (MAIL, RCPT and DATA in one write, then the data)
//! or in lock-step, and the run prints msg/s, MB/s and per-message latency.
//!
//! `client-sim blast --smtp 127.0.0.1:1025 --connections 8 --messages 200000 --size 2048`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine;
use hdrhistogram::Histogram;
use mailproxy_proto::md5::Md5;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::{Error, Result};

/// How commands are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlastMode {
    /// MAIL, RCPT and DATA in one write; two round trips per message.
    Pipelined,
    /// One command per round trip; four round trips per message.
    Lockstep,
}

/// Flags of `client-sim blast`.
#[derive(Debug, Clone, clap::Args)]
pub struct BlastArgs {
    /// SMTP server to load, host:port.
    #[arg(long, env = "BLAST_SMTP", default_value = "127.0.0.1:1025")]
    pub smtp: String,
    /// Concurrent connections.
    #[arg(long, env = "BLAST_CONNECTIONS", default_value_t = 8)]
    pub connections: u32,
    /// Messages in total.
    #[arg(long, env = "BLAST_MESSAGES", default_value_t = 100_000)]
    pub messages: u64,
    /// Approximate message size in bytes (text body), ignored with --attachment-bytes.
    #[arg(long, env = "BLAST_SIZE", default_value_t = 2048)]
    pub size: usize,
    /// Attach this many bytes (base64) with their MD5 header, to load the verification path.
    #[arg(long, env = "BLAST_ATTACHMENT_BYTES", default_value_t = 0)]
    pub attachment_bytes: u64,
    /// Command style.
    #[arg(long, env = "BLAST_MODE", value_enum, default_value_t = BlastMode::Pipelined)]
    pub mode: BlastMode,
    /// Value of `X-Pressure-Tenant`.
    #[arg(long, env = "BLAST_TENANT", default_value = "blast")]
    pub tenant: String,
}

/// Outcome of a run.
#[derive(Debug, Clone)]
pub struct BlastReport {
    /// Messages answered 250.
    pub accepted: u64,
    /// Messages refused or lost.
    pub failed: u64,
    /// Bytes of message data sent (accepted messages).
    pub bytes: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Per-message latency, microseconds.
    pub latency_us: Histogram<u64>,
}

impl std::fmt::Display for BlastReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.seconds.max(1e-9);
        let h = &self.latency_us;
        write!(
            f,
            "accepted={} failed={} seconds={:.3} msg_per_s={:.0} MB_per_s={:.1} \
             latency_ms p50={:.3} p99={:.3} max={:.3}",
            self.accepted,
            self.failed,
            self.seconds,
            self.accepted as f64 / secs,
            self.bytes as f64 / 1e6 / secs,
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
        )
    }
}

/// Builds the fixed part of every message (headers after the per-message ones, body, and the
/// terminator), already dot-safe.
pub fn template(args: &BlastArgs) -> Vec<u8> {
    let mut t = format!(
        "From: blast@blast.test\r\nTo: sink@sink.test\r\nSubject: blast\r\n\
         X-Pressure-Tenant: {}\r\nMIME-Version: 1.0\r\n",
        args.tenant
    );
    if args.attachment_bytes > 0 {
        let mut content = vec![0u8; args.attachment_bytes as usize];
        crate::serve::content::fill(1, 0, &mut content);
        let md5 = hex::encode(Md5::digest(&content));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&content);
        t += &format!(
            "X-Pressure-Attachment-Md5: {md5}\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
             Content-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"blast.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        );
        for line in b64.as_bytes().chunks(76) {
            t.push_str(std::str::from_utf8(line).unwrap_or_default());
            t += "\r\n";
        }
        t += "--b--\r\n";
    } else {
        t += "Content-Type: text/plain\r\n\r\n";
        let line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
        while t.len() < args.size {
            t += line;
        }
    }
    t += ".\r\n";
    t.into_bytes()
}

/// Runs the load and reports.
pub async fn run(args: &BlastArgs) -> Result<BlastReport> {
    let template = Arc::new(template(args));
    let remaining = Arc::new(AtomicU64::new(args.messages));
    let run_tag: u32 = rand::random();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..args.connections.max(1) {
        let (template, remaining, args) = (template.clone(), remaining.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            connection(&args, conn, run_tag, &template, &remaining).await
        }));
    }
    let mut report = BlastReport {
        accepted: 0,
        failed: 0,
        bytes: 0,
        seconds: 0.0,
        latency_us: new_histogram(),
    };
    for task in tasks {
        let part = task
            .await
            .map_err(|e| Error::Http(format!("blast task failed: {e}")))??;
        report.accepted += part.accepted;
        report.failed += part.failed;
        report.bytes += part.bytes;
        let _ = report.latency_us.add(&part.latency_us);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn new_histogram() -> Histogram<u64> {
    crate::latency_histogram()
}

async fn connection(
    args: &BlastArgs,
    conn: u32,
    run_tag: u32,
    template: &[u8],
    remaining: &AtomicU64,
) -> Result<BlastReport> {
    let stream = TcpStream::connect(&args.smtp)
        .await
        .map_err(|e| Error::io("connecting to the SMTP server", e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| Error::io("setting TCP_NODELAY", e))?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    expect(&mut read, &mut line, "220").await?;
    send(&mut write, b"EHLO blast.test\r\n").await?;
    expect(&mut read, &mut line, "250").await?;
    let mut report = BlastReport {
        accepted: 0,
        failed: 0,
        bytes: 0,
        seconds: 0.0,
        latency_us: new_histogram(),
    };
    let mut n = 0u64;
    while remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
        .is_ok()
    {
        let start = Instant::now();
        let head = format!(
            "Message-ID: <{run_tag:08x}.{conn}.{n}@blast.test>\r\nX-Pressure-Created-Us: {}\r\n",
            crate::unix_micros()
        );
        n += 1;
        let ok = one_message(
            args.mode,
            &mut read,
            &mut write,
            &mut line,
            head.as_bytes(),
            template,
        )
        .await?;
        if ok {
            report.accepted += 1;
            report.bytes += (head.len() + template.len()) as u64;
            report
                .latency_us
                .saturating_record(start.elapsed().as_micros() as u64);
        } else {
            report.failed += 1;
        }
    }
    send(&mut write, b"QUIT\r\n").await?;
    Ok(report)
}

async fn one_message(
    mode: BlastMode,
    read: &mut BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
    line: &mut String,
    head: &[u8],
    template: &[u8],
) -> Result<bool> {
    const ENVELOPE: [&[u8]; 3] = [
        b"MAIL FROM:<blast@blast.test>\r\n",
        b"RCPT TO:<sink@sink.test>\r\n",
        b"DATA\r\n",
    ];
    let mut codes = Vec::with_capacity(3);
    match mode {
        BlastMode::Pipelined => {
            send(write, &ENVELOPE.concat()).await?;
            for _ in 0..3 {
                codes.push(reply(read, line).await?);
            }
        }
        BlastMode::Lockstep => {
            for command in ENVELOPE {
                send(write, command).await?;
                codes.push(reply(read, line).await?);
            }
        }
    }
    if codes != ["250", "250", "354"] {
        send(write, b"RSET\r\n").await?;
        reply(read, line).await?;
        return Ok(false);
    }
    send(write, head).await?;
    send(write, template).await?;
    Ok(reply(read, line).await? == "250")
}

async fn send(write: &mut OwnedWriteHalf, bytes: &[u8]) -> Result<()> {
    write
        .write_all(bytes)
        .await
        .map_err(|e| Error::io("writing to the SMTP server", e))
}

/// Reads one (possibly multi-line) reply and returns its code.
async fn reply(read: &mut BufReader<OwnedReadHalf>, line: &mut String) -> Result<String> {
    loop {
        line.clear();
        let n = read
            .read_line(line)
            .await
            .map_err(|e| Error::io("reading a reply", e))?;
        if n == 0 || line.len() < 4 {
            return Err(Error::io(
                "reading a reply",
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        if line.as_bytes()[3] != b'-' {
            return Ok(line[..3].to_owned());
        }
    }
}

async fn expect(read: &mut BufReader<OwnedReadHalf>, line: &mut String, code: &str) -> Result<()> {
    let got = reply(read, line).await?;
    if got != code {
        return Err(Error::Http(format!(
            "expected SMTP {code}, got: {}",
            line.trim_end()
        )));
    }
    Ok(())
}
