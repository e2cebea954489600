//! The agent link's framing: after the 8 magic bytes, each frame is a
//! 4-byte big-endian length and a `v1::LinkFrame`. Buffers start small
//! (most frames are status updates, pings and acknowledgements of a few
//! hundred bytes) and grow only for the rare large frame, a re-registration
//! reporting many tasks; the read buffer shrinks back after one, so an
//! idle link costs the master about 2 KB rather than HTTP/2's ~30 KB.
//!
//! A standby master answers a Register with [`not_leader_frame`] (code 14
//! and `LinkError.leader`, see `crate::leader`) and closes the link.
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::{leader, v1};

/// What an agent sends first on a connection to the master's port.
pub const LINK_MAGIC: [u8; 8] = *b"AGORALNK";
/// The largest frame either side accepts: a re-registration reporting
/// thousands of tasks fits many times over.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// Socket buffer sizes of each side of a link.
const IO_BUFFER: usize = 1024;
/// A frame buffer grown past this by a large frame is given back after it.
const KEEP_BUFFER: usize = 64 << 10;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("link io: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("undecodable frame: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the connection does not start with the agent link's magic bytes")]
    BadMagic,
}

/// Reads frames from one side of a link.
pub struct FrameReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps `r`, which is positioned after the magic bytes.
    pub fn new(r: R) -> FrameReader<R> {
        FrameReader {
            inner: BufReader::with_capacity(IO_BUFFER, r),
            buf: Vec::new(),
        }
    }

    /// Reads the magic bytes, then wraps `r` (for the master's side).
    pub async fn after_magic(mut r: R) -> Result<FrameReader<R>, FrameError> {
        let mut magic = [0u8; LINK_MAGIC.len()];
        r.read_exact(&mut magic).await?;
        if magic != LINK_MAGIC {
            return Err(FrameError::BadMagic);
        }
        Ok(FrameReader::new(r))
    }

    /// The next frame, or `None` if the peer closed the link between frames.
    pub async fn next(&mut self) -> Result<Option<v1::LinkFrame>, FrameError> {
        let mut len = [0u8; 4];
        match self.inner.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        // The buffer grows as the frame's bytes arrive, not to the length
        // the header announces: a peer that sends only headers on many
        // connections must not make us hold MAX_FRAME_BYTES for each.
        self.buf.clear();
        let read = (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut self.buf)
            .await?;
        if read < len {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let frame = v1::LinkFrame::decode(self.buf.as_slice())?;
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        Ok(Some(frame))
    }
}

/// Writes frames to one side of a link. Frames are buffered until
/// [`FrameWriter::flush`], so a burst goes out in few writes.
pub struct FrameWriter<W: AsyncWrite> {
    inner: BufWriter<W>,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Wraps `w`; the agent's side writes the magic bytes first
    /// ([`FrameWriter::write_magic`]).
    pub fn new(w: W) -> FrameWriter<W> {
        FrameWriter {
            inner: BufWriter::with_capacity(IO_BUFFER, w),
            buf: Vec::new(),
        }
    }

    /// Starts an agent's link.
    pub async fn write_magic(&mut self) -> std::io::Result<()> {
        self.inner.write_all(&LINK_MAGIC).await
    }

    /// Queues one frame (written out when the buffer fills or on flush).
    pub async fn send(&mut self, frame: &v1::LinkFrame) -> Result<(), FrameError> {
        let len = frame.encoded_len();
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len));
        }
        self.buf.clear();
        self.buf.reserve(4 + len);
        self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        frame.encode(&mut self.buf).map_err(std::io::Error::other)?;
        self.inner.write_all(&self.buf).await?;
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().await
    }

    /// Writes `first` and every message already waiting in `rx` (each
    /// wrapped as a frame by `wrap`), then flushes once: a burst goes out
    /// in few writes, and a quiet link still sends each message at once.
    pub async fn send_burst<T>(
        &mut self,
        first: T,
        rx: &mut tokio::sync::mpsc::Receiver<T>,
        wrap: impl Fn(T) -> v1::LinkFrame,
    ) -> Result<(), FrameError> {
        let mut next = Some(first);
        while let Some(msg) = next {
            self.send(&wrap(msg)).await?;
            next = rx.try_recv().ok();
        }
        Ok(self.flush().await?)
    }

    /// Sends one frame and flushes.
    pub async fn send_now(&mut self, frame: &v1::LinkFrame) -> Result<(), FrameError> {
        self.send(frame).await?;
        Ok(self.flush().await?)
    }
}

