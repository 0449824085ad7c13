//! The proxies, driven by hand over TCP: the `CONNECT` and SOCKS5
//! handshakes written byte by byte, then plain HTTP/1.1 to a receiver.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use changewire_test_support::egress::{HttpConnectProxy, Socks5Proxy};
use changewire_test_support::receiver::TestReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// Reads a response head (to the blank line), byte by byte so that nothing
/// after it is consumed.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("read head"));
    }
    String::from_utf8(head).expect("UTF-8 head")
}

/// Sends `POST /hook` with `body` over an open tunnel; returns the response.
async fn post_through(mut stream: TcpStream, body: &str) -> String {
    let request = format!(
        "POST /hook HTTP/1.1\r\nHost: receiver\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Sends one `CONNECT`; returns the stream and the response head.
async fn connect_via(
    proxy: &HttpConnectProxy,
    target: &str,
    auth: Option<&str>,
) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let auth = auth
        .map(|a| format!("Proxy-Authorization: Basic {}\r\n", BASE64.encode(a)))
        .unwrap_or_default();
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    (stream, head)
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_proxy_tunnels_to_the_target() {
    let receiver = TestReceiver::start().await;
    let proxy = HttpConnectProxy::start().await;
    assert_eq!(proxy.url(), format!("http://{}", proxy.addr()));
    let target = receiver.addr.to_string();
    let (stream, head) = connect_via(&proxy, &target, None).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let response = post_through(stream, "hello").await;
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(&got[0].body[..], b"hello");
    assert_eq!(proxy.targets(), vec![target]);
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_proxy_asks_for_credentials() {
    let receiver = TestReceiver::start().await;
    let proxy = HttpConnectProxy::start_with_auth("user", "p@ss").await;
    assert_eq!(proxy.url(), format!("http://user:p%40ss@{}", proxy.addr()));
    let target = format!("localhost:{}", receiver.addr.port());
    for auth in [None, Some("user:wrong")] {
        let (_, head) = connect_via(&proxy, &target, auth).await;
        assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
        assert!(
            head.contains("Proxy-Authenticate: Basic realm=\"test\""),
            "{head}"
        );
    }
    let (stream, head) = connect_via(&proxy, &target, Some("user:p@ss")).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(post_through(stream, "x").await.starts_with("HTTP/1.1 200 "));
    assert_eq!(receiver.count(), 1);
    assert_eq!(proxy.targets(), vec![target]);
    assert_eq!(proxy.connections(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_proxy_refuses_rejects_and_reports_bad_gateways() {
    let proxy = HttpConnectProxy::start().await;
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().to_string()
    };
    proxy.refuse_targets(true);
    let (_, head) = connect_via(&proxy, &closed, None).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    proxy.refuse_targets(false);
    let (_, head) = connect_via(&proxy, &closed, None).await;
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");

    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let request = "GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert_eq!(proxy.targets(), vec![closed]);
    assert_eq!(proxy.connections(), 3);
}

/// A SOCKS5 target address.
enum Dst<'a> {
    Ip(std::net::IpAddr),
    Name(&'a str),
}

/// The SOCKS5 handshake; returns the stream and the reply code.
async fn socks5_connect(
    proxy: &Socks5Proxy,
    creds: Option<(&str, &str)>,
    dst: Dst<'_>,
    port: u16,
) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let method = if creds.is_some() { 0x02 } else { 0x00 };
    s.write_all(&[0x05, 0x01, method]).await.unwrap();
    let mut chosen = [0u8; 2];
    s.read_exact(&mut chosen).await.unwrap();
    assert_eq!(chosen, [0x05, method]);
    if let Some((user, pass)) = creds {
        let mut auth = vec![0x01, u8::try_from(user.len()).unwrap()];
        auth.extend_from_slice(user.as_bytes());
        auth.push(u8::try_from(pass.len()).unwrap());
        auth.extend_from_slice(pass.as_bytes());
        s.write_all(&auth).await.unwrap();
        let mut status = [0u8; 2];
        s.read_exact(&mut status).await.unwrap();
        if status != [0x01, 0x00] {
            return (s, 0xFF);
        }
    }
    let mut request = vec![0x05, 0x01, 0x00];
    match dst {
        Dst::Ip(std::net::IpAddr::V4(ip)) => {
            request.push(0x01);
            request.extend_from_slice(&ip.octets());
        }
        Dst::Ip(std::net::IpAddr::V6(ip)) => {
            request.push(0x04);
            request.extend_from_slice(&ip.octets());
        }
        Dst::Name(name) => {
            request.extend_from_slice(&[0x03, u8::try_from(name.len()).unwrap()]);
            request.extend_from_slice(name.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    s.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[..2], [0x05, reply[1]]);
    assert_eq!(reply[3..], [0x01, 0, 0, 0, 0, 0, 0]);
    (s, reply[1])
}

#[tokio::test(flavor = "multi_thread")]
async fn socks5_proxy_tunnels_and_records_targets_as_sent() {
    let receiver = TestReceiver::start().await;
    let port = receiver.addr.port();
    let proxy = Socks5Proxy::start().await;
    assert_eq!(proxy.url(), format!("socks5://{}", proxy.addr()));

    let (s, reply) = socks5_connect(&proxy, None, Dst::Ip(receiver.addr.ip()), port).await;
    assert_eq!(reply, 0x00);
    assert!(post_through(s, "by-ip").await.starts_with("HTTP/1.1 200 "));
    let (s, reply) = socks5_connect(&proxy, None, Dst::Name("localhost"), port).await;
    assert_eq!(reply, 0x00);
    assert!(
        post_through(s, "by-name")
            .await
            .starts_with("HTTP/1.1 200 ")
    );
    // Nothing listens on [::1]:port: recorded, then "connection refused".
    let v6 = Dst::Ip(std::net::Ipv6Addr::LOCALHOST.into());
    let (_, reply) = socks5_connect(&proxy, None, v6, port).await;
    assert_eq!(reply, 0x05);

    let bodies: Vec<_> = receiver
        .wait_for(2, WAIT)
        .await
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies, vec![Bytes::from("by-ip"), Bytes::from("by-name")]);
    let expected = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    assert_eq!(proxy.targets(), expected);
    assert_eq!(proxy.connections(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn socks5_proxy_asks_for_credentials() {
    let receiver = TestReceiver::start().await;
    let proxy = Socks5Proxy::start_with_auth("user", "p:ss").await;
    assert_eq!(
        proxy.url(),
        format!("socks5://user:p%3Ass@{}", proxy.addr())
    );

    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(&[0x05, 0x01, 0x00]).await.unwrap();
    let mut chosen = [0u8; 2];
    s.read_exact(&mut chosen).await.unwrap();
    assert_eq!(chosen, [0x05, 0xFF]);

    let dst = || Dst::Ip(receiver.addr.ip());
    let port = receiver.addr.port();
    let (_, reply) = socks5_connect(&proxy, Some(("user", "nope")), dst(), port).await;
    assert_eq!(reply, 0xFF, "wrong password accepted");
    let (s, reply) = socks5_connect(&proxy, Some(("user", "p:ss")), dst(), port).await;
    assert_eq!(reply, 0x00);
    assert!(post_through(s, "ok").await.starts_with("HTTP/1.1 200 "));
    assert_eq!(receiver.count(), 1);
    assert_eq!(proxy.targets(), vec![receiver.addr.to_string()]);
}
