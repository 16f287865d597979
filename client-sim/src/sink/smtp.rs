//! The SMTP side of the sink: an accept loop and one task per connection.
//!
//! A session that sends nothing for `idle_timeout` (in a command or inside message data) is
//! answered `421 4.4.2` and closed, which also gives back a large-message permit it held: two
//! stalled transfers cannot block every large message. Sessions beyond `max_connections` are
//! greeted `421 4.3.2` and closed.
//!
//! A connection reads into one buffer and answers every complete command in it, in order, before
//! writing the collected replies in one write: pipelined clients get their replies batched, and
//! lock-step clients one per round trip. Message data is scanned with a whole-buffer search for
//! `CRLF.CRLF` that resumes where the last search stopped, then dot-unstuffed in one pass.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;
use rand::rngs::StdRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::SinkState;
use super::faults::Fault;
use super::verify;

/// Longest command line accepted.
const MAX_LINE: usize = 64 * 1024;
/// Messages above this size are verified on a blocking thread.
const BLOCKING_VERIFY_BYTES: usize = 256 * 1024;
/// A connection buffering more message data than this needs a big-message permit to go on
/// reading: with few permits, several 50 MiB messages at once cannot multiply the sink's memory.
const BIG_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Accepts connections until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    state: Arc<SinkState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "Setting TCP_NODELAY failed.");
                    }
                    let Ok(place) = state.sessions.clone().try_acquire_owned() else {
                        tracing::debug!(%peer, "Too many SMTP sessions; refusing one.");
                        tokio::spawn(refuse(stream, state.config.hostname.clone()));
                        continue;
                    };
                    let conn = Connection::new(stream, state.clone());
                    tokio::spawn(async move {
                        if let Err(error) = conn.run().await {
                            tracing::debug!(%peer, %error, "SMTP connection ended with an error.");
                        }
                        drop(place);
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "SMTP accept failed.");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Greets a session over the cap with a 421 and closes it (bounded: the client may not read).
async fn refuse(mut stream: tokio::net::TcpStream, hostname: String) {
    let reply = format!("421 4.3.2 {hostname} Too many connections, try again later\r\n");
    let write = async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Data,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword,
}

/// What the connection loop does next.
enum Step {
    Continue,
    NeedMore,
    Close,
    Abort,
}

#[derive(Debug, Default)]
struct Txn {
    mail: bool,
    rcpts: usize,
    /// Where the next terminator search starts.
    scanned: usize,
    /// Data beyond the size limit is being discarded.
    oversize: bool,
}

/// Runs one SMTP session over any byte stream until the client quits or closes (the accept loop
/// uses it for TCP; fuzzing feeds it an in-memory pipe).
pub async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    state: Arc<SinkState>,
) -> io::Result<()> {
    Connection::new(stream, state).run().await
}

struct Connection<S> {
    stream: S,
    state: Arc<SinkState>,
    buf: BytesMut,
    out: Vec<u8>,
    rng: StdRng,
    mode: Mode,
    txn: Txn,
    /// Held while this connection buffers a big message.
    big_permit: Option<OwnedSemaphorePermit>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    fn new(stream: S, state: Arc<SinkState>) -> Self {
        let rng = state.config.faults.rng_for(state.next_connection());
        Connection {
            stream,
            state,
            buf: BytesMut::with_capacity(64 * 1024),
            out: Vec::with_capacity(1024),
            rng,
            mode: Mode::Command,
            txn: Txn::default(),
            big_permit: None,
        }
    }

