//! Server addresses (`tcp:HOST:PORT`, `unix:PATH`) and the byte stream to one.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::EnvError;

/// Where a bridge server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `tcp:HOST:PORT`.
    Tcp(String),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl FromStr for Address {
    type Err = EnvError;

    fn from_str(s: &str) -> Result<Self, EnvError> {
        let bad = || {
            EnvError::Config(format!(
                "bridge address {s:?} must be tcp:HOST:PORT or unix:PATH (as the server's READY line prints it)"
            ))
        };
        match s.split_once(':') {
            Some(("tcp", rest)) => {
                let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(bad());
                }
                Ok(Address::Tcp(rest.to_string()))
            }
            Some(("unix", path)) if !path.is_empty() => Ok(Address::Unix(PathBuf::from(path))),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(hp) => write!(f, "tcp:{hp}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A connected socket of either kind, which may poll for a while before it blocks.
#[derive(Debug)]
pub(crate) struct Stream {
    socket: Socket,
    /// How long a read polls (yielding the core between polls) before it sleeps in the kernel.
    spin: Duration,
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Connects, waiting at most `timeout` (TCP; a Unix socket answers at once or never).
    /// Reads poll for `spin` before blocking: a reply that comes sooner is taken without the
    /// cost of waking a sleeping thread.
    pub(crate) fn connect(
        address: &Address,
        timeout: Duration,
        spin: Duration,
    ) -> io::Result<Stream> {
        let stream = Stream {
            socket: Self::open(address, timeout)?,
            spin,
        };
        if !spin.is_zero() {
            stream.set_nonblocking(true)?;
        }
        Ok(stream)
    }

    fn open(address: &Address, timeout: Duration) -> io::Result<Socket> {
        match address {
            Address::Tcp(host_port) => {
                let mut last = None;
                for addr in host_port.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            return Ok(Socket::Tcp(s));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the host resolves to no address")
                }))
            }
            #[cfg(unix)]
            Address::Unix(path) => Ok(Socket::Unix(UnixStream::connect(path)?)),
            #[cfg(not(unix))]
            Address::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix sockets need a Unix system; use a tcp: address",
            )),
        }
    }

    /// Sets the read and write timeouts.
    pub(crate) fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
            #[cfg(unix)]
            Socket::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
        }
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => s.set_nonblocking(on),
            #[cfg(unix)]
            Socket::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// Runs a blocking operation on a socket kept non-blocking for polling.
    fn blocking<T>(&mut self, op: impl FnOnce(&mut Socket) -> io::Result<T>) -> io::Result<T> {
        self.set_nonblocking(false)?;
        let result = op(&mut self.socket);
        self.set_nonblocking(true)?;
        result
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.flush(),
            #[cfg(unix)]
            Socket::Unix(s) => s.flush(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.spin.is_zero() {
            return self.socket.read(buf);
        }
        let start = Instant::now();
        loop {
            match self.socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if start.elapsed() >= self.spin {
                        return self.blocking(|s| s.read(buf));
                    }
                    std::thread::yield_now();
                }
                other => return other,
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.socket.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.blocking(|s| s.write(buf)),
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for text in ["tcp:127.0.0.1:5000", "tcp:[::1]:80", "unix:/tmp/a b.sock"] {
            assert_eq!(text.parse::<Address>().unwrap().to_string(), text);
        }
        for bad in [
            "127.0.0.1:5000",
            "tcp:localhost",
            "tcp::80",
            "tcp:host:99999",
            "unix:",
            "udp:x:1",
        ] {
            let err = bad.parse::<Address>().unwrap_err();
            assert!(
                err.to_string().contains("tcp:HOST:PORT or unix:PATH"),
                "{bad}: {err}"
            );
        }
    }
}
