//! A small SMTP sink for the proxy's tests: a real SMTP server on 127.0.0.1 that records the
//! envelope and data of each accepted message, and can answer chosen recipients or messages with
//! a chosen reply (to test retries and permanent errors).

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub rcpts: Vec<String>,
    pub data: String,
}

/// Decides the reply to a RCPT (by address) or to the end of DATA (by message text).
pub type Rule = Arc<dyn Fn(&str) -> Option<&'static str> + Send + Sync>;

#[derive(Clone)]
pub struct Sink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    rcpt_rule: Arc<Mutex<Option<Rule>>>,
    data_rule: Arc<Mutex<Option<Rule>>>,
    /// Pause before answering the end of DATA, to keep messages in flight.
    pub data_delay: Arc<Mutex<std::time::Duration>>,
    /// Bytes reserved for each message's data (so memory tests see no doubling reallocations).
    pub data_capacity: Arc<Mutex<usize>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Sink {
            port: listener.local_addr().unwrap().port(),
            received: Arc::default(),
            rcpt_rule: Arc::default(),
            data_rule: Arc::default(),
            data_delay: Arc::default(),
            data_capacity: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        sink
    }

    /// Replies to RCPT TO by address (None = 250).
    pub fn on_rcpt(&self, rule: impl Fn(&str) -> Option<&'static str> + Send + Sync + 'static) {
        *self.rcpt_rule.lock().unwrap() = Some(Arc::new(rule));
    }

    /// Replies to the end of DATA by message text (None = 250).
    pub fn on_data(&self, rule: impl Fn(&str) -> Option<&'static str> + Send + Sync + 'static) {
        *self.data_rule.lock().unwrap() = Some(Arc::new(rule));
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 sink ESMTP\r\n").await?;
        let (mut from, mut rcpts) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-sink\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 104857600".into()
            } else if upper.starts_with("MAIL FROM:") {
                from = addr(&cmd[10..]);
                rcpts.clear();
                "250 OK".into()
            } else if upper.starts_with("RCPT TO:") {
                let a = addr(&cmd[8..]);
                let rule = self.rcpt_rule.lock().unwrap().clone();
                match rule.and_then(|f| f(&a)) {
                    Some(reply) => reply.into(),
                    None => {
                        rcpts.push(a);
                        "250 OK".into()
                    }
                }
            } else if upper == "DATA" {
                w.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::with_capacity(*self.data_capacity.lock().unwrap());
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let delay = *self.data_delay.lock().unwrap();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let rule = self.data_rule.lock().unwrap().clone();
                match rule.and_then(|f| f(&data)) {
                    Some(reply) => reply.into(),
                    None => {
                        self.received.lock().unwrap().push(Received {
                            from: from.clone(),
                            rcpts: rcpts.clone(),
                            data,
                        });
                        "250 queued".into()
                    }
                }
            } else if upper.starts_with("AUTH") {
                "235 2.7.0 Authentication successful".into()
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                "250 OK".into()
            };
            w.write_all(format!("{reply}\r\n").as_bytes()).await?;
        }
    }
}

fn addr(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or("");
    s.trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Value of a header in a raw message (first occurrence, unfolded).
pub fn header(data: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    for l in data.split("\r\n") {
        if l.is_empty() {
            return None;
        }
        if l.to_ascii_lowercase().starts_with(&prefix) {
            return Some(l[prefix.len()..].trim().to_string());
        }
    }
    None
}