    async fn run(mut self) -> io::Result<()> {
        let greeting = format!(
            "220 {} ESMTP client-sim sink\r\n",
            self.state.config.hostname
        );
        self.out.extend_from_slice(greeting.as_bytes());
        loop {
            match self.step().await? {
                Step::Continue => {}
                Step::NeedMore => {
                    let idle = self.state.config.idle_timeout;
                    if tokio::time::timeout(idle, self.flush()).await.is_err() {
                        // The client reads nothing either: no point in a reply.
                        return Ok(());
                    }
                    if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                        self.buf.reserve(64 * 1024);
                    }
                    let read = tokio::time::timeout(idle, self.stream.read_buf(&mut self.buf));
                    match read.await {
                        Err(_) => return self.idle_close().await,
                        Ok(n) => {
                            if n? == 0 {
                                return Ok(());
                            }
                        }
                    }
                }
                Step::Close => return self.flush().await,
                Step::Abort => return Ok(()),
            }
        }
    }

    /// Answers an idle session 421 and ends it; dropping the connection releases its permits.
    async fn idle_close(&mut self) -> io::Result<()> {
        let text = format!(
            "421 4.4.2 {} Idle timeout, closing connection",
            self.state.config.hostname
        );
        self.out.clear();
        self.reply(&text);
        let idle = self.state.config.idle_timeout;
        let _ = tokio::time::timeout(idle, self.flush()).await;
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn step(&mut self) -> io::Result<Step> {
        if self.mode == Mode::Data {
            return self.data_step().await;
        }
        let Some(pos) = memchr::memchr(b'\n', &self.buf) else {
            if self.buf.len() > MAX_LINE {
                self.reply("500 5.5.2 Line too long");
                return Ok(Step::Close);
            }
            return Ok(Step::NeedMore);
        };
        let text = String::from_utf8_lossy(&self.buf[..pos + 1]);
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        // `advance`, not `split_to`: the buffer stays a plain vector, which grows in place
        // (realloc) instead of by copying into a second allocation.
        self.buf.advance(pos + 1);
        Ok(self.line(&text))
    }

    fn line(&mut self, line: &str) -> Step {
        match self.mode {
            Mode::AuthPlain | Mode::AuthLoginPassword => {
                self.mode = Mode::Command;
                self.auth_answer(line, "235 2.7.0 Authentication successful")
            }
            Mode::AuthLoginUser => {
                self.mode = Mode::AuthLoginPassword;
                self.auth_answer(line, "334 UGFzc3dvcmQ6")
            }
            Mode::Command | Mode::Data => self.command(line),
        }
    }

    fn auth_answer(&mut self, line: &str, ok: &str) -> Step {
        if line == "*" {
            self.mode = Mode::Command;
            self.reply("501 5.0.0 Authentication cancelled");
        } else {
            self.reply(ok);
        }
        Step::Continue
    }

    fn command(&mut self, line: &str) -> Step {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                self.txn = Txn::default();
                let ehlo = self.state.ehlo_reply.clone();
                self.out.extend_from_slice(ehlo.as_bytes());
            }
            "HELO" => {
                self.txn = Txn::default();
                let text = format!("250 {}", self.state.config.hostname);
                self.reply(&text);
            }
            "MAIL" => self.mail(arg),
            "RCPT" if !self.txn.mail => self.reply("503 5.5.1 Need MAIL command"),
            "RCPT" => {
                self.txn.rcpts += 1;
                self.reply("250 2.1.5 OK");
            }
            "DATA" if self.txn.rcpts == 0 => self.reply("503 5.5.1 Need RCPT command"),
            "DATA" => {
                self.mode = Mode::Data;
                self.reply("354 End data with <CR><LF>.<CR><LF>");
            }
            "RSET" => {
                self.txn = Txn::default();
                self.reply("250 2.0.0 OK");
            }
            "NOOP" => self.reply("250 2.0.0 OK"),
            "VRFY" => self.reply("252 2.5.0 Cannot verify, will accept"),
            "AUTH" => self.auth(arg),
            "STARTTLS" => self.reply("454 4.7.0 TLS not available"),
            "QUIT" => {
                self.reply("221 2.0.0 Bye");
                return Step::Close;
            }
            _ => self.reply("500 5.5.2 Command not recognized"),
        }
        Step::Continue
    }

    fn mail(&mut self, arg: &str) {
        if self.txn.mail {
            return self.reply("503 5.5.1 Nested MAIL command");
        }
        let upper = arg.to_ascii_uppercase();
        let size = upper
            .split_whitespace()
            .find_map(|p| p.strip_prefix("SIZE="))
            .and_then(|s| s.parse::<u64>().ok());
        if size.is_some_and(|s| s > self.state.config.max_message_bytes) {
            return self.reply("552 5.3.4 Message size exceeds fixed limit");
        }
        self.txn.mail = true;
        self.reply("250 2.1.0 OK");
    }

    fn auth(&mut self, arg: &str) {
        let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
        match (mechanism.to_ascii_uppercase().as_str(), initial.is_empty()) {
            ("PLAIN", false) => self.reply("235 2.7.0 Authentication successful"),
            ("PLAIN", true) => {
                self.mode = Mode::AuthPlain;
                self.reply("334 ");
            }
            ("LOGIN", false) => {
                self.mode = Mode::AuthLoginPassword;
                self.reply("334 UGFzc3dvcmQ6");
            }
            ("LOGIN", true) => {
                self.mode = Mode::AuthLoginUser;
                self.reply("334 VXNlcm5hbWU6");
            }
            _ => self.reply("504 5.5.4 Unrecognized authentication type"),
        }
    }

    /// Looks for the end of the message data; handles the message when found.
    async fn data_step(&mut self) -> io::Result<Step> {
        let end = if self.txn.scanned == 0 && !self.txn.oversize && self.buf.starts_with(b".\r\n") {
            Some((0, 3))
        } else {
            let from = self.txn.scanned;
            memmem::find(&self.buf[from..], b"\r\n.\r\n").map(|i| (from + i + 2, 3))
        };
        let Some((body_len, terminator)) = end else {
            self.txn.scanned = self.buf.len().saturating_sub(4);
            let limit = self.state.config.max_message_bytes as usize;
            if self.buf.len() > limit.saturating_add(8) {
                // Over the limit: keep only what a split terminator could need.
                self.buf.advance(self.buf.len() - 4);
                self.txn.scanned = 0;
                self.txn.oversize = true;
            }
            if self.buf.len() > BIG_BUFFER_BYTES && self.big_permit.is_none() {
                let permits = self.state.big_buffers.clone();
                self.big_permit = Some(permits.acquire_owned().await.map_err(io::Error::other)?);
            }
            return Ok(Step::NeedMore);
        };
        let body = self.buf.split_to(body_len).freeze();
        self.buf.advance(terminator);
        // The body now shares the allocation; carry what follows into a buffer of its own.
        self.buf = BytesMut::from(&self.buf[..]);
        let oversize = self.txn.oversize;
        self.txn = Txn::default();
        self.mode = Mode::Command;
        let step = self.message(body, oversize).await;
        self.big_permit = None;
        step
    }

    async fn message(&mut self, body: Bytes, oversize: bool) -> io::Result<Step> {
        let received_us = crate::unix_micros();
        let faults = self.state.config.faults;
        if faults.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
        }
        let fault = faults.draw(&mut self.rng);
        if let Some(class) = fault.class() {
            self.state.stats.record_fault(class);
        }
        match fault {
            Fault::Drop => return Ok(Step::Abort),
            Fault::Temporary => self.reply("451 4.3.0 Injected temporary failure"),
            Fault::Permanent => self.reply("550 5.7.1 Injected permanent failure"),
            Fault::None if oversize => self.reply("552 5.3.4 Message size exceeds fixed limit"),
            Fault::None => {
                let body = unstuff(body);
                let verdict = self.verify(body.clone()).await?;
                if let Some(dir) = &self.state.config.maildir {
                    super::maildir::store(dir, &body, self.state.next_message()).await?;
                }
                self.state.stats.record(&verdict, received_us);
                self.reply("250 2.0.0 OK queued");
            }
        }
        Ok(Step::Continue)
    }

    async fn verify(&self, body: Bytes) -> io::Result<verify::Verdict> {
        if body.len() < BLOCKING_VERIFY_BYTES {
            return Ok(verify::verify(&body));
        }
        // Big messages: bounded parallel parsing off the async workers.
        let _permit = self
            .state
            .big_messages
            .acquire()
            .await
            .map_err(io::Error::other)?;
        tokio::task::spawn_blocking(move || verify::verify(&body))
            .await
            .map_err(io::Error::other)
    }
}

/// Removes the leading dot of every line that starts with one (RFC 5321 §4.5.2).
pub fn unstuff(body: Bytes) -> Bytes {
    let finder = memmem::Finder::new(b"\r\n.");
    let leading = body.starts_with(b".");
    if !leading && finder.find(&body).is_none() {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut start = usize::from(leading);
    for pos in finder.find_iter(&body) {
        out.extend_from_slice(&body[start..pos + 2]);
        start = pos + 3;
    }
    out.extend_from_slice(&body[start..]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuffing_removes_one_leading_dot_per_line() {
        let body = Bytes::from_static(b"..a\r\nb\r\n...c\r\n.\r\nd\r\n");
        assert_eq!(&unstuff(body)[..], b".a\r\nb\r\n..c\r\n\r\nd\r\n");
        let plain = Bytes::from_static(b"no dots\r\n");
        assert_eq!(&unstuff(plain)[..], b"no dots\r\n");
    }
}
