//! etcdctl 3.4 sends some connections' HTTP/2 `:authority` as the endpoint
//! URL, scheme and all (`http://127.0.0.1:2379`): `endpoint status`,
//! `endpoint hashkv`, and every `--cluster` command, which dial the client
//! URLs MemberList reports. grpc-go servers (etcd) accept that; Rust's h2
//! resets the stream as malformed (PROTOCOL_ERROR) before any service sees
//! it. So the etcd port reads each connection through [`FixAuthority`],
//! which takes the scheme (and any path) off an `:authority` in the
//! client's header blocks before h2 decodes them. Everything else passes
//! through unchanged: bytes that are not HTTP/2, frames other than HEADERS
//! and CONTINUATION, and header blocks without such an authority.
//!
//! Header blocks are HPACK (RFC 7541). A rewritten field is re-encoded as a
//! plain literal of the same kind; when the client asked to index it, h2's
//! dynamic table gets the shorter value. Its entries then are never larger
//! than the client's, so h2 evicts no entry the client still refers to,
//! and an index names the same entry on both sides (indices count from the
//! newest entry). For the same reason this reader keeps only which of the
//! client's entries are named `:authority`, not their sizes: it never
//! evicts, it just keeps the newest [`MAX_ENTRIES`]. Anything it cannot
//! parse it hands to h2 unchanged, and stops rewriting on that connection:
//! h2 then answers the malformed input itself.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// What an HTTP/2 client sends first (RFC 9113, 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The frame size every HTTP/2 peer accepts; rewritten blocks are cut to it.
const MAX_FRAME: usize = 16_384;
/// A longer header block is handed on as it is (h2 limits header lists
/// far below this); rewriting stops on that connection.
const MAX_BLOCK: usize = 1 << 20;
/// Dynamic table entries remembered: a 4 KiB table (h2's) holds at most
/// 128 (32 bytes of overhead each).
const MAX_ENTRIES: usize = 1024;
/// Entries of HPACK's static table; `:authority` is its first.
const STATIC_ENTRIES: u64 = 61;

/// A connection whose reads pass through the `:authority` fix.
pub(crate) struct FixAuthority<IO> {
    io: IO,
    rewriter: Rewriter,
    /// Rewritten bytes not yet handed to the reader, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// Read bytes waiting for the rewriter (reused).
    scratch: Vec<u8>,
}

