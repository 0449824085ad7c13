//! A SOCKS5 proxy (RFC 1928, with RFC 1929 username/password) on loopback
//! that records the targets exactly as the client sent them.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{bind_loopback, spawn_accept_loop, userinfo_escape};

const VERSION: u8 = 0x05;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE_METHOD: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
const REPLY_SUCCEEDED: u8 = 0x00;
const REPLY_CONNECT_FAILED: u8 = 0x05;
const REPLY_COMMAND_NOT_SUPPORTED: u8 = 0x07;
const REPLY_ATYP_NOT_SUPPORTED: u8 = 0x08;

#[derive(Default)]
struct Shared {
    /// `(user, pass)` when authentication is required.
    credentials: Option<(String, String)>,
    targets: Mutex<Vec<String>>,
    connections: Arc<AtomicUsize>,
}

/// A SOCKS5 proxy on 127.0.0.1; stops (with its tunnels) when dropped.
///
/// It offers method `0x00` (no authentication) when started with
/// [`start`](Socks5Proxy::start) and only `0x02` (username/password) when
/// started with [`start_with_auth`](Socks5Proxy::start_with_auth): a client
/// that does not offer it gets `0xFF`, wrong credentials get status `0x01`.
/// Only `CONNECT` is supported (else reply `0x07`), to an IPv4 address, a
/// domain name or an IPv6 address (else `0x08`). The target is recorded as
/// sent, then connected to: reply `0x05` if that fails, else `0x00` with
/// bound address `0.0.0.0:0`, and bytes are copied both ways.
pub struct Socks5Proxy {
    addr: SocketAddr,
    userinfo: Option<String>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Socks5Proxy {
    /// Starts a proxy that asks for no credentials (method `0x00`).
    pub async fn start() -> Socks5Proxy {
        Self::spawn(None).await
    }

    /// Starts a proxy that requires these credentials (method `0x02`).
    pub async fn start_with_auth(user: &str, pass: &str) -> Socks5Proxy {
        Self::spawn(Some((user, pass))).await
    }

    async fn spawn(auth: Option<(&str, &str)>) -> Socks5Proxy {
        let shared = Arc::new(Shared {
            credentials: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            ..Default::default()
        });
        let listener = bind_loopback().await;
        let addr = listener.local_addr().expect("local addr");
        let state = shared.clone();
        let task = spawn_accept_loop(listener, shared.connections.clone(), move |stream| {
            let state = state.clone();
            async move {
                let _ = serve(stream, state).await;
            }
        });
        Socks5Proxy {
            addr,
            userinfo: auth.map(|(u, p)| format!("{}:{}@", userinfo_escape(u), userinfo_escape(p))),
            shared,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `socks5://127.0.0.1:PORT`, or `socks5://user:pass@127.0.0.1:PORT`
    /// (both percent-encoded) when it requires credentials.
    pub fn url(&self) -> String {
        format!(
            "socks5://{}{}",
            self.userinfo.as_deref().unwrap_or(""),
            self.addr
        )
    }

    /// Every `CONNECT` target (after authentication), in order, as the client
    /// sent it: `1.2.3.4:80`, `[::1]:80` or `name:80`. Recorded before
    /// connecting, so a target that could not be reached is in the list too.
    pub fn targets(&self) -> Vec<String> {
        self.shared
            .targets
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// How many TCP connections it accepted (counted on accept).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Socks5Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a length-prefixed string (RFC 1929, domain names).
async fn read_short(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u8().await?;
    let mut bytes = vec![0u8; usize::from(len)];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn reply(stream: &mut TcpStream, code: u8) -> std::io::Result<()> {
    stream
        .write_all(&[VERSION, code, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0])
        .await
}

/// Negotiates the method (and checks credentials); `false` to hang up.
async fn authenticate(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<bool> {
    if stream.read_u8().await? != VERSION {
        return Ok(false);
    }
    let offered = read_short(stream).await?;
    let wanted = if shared.credentials.is_some() {
        USER_PASS
    } else {
        NO_AUTH
    };
    if !offered.contains(&wanted) {
        stream.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await?;
        return Ok(false);
    }
    stream.write_all(&[VERSION, wanted]).await?;
    let Some((user, pass)) = &shared.credentials else {
        return Ok(true);
    };
    // RFC 1929: VER(1) ULEN UNAME PLEN PASSWD.
    if stream.read_u8().await? != 0x01 {
        return Ok(false);
    }
    let got_user = read_short(stream).await?;
    let got_pass = read_short(stream).await?;
    let ok = got_user == user.as_bytes() && got_pass == pass.as_bytes();
    stream
        .write_all(&[0x01, if ok { 0x00 } else { 0x01 }])
        .await?;
    Ok(ok)
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    if !authenticate(&mut stream, &shared).await? {
        return Ok(());
    }
    let mut request = [0u8; 4];
    stream.read_exact(&mut request).await?;
    let [version, command, _reserved, atyp] = request;
    if version != VERSION {
        return Ok(());
    }
    let host = match atyp {
        ATYP_IPV4 => {
            let mut ip = [0u8; 4];
            stream.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string()
        }
        ATYP_IPV6 => {
            let mut ip = [0u8; 16];
            stream.read_exact(&mut ip).await?;
            format!("[{}]", Ipv6Addr::from(ip))
        }
        ATYP_DOMAIN => String::from_utf8_lossy(&read_short(&mut stream).await?).into_owned(),
        _ => return reply(&mut stream, REPLY_ATYP_NOT_SUPPORTED).await,
    };
    let port = stream.read_u16().await?;
    if command != CMD_CONNECT {
        return reply(&mut stream, REPLY_COMMAND_NOT_SUPPORTED).await;
    }
    let target = format!("{host}:{port}");
    if let Ok(mut targets) = shared.targets.lock() {
        targets.push(target.clone());
    }
    let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
        return reply(&mut stream, REPLY_CONNECT_FAILED).await;
    };
    reply(&mut stream, REPLY_SUCCEEDED).await?;
    tokio::io::copy_bidirectional(&mut stream, &mut upstream).await?;
    Ok(())
}
