//! Helpers shared by the integration tests: start a simulated client or a sink in-process on
//! port 0, and small raw-SMTP utilities.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use client_sim::serve::{self, ServeConfig};
use client_sim::sink::{self, SinkConfig, SinkState};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A running server; dropping it shuts the server down.
pub struct Running {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// Starts a simulated client on 127.0.0.1:0.
pub async fn start_client(config: ServeConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve::run(listener, config, async move {
        let _ = stopped.await;
    }));
    Running { addr, _stop: stop }
}

/// A running sink.
pub struct Sink {
    pub smtp: SocketAddr,
    pub http: Running,
    pub state: Arc<SinkState>,
}

/// Starts a sink on two 127.0.0.1:0 listeners.
pub async fn start_sink(config: SinkConfig) -> Sink {
    let smtp = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let (smtp_addr, http_addr) = (smtp.local_addr().expect("a"), http.local_addr().expect("a"));
    let state = SinkState::new(config).await.expect("sink state");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sink::run_with_state(
        smtp,
        http,
        state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    Sink {
        smtp: smtp_addr,
        http: Running {
            addr: http_addr,
            _stop: stop,
        },
        state,
    }
}

/// A raw SMTP client that reads replies line by line.
pub struct RawSmtp {
    read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl RawSmtp {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (read, write) = stream.into_split();
        let mut c = RawSmtp {
            read: BufReader::new(read),
            write,
        };
        let greeting = c.reply().await;
        assert!(greeting.starts_with("220"), "{greeting}");
        c
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write");
    }

    /// Reads one full (possibly multi-line) reply; empty string on EOF.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Sends a command and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends one message in lock-step and returns the final reply.
    pub async fn message(&mut self, data: &str) -> String {
        assert!(self.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
        assert!(self.cmd("RCPT TO:<b@y.test>").await.starts_with("250"));
        assert!(self.cmd("DATA").await.starts_with("354"));
        self.send(data.as_bytes()).await;
        self.send(b"\r\n.\r\n").await;
        self.reply().await
    }
}

/// A simple message with the pressure headers; `md5s` goes into the attachment header.
pub fn mail(
    message_id: &str,
    tenant: &str,
    created_us: u64,
    md5s: &str,
    content_b64: &str,
) -> String {
    format!(
        "From: a@x.test\r\nTo: b@y.test\r\nSubject: t\r\nMessage-ID: <{message_id}>\r\n\
         X-Pressure-Tenant: {tenant}\r\nX-Pressure-Created-Us: {created_us}\r\n\
         X-Pressure-Attachment-Md5: {md5s}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
         Content-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"d.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{content_b64}\r\n--b--"
    )
}
