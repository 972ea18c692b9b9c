//! The framing of a protobuf body checked as it arrives, chunk by chunk, so that a body
//! that cannot be an `ExportTraceServiceRequest` is refused at its first bad bytes, not
//! after all of it (16 MB of zero bytes) has been read and held.
//!
//! Only the top level is checked, and only what the full reader (`otlp.rs`) would refuse
//! too: a zero field number (a zero byte where a field starts), a wire type that does not
//! exist (6, 7), `resource_spans` (field 1) not length-delimited, a key or varint past its
//! size, and a length-delimited field longer than the message can hold. Anything this
//! check lets through is still read whole by `otlp.rs`; a group (wire types 3 and 4, which
//! OTLP never sends) stops the check rather than be followed here.

/// Bytes of a gRPC message's length prefix: the compressed flag and a big-endian u32.
const GRPC_PREFIX: usize = 5;
/// Longest varint: ten bytes hold 64 bits.
const MAX_VARINT_BYTES: u32 = 10;

/// Where the check stands in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A gRPC body's prefix, `n` bytes of it read so far.
    GrpcPrefix { bytes: [u8; GRPC_PREFIX], n: usize },
    /// A field's key (a varint).
    Key { value: u64, n: u32 },
    /// The length of a length-delimited field, `field` its number.
    Len { value: u64, n: u32, field: u64 },
    /// A varint value, `n` bytes of it read.
    Varint { n: u32 },
    /// The bytes of a field's value, still to pass.
    Skip(u64),
    /// No more checking (compressed, a group, or the end of the message).
    Off,
}

/// The incremental check of one body's framing.
#[derive(Clone, Debug)]
pub(crate) struct FramingCheck {
    state: State,
    /// Bytes the message may still hold: from Content-Length, the gRPC prefix or
    /// `max_body_bytes`, so that a field longer than that is refused at its length.
    left: u64,
}

impl FramingCheck {
    /// No check: JSON and gzip bodies are read whole (gzip must be inflated first).
    pub(crate) fn off() -> Self {
        FramingCheck {
            state: State::Off,
            left: 0,
        }
    }

    /// A protobuf body of at most `max_len` bytes.
    pub(crate) fn protobuf(max_len: u64) -> Self {
        FramingCheck {
            state: State::Key { value: 0, n: 0 },
            left: max_len,
        }
    }

    /// A gRPC body: the prefix, then, when not compressed, the message it announces.
    pub(crate) fn grpc() -> Self {
        FramingCheck {
            state: State::GrpcPrefix {
                bytes: [0; GRPC_PREFIX],
                n: 0,
            },
            left: u64::MAX,
        }
    }

    /// Checks the next chunk of the body; an error says what is wrong, in words.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        let mut rest = chunk;
        while let Some((&byte, after)) = rest.split_first() {
            if self.left == 0 && self.state == (State::Key { value: 0, n: 0 }) {
                // The message is whole: what follows (bytes after a gRPC message) is
                // for the full reader to name.
                self.state = State::Off;
            }
            match self.state {
                State::Off => return Ok(()),
                State::Skip(n) => {
                    let step = n.min(rest.len() as u64);
                    self.state = if step == n {
                        State::Key { value: 0, n: 0 }
                    } else {
                        State::Skip(n - step)
                    };
                    self.consume(step)?;
                    // `step` is at most `rest.len()`, so it fits a usize.
                    rest = rest
                        .get(usize::try_from(step).unwrap_or(rest.len())..)
                        .unwrap_or(&[]);
                    continue;
                }
                _ => {
                    self.consume(1)?;
                    self.state = self.next(byte)?;
                }
            }
            rest = after;
        }
        Ok(())
    }

    /// Takes `n` bytes from what the message may hold; more than it announced is an
    /// error.
    fn consume(&mut self, n: u64) -> Result<(), String> {
        if matches!(self.state, State::GrpcPrefix { .. }) {
            return Ok(());
        }
        self.left = self
            .left
            .checked_sub(n)
            .ok_or("more bytes than the message announced")?;
        Ok(())
    }

    /// The state after one more byte of a prefix, key, length or varint.
    fn next(&mut self, byte: u8) -> Result<State, String> {
        let more = byte & 0x80 != 0;
        let bits = u64::from(byte & 0x7f);
        Ok(match self.state {
            State::GrpcPrefix { mut bytes, n } => {
                bytes[n] = byte;
                if n + 1 < GRPC_PREFIX {
                    State::GrpcPrefix { bytes, n: n + 1 }
                } else {
                    self.after_prefix(bytes)?
                }
            }
            State::Key { value, n } => {
                let value = varint_step(value, n, bits)?;
                if more {
                    State::Key { value, n: n + 1 }
                } else {
                    key(value)?
                }
            }
            State::Len { value, n, field } => {
                let value = varint_step(value, n, bits)?;
                if more {
                    State::Len {
                        value,
                        n: n + 1,
                        field,
                    }
                } else if value > self.left {
                    return Err(format!(
                        "field {field} announces {value} bytes, more than the {} left",
                        self.left
                    ));
                } else if value == 0 {
                    State::Key { value: 0, n: 0 }
                } else {
                    State::Skip(value)
                }
            }
            State::Varint { n } => {
                varint_step(0, n, 0)?;
                if more {
                    State::Varint { n: n + 1 }
                } else {
                    State::Key { value: 0, n: 0 }
                }
            }
            State::Skip(_) | State::Off => self.state,
        })
    }

    /// The message after a gRPC prefix: checked when not compressed.
    fn after_prefix(&mut self, bytes: [u8; GRPC_PREFIX]) -> Result<State, String> {
        let [flag, l0, l1, l2, l3] = bytes;
        match flag {
            0 => {
                self.left = u64::from(u32::from_be_bytes([l0, l1, l2, l3]));
                Ok(State::Key { value: 0, n: 0 })
            }
            1 => Ok(State::Off),
            flag => Err(format!("compressed flag {flag} (must be 0 or 1)")),
        }
    }
}

