//! SMTP line framing (RFC 5321 2.3.8: lines end in CRLF): where a line ends and how long it may
//! be, in one place for the lab's servers and the test fixtures (and the client's reply reader,
//! which frames the same way). A bare LF also ends a line: peers send them, and rejecting the
//! line is the caller's policy, not the framer's.

/// A line longer than the caller's limit, or a buffer that already holds more than a line's
/// worth without a line end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Takes the first complete line off the front of `buf`, without its line ending. `Ok(None)`
/// when no line is complete yet; `LineTooLong` when the line, without its ending, is longer
/// than `max` bytes, or when `buf` holds more than `max` bytes and a CR without a line end.
pub fn take_line(buf: &mut Vec<u8>, max: usize) -> Result<Option<Vec<u8>>, LineTooLong> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(pos) => {
            let mut line: Vec<u8> = buf.drain(..=pos).collect();
            let ending = trim_eol(&line).len();
            line.truncate(ending);
            if line.len() > max {
                return Err(LineTooLong);
            }
            Ok(Some(line))
        }
        None if buf.len() > max.saturating_add(1) => Err(LineTooLong),
        None => Ok(None),
    }
}

/// `raw` without a final LF and the CR before it.
pub fn trim_eol(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_crlf_and_bare_lf_lines() {
        let mut buf = b"EHLO a\r\nNOOP\npartial".to_vec();
        assert_eq!(take_line(&mut buf, 16), Ok(Some(b"EHLO a".to_vec())));
        assert_eq!(take_line(&mut buf, 16), Ok(Some(b"NOOP".to_vec())));
        assert_eq!(take_line(&mut buf, 16), Ok(None));
        assert_eq!(buf, b"partial");
        assert_eq!(trim_eol(b"x\r\n"), b"x");
        assert_eq!(trim_eol(b"x\r"), b"x");
    }

    #[test]
    fn bounds_the_line_and_the_buffer() {
        let mut buf = b"12345\r\n".to_vec();
        assert_eq!(take_line(&mut buf, 5), Ok(Some(b"12345".to_vec())));
        let mut buf = b"123456\r\n".to_vec();
        assert_eq!(take_line(&mut buf, 5), Err(LineTooLong));
        // Five bytes and a CR may still be a line; one more byte cannot.
        let mut buf = b"12345\r".to_vec();
        assert_eq!(take_line(&mut buf, 5), Ok(None));
        buf.push(b'x');
        assert_eq!(take_line(&mut buf, 5), Err(LineTooLong));
    }
}
