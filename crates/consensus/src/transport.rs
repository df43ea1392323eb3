//! The sockets between members and the files received from them: tokio's, or with the `sim`
//! feature turmoil's simulated ones (the deterministic simulation tests). Files opened
//! synchronously come from [`ensemble_storage::fs`].

#[cfg(not(feature = "sim"))]
pub(crate) use tokio::fs::File as AsyncFile;
#[cfg(not(feature = "sim"))]
pub(crate) use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
#[cfg(not(feature = "sim"))]
pub(crate) use tokio::net::{TcpListener, TcpStream};

#[cfg(feature = "sim")]
pub(crate) use turmoil::fs::shim::tokio::fs::File as AsyncFile;
#[cfg(feature = "sim")]
pub(crate) use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
#[cfg(feature = "sim")]
pub(crate) use turmoil::net::{TcpListener, TcpStream};
