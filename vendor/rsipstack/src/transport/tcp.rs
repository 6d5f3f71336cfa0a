use crate::platform::CancellationToken;
use crate::sip::SipMessage;
use crate::{
    transport::{
        connection::TransportSender,
        sip_addr::SipAddr,
        stream::{StreamConnection, StreamConnectionInner},
        SipConnection,
    },
    Result,
};
use core::time::Duration;
use std::{fmt, sync::Arc};
use tokio::net::TcpStream;
use tracing::debug;

/// Connects to `addr`, refusing a connection to itself.
///
/// Connecting to a local port in the ephemeral range that nothing listens on can pick that
/// same port as the source port: TCP's simultaneous open then connects the socket to itself
/// (a response sent over a connection to a caller's `Via` port that the caller just closed,
/// say). Such a connection reads back what it writes and stays until the stream idle
/// timeout (300 s by default). It is refused like a port nobody listens on.
pub(crate) async fn connect_stream(addr: std::net::SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    refuse_self_connection(&stream)?;
    Ok(stream)
}

/// An error if `stream` is connected to itself (see [`connect_stream`]).
fn refuse_self_connection(stream: &TcpStream) -> std::io::Result<()> {
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "TCP connection to itself (nothing listens on the port)",
        ));
    }
    Ok(())
}

type TcpInner =
    StreamConnectionInner<tokio::io::ReadHalf<TcpStream>, tokio::io::WriteHalf<TcpStream>>;

#[derive(Clone)]
pub struct TcpConnection {
    pub inner: Arc<TcpInner>,
    pub cancel_token: Option<CancellationToken>,
}

impl TcpConnection {
    pub async fn connect(
        remote: &SipAddr,
        cancel_token: Option<CancellationToken>,
    ) -> Result<Self> {
        let socket_addr = remote.get_socketaddr()?;
        let stream = connect_stream(socket_addr).await?;

        let local_addr = SipAddr {
            r#type: Some(crate::sip::transport::Transport::Tcp),
            addr: SipConnection::resolve_bind_address(stream.local_addr()?).into(),
        };

        let (read_half, write_half) = tokio::io::split(stream);

        let connection = TcpConnection {
            inner: Arc::new(StreamConnectionInner::new(
                local_addr.clone(),
                remote.clone(),
                read_half,
                write_half,
            )),
            cancel_token,
        };

        debug!(
            local = %local_addr,
            remote = %remote,
            "Created TCP client connection"
        );

        Ok(connection)
    }

    pub fn from_stream(
        stream: TcpStream,
        local_addr: SipAddr,
        cancel_token: Option<CancellationToken>,
    ) -> Result<Self> {
        let remote_addr = stream.peer_addr()?;
        let remote_sip_addr = SipAddr {
            r#type: Some(crate::sip::transport::Transport::Tcp),
            addr: remote_addr.into(),
        };

        let (read_half, write_half) = tokio::io::split(stream);

        let connection = TcpConnection {
            inner: Arc::new(StreamConnectionInner::new(
                local_addr,
                remote_sip_addr,
                read_half,
                write_half,
            )),
            cancel_token,
        };

        debug!(
            local = %connection.inner.local_addr,
            remote = %remote_addr,
            "Created TCP server connection"
        );

        Ok(connection)
    }

    pub fn cancel_token(&self) -> Option<CancellationToken> {
        self.cancel_token.clone()
    }
}

#[async_trait::async_trait]
impl StreamConnection for TcpConnection {
    fn get_addr(&self) -> &SipAddr {
        &self.inner.local_addr
    }

    fn get_remote_addr(&self) -> &SipAddr {
        &self.inner.remote_addr
    }

    async fn send_message(&self, msg: SipMessage) -> Result<()> {
        self.inner.send_message(msg).await
    }

    async fn send_raw(&self, data: &[u8]) -> Result<()> {
        self.inner.send_raw(data).await
    }

    async fn serve_loop(&self, sender: TransportSender, idle_timeout: Duration) -> Result<()> {
        let sip_connection = SipConnection::Tcp(self.clone());
        self.inner
            .serve_loop(sender, sip_connection, idle_timeout)
            .await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

impl fmt::Display for TcpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TCP {} -> {}",
            self.inner.local_addr, self.inner.remote_addr
        )
    }
}

impl fmt::Debug for TcpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod self_connection_tests {
    use super::refuse_self_connection;

    /// A socket bound to a port and connected to that same port is connected to itself (TCP's
    /// simultaneous open): exactly what an unlucky ephemeral port gives `connect`.
    #[tokio::test]
    async fn a_connection_to_itself_is_refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(addr).unwrap();
        let stream = socket.connect(addr).await.expect("a connection to itself");
        assert_eq!(stream.local_addr().unwrap(), stream.peer_addr().unwrap());
        let err = refuse_self_connection(&stream).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    /// A connection to a listener is kept.
    #[tokio::test]
    async fn a_connection_to_a_listener_is_kept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = super::connect_stream(listener.local_addr().unwrap())
            .await
            .expect("connected");
        refuse_self_connection(&stream).unwrap();
    }
}