/// An agent's side of a link: connected, magic sent.
pub struct AgentLink {
    pub reader: FrameReader<tokio::net::tcp::OwnedReadHalf>,
    pub writer: FrameWriter<tokio::net::tcp::OwnedWriteHalf>,
}

impl AgentLink {
    /// Connects to `master` (`host:port`, or `http://host:port` as agents'
    /// configurations name masters) within `timeout`.
    pub async fn connect(master: &str, timeout: std::time::Duration) -> Result<AgentLink, String> {
        let addr = master
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr}: timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut writer = FrameWriter::new(wr);
        writer
            .write_magic()
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        Ok(AgentLink {
            reader: FrameReader::new(rd),
            writer,
        })
    }

    /// Registers; the master's answer, or its refusal as a status.
    pub async fn register(
        &mut self,
        request: v1::RegisterRequest,
        timeout: std::time::Duration,
    ) -> Result<v1::RegisterResponse, tonic::Status> {
        let frame = v1::LinkFrame {
            frame: Some(v1::link_frame::Frame::Register(request)),
        };
        let answer = tokio::time::timeout(timeout, async {
            self.writer.send_now(&frame).await?;
            self.reader.next().await
        })
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("Register timed out"))?
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        match answer.and_then(|f| f.frame) {
            Some(v1::link_frame::Frame::Registered(r)) => Ok(r),
            Some(v1::link_frame::Frame::Error(e)) => Err(status_of(&e)),
            Some(_) => Err(tonic::Status::internal("unexpected answer to Register")),
            None => Err(tonic::Status::unavailable("the master closed the link")),
        }
    }

    /// Says Hello and splits the link: the returned sender's messages are
    /// written by a task (in bursts) until the sender is dropped or the
    /// socket fails; the reader is the master's side of the stream.
    pub async fn attach(
        mut self,
        hello: v1::agent_message::Hello,
        capacity: usize,
    ) -> Result<
        (
            tokio::sync::mpsc::Sender<v1::AgentMessage>,
            FrameReader<tokio::net::tcp::OwnedReadHalf>,
        ),
        FrameError,
    > {
        let hello = agent_frame(v1::AgentMessage {
            message: Some(v1::agent_message::Message::Hello(hello)),
        });
        self.writer.send_now(&hello).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<v1::AgentMessage>(capacity.max(1));
        let mut writer = self.writer;
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                if writer
                    .send_burst(first, &mut rx, agent_frame)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok((tx, self.reader))
    }
}

fn agent_frame(msg: v1::AgentMessage) -> v1::LinkFrame {
    v1::LinkFrame {
        frame: Some(v1::link_frame::Frame::Agent(msg)),
    }
}

/// The master's next message on an attached link: `Ok(None)` when the
/// master closed it, an error frame as a status. Frames of other kinds are
/// skipped.
pub async fn next_master_message<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<Option<v1::MasterMessage>, tonic::Status> {
    loop {
        let frame = reader
            .next()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        match frame.map(|f| f.frame) {
            None => return Ok(None),
            Some(Some(v1::link_frame::Frame::Master(m))) => return Ok(Some(m)),
            Some(Some(v1::link_frame::Frame::Error(e))) => return Err(status_of(&e)),
            Some(_) => continue,
        }
    }
}

/// A frame refusing a registration or stream with a gRPC status code.
pub fn error_frame(code: tonic::Code, message: impl Into<String>) -> v1::LinkFrame {
    v1::LinkFrame {
        frame: Some(v1::link_frame::Frame::Error(v1::LinkError {
            code: code as i32,
            message: message.into(),
            leader: String::new(),
        })),
    }
}

/// A standby's answer to a registration (send it, then close the link):
/// see [`v1::LinkError::not_leader`].
pub fn not_leader_frame(leader: Option<&str>) -> v1::LinkFrame {
    v1::LinkFrame {
        frame: Some(v1::link_frame::Frame::Error(v1::LinkError::not_leader(
            leader,
        ))),
    }
}