impl<IO> FixAuthority<IO> {
    pub(crate) fn new(io: IO) -> FixAuthority<IO> {
        FixAuthority {
            io,
            rewriter: Rewriter::default(),
            out: Vec::new(),
            sent: 0,
            scratch: Vec::new(),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FixAuthority<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.sent < this.out.len() {
                let n = (this.out.len() - this.sent).min(buf.remaining());
                buf.put_slice(&this.out[this.sent..this.sent + n]);
                this.sent += n;
                if this.sent == this.out.len() {
                    this.out.clear();
                    this.sent = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let read = buf.filled().len() - before;
            if read == 0 {
                return Poll::Ready(Ok(()));
            }
            // What passes unchanged stays in `buf` (no copy): DATA frames,
            // and everything once rewriting has stopped.
            let pass = this.rewriter.pass(read);
            if pass == read {
                return Poll::Ready(Ok(()));
            }
            this.scratch.clear();
            this.scratch
                .extend_from_slice(&buf.filled()[before + pass..]);
            buf.set_filled(before + pass);
            this.rewriter.feed(&this.scratch, &mut this.out);
            if pass > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FixAuthority<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for FixAuthority<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Where the reader is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Matching the preface; this many bytes of it seen.
    Preface(usize),
    /// At a frame boundary.
    Frames,
    /// Inside a frame that passes unchanged; this many bytes of it left.
    Skip(usize),
    /// Not HTTP/2, or unparsable: everything passes unchanged.
    Off,
}

/// A header block being collected (HEADERS, then CONTINUATIONs).
#[derive(Debug, Default)]
struct Block {
    stream: u32,
    /// END_STREAM and PRIORITY of the HEADERS frame.
    flags: u8,
    /// The HEADERS frame's priority fields, if any.
    priority: Vec<u8>,
    /// The HPACK header block fragments, joined.
    fragment: Vec<u8>,
    /// The frames as received, to hand on when nothing changes.
    raw: Vec<u8>,
}

/// The sans-IO part: client bytes in, bytes for h2 out.
#[derive(Debug)]
struct Rewriter {
    phase: Phase,
    /// Received bytes not yet handled (a frame header or header frame in
    /// pieces).
    pending: Vec<u8>,
    block: Option<Block>,
    /// Whether each of the client's dynamic table entries is named
    /// `:authority`, newest first.
    table: VecDeque<bool>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Rewriter {
            phase: Phase::Preface(0),
            pending: Vec::new(),
            block: None,
            table: VecDeque::new(),
        }
    }
}

impl Rewriter {
    /// How many of the next `read` bytes pass unchanged without being fed
    /// (they are counted as passed).
    fn pass(&mut self, read: usize) -> usize {
        if !self.pending.is_empty() {
            return 0;
        }
        match self.phase {
            Phase::Off => read,
            Phase::Skip(left) => {
                let n = left.min(read);
                self.phase = if n == left {
                    Phase::Frames
                } else {
                    Phase::Skip(left - n)
                };
                n
            }
            Phase::Preface(_) | Phase::Frames => 0,
        }
    }

    /// Takes `input` and appends what h2 should read to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(input);
        let mut at = 0;
        while at < self.pending.len() {
            match self.step(at, out) {
                Some(used) => at += used,
                None => break,
            }
        }
        self.pending.drain(..at);
    }

    /// Handles what starts at `pending[at]`; answers the bytes used, `None`
    /// if more must arrive first.
    fn step(&mut self, at: usize, out: &mut Vec<u8>) -> Option<usize> {
        let input = &self.pending[at..];
        match self.phase {
            Phase::Off => {
                out.extend_from_slice(input);
                Some(input.len())
            }
            Phase::Skip(left) => {
                let n = left.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.phase = if n == left {
                    Phase::Frames
                } else {
                    Phase::Skip(left - n)
                };
                Some(n)
            }
            Phase::Preface(seen) => {
                let n = (PREFACE.len() - seen).min(input.len());
                if input[..n] != PREFACE[seen..seen + n] {
                    // Not HTTP/2 with prior knowledge: nothing to fix.
                    self.phase = Phase::Off;
                    return Some(0);
                }
                out.extend_from_slice(&input[..n]);
                self.phase = if seen + n == PREFACE.len() {
                    Phase::Frames
                } else {
                    Phase::Preface(seen + n)
                };
                Some(n)
            }
            Phase::Frames => self.frame(at, out),
        }
    }

    /// One frame at `pending[at]`, or `None` until it is all there (header
    /// frames) or its header is (others).
    fn frame(&mut self, at: usize, out: &mut Vec<u8>) -> Option<usize> {
        let input = &self.pending[at..];
        let header = input.get(..FRAME_HEADER)?;
        let length =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let kind = header[3];
        if kind != HEADERS && kind != CONTINUATION {
            out.extend_from_slice(header);
            self.phase = Phase::Skip(length);
            return Some(FRAME_HEADER);
        }
        let collected = self.block.as_ref().map_or(0, |b| b.raw.len());
        if collected + FRAME_HEADER + length > MAX_BLOCK {
            self.give_up(out);
            return Some(0);
        }
        let frame = input.get(..FRAME_HEADER + length)?.to_vec();
        if !self.collect(&frame) {
            // Not a header block HTTP/2 allows: h2 will say so.
            self.give_up(out);
            out.extend_from_slice(&frame);
            return Some(frame.len());
        }
        if frame[4] & END_HEADERS != 0 {
            self.finish(out);
        }
        Some(frame.len())
    }

    /// Adds a HEADERS or CONTINUATION frame to the block; false if it is
    /// not one HTTP/2 allows here (then it is not added).
    fn collect(&mut self, frame: &[u8]) -> bool {
        let (kind, flags) = (frame[3], frame[4]);
        let stream = u32::from_be_bytes([frame[5] & 0x7f, frame[6], frame[7], frame[8]]);
        let payload = &frame[FRAME_HEADER..];
        match (kind, self.block.as_mut()) {
            (HEADERS, None) => {
                let Some((priority, fragment)) = headers_payload(flags, payload) else {
                    return false;
                };
                self.block = Some(Block {
                    stream,
                    flags: flags & (END_STREAM | PRIORITY),
                    priority: priority.to_vec(),
                    fragment: fragment.to_vec(),
                    raw: frame.to_vec(),
                });
                true
            }
            (CONTINUATION, Some(block)) if block.stream == stream => {
                block.fragment.extend_from_slice(payload);
                block.raw.extend_from_slice(frame);
                true
            }
            _ => false,
        }
    }

    /// The block is complete: hand it on, rewritten if it must be.
    fn finish(&mut self, out: &mut Vec<u8>) {
        let Some(block) = self.block.take() else {
            return;
        };
        match rewrite_block(&mut self.table, &block.fragment) {
            Ok(None) => out.extend_from_slice(&block.raw),
            Ok(Some(fixed)) => write_block(&block, &fixed, out),
            Err(Malformed) => {
                out.extend_from_slice(&block.raw);
                self.give_up(out);
            }
        }
    }

    /// Stops rewriting: whatever is held goes on as it came.
    fn give_up(&mut self, out: &mut Vec<u8>) {
        if let Some(block) = self.block.take() {
            out.extend_from_slice(&block.raw);
        }
        self.phase = Phase::Off;
    }
}

/// A HEADERS payload's priority fields and header block fragment.
fn headers_payload(flags: u8, payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut payload = payload;
    if flags & PADDED != 0 {
        let (&pad, rest) = payload.split_first()?;
        payload = rest.get(..rest.len().checked_sub(usize::from(pad))?)?;
    }
    let priority_len = if flags & PRIORITY != 0 { 5 } else { 0 };
    let priority = payload.get(..priority_len)?;
    Some((priority, &payload[priority_len..]))
}

/// `fixed` as a HEADERS frame and as many CONTINUATIONs as it takes.
fn write_block(block: &Block, fixed: &[u8], out: &mut Vec<u8>) {
    let first = MAX_FRAME - block.priority.len();
    let (head, mut rest) = fixed.split_at(first.min(fixed.len()));
    let mut flags = block.flags;
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    frame_header(
        block.priority.len() + head.len(),
        HEADERS,
        flags,
        block.stream,
        out,
    );
    out.extend_from_slice(&block.priority);
    out.extend_from_slice(head);
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(MAX_FRAME.min(rest.len()));
        let flags = if after.is_empty() { END_HEADERS } else { 0 };
        frame_header(chunk.len(), CONTINUATION, flags, block.stream, out);
        out.extend_from_slice(chunk);
        rest = after;
    }
}

fn frame_header(length: usize, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
    let length = length.to_be_bytes();
    out.extend_from_slice(&length[length.len() - 3..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// The header block could not be parsed.
#[derive(Debug, PartialEq, Eq)]
struct Malformed;

/// The block with every `:authority` that carries a scheme rewritten to
/// its `host:port`; `None` if there is none. Tracks the client's table.
fn rewrite_block(table: &mut VecDeque<bool>, block: &[u8]) -> Result<Option<Vec<u8>>, Malformed> {
    let mut out = Vec::with_capacity(block.len());
    let mut changed = false;
    let mut at = 0;
    while let Some(&first) = block.get(at) {
        let start = at;
        if first & 0x80 != 0 || first & 0xe0 == 0x20 {
            // An indexed field, or a table size update: nothing to rewrite.
            let prefix = if first & 0x80 != 0 { 7 } else { 5 };
            at = integer(block, at, prefix)?.1;
            out.extend_from_slice(&block[start..at]);
            continue;
        }
        let indexed = first & 0xc0 == 0x40;
        let (name_index, after) = integer(block, at, if indexed { 6 } else { 4 })?;
        at = after;
        let authority = if name_index == 0 {
            let (name, after) = string(block, at)?;
            at = after;
            decoded(block, name)? == b":authority"
        } else {
            names_authority(table, name_index)
        };
        let value_at = at;
        let (value, after) = string(block, at)?;
        at = after;
        if indexed {
            table.push_front(authority);
            table.truncate(MAX_ENTRIES);
        }
        let host = if authority {
            without_scheme(&decoded(block, value)?)
        } else {
            None
        };
        match host {
            Some(host) => {
                out.extend_from_slice(&block[start..value_at]);
                integer_into(host.len() as u64, 7, 0, &mut out);
                out.extend_from_slice(&host);
                changed = true;
            }
            None => out.extend_from_slice(&block[start..at]),
        }
    }
    Ok(changed.then_some(out))
}

/// Whether field index `index` (static or dynamic) is named `:authority`.
/// An index past what is remembered is not: h2 judges it.
fn names_authority(table: &VecDeque<bool>, index: u64) -> bool {
    match index {
        1 => true,
        2..=STATIC_ENTRIES => false,
        _ => usize::try_from(index - STATIC_ENTRIES - 1)
            .ok()
            .and_then(|i| table.get(i).copied())
            .unwrap_or(false),
    }
}

/// `authority` without a leading `scheme://` and a trailing path; `None`
/// if it has no scheme.
fn without_scheme(authority: &[u8]) -> Option<Vec<u8>> {
    let at = authority.windows(3).position(|w| w == b"://")?;
    let scheme = &authority[..at];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c));
    if !valid {
        return None;
    }
    let rest = &authority[at + 3..];
    let end = rest.iter().position(|c| *c == b'/').unwrap_or(rest.len());
    Some(rest[..end].to_vec())
}

/// An HPACK integer with an `prefix`-bit prefix at `block[at]`: its value
/// and where it ends (RFC 7541, 5.1).
fn integer(block: &[u8], at: usize, prefix: u32) -> Result<(u64, usize), Malformed> {
    let mask = (1u64 << prefix) - 1;
    let mut value = u64::from(*block.get(at).ok_or(Malformed)?) & mask;
    let mut at = at + 1;
    if value < mask {
        return Ok((value, at));
    }
    for shift in (0..=28).step_by(7) {
        let byte = *block.get(at).ok_or(Malformed)?;
        at += 1;
        value += u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, at));
        }
    }
    Err(Malformed)
}