/// One more 7-bit group of a varint; past ten bytes it is malformed.
fn varint_step(value: u64, n: u32, bits: u64) -> Result<u64, String> {
    if n >= MAX_VARINT_BYTES {
        return Err("a varint longer than 10 bytes".into());
    }
    Ok(value | bits.checked_shl(7 * n).unwrap_or(0))
}

/// What follows a field's key.
fn key(value: u64) -> Result<State, String> {
    let field = value >> 3;
    let wire = value & 7;
    if value > u64::from(u32::MAX) {
        return Err(format!("key {value} out of range"));
    }
    if field == 0 {
        return Err(format!(
            "field number 0 (byte {value:#04x} where a field should start)"
        ));
    }
    if field == 1 && wire != 2 {
        return Err(format!("resource_spans (field 1) with wire type {wire}"));
    }
    Ok(match wire {
        0 => State::Varint { n: 0 },
        1 => State::Skip(8),
        2 => State::Len {
            value: 0,
            n: 0,
            field,
        },
        5 => State::Skip(4),
        // Groups: deprecated and never sent by OTLP; the full reader decides.
        3 | 4 => State::Off,
        wire => return Err(format!("wire type {wire} (field {field})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mut c: FramingCheck, body: &[u8], chunk: usize) -> Result<(), String> {
        body.chunks(chunk.max(1)).try_for_each(|part| c.feed(part))
    }

    /// Valid requests pass whatever the chunking; zero bytes fail at the first one.
    #[test]
    fn valid_bodies_pass_and_zeros_fail_at_once() {
        let seeds = crate::config::fuzzing::seeds("otlp");
        for seed in seeds.iter().filter(|s| !s.starts_with(&[0x1f, 0x8b])) {
            for chunk in [1, 3, 64, 1 << 20] {
                let c = FramingCheck::protobuf(seed.len() as u64);
                assert_eq!(check(c, seed, chunk), Ok(()), "chunk {chunk}");
            }
        }
        let mut zeros = FramingCheck::protobuf(16 << 20);
        let err = zeros.feed(&[0; 1]).unwrap_err();
        assert!(err.contains("field number 0"), "{err}");
    }

    #[test]
    fn framing_errors_are_caught() {
        let cases: [(&[u8], &str); 5] = [
            (&[0x0f], "wire type 7"),
            (&[0x08, 0x01], "resource_spans (field 1) with wire type 0"),
            (&[0x0a, 0xff, 0xff, 0x03], "more than the"),
            (&[0x10; 1], ""),
            (
                &[
                    0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
                "10 bytes",
            ),
        ];
        for (body, says) in cases {
            let r = check(FramingCheck::protobuf(100), body, 1);
            if says.is_empty() {
                assert_eq!(r, Ok(()), "{body:?}");
            } else {
                let err = r.unwrap_err();
                assert!(err.contains(says), "{body:?}: {err}");
            }
        }
    }

    #[test]
    fn grpc_prefix_then_message() {
        let mut body = vec![0, 0, 0, 0, 2, 0x0a, 0x00];
        assert_eq!(check(FramingCheck::grpc(), &body, 1), Ok(()));
        // Bytes after the message are left to `grpc::unframe`, which counts them.
        body.push(0);
        assert_eq!(check(FramingCheck::grpc(), &body, 2), Ok(()));
        let compressed = [1, 0, 0, 0, 3, 0, 0, 0];
        assert_eq!(check(FramingCheck::grpc(), &compressed, 1), Ok(()));
        let bad = check(FramingCheck::grpc(), &[7, 0, 0, 0, 0], 5).unwrap_err();
        assert!(bad.contains("flag 7"), "{bad}");
    }
}