impl v1::LinkError {
    /// A standby's refusal: `UNAVAILABLE`, "not the leading master; leader
    /// is at HOST:PORT" (or "...; no leader is known") and `leader` set to
    /// the validated `host:port` (empty if `leader` is `None` or not an
    /// address), as in `agora_proto::leader`.
    pub fn not_leader(leader: Option<&str>) -> v1::LinkError {
        let leader = leader.and_then(leader::leader_address);
        v1::LinkError {
            code: tonic::Code::Unavailable as i32,
            message: leader::not_leader_message(leader.as_deref()),
            leader: leader.unwrap_or_default(),
        }
    }

    /// The leader this refusal names: `None` unless the code is
    /// `UNAVAILABLE` and `leader` is a valid `host:port`.
    pub fn leader_hint(&self) -> Option<String> {
        if self.code != tonic::Code::Unavailable as i32 {
            return None;
        }
        leader::leader_address(&self.leader)
    }
}

/// The status a refusal frame carries; a standby's leader hint goes into
/// its metadata, so `leader::leader_hint` reads it as from the gRPC API.
pub fn status_of(e: &v1::LinkError) -> tonic::Status {
    let mut status = tonic::Status::new(tonic::Code::from_i32(e.code), e.message.clone());
    if let Some(l) = e.leader_hint() {
        leader::insert_hint(&mut status, &l);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pong(seq: u64) -> v1::LinkFrame {
        v1::LinkFrame {
            frame: Some(v1::link_frame::Frame::Agent(v1::AgentMessage {
                message: Some(v1::agent_message::Message::Pong(v1::agent_message::Pong {
                    seq,
                })),
            })),
        }
    }

    #[tokio::test]
    async fn frames_round_trip_in_order_and_a_clean_close_ends_the_stream() {
        let (a, b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            let mut w = FrameWriter::new(a);
            w.write_magic().await?;
            for seq in 0..100 {
                w.send(&pong(seq)).await?;
            }
            // One frame far larger than the buffers.
            let big = error_frame(tonic::Code::InvalidArgument, "x".repeat(200_000));
            w.send(&big).await?;
            w.flush().await?;
            Ok::<_, FrameError>(())
        });
        let mut r = FrameReader::after_magic(b).await.unwrap();
        for seq in 0..100 {
            assert_eq!(r.next().await.unwrap(), Some(pong(seq)));
        }
        let big = r.next().await.unwrap().unwrap();
        match big.frame {
            Some(v1::link_frame::Frame::Error(e)) => {
                assert_eq!(status_of(&e).code(), tonic::Code::InvalidArgument);
                assert_eq!(e.message.len(), 200_000);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            r.buf.capacity() <= KEEP_BUFFER,
            "the large frame's buffer is given back"
        );
        writer.await.unwrap().unwrap();
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_header_alone_does_not_allocate_the_frame_it_announces() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&(MAX_FRAME_BYTES as u32).to_be_bytes())
            .await
            .unwrap();
        a.write_all(b"abcde").await.unwrap();
        let mut r = FrameReader::new(b);
        {
            // One poll reads everything sent so far, then waits for more.
            let mut next = std::pin::pin!(r.next());
            let polled = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(next.as_mut().poll(cx).is_pending())
            })
            .await;
            assert!(polled, "the frame is incomplete");
        }
        assert_eq!(r.buf, b"abcde");
        assert!(
            r.buf.capacity() < IO_BUFFER,
            "{} bytes held for 5 received",
            r.buf.capacity()
        );

        // The rest of a frame arriving later still makes a whole frame.
        let frame = pong(7);
        let bytes = frame.encode_to_vec();
        let (mut a, b) = tokio::io::duplex(64);
        let sender = tokio::spawn(async move {
            a.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
            for chunk in bytes.chunks(3) {
                a.write_all(chunk).await?;
                tokio::task::yield_now().await;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut r = FrameReader::new(b);
        assert_eq!(r.next().await.unwrap(), Some(frame));
        sender.await.unwrap().unwrap();
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn bad_magic_oversize_and_garbage_are_errors_not_panics() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(matches!(
            FrameReader::after_magic(b).await,
            Err(FrameError::BadMagic)
        ));

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&((MAX_FRAME_BYTES as u32) + 1).to_be_bytes())
            .await
            .unwrap();
        let mut r = FrameReader::new(b);
        assert!(matches!(r.next().await, Err(FrameError::TooLarge(_))));

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        let mut r = FrameReader::new(b);
        assert!(matches!(r.next().await, Err(FrameError::Decode(_))));

        // A frame cut short is an error, not a clean close.
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(b);
        assert!(matches!(r.next().await, Err(FrameError::Io(_))));
    }
}