fn integer_into(value: u64, prefix: u32, flags: u8, out: &mut Vec<u8>) {
    let mask = (1u64 << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// A string literal at `block[at]`: whether it is Huffman-coded, its bytes'
/// range, and where it ends.
#[derive(Debug, Clone, Copy)]
struct Literal {
    huffman: bool,
    start: usize,
    end: usize,
}

fn string(block: &[u8], at: usize) -> Result<(Literal, usize), Malformed> {
    let huffman = block.get(at).ok_or(Malformed)? & 0x80 != 0;
    let (length, start) = integer(block, at, 7)?;
    let end = usize::try_from(length)
        .ok()
        .and_then(|length| start.checked_add(length))
        .filter(|end| *end <= block.len())
        .ok_or(Malformed)?;
    Ok((
        Literal {
            huffman,
            start,
            end,
        },
        end,
    ))
}

fn decoded(block: &[u8], literal: Literal) -> Result<Vec<u8>, Malformed> {
    let bytes = &block[literal.start..literal.end];
    if literal.huffman {
        huffman_decode(bytes).ok_or(Malformed)
    } else {
        Ok(bytes.to_vec())
    }
}

/// RFC 7541 Appendix B: each symbol's code length (256 is end-of-string).
/// The code is canonical, so the lengths alone give the codes.
#[rustfmt::skip]
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
];
const LONGEST_CODE: usize = 30;
const END_OF_STRING: u16 = 256;

/// The canonical code, by length: the first code of each length, how many
/// codes have it, and the symbols in code order.
struct Canonical {
    first_code: [u32; LONGEST_CODE + 1],
    first_symbol: [usize; LONGEST_CODE + 1],
    count: [u32; LONGEST_CODE + 1],
    symbols: Vec<u16>,
}

fn canonical() -> &'static Canonical {
    static CODE: OnceLock<Canonical> = OnceLock::new();
    CODE.get_or_init(|| {
        let mut symbols: Vec<u16> = (0..=END_OF_STRING).collect();
        symbols.sort_by_key(|s| (CODE_LENGTHS[usize::from(*s)], *s));
        let mut code = Canonical {
            first_code: [0; LONGEST_CODE + 1],
            first_symbol: [0; LONGEST_CODE + 1],
            count: [0; LONGEST_CODE + 1],
            symbols,
        };
        for length in CODE_LENGTHS {
            code.count[usize::from(length)] += 1;
        }
        let (mut next, mut index) = (0u32, 0usize);
        for length in 1..=LONGEST_CODE {
            code.first_code[length] = next;
            code.first_symbol[length] = index;
            next = (next + code.count[length]) << 1;
            index += code.count[length] as usize;
        }
        code
    })
}

/// Decodes a Huffman-coded string; `None` if it is not a valid one (an
/// end-of-string symbol inside, or padding that is not a short run of 1s).
fn huffman_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let code = canonical();
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
    let (mut bits, mut length) = (0u32, 0usize);
    for byte in bytes {
        for shift in (0..8).rev() {
            bits = bits << 1 | u32::from(byte >> shift & 1);
            length += 1;
            if length > LONGEST_CODE {
                return None;
            }
            let offset = bits.wrapping_sub(code.first_code[length]);
            if bits >= code.first_code[length] && offset < code.count[length] {
                let symbol = code.symbols[code.first_symbol[length] + offset as usize];
                out.push(u8::try_from(symbol).ok()?);
                (bits, length) = (0, 0);
            }
        }
    }
    (length < 8 && bits == (1 << length) - 1).then_some(out)
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
