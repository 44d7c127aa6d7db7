//! A TCP proxy in front of the test PostgreSQL that a test can cut and restore: while it
//! is "down" the port refuses connections (as a stopped server does) and every proxied
//! connection is cut, so carebot sees exactly what it sees when its database goes away.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct PgProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
}

struct State {
    acceptor: Option<JoinHandle<()>>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, pipes: Arc<Mutex<Vec<JoinHandle<()>>>>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let pipe = tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        pipes.lock().unwrap().push(pipe);
    }
}

impl PgProxy {
    /// Proxies a fresh local port to `upstream` (host:port of the real server).
    pub async fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let acceptor = tokio::spawn(accept_loop(listener, upstream, pipes.clone()));
        PgProxy { addr, upstream, state: Arc::new(Mutex::new(State { acceptor: Some(acceptor), pipes })) }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
        format!("{scheme}://{user}{}/{path}", self.addr)
    }

    /// The database "stops": new connections are refused, open ones are cut.
    pub fn down(&self) {
        let mut st = self.state.lock().unwrap();
        if let Some(a) = st.acceptor.take() {
            a.abort(); // drops the listener: the port now refuses
        }
        for p in st.pipes.lock().unwrap().drain(..) {
            p.abort();
        }
    }

    /// The database is back on the same port.
    pub async fn up(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let mut st = self.state.lock().unwrap();
        let pipes = st.pipes.clone();
        st.acceptor = Some(tokio::spawn(accept_loop(listener, self.upstream, pipes)));
    }
}

/// host:port of a postgres:// URL.
pub fn upstream_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let hostport = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let hostport = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:5432") };
    let hostport = hostport.replace("localhost", "127.0.0.1");
    hostport.parse().unwrap()
}
