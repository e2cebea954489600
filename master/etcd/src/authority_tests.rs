use tokio::io::AsyncReadExt;

use super::*;

/// Huffman-codes `text` with the canonical code (the test's encoder).
fn huffman(text: &[u8]) -> Vec<u8> {
    let code = canonical();
    let (mut out, mut bits, mut used) = (Vec::new(), 0u64, 0u32);
    for byte in text {
        let position = code
            .symbols
            .iter()
            .position(|s| *s == u16::from(*byte))
            .unwrap();
        let length = (1..=LONGEST_CODE)
            .find(|l| {
                position >= code.first_symbol[*l]
                    && position < code.first_symbol[*l] + code.count[*l] as usize
            })
            .unwrap();
        let value = code.first_code[length] + (position - code.first_symbol[length]) as u32;
        bits = bits << length | u64::from(value);
        used += length as u32;
        while used >= 8 {
            out.push((bits >> (used - 8)) as u8);
            used -= 8;
        }
    }
    if used > 0 {
        let pad = 8 - used;
        out.push(((bits << pad) as u8) | ((1u8 << pad) - 1));
    }
    out
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.chunks(2))
        .map(|pair| u8::from_str_radix(&pair.iter().collect::<String>(), 16).unwrap())
        .collect()
}

#[test]
fn huffman_decodes_rfc_7541s_examples() {
    // RFC 7541, C.4.1 to C.4.3.
    for (coded, text) in [
        ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
        ("a8eb 1064 9cbf", "no-cache"),
        ("25a8 49e9 5ba9 7d7f", "custom-key"),
        ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
    ] {
        assert_eq!(huffman_decode(&hex(coded)).unwrap(), text.as_bytes());
        assert_eq!(huffman(text.as_bytes()), hex(coded), "the test's encoder");
    }
    // Padding must be a short run of 1s.
    assert_eq!(huffman_decode(&[0x07]), Some(vec![b'0']));
    assert_eq!(
        huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff ff")),
        None
    );
    assert_eq!(huffman_decode(&[0x00]), None, "0 then padding of 0s");
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(huffman_decode(&huffman(&all)).unwrap(), all);
}

#[test]
fn integers_are_rfc_7541s() {
    // RFC 7541, C.1.
    let mut out = Vec::new();
    integer_into(10, 5, 0, &mut out);
    integer_into(1337, 5, 0, &mut out);
    integer_into(42, 8, 0, &mut out);
    assert_eq!(out, [0x0a, 0x1f, 0x9a, 0x0a, 0x2a]);
    assert_eq!(integer(&out, 1, 5), Ok((1337, 4)));
    assert_eq!(integer(&[0x1f, 0xff], 0, 5), Err(Malformed));
}

#[test]
fn only_a_scheme_and_path_come_off() {
    let strip = |text: &str| without_scheme(text.as_bytes()).map(|h| String::from_utf8(h).unwrap());
    assert_eq!(
        strip("http://127.0.0.1:2379").as_deref(),
        Some("127.0.0.1:2379")
    );
    assert_eq!(strip("https://etcd:2379/").as_deref(), Some("etcd:2379"));
    assert_eq!(strip("127.0.0.1:2379"), None);
    assert_eq!(strip("://x"), None);
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame_header(payload.len(), kind, flags, stream, &mut out);
    out.extend_from_slice(payload);
    out
}

/// An `:authority` literal (name: static index 1) with incremental indexing.
fn authority_literal(value: &[u8], coded: bool) -> Vec<u8> {
    let mut out = vec![0x41];
    let bytes = if coded {
        huffman(value)
    } else {
        value.to_vec()
    };
    integer_into(
        bytes.len() as u64,
        7,
        if coded { 0x80 } else { 0 },
        &mut out,
    );
    out.extend(bytes);
    out
}

