//! The HTTP `CONNECT` handshake (RFC 9110 §9.3.6): asks an HTTP proxy for a
//! tunnel, then the stream carries the request (TLS end to end for https).

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest proxy answer head read.
const MAX_HEAD: usize = 16 * 1024;

/// Opens a tunnel to `target` (`host:port`, an IPv6 address bracketed)
/// through the proxy at the other end of `stream`. The error is the
/// proxy's answer or what broke, for the attempt's error.
pub(super) async fn open(
    stream: &mut TcpStream,
    target: &str,
    credentials: Option<&(String, String)>,
) -> Result<(), String> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending CONNECT failed: {e}"))?;
    // Read byte by byte up to the end of the head: anything after it
    // belongs to the tunnel (nothing, since the client speaks first).
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err("its answer's head is longer than 16 KiB".into());
        }
        let byte = stream
            .read_u8()
            .await
            .map_err(|e| format!("the connection closed before it answered ({e})"))?;
        head.push(byte);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(200..=299) if version.starts_with("HTTP/1.") => Ok(()),
        Some(407) => Err(format!(
            "it answered `{status_line}`: check the user and password in the proxy URL"
        )),
        _ => Err(format!("it answered `{status_line}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn proxy_answering(
        answer: &'static str,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_tunnel_opens_on_2xx_with_credentials_sent() {
        let (addr, seen) = proxy_answering("HTTP/1.1 200 Connection Established\r\n\r\n").await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let creds = ("u".to_string(), "p w".to_string());
        open(&mut s, "203.0.113.7:443", Some(&creds)).await.unwrap();
        let request = seen.await.unwrap();
        assert!(
            request.starts_with("CONNECT 203.0.113.7:443 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("Proxy-Authorization: Basic dTpwIHc=\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_refusal_is_reported_with_the_proxy_answer() {
        let (addr, _) = proxy_answering("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let err = open(&mut s, "203.0.113.7:443", None).await.unwrap_err();
        assert!(
            err.contains("407") && err.contains("user and password"),
            "{err}"
        );
        let (addr, _) = proxy_answering("HTTP/1.1 403 Forbidden\r\n\r\n").await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let err = open(&mut s, "203.0.113.7:443", None).await.unwrap_err();
        assert_eq!(err, "it answered `HTTP/1.1 403 Forbidden`");
    }
}