/// What etcdctl's `endpoint status` sends, in substance: a request whose
/// authority has a scheme, its body, and a second request naming the
/// indexed authority again.
fn client_bytes(authority: &[u8]) -> Vec<u8> {
    let mut first = vec![0x83, 0x86]; // :method POST, :scheme http
    first.extend([0x44, 0x05]); // :path, indexed, 5 raw bytes
    first.extend(b"/a/St");
    first.extend(authority);
    first.extend([0x40, 0x02]); // a new name, indexed: "te: trailers"
    first.extend(b"te");
    first.extend([0x08]);
    first.extend(b"trailers");
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    bytes.extend(frame(HEADERS, END_HEADERS, 1, &first));
    bytes.extend(frame(0x0, END_STREAM, 1, &[0, 0, 0, 0, 0])); // DATA
    // Dynamic table now, newest first: te (62), :authority (63), :path (64).
    bytes.extend(frame(
        HEADERS,
        END_HEADERS,
        3,
        &[0x83, 0x86, 0xc0, 0xbf, 0xbe],
    ));
    bytes
}

#[test]
fn a_scheme_in_the_authority_comes_off_and_the_rest_is_untouched() {
    for coded in [true, false] {
        let sent = client_bytes(&authority_literal(b"http://127.0.0.1:2379", coded));
        let expected = client_bytes(&authority_literal(b"127.0.0.1:2379", false));
        let mut rewriter = Rewriter::default();
        let mut out = Vec::new();
        rewriter.feed(&sent, &mut out);
        assert_eq!(out, expected, "huffman: {coded}");
        // Byte by byte, the same.
        let mut rewriter = Rewriter::default();
        let mut out = Vec::new();
        for byte in &sent {
            rewriter.feed(std::slice::from_ref(byte), &mut out);
        }
        assert_eq!(out, expected, "huffman: {coded}, byte by byte");
    }
}

#[test]
fn a_literal_named_authority_through_the_dynamic_table_is_fixed_too() {
    // `:authority` as a new literal name, indexed; then a value for it that
    // names the name by its dynamic index (62).
    let mut block = vec![0x40, 0x0a];
    block.extend(b":authority");
    block.extend([0x01]);
    block.extend(b"x");
    // Name: dynamic index 62, which fits the 6-bit prefix.
    let mut second = vec![0x40 | 62, 0x0a];
    second.extend(b"http://h:1");
    let mut table = VecDeque::new();
    assert_eq!(rewrite_block(&mut table, &block), Ok(None));
    let fixed = rewrite_block(&mut table, &second).unwrap().unwrap();
    assert_eq!(fixed, [&[0x7e, 0x03][..], b"h:1"].concat());
    assert_eq!(table, [true, true]);
}

#[test]
fn what_is_not_http2_or_not_parsable_passes_unchanged() {
    for sent in [
        b"GET / HTTP/1.1\r\nHost: http://x\r\n\r\n".to_vec(),
        [PREFACE, &frame(HEADERS, END_HEADERS, 1, &[0x41, 0x7f])[..]].concat(),
        [PREFACE, &frame(CONTINUATION, END_HEADERS, 1, &[0x82])[..]].concat(),
    ] {
        let mut rewriter = Rewriter::default();
        let mut out = Vec::new();
        rewriter.feed(&sent, &mut out);
        assert_eq!(out, sent);
        assert_eq!(rewriter.phase, Phase::Off);
    }
}

#[test]
fn a_long_block_is_cut_into_frames() {
    let block = Block {
        stream: 5,
        flags: END_STREAM,
        ..Block::default()
    };
    let fixed = vec![0x82; MAX_FRAME + 100];
    let mut out = Vec::new();
    write_block(&block, &fixed, &mut out);
    let expected = [
        frame(HEADERS, END_STREAM, 5, &fixed[..MAX_FRAME]),
        frame(CONTINUATION, END_HEADERS, 5, &fixed[MAX_FRAME..]),
    ]
    .concat();
    assert_eq!(out, expected);
}

/// Yields its bytes a few at a time, as a socket may.
struct Trickle(Vec<u8>, usize);

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.1.min(this.0.len()).min(buf.remaining());
        buf.put_slice(&this.0[..n]);
        this.0.drain(..n);
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn reads_through_the_fix_give_the_rewritten_stream() {
    let sent = client_bytes(&authority_literal(b"http://127.0.0.1:2379", true));
    let expected = client_bytes(&authority_literal(b"127.0.0.1:2379", false));
    for chunk in [1, 7, 64, 4096] {
        let mut fixed = FixAuthority::new(Trickle(sent.clone(), chunk));
        let mut out = Vec::new();
        fixed.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, expected, "{chunk} bytes at a time");
    }
}
